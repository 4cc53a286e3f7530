//! The recorder: commits finished entries' decisions (executions, suppressions,
//! threshold counts) and counters in one transaction per batch, then acknowledges
//! those entries; two such commits run at once. Acknowledgement after
//! commit is what makes a crash lose nothing: an entry not acknowledged is
//! redelivered, and recording is idempotent.

use rules_store::db::record::{record_batch, Decided};
use rules_store::db::DbError;
use rules_store::streams::{self, EntryId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::pipeline::{release_tickets, retry_step, stage_done, Done};

/// Entries committed together: a commit closes once it holds this many (it may hold
/// up to one processed batch more).
const MAX_BATCH: usize = 2_000;
/// How long a commit waits to gather more finished entries.
const GATHER: Duration = Duration::from_millis(5);
/// Commits under way at once: while one waits for PostgreSQL and its
/// acknowledgement, the next gathers and starts, so entries do not queue behind a
/// whole commit before theirs begins (a backlog's drain left a fifth of the
/// machine idle with one).
const COMMITS_IN_FLIGHT: usize = 2;

/// Commits finished entries until the processor and every action task are gone.
/// They arrive in groups (a batch's entries with nothing to run together, each
/// entry with executions alone). Every commit acknowledges its own entries after it
/// is committed; commits of different entries do not wait for each other.
pub async fn record_loop(
    ctx: Arc<Context>,
    mut done: mpsc::Receiver<Vec<Done>>,
    token: CancellationToken,
) {
    let mut commits: JoinSet<Decided> = JoinSet::new();
    // Kept between commits with their capacity: a commit of 2,000 entries gathered
    // into fresh vectors took new pages from the kernel every time (7% of a drain's
    // CPU in page faults and zeroing).
    let mut spare: Vec<Decided> = Vec::new();
    loop {
        if commits.len() >= COMMITS_IN_FLIGHT {
            if let Some(finished) = commits.join_next().await {
                spare.push(reuse(finished));
            }
        }
        let mut groups: Vec<Vec<Done>> = Vec::new();
        // Whatever is already waiting is taken at once (no timer per group); then
        // more is waited for until the gather window closes or the commit is full.
        if done.recv_many(&mut groups, MAX_BATCH).await == 0 {
            break;
        }
        let mut entries: usize = groups.iter().map(Vec::len).sum();
        if commits.is_empty() {
            gather_until(
                &mut done,
                &mut groups,
                &mut entries,
                tokio::time::sleep(GATHER),
            )
            .await;
        } else {
            // A commit is under way: this one starts when that one is done, or
            // sooner if it fills up first, so a busy recorder keeps its commits
            // whole and an idle pipeline still overlaps them.
            let mut finished = None;
            let under_way_done = async { finished = commits.join_next().await };
            gather_until(&mut done, &mut groups, &mut entries, under_way_done).await;
            spare.extend(finished.map(reuse));
        }
        let (ctx, token) = (Arc::clone(&ctx), token.clone());
        let mut decided = spare.pop().unwrap_or_default();
        commits.spawn(async move {
            commit(&ctx, &mut groups, &mut decided, &token).await;
            // Their in-flight places back, all at once.
            release_tickets(groups.iter_mut().flatten().map(|d| &mut d.entry));
            decided.clear();
            decided
        });
    }
    // Shutting down: the commits under way finish (or give up with the token).
    while let Some(finished) = commits.join_next().await {
        reuse(finished);
    }
    tracing::info!("recorder stopped");
}

/// Takes more finished entries until `stop` is ready, or until there are
/// [`MAX_BATCH`].
async fn gather_until(
    done: &mut mpsc::Receiver<Vec<Done>>,
    groups: &mut Vec<Vec<Done>>,
    entries: &mut usize,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    while *entries < MAX_BATCH {
        let before = groups.len();
        tokio::select! {
            n = done.recv_many(groups, MAX_BATCH) => {
                if n == 0 {
                    break;
                }
                *entries += groups[before..].iter().map(Vec::len).sum::<usize>();
            }
            () = &mut stop => break,
        }
    }
}

/// The buffer of a finished commit; a commit's panic is raised again here, so the
/// recorder fails as it would have with the commit in its own task.
fn reuse(finished: Result<Decided, tokio::task::JoinError>) -> Decided {
    match finished {
        Ok(decided) => decided,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Decided::default(),
    }
}

/// Records the decisions of `groups`' entries (gathered in `decided`, empty on
/// entry), then acknowledges the entries.
async fn commit(
    ctx: &Context,
    groups: &mut [Vec<Done>],
    decided: &mut Decided,
    token: &CancellationToken,
) {
    for d in groups.iter_mut().flatten() {
        decided.append(std::mem::take(&mut d.decided));
    }
    // In key order, so two commits under way that share a pair (a redelivery) take
    // their locks in the same order and never wait for each other in a cycle.
    decided.sort_by_key();
    let decided = &*decided;
    let started = std::time::Instant::now();
    let recorded = retry_step(token, "record", || async {
        let mut conn = ctx.db.get().await?;
        let result = record_batch(&mut conn, decided).await;
        if result.as_ref().is_err_and(DbError::is_missing_partition) {
            // A day without its partition (an older day within retention, one
            // dropped by hand): make the batch's days now; the retry then finds them.
            let days = decided.days();
            crate::maintenance::make_log_days(&mut conn, ctx.retention, &days).await;
        }
        result
    })
    .await;
    if recorded.is_none() {
        // Shutting down with the database away: leave the entries pending.
        return;
    }
    let committed = stage_done("record", started);
    let mut by_stream: BTreeMap<&str, Vec<EntryId>> = BTreeMap::new();
    let batch = || groups.iter().flatten();
    for d in batch() {
        by_stream
            .entry(&d.entry.stream)
            .or_default()
            .push(d.entry.id);
    }
    let by_stream: Vec<(&str, Vec<EntryId>)> = by_stream.into_iter().collect();
    let acked = retry_step(token, "ack", || async {
        ctx.ack_link
            .run(async |conn| streams::ack(conn, &ctx.settings.group, &by_stream).await)
            .await
    })
    .await;
    if acked.is_some() {
        stage_done("ack", committed);
        metrics::counter!("events_acked_total").increment(batch().count() as u64);
        let now = std::time::Instant::now();
        let latency = metrics::histogram!("event_latency_seconds");
        for d in batch() {
            latency.record(now.duration_since(d.read_at).as_secs_f64());
        }
    }
}
