//! One batch: parse, match, skip what is already recorded, gate, then run the
//! actions off the read path and hand every entry's outcome to the recorder.

use chrono::Utc;
use rules_core::{CompiledRule, Event};
use rules_store::db::executions::ExecutionRow;
use rules_store::db::record::{self, SuppressionRow};
use rules_store::gate::{self, Decision, Pair};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::actions::execution_id;
use crate::consume::{dead_letter, Entry};
use crate::context::Context;

/// An entry done with: what to record, then acknowledge.
pub struct Done {
    pub entry: Entry,
    pub executions: Vec<ExecutionRow>,
    pub suppressions: Vec<SuppressionRow>,
    /// When its batch was read, for the batch-latency metric.
    pub read_at: Instant,
}

/// Processes batches in order until the readers close the channel.
pub async fn process_batches(
    ctx: Arc<Context>,
    mut batches: mpsc::Receiver<Vec<Entry>>,
    done: mpsc::Sender<Done>,
    tracker: TaskTracker,
    token: CancellationToken,
) {
    while let Some(batch) = batches.recv().await {
        process_batch(&ctx, batch, &done, &tracker, &token).await;
    }
    tracing::info!("processor stopped");
}

async fn process_batch(
    ctx: &Arc<Context>,
    batch: Vec<Entry>,
    done: &mpsc::Sender<Done>,
    tracker: &TaskTracker,
    token: &CancellationToken,
) {
    let read_at = Instant::now();
    let index = ctx.rules.snapshot();

    // Parse; what cannot be read goes to the dead-letter stream.
    let mut readable: Vec<(Entry, Event)> = Vec::with_capacity(batch.len());
    let mut unreadable: Vec<(Entry, String)> = Vec::new();
    for entry in batch {
        if entry.deliveries > ctx.settings.max_deliveries {
            let reason = format!(
                "delivered {} times without being acknowledged",
                entry.deliveries
            );
            unreadable.push((entry, reason));
            continue;
        }
        let entry_time = rules_core::event::stream_id_time(&entry.id);
        match Event::from_stream_fields(&entry.fields, entry_time, ctx.settings.max_event_bytes) {
            Ok(event) => readable.push((entry, event)),
            Err(e) => unreadable.push((entry, e.to_string())),
        }
    }
    if !unreadable.is_empty() {
        let refs: Vec<(&Entry, String)> = unreadable.iter().map(|(e, r)| (e, r.clone())).collect();
        let sent = retry(token, "dead-letter", || dead_letter(ctx, &refs)).await;
        metrics::counter!("events_dead_lettered_total").increment(unreadable.len() as u64);
        for (entry, reason) in unreadable {
            tracing::warn!(stream = %entry.stream, id = %entry.id, %reason, "entry dead-lettered");
            // Acknowledge only what reached the dead-letter stream.
            if sent {
                let _ = done
                    .send(Done {
                        entry,
                        executions: Vec::new(),
                        suppressions: Vec::new(),
                        read_at,
                    })
                    .await;
            }
        }
    }

    // Match.
    let mut matches: Vec<(usize, Arc<CompiledRule>)> = Vec::new();
    for (i, (_, event)) in readable.iter().enumerate() {
        for rule in index.matching(event) {
            matches.push((i, Arc::clone(rule)));
        }
    }
    metrics::counter!("rule_matches_total").increment(matches.len() as u64);

    // Pairs whose execution is already recorded ran before (a redelivery after a
    // crash between commit and acknowledgement): nothing more to do for them.
    let keys: Vec<(Uuid, Uuid)> = matches
        .iter()
        .map(|(i, r)| (r.id(), readable[*i].1.id))
        .collect();
    let recorded = if keys.is_empty() {
        HashSet::new()
    } else {
        match retry_step(token, "check recorded executions", || async {
            let mut conn = ctx.db.get().await?;
            record::already_executed(&mut conn, &keys).await
        })
        .await
        {
            Some(r) => r,
            None => return, // shutting down with the database away: entries stay pending
        }
    };
    let open: Vec<(usize, Arc<CompiledRule>)> = matches
        .into_iter()
        .filter(|(i, r)| !recorded.contains(&(r.id(), readable[*i].1.id)))
        .collect();

    // Gate: thresholds, cooldowns and claims, one pipeline for the batch.
    let decisions = if open.is_empty() {
        Vec::new()
    } else {
        let tokens: Vec<String> = readable.iter().map(|(e, _)| e.token()).collect();
        let pairs: Vec<Pair<'_>> = open
            .iter()
            .map(|(i, rule)| Pair {
                rule,
                event: &readable[*i].1,
                token: &tokens[*i],
            })
            .collect();
        match retry_step(token, "gate", || async {
            let mut conn = ctx
                .redis
                .get()
                .await
                .map_err(rules_store::redis::RedisError::from)?;
            gate::decide(&mut conn, &pairs, ctx.settings.dedupe_seconds * 1000).await
        })
        .await
        {
            Some(d) => d,
            None => return,
        }
    };

    // Group by entry, then run each entry's executions as a task of its own.
    let mut per_entry: Vec<(Vec<Arc<CompiledRule>>, Vec<SuppressionRow>)> =
        readable.iter().map(|_| (Vec::new(), Vec::new())).collect();
    let now = Utc::now();
    for ((i, rule), decision) in open.into_iter().zip(decisions) {
        match decision {
            Decision::Execute => per_entry[i].0.push(rule),
            Decision::Suppressed { .. } => {
                metrics::counter!("suppressed_total").increment(1);
                per_entry[i].1.push(SuppressionRow {
                    rule_id: rule.id(),
                    event_id: readable[i].1.id,
                    suppressed_at: now,
                });
            }
            Decision::BelowThreshold { .. } => {
                metrics::counter!("below_threshold_total").increment(1)
            }
            Decision::Duplicate => metrics::counter!("duplicates_total").increment(1),
        }
    }
    for ((entry, event), (to_run, suppressions)) in readable.into_iter().zip(per_entry) {
        if to_run.is_empty() {
            let _ = done
                .send(Done {
                    entry,
                    executions: Vec::new(),
                    suppressions,
                    read_at,
                })
                .await;
            continue;
        }
        let ctx = Arc::clone(ctx);
        let done = done.clone();
        tracker.spawn(async move {
            let runs = to_run.iter().map(|rule| run(&ctx, rule, &event));
            let executions = futures_util::future::join_all(runs).await;
            let _ = done
                .send(Done {
                    entry,
                    executions,
                    suppressions,
                    read_at,
                })
                .await;
        });
    }
}

