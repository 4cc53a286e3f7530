//! The enabled rules in memory, kept current.
//!
//! Matching reads an immutable snapshot (`ArcSwap<RuleIndex>`): no lock on the hot
//! path. Changes arrive as PostgreSQL notifications on `rule_changes` (sent by a
//! trigger on commit) and are applied by replacing the snapshot; a periodic
//! reconcile against the table is the backstop for notifications missed while the
//! listening connection was down.

use arc_swap::ArcSwap;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::{FutureExt, StreamExt};
use rules_core::{CompiledRule, RuleIndex};
use rules_store::db::rules::{self as store, CHANGE_CHANNEL};
use rules_store::db::PgTarget;
use rules_store::db::{DbError, PgPool};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A change arriving within this long of the previous swap starts a burst (an
/// import, a bulk toggle): what arrives within this long of it is applied together.
const DEBOUNCE: Duration = Duration::from_millis(20);

pub struct Rules {
    index: ArcSwap<RuleIndex>,
}

impl Rules {
    pub fn new(index: RuleIndex) -> Self {
        Self {
            index: ArcSwap::from_pointee(index),
        }
    }

    /// The current rules; cheap, lock-free.
    pub fn snapshot(&self) -> Arc<RuleIndex> {
        self.index.load_full()
    }

    fn replace(&self, index: RuleIndex) {
        metrics::gauge!("rules_loaded").set(index.len() as f64);
        self.index.store(Arc::new(index));
    }
}

/// Loads and compiles every enabled rule, reusing the compiled form of rules whose
/// version did not change. A stored rule that no longer validates is logged and
/// skipped rather than stopping the worker.
pub async fn load(db: &PgPool, previous: Option<&RuleIndex>) -> Result<RuleIndex, DbError> {
    let mut conn = db.get().await?;
    let mut index = RuleIndex::new();
    let mut after = None;
    loop {
        let rows = store::load_enabled_page(&mut conn, after, LOAD_PAGE).await?;
        let Some(last) = rows.last().map(|r| r.id) else {
            break;
        };
        after = Some(last);
        for row in rows {
            if let Some(same) = previous
                .and_then(|p| p.get(row.id))
                .filter(|r| r.rule().version == row.version)
            {
                index.upsert(Arc::clone(same));
                continue;
            }
            let id = row.id;
            match row.compile() {
                Ok(rule) => index.upsert(Arc::new(rule)),
                Err(e) => {
                    tracing::error!(rule_id = %id, error = %e, "stored rule is invalid; skipped")
                }
            }
        }
    }
    Ok(index)
}

/// Rules read per query while loading.
const LOAD_PAGE: i64 = 1_000;

/// Applies the current state of the named rules.
async fn apply(rules: &Rules, db: &PgPool, ids: &HashSet<Uuid>) -> Result<(), DbError> {
    let mut conn = db.get().await?;
    let mut index = (*rules.snapshot()).clone();
    for id in ids {
        match store::find(&mut conn, *id).await? {
            Some(row) if row.enabled => match row.compile() {
                Ok(rule) => index.upsert(Arc::new(rule) as Arc<CompiledRule>),
                Err(e) => {
                    tracing::error!(rule_id = %id, error = %e, "changed rule is invalid; removed from matching");
                    index.remove(*id);
                }
            },
            _ => {
                index.remove(*id);
            }
        }
    }
    rules.replace(index);
    tracing::debug!(changed = ids.len(), "rules updated");
    Ok(())
}

async fn reconcile(rules: &Rules, db: &PgPool) {
    match load(db, Some(&rules.snapshot())).await {
        Ok(index) => rules.replace(index),
        Err(e) => tracing::warn!(error = %e, "rule reconcile failed; keeping the current rules"),
    }
}

fn changed_id(payload: &str) -> Option<Uuid> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    Uuid::parse_str(value.get("id")?.as_str()?).ok()
}

/// Takes one item of the notification stream into `ids`; true when it says the
/// connection is gone (the stream ends or fails with it: never poll it again).
fn take<E>(item: Option<Result<String, E>>, ids: &mut HashSet<Uuid>) -> bool {
    match item {
        Some(Ok(payload)) => {
            ids.extend(changed_id(&payload));
            false
        }
        Some(Err(_)) | None => true,
    }
}

/// Adds to `ids` the changes that follow a first one; true when the connection was
/// lost meanwhile. What is already waiting is always taken. A lone change (none
/// applied within `DEBOUNCE`) is applied at once, so a rule is live as soon as its
/// reload returns, not a window later; in a burst, what arrives within `DEBOUNCE`
/// is gathered into one swap.
async fn gather<S, E>(notifications: &mut S, ids: &mut HashSet<Uuid>, in_burst: bool) -> bool
where
    S: futures_util::Stream<Item = Result<String, E>> + Unpin,
{
    if !in_burst {
        while let Some(item) = notifications.next().now_or_never() {
            if take(item, ids) {
                return true;
            }
        }
        return false;
    }
    let window = tokio::time::sleep(DEBOUNCE);
    tokio::pin!(window);
    loop {
        tokio::select! {
            _ = &mut window => return false,
            item = notifications.next() => if take(item, ids) {
                return true;
            },
        }
    }
}

