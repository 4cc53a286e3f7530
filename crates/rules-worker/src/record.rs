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
/// How long a commit gathers finished entries at least, unless it fills up first.
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
        let Some(mut groups) = next_commit(&mut done, &mut commits, &mut spare).await else {
            break;
        };
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

/// The finished entries of the next commit, in their groups; `None` once the
/// processor and every action task are gone. Whatever waits is taken at once (no
/// timer per group); then more is gathered until the window ([`GATHER`]) has passed
/// and the commit under way, if any, is done, or sooner if the commit fills up
/// first. So a busy recorder keeps its commits whole and an idle pipeline still
/// overlaps them; and entries arriving a few at a time (events paced at 20,000 a
/// second) are committed about every [`GATHER`], not as often as a commit takes
/// (every 1–2 ms, which cost PostgreSQL a third more CPU per event). A finished
/// commit's buffer goes to `spare`.
async fn next_commit(
    done: &mut mpsc::Receiver<Vec<Done>>,
    commits: &mut JoinSet<Decided>,
    spare: &mut Vec<Decided>,
) -> Option<Vec<Vec<Done>>> {
    let mut groups: Vec<Vec<Done>> = Vec::new();
    if done.recv_many(&mut groups, MAX_BATCH).await == 0 {
        return None;
    }
    let mut finished = None;
    let window_and_under_way = async {
        tokio::join!(tokio::time::sleep(GATHER), async {
            if !commits.is_empty() {
                finished = commits.join_next().await;
            }
        });
    };
    gather_until(done, &mut groups, window_and_under_way).await;
    spare.extend(finished.map(reuse));
    Some(groups)
}

/// Takes more finished entries into `groups` until `stop` is ready, or until they
/// hold [`MAX_BATCH`].
async fn gather_until(
    done: &mut mpsc::Receiver<Vec<Done>>,
    groups: &mut Vec<Vec<Done>>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut entries: usize = groups.iter().map(Vec::len).sum();
    while entries < MAX_BATCH {
        let before = groups.len();
        tokio::select! {
            n = done.recv_many(groups, MAX_BATCH) => {
                if n == 0 {
                    break;
                }
                entries += groups[before..].iter().map(Vec::len).sum::<usize>();
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

#[cfg(test)]
mod tests {
    use super::*;
    use rules_store::streams::{Body, StreamEntry};
    use std::time::Instant;

    fn finished(seq: u64) -> Vec<Done> {
        let stream: Arc<str> = Arc::from("s");
        let entry = StreamEntry {
            id: EntryId { ms: 1, seq },
            body: Body::Deleted,
        };
        vec![Done::ack_only(
            crate::pipeline::Entry::new(&stream, entry, 1),
            Instant::now(),
        )]
    }

    /// Sends a group of one finished entry every millisecond, `n` times.
    fn paced(n: u64) -> mpsc::Receiver<Vec<Done>> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            for seq in 0..n {
                if tx.send(finished(seq)).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        rx
    }

    #[tokio::test(start_paused = true)]
    async fn a_commit_gathers_for_the_window_though_the_one_under_way_is_done() {
        let mut done = paced(100);
        let mut commits = JoinSet::new();
        commits.spawn(async { Decided::default() });
        let mut spare = Vec::new();
        let started = tokio::time::Instant::now();
        let groups = next_commit(&mut done, &mut commits, &mut spare)
            .await
            .expect("entries");
        assert!(started.elapsed() >= GATHER, "{:?}", started.elapsed());
        assert!(groups.len() >= 5, "{} groups in one commit", groups.len());
        assert!(commits.is_empty(), "the commit under way was joined");
        assert_eq!(spare.len(), 1, "its buffer is kept");
    }

    #[tokio::test(start_paused = true)]
    async fn a_commit_waits_for_the_one_under_way_past_the_window() {
        let mut done = paced(100);
        let mut commits = JoinSet::new();
        commits.spawn(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Decided::default()
        });
        let started = tokio::time::Instant::now();
        let groups = next_commit(&mut done, &mut commits, &mut Vec::new())
            .await
            .expect("entries");
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(groups.len() >= 20, "{} groups in one commit", groups.len());
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_senders_ends_the_recorder() {
        let (tx, mut done) = mpsc::channel::<Vec<Done>>(1);
        drop(tx);
        assert!(next_commit(&mut done, &mut JoinSet::new(), &mut Vec::new())
            .await
            .is_none());
    }
}
