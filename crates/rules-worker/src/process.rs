//! One batch, in six stages: parse, match, skip what is recorded, admit (destination
//! lanes), gate, dispatch. The gate decides on event time (`rules_core::clock`).
//! Each is a function below, in that order; the actions run off the read path and
//! every entry's outcome goes to the recorder.
//!
//! The stages run as two halves that overlap: while one batch is at the gate (a
//! Redis round trip) the next is parsed, matched and checked against PostgreSQL.
//! Batches reach the gate one at a time and in the order they were read, so the
//! cooldown and threshold state changes in stream order, as with one half.

use futures_util::stream::{FuturesUnordered, StreamExt};
use rules_core::{CompiledRule, Event, RuleIndex};
use rules_store::config::RetentionSettings;
use rules_store::db::record::{self, CountRow, Decided, SuppressionRow};
use rules_store::gate::{self, Decision, Pair, PairOutcome};
use rules_store::streams::Body;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::actions;
use crate::context::Context;
use crate::dead_letter;
use crate::pipeline::{bounded, retry_step, stage_done, Done, Entry, Inlets};

/// Batches prepared ahead of the gate: one at the gate, one waiting.
const PREPARED_AHEAD: usize = 1;

/// Processes batches in order until the readers close the channel.
pub async fn process_batches(
    ctx: Arc<Context>,
    mut batches: Inlets,
    done: mpsc::Sender<Vec<Done>>,
    tracker: TaskTracker,
    token: CancellationToken,
) {
    let (prepared_tx, mut prepared_rx) = mpsc::channel::<Prepared>(PREPARED_AHEAD);
    let first_half = async {
        while let Some(batch) = batches.recv().await {
            let Some(prepared) = prepare(&ctx, batch, &done, &token).await else {
                continue;
            };
            if prepared_tx.send(prepared).await.is_err() {
                break;
            }
        }
        drop(prepared_tx);
    };
    // A task of its own, so the two halves' CPU work (parse and match, dispatch) runs
    // on two threads at once instead of taking turns in one task.
    let second_half = tokio::spawn({
        let (ctx, done, token) = (Arc::clone(&ctx), done.clone(), token.clone());
        async move {
            while let Some(prepared) = prepared_rx.recv().await {
                gate_and_dispatch(&ctx, prepared, &done, &tracker, &token).await;
            }
        }
    });
    first_half.await;
    match second_half.await {
        // A panic in the second half is re-raised, so the supervisor sees the
        // processor fail as it would have with one task.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => tracing::error!(error = %e, "the gate's half of the processor was cancelled"),
        Ok(()) => {}
    }
    tracing::info!("processor stopped");
}

/// A rule that matched the event of entry `entry` (an index into the batch).
struct Match {
    entry: usize,
    rule: Arc<CompiledRule>,
}

/// A batch through the first half: its readable entries and the pairs still open.
struct Prepared {
    readable: Vec<(Entry, Event)>,
    open: Vec<Match>,
    read_at: Instant,
}

/// The first half: parse, match, skip recorded, admit. `None` only when the worker
/// is shutting down with a service away: the batch's entries then stay pending.
async fn prepare(
    ctx: &Context,
    batch: Vec<Entry>,
    done: &mpsc::Sender<Vec<Done>>,
    token: &CancellationToken,
) -> Option<Prepared> {
    let read_at = Instant::now();
    let readable = parse(ctx, batch, done, read_at, token).await?;
    let at = stage_done("parse", read_at);
    let matches = match_rules(&ctx.rules.snapshot(), &readable);
    let at = stage_done("match", at);
    let open = skip_recorded(ctx, &readable, matches, token).await?;
    let at = stage_done("skip_recorded", at);
    let (readable, open) = admit(ctx, readable, open);
    stage_done("admit", at);
    Some(Prepared {
        readable,
        open,
        read_at,
    })
}

/// The second half, one batch at a time in read order: gate, dispatch.
async fn gate_and_dispatch(
    ctx: &Arc<Context>,
    prepared: Prepared,
    done: &mpsc::Sender<Vec<Done>>,
    tracker: &TaskTracker,
    token: &CancellationToken,
) {
    let Prepared {
        readable,
        open,
        read_at,
    } = prepared;
    let at = Instant::now();
    let Some(decisions) = decide(ctx, &readable, &open, token).await else {
        return;
    };
    let at = stage_done("gate", at);
    dispatch(ctx, readable, open, decisions, done, tracker, read_at).await;
    stage_done("dispatch", at);
}