/// Listens for rule changes and reconciles periodically until cancelled.
pub async fn keep_current(
    rules: Arc<Rules>,
    db: PgPool,
    database: PgTarget,
    every: Duration,
    token: CancellationToken,
) {
    let mut listener: Option<AsyncPgConnection> = None;
    let reconnect_delays =
        || rules_store::backoff::delays(Duration::from_millis(200), Duration::from_secs(5));
    let mut delays = reconnect_delays();
    loop {
        if token.is_cancelled() {
            return;
        }
        // (Re)connect the listening connection; every reconnect reconciles, since
        // notifications sent while it was down are lost.
        if listener.is_none() {
            match connect_listener(&database).await {
                Ok(conn) => {
                    listener = Some(conn);
                    delays = reconnect_delays();
                    reconcile(&rules, &db).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for rule changes; retrying");
                    let delay = delays.next().unwrap_or(Duration::from_secs(5));
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            }
        }
        let Some(conn) = listener.as_mut() else {
            continue;
        };
        let deadline = tokio::time::sleep(every);
        tokio::pin!(deadline);
        let mut lost = false;
        {
            let mut notifications =
                std::pin::pin!(conn.notifications_stream().map(|n| n.map(|n| n.payload)));
            let mut last_applied: Option<Instant> = None;
            while !lost {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = &mut deadline => break,
                    next = notifications.next() => {
                        let mut ids = HashSet::new();
                        lost = take(next, &mut ids);
                        if !lost {
                            let in_burst = last_applied.is_some_and(|at| at.elapsed() < DEBOUNCE);
                            lost = gather(&mut notifications, &mut ids, in_burst).await;
                        }
                        if !ids.is_empty() {
                            if let Err(e) = apply(&rules, &db, &ids).await {
                                tracing::warn!(error = %e, "applying rule changes failed; the next reconcile will");
                            }
                            last_applied = Some(Instant::now());
                        }
                    }
                }
            }
        }
        if lost {
            tracing::warn!("rule-change listener lost its connection; reconnecting");
            metrics::counter!("rule_listener_reconnects_total").increment(1);
            listener = None;
            continue;
        }
        // The periodic backstop; also proves the listening connection is alive.
        if diesel::sql_query("SELECT 1").execute(conn).await.is_err() {
            tracing::warn!("rule-change listener lost its connection; reconnecting");
            listener = None;
            continue;
        }
        reconcile(&rules, &db).await;
    }
}

async fn connect_listener(
    database: &PgTarget,
) -> Result<AsyncPgConnection, diesel::ConnectionError> {
    let mut conn = database.connect().await?;
    diesel::sql_query(format!("LISTEN {CHANGE_CHANNEL}"))
        .execute(&mut conn)
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use tokio::sync::mpsc;

    fn change(id: Uuid) -> Result<String, ()> {
        Ok(format!(r#"{{"id":"{id}","version":1,"op":"INSERT"}}"#))
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_change_is_applied_without_waiting_and_takes_what_already_waits() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(change(b)).expect("the receiver lives");
        let mut notifications = stream::poll_fn(move |cx| rx.poll_recv(cx));
        let mut ids = HashSet::from([a]);
        let started = Instant::now();
        let lost = gather(&mut notifications, &mut ids, false).await;
        assert!(!lost);
        assert_eq!(ids, HashSet::from([a, b]));
        // The paused clock moves only when something waits on it.
        assert_eq!(Instant::now(), started, "a lone change waited");
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_right_after_another_gathers_its_burst() {
        let (a, b, late) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(DEBOUNCE / 2).await;
            tx.send(change(b)).expect("the receiver lives");
            tokio::time::sleep(DEBOUNCE).await;
            tx.send(change(late)).expect("the receiver lives");
            tx
        });
        let mut notifications = stream::poll_fn(move |cx| rx.poll_recv(cx));
        let mut ids = HashSet::from([a]);
        let lost = gather(&mut notifications, &mut ids, true).await;
        assert!(!lost);
        assert_eq!(ids, HashSet::from([a, b]));
        drop(sender.await.expect("the sender finishes"));
    }

    #[tokio::test]
    async fn a_connection_lost_while_gathering_is_reported() {
        let mut notifications = stream::iter([Err(())]);
        let mut ids = HashSet::new();
        assert!(gather(&mut notifications, &mut ids, false).await);
        let mut ended = stream::iter(Vec::<Result<String, ()>>::new());
        assert!(gather(&mut ended, &mut ids, true).await);
    }
}