/// Runs one rule's actions for one event and builds the execution record.
async fn run(ctx: &Context, rule: &CompiledRule, event: &Event) -> ExecutionRow {
    let id = execution_id(rule.id(), event.id);
    let executed_at = Utc::now();
    let outcome = ctx.executor.execute(rule, event, id).await;
    let status = if outcome.failed {
        "failed"
    } else {
        "succeeded"
    };
    metrics::counter!("executions_total", "status" => status).increment(1);
    ExecutionRow {
        id,
        rule_id: rule.id(),
        event_id: event.id,
        livestream_id: event.livestream_id,
        executed_at,
        status: status.to_owned(),
        duration_ms: i32::try_from(outcome.duration_ms).unwrap_or(i32::MAX),
        result: json!({ "actions": outcome.actions }),
    }
}

/// Retries a step until it succeeds; gives up (false) only when shutting down, in
/// which case the batch's entries stay pending and are redelivered.
async fn retry<F, Fut, E>(token: &CancellationToken, what: &str, step: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    retry_step(token, what, step).await.is_some()
}

pub(crate) async fn retry_step<T, F, Fut, E>(
    token: &CancellationToken,
    what: &str,
    step: F,
) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match step().await {
            Ok(v) => return Some(v),
            Err(e) => {
                metrics::counter!("step_failures_total", "step" => what.to_owned()).increment(1);
                tracing::warn!(error = %e, step = what, "failed; retrying");
                if token.is_cancelled() {
                    return None;
                }
                tokio::select! {
                    _ = token.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