/// Parse: every entry becomes an event, or goes to the dead-letter stream with the
/// reason (unreadable, or delivered too often) and is acknowledged from there.
async fn parse(
    ctx: &Context,
    batch: Vec<Entry>,
    done: &mpsc::Sender<Vec<Done>>,
    read_at: Instant,
    token: &CancellationToken,
) -> Option<Vec<(Entry, Event)>> {
    let mut readable = Vec::with_capacity(batch.len());
    let mut letters: Vec<(Entry, String)> = Vec::new();
    let mut acks: Vec<Done> = Vec::new();
    let log_days = LogDays::today(ctx.retention);
    for entry in batch {
        if entry.deliveries > ctx.settings.max_deliveries {
            let reason = format!(
                "delivered {} times without being acknowledged",
                entry.deliveries
            );
            letters.push((entry, reason));
            continue;
        }
        let parsed = match &entry.body {
            Body::Fields(fields) => {
                Event::from_stream_fields(fields, entry.id.time(), ctx.settings.max_event_bytes)
                    .map_err(|e| bounded(&e.to_string()))
            }
            Body::Malformed(why) => Err(bounded(why)),
            Body::Deleted => {
                // Deleted while pending: nothing to run, only to acknowledge.
                acks.push(Done::ack_only(entry, read_at));
                continue;
            }
        };
        match parsed.and_then(|event| log_days.holds(&entry, &event).map(|()| event)) {
            Ok(event) => readable.push((entry, event)),
            Err(reason) => letters.push((entry, reason)),
        }
    }
    if !letters.is_empty() {
        retry_step(token, "dead-letter", || dead_letter::send(ctx, &letters)).await?;
        metrics::counter!("events_dead_lettered_total").increment(letters.len() as u64);
        for (entry, reason) in letters {
            tracing::warn!(stream = %entry.stream, id = %entry.id, %reason, "entry dead-lettered");
            acks.push(Done::ack_only(entry, read_at));
        }
    }
    if !acks.is_empty() {
        let _ = done.send(acks).await;
    }
    Some(readable)
}

/// Match: the rules of each event's livestream and type whose condition holds.
fn match_rules(index: &RuleIndex, readable: &[(Entry, Event)]) -> Vec<Match> {
    let mut matches = Vec::new();
    for (entry, (_, event)) in readable.iter().enumerate() {
        for rule in index.matching(event) {
            matches.push(Match {
                entry,
                rule: Arc::clone(rule),
            });
        }
    }
    metrics::counter!("rule_matches_total").increment(matches.len() as u64);
    matches
}

/// Skip recorded: pairs already decided and recorded (executed, skipped, suppressed or
/// counted toward a threshold: a redelivery after a crash between commit and
/// acknowledgement, a second entry with the same event id, a replay of the stream)
/// are done: they change no state and record nothing again. One query for the batch.
async fn skip_recorded(
    ctx: &Context,
    readable: &[(Entry, Event)],
    matches: Vec<Match>,
    token: &CancellationToken,
) -> Option<Vec<Match>> {
    if matches.is_empty() {
        return Some(matches);
    }
    let keys: Vec<record::DecisionKey> = matches
        .iter()
        .map(|m| {
            let (entry, event) = &readable[m.entry];
            (m.rule.id(), event.id, event_day(entry, event))
        })
        .collect();
    let recorded: HashSet<(Uuid, Uuid)> =
        retry_step(token, "check recorded executions", || async {
            let mut conn = ctx.db.get().await?;
            record::already_decided(&mut conn, &keys).await
        })
        .await?;
    Some(
        matches
            .into_iter()
            .filter(|m| !recorded.contains(&(m.rule.id(), readable[m.entry].1.id)))
            .collect(),
    )
}

/// Admit: each entry takes a place in the lane of every webhook destination its
/// matched rules call. An entry whose destination's lane is full (a slow or hung
/// receiver) is left pending, untouched, and its ticket given back: it is taken up
/// again once idle past `claim_idle_ms`, by this worker or another, while the rest
/// of the stream flows. Runs before the gate, so a left entry changes no state.
fn admit(
    ctx: &Context,
    readable: Vec<(Entry, Event)>,
    open: Vec<Match>,
) -> (Vec<(Entry, Event)>, Vec<Match>) {
    if open.iter().all(|m| m.rule.destinations().is_empty()) {
        // No webhook among the batch's rules (the usual batch): nothing to take a
        // place in, and the batch is passed on as it is, not rebuilt entry by entry.
        return (readable, open);
    }
    let mut hosts: Vec<Vec<Arc<str>>> = readable.iter().map(|_| Vec::new()).collect();
    for m in &open {
        for host in m.rule.destinations() {
            if !hosts[m.entry].contains(host) {
                hosts[m.entry].push(std::sync::Arc::clone(host));
            }
        }
    }
    let mut keep = Vec::with_capacity(readable.len());
    let mut index = Vec::with_capacity(readable.len());
    let mut left = 0u64;
    for ((mut entry, event), hosts) in readable.into_iter().zip(hosts) {
        if !hosts.is_empty() {
            match ctx.lanes.admit(hosts) {
                Some(guard) => entry.lanes = Some(guard),
                None => {
                    // Dropped here: its ticket goes back, the entry stays pending.
                    left += 1;
                    index.push(None);
                    continue;
                }
            }
        }
        index.push(Some(keep.len()));
        keep.push((entry, event));
    }
    if left > 0 {
        metrics::counter!("entries_left_for_busy_destinations_total").increment(left);
        static BUDGET: crate::pipeline::LogBudget = crate::pipeline::LogBudget::new(1);
        if let Some(held_back) = BUDGET.allow() {
            tracing::warn!(
                entries = left,
                similar_lines_held_back = held_back,
                "a webhook destination's lane is full; entries left pending for later"
            );
        }
    }
    let open = open
        .into_iter()
        .filter_map(|m| {
            index[m.entry].map(|entry| Match {
                entry,
                rule: m.rule,
            })
        })
        .collect();
    (keep, open)
}

/// Gate: thresholds, cooldowns and claims, one pipeline for the batch.
async fn decide(
    ctx: &Context,
    readable: &[(Entry, Event)],
    open: &[Match],
    token: &CancellationToken,
) -> Option<Vec<PairOutcome>> {
    if open.is_empty() {
        return Some(Vec::new());
    }
    // Tokens only of the entries with a pair at the gate (a few in a batch).
    let mut tokens: Vec<Option<String>> = vec![None; readable.len()];
    for m in open {
        tokens[m.entry].get_or_insert_with(|| readable[m.entry].0.token());
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let pairs: Vec<Pair<'_>> = open
        .iter()
        .map(|m| {
            let (entry, event) = &readable[m.entry];
            let at_ms = event_time_ms(entry, event);
            Pair {
                rule: &m.rule,
                event,
                token: tokens[m.entry].as_deref().unwrap_or_default(),
                at_ms,
                stale: m.rule.all_actions_stale(at_ms, now_ms),
            }
        })
        .collect();
    retry_step(token, "gate", || async {
        ctx.gate_link
            .run(async |conn| gate::decide(conn, &pairs, ctx.settings.dedupe_seconds * 1000).await)
            .await
    })
    .await
}

/// The time the gate decides an entry's event at: its `occurred_at`, bounded by the
/// entry's time (`rules_core::clock`).
fn event_time_ms(entry: &Entry, event: &Event) -> i64 {
    let written = entry.id.time().unwrap_or_else(chrono::Utc::now);
    rules_core::clock::event_time_ms(event.occurred_at, written)
}

/// The days the decision log keeps, on this worker's clock: from
/// `retention.executions_days` before today (older partitions are dropped) to
/// `retention.partitions_ahead_days` after it (the days made ahead).
struct LogDays {
    first: chrono::NaiveDate,
    last: chrono::NaiveDate,
}

impl LogDays {
    fn today(retention: RetentionSettings) -> Self {
        let today = chrono::Utc::now().date_naive();
        Self {
            first: today - chrono::Days::new(u64::from(retention.executions_days)),
            last: today + chrono::Days::new(u64::from(retention.partitions_ahead_days)),
        }
    }

    /// Refuses an event whose day the log does not keep: after its last day, the
    /// decisions would have no partition to go to and the batch would be retried
    /// forever; before its first day, the partition would be dropped by the next
    /// maintenance and the decision forgotten. Only an entry with an explicit id
    /// can carry such a day (the event time is bounded by the entry's time, and
    /// Redis dates its own ids now); it is dead-lettered with the reason.
    fn holds(&self, entry: &Entry, event: &Event) -> Result<(), String> {
        let day = event_day(entry, event);
        if day > self.last {
            return Err(format!(
                "dated {day} by its entry id, after the decision log's last day {} \
                 (retention.partitions_ahead_days from today)",
                self.last
            ));
        }
        if day < self.first {
            return Err(format!(
                "dated {day} by its entry id, before the decision log's first day {} \
                 (retention.executions_days before today): its decision could not be kept",
                self.first
            ));
        }
        Ok(())
    }
}

/// The day of the entry's event time: the decision log's partition of its rows.
fn event_day(entry: &Entry, event: &Event) -> chrono::NaiveDate {
    rules_core::clock::day_of_ms(event_time_ms(entry, event))
}

/// What one entry's pairs came to at the gate: the rules to run, and what is
/// decided already (suppressions, threshold counts, pairs that failed at the gate).
#[derive(Default)]
struct PerEntry {
    to_run: Vec<Arc<CompiledRule>>,
    decided: Decided,
}

/// Dispatch: the entries with rules to run, concurrently in one task for the batch
/// ([`run_entries`]); the others straight to the recorder.
async fn dispatch(
    ctx: &Arc<Context>,
    readable: Vec<(Entry, Event)>,
    open: Vec<Match>,
    decisions: Vec<PairOutcome>,
    done: &mpsc::Sender<Vec<Done>>,
    tracker: &TaskTracker,
    read_at: Instant,
) {
    let mut per_entry: Vec<PerEntry> = readable.iter().map(|_| PerEntry::default()).collect();
    let now = chrono::Utc::now();
    // Each decision's counter added to once per batch (a registry lookup each).
    let mut counted: Vec<(&'static str, u64)> = Vec::new();
    for (m, outcome) in open.into_iter().zip(decisions) {
        let decision = match outcome {
            Ok(decision) => decision,
            Err(e) => {
                // This pair's script failed (a key of the wrong type, say): the pair
                // fails, recorded with the cause; the rest of the batch goes on.
                tracing::warn!(rule_id = %m.rule.id(), event_id = %readable[m.entry].1.id, error = %e, "gate failed for one pair");
                metrics::counter!("gate_pair_failures_total").increment(1);
                let (entry, event) = &readable[m.entry];
                per_entry[m.entry]
                    .decided
                    .executions
                    .push(actions::failed_before_running(
                        &m.rule,
                        event,
                        event_day(entry, event),
                        &format!("gate: {e}"),
                    ));
                continue;
            }
        };
        if let Some(counter) = decision.counter() {
            match counted.iter_mut().find(|(name, _)| *name == counter) {
                Some((_, n)) => *n += 1,
                None => counted.push((counter, 1)),
            }
        }
        let (entry, event) = &readable[m.entry];
        let (rule_id, event_id, day) = (m.rule.id(), event.id, event_day(entry, event));
        let planned = &mut per_entry[m.entry];
        match decision {
            Decision::Execute | Decision::Skip => planned.to_run.push(m.rule),
            Decision::Suppressed { .. } => planned.decided.suppressions.push(SuppressionRow {
                rule_id,
                event_id,
                suppressed_at: now,
                event_day: day,
            }),
            Decision::BelowThreshold { .. } => planned.decided.counts.push(CountRow {
                rule_id,
                event_id,
                counted_at: now,
                event_day: day,
            }),
            // Another entry brought this event first: that entry records it.
            Decision::Duplicate => {}
        }
    }
    for (counter, n) in counted {
        metrics::counter!(counter).increment(n);
    }
    // Entries with nothing to run go to the recorder together; the others run
    // concurrently, each going to the recorder when its actions are done.
    let mut finished = Vec::new();
    let running = FuturesUnordered::new();
    for ((entry, event), planned) in readable.into_iter().zip(per_entry) {
        let PerEntry {
            to_run,
            mut decided,
        } = planned;
        if to_run.is_empty() {
            finished.push(Done {
                entry,
                decided,
                read_at,
            });
            continue;
        }
        let at_ms = event_time_ms(&entry, &event);
        let ctx = Arc::clone(ctx);
        running.push(async move {
            let runs = to_run
                .iter()
                .map(|rule| actions::run(&ctx.executor, rule, &event, at_ms));
            decided
                .executions
                .extend(futures_util::future::join_all(runs).await);
            Done {
                entry,
                decided,
                read_at,
            }
        });
    }
    if !finished.is_empty() {
        let _ = done.send(finished).await;
    }
    if !running.is_empty() {
        tracker.spawn(run_entries(running, done.clone()));
    }
}

/// Runs a batch's entries with actions in one task, concurrently, and hands each to
/// the recorder once its actions are done (with any others done by then). One task
/// for the batch rather than one per entry: its entries' publishes are queued on the
/// shared Redis connection before its writer runs, so they go out together, where a
/// task per entry woke the writer after each and sent about two commands a write (a
/// system call in the worker and in Redis for each). The entries still running are
/// driven while the recorder has no room, so a busy recorder delays their
/// acknowledgement, never their actions.
async fn run_entries<F>(mut running: FuturesUnordered<F>, done: mpsc::Sender<Vec<Done>>)
where
    F: std::future::Future<Output = Done>,
{
    let mut ready: Vec<Done> = Vec::new();
    loop {
        tokio::select! {
            biased;
            Some(finished) = running.next(), if !running.is_empty() => ready.push(finished),
            room = done.reserve(), if !ready.is_empty() => match room {
                Ok(room) => room.send(std::mem::take(&mut ready)),
                // The recorder is gone (shutting down): nothing more to hand over.
                Err(_) => return,
            },
            else => return,
        }
    }
}
