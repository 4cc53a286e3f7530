//! Reading the input streams: new entries with XREADGROUP; at start, this consumer's
//! own pending entries (left by a previous run under the same name); and, while
//! running, every entry left pending idle longer than `worker.claim_idle_ms`, by a
//! dead consumer or by this one (after a failed read, say). A heartbeat keeps the
//! entries this process is working on from looking idle, so a slow action is never
//! taken over by another replica and `claim_idle_ms` can be short.
//!
//! Pending entries are found with XPENDING (which gives each entry's delivery count)
//! and taken with XCLAIM, rather than XAUTOCLAIM, so that an entry delivered
//! `worker.max_deliveries` times goes to the dead-letter stream instead of being
//! tried forever. Entries are never re-added to a stream (that would reset their
//! delivery count) and never XDEL'd after acknowledgement (that would make the
//! group's `lag` unknown, and autoscaling reads it).

use rules_store::config::RedisSettings;
use rules_store::redis::Reader;
use rules_store::streams::{self, EntryId, ReadFrom, StreamError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::pipeline::{Entry, Inlets};
use rules_store::backoff;

/// A connection of the reader's own: a blocking XREADGROUP must not hold a pooled one.
async fn reader_connection(
    redis: &RedisSettings,
    block_ms: u64,
) -> Result<Reader, rules_store::redis::RedisError> {
    // Connecting within 1 s (redis-rs's default); a reply within the BLOCK and 10 s.
    rules_store::redis::dedicated_reader(
        redis,
        Duration::from_secs(1),
        Some(Duration::from_millis(block_ms) + Duration::from_secs(10)),
    )
    .await
}

fn stream_names(ctx: &Context) -> Vec<Arc<str>> {
    ctx.settings
        .streams
        .iter()
        .map(|s| Arc::from(s.as_str()))
        .collect()
}

/// Reads every input stream until cancelled: a reader per stream, each with its own
/// connection, so a stream is one key per command (on a cluster each shard lives
/// in its own slot, on whichever node serves it) and a quiet stream's blocking read
/// never delays a busy one's. Each reader sends to an inlet of its own, taken from
/// `inlets` now; the future returned reads until cancelled.
pub fn read_loops(
    ctx: Arc<Context>,
    redis: RedisSettings,
    inlets: &mut Inlets,
    token: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let streams = stream_names(&ctx);
    let per_read = read_share(
        ctx.settings.batch_size,
        ctx.settings.max_in_flight,
        streams.len(),
    );
    if per_read < ctx.settings.batch_size {
        tracing::info!(
            per_read,
            batch_size = ctx.settings.batch_size,
            max_in_flight = ctx.settings.max_in_flight,
            streams = streams.len(),
            "each reader reads its share of the in-flight budget"
        );
    }
    // Each reader an inlet of its own: a quiet stream's batch never waits behind a
    // busy one's queue.
    let readers: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            read_loop(
                Arc::clone(&ctx),
                redis.clone(),
                stream,
                per_read,
                inlets.sender(),
                token.clone(),
            )
        })
        .collect();
    async move {
        futures_util::future::join_all(readers).await;
    }
}

/// Entries one read of one stream asks for: `worker.batch_size`, or the stream's
/// share of `worker.max_in_flight` when the readers together would need more. A
/// reader holds its read's room while its XREADGROUP blocks; asking for a whole
/// batch on a tight budget let a quiet stream's blocked read hold all of it, and a
/// busy stream then waited a whole block per batch (three shards at 10 entries a
/// read and 10 in flight: a drain crawled at a few events a second).
fn read_share(batch_size: usize, max_in_flight: usize, streams: usize) -> usize {
    (max_in_flight / streams.max(1)).clamp(1, batch_size.max(1))
}

/// Reads new entries of one stream until cancelled, `per_read` at a time, handing
/// batches to the processor. Before the first read, resumes this consumer's own
/// pending entries.
async fn read_loop(
    ctx: Arc<Context>,
    redis: RedisSettings,
    stream: Arc<str>,
    per_read: usize,
    batches: mpsc::Sender<Vec<Entry>>,
    token: CancellationToken,
) {
    let mut conn: Option<Reader> = None;
    let mut resumed = false;
    let mut delays = backoff::delays(Duration::from_millis(100), Duration::from_secs(6));
    while !token.is_cancelled() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match reader_connection(&redis, ctx.settings.block_ms).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::warn!(error = %e, stream = %stream, "reader cannot connect to Redis; retrying");
                    pause(&token, delays.next()).await;
                    continue;
                }
            },
        };
        if !resumed {
            match resume_own_pending(&ctx, std::slice::from_ref(&stream), per_read, &batches).await
            {
                Ok(()) => resumed = true,
                Err(e) => {
                    tracing::warn!(error = %e, "reading own pending entries failed; retrying");
                    pause(&token, delays.next()).await;
                    continue;
                }
            }
        }
        // Wait for room before reading: entries in flight are bounded.
        let permits = tokio::select! {
            _ = token.cancelled() => break,
            p = ctx.in_flight.acquire(per_read) => match p {
                Some(p) => p,
                None => break,
            },
        };
        let reply = streams::read_group(
            c,
            &ctx.settings.group,
            &ctx.consumer,
            &[&*stream],
            ReadFrom::New,
            ctx.in_flight.fitting(per_read),
            Some(ctx.settings.block_ms),
        )
        .await;
        match reply {
            Ok(per_stream) => {
                delays = backoff::delays(Duration::from_millis(100), Duration::from_secs(6));
                let mut batch = Vec::new();
                for (_, entries) in per_stream {
                    batch.extend(entries.into_iter().map(|e| Entry::new(&stream, e, 1)));
                }
                metrics::counter!("events_read_total").increment(batch.len() as u64);
                if batch.is_empty() {
                    continue;
                }
                // Holds this read until its size fits too; not cut short by a
                // shutdown: what was read is processed and acknowledged (the
                // entries in flight go on and give their room back).
                if !permits.admit(&mut batch).await || batches.send(batch).await.is_err() {
                    break;
                }
            }
            Err(e) if e.code() == Some("NOGROUP") => {
                // Redis lost the group (a restart without persistence, or a manual
                // XGROUP DESTROY): recreate it deliberately from the stream's start,
                // so nothing produced since is skipped; idempotency absorbs repeats.
                tracing::warn!(
                    stream = %stream,
                    "consumer group is gone; recreating it from the start of the stream"
                );
                metrics::counter!("consumer_group_recreated_total").increment(1);
                if let Err(e) = streams::ensure_group(c, &stream, &ctx.settings.group, "0").await {
                    tracing::warn!(error = %e, stream = %stream, "recreating the consumer group failed");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, stream = %stream, "XREADGROUP failed; reconnecting");
                conn = None;
                pause(&token, delays.next()).await;
            }
        }
    }
    tracing::info!(stream = %stream, "reader stopped");
}

async fn pause(token: &CancellationToken, delay: Option<Duration>) {
    tokio::select! {
        _ = token.cancelled() => {}
        _ = tokio::time::sleep(delay.unwrap_or(Duration::from_secs(6))) => {}
    }
}

/// Hands this consumer's own pending entries (read but not acknowledged before a
/// restart under the same name) to the processor, oldest first, with their real
/// delivery counts, so that a crash loop on one entry ends in the dead-letter stream.
async fn resume_own_pending(
    ctx: &Context,
    streams: &[Arc<str>],
    per_read: usize,
    batches: &mpsc::Sender<Vec<Entry>>,
) -> Result<(), StreamError> {
    for stream in streams {
        let mut after = None;
        loop {
            let Some(permits) = ctx.in_flight.acquire(per_read).await else {
                return Ok(());
            };
            let page = ctx.in_flight.fitting(per_read);
            let (mut batch, last) =
                take_pending(ctx, stream, Some(&ctx.consumer), 0, after, page).await?;
            if batch.is_empty() {
                break;
            }
            let deliveries: Vec<u64> = batch.iter().map(|e| e.deliveries).collect();
            tracing::info!(
                stream = %stream,
                entries = batch.len(),
                max_deliveries = deliveries.iter().max().copied().unwrap_or(0),
                deliveries = ?summarise(&deliveries),
                "resuming own pending entries"
            );
            if !permits.admit(&mut batch).await || batches.send(batch).await.is_err() {
                return Ok(());
            }
            after = last;
        }
    }
    Ok(())
}

/// Delivery counts as `count × deliveries`, most delivered first (a bounded line).
fn summarise(deliveries: &[u64]) -> Vec<String> {
    let mut counts = std::collections::BTreeMap::<u64, usize>::new();
    for d in deliveries {
        *counts.entry(*d).or_default() += 1;
    }
    counts
        .into_iter()
        .rev()
        .take(8)
        .map(|(d, n)| format!("{n}x{d}"))
        .collect()
}

/// One page of pending entries idle at least `idle_ms` (of `consumer`, or of any),
/// after `after`, that this process is not working on, taken with XCLAIM. Returns
/// them with their delivery counts and the last id seen (for the next page; `None`
/// when this was the last page).
async fn take_pending(
    ctx: &Context,
    stream: &Arc<str>,
    consumer: Option<&str>,
    idle_ms: u64,
    after: Option<EntryId>,
    page: usize,
) -> Result<(Vec<Entry>, Option<EntryId>), StreamError> {
    let mut conn = ctx.redis.get().await?;
    let pending = streams::pending(
        &mut conn,
        stream,
        &ctx.settings.group,
        idle_ms,
        after,
        page,
        consumer,
    )
    .await?;
    let last = if pending.len() >= page {
        pending.last().map(|p| p.id)
    } else {
        None
    };
    let candidates: Vec<_> = pending
        .into_iter()
        .filter(|p| !ctx.in_flight.holds(stream, p.id))
        .collect();
    let ids: Vec<EntryId> = candidates.iter().map(|p| p.id).collect();
    let claimed = streams::claim(
        &mut conn,
        stream,
        &ctx.settings.group,
        &ctx.consumer,
        idle_ms,
        &ids,
    )
    .await?;
    let entries = claimed
        .into_iter()
        .map(|e| {
            let before = candidates
                .iter()
                .find(|p| p.id == e.id)
                .map_or(0, |p| p.deliveries);
            Entry::new(stream, e, before + 1)
        })
        .collect();
    Ok((entries, last))
}

/// Takes over entries left pending longer than `claim_idle_ms` (by a dead consumer,
/// or by this one), page after page until none is left or there is no room, and
/// forgets consumers that are long gone and own nothing.
pub async fn claim_loop(
    ctx: Arc<Context>,
    batches: mpsc::Sender<Vec<Entry>>,
    token: CancellationToken,
) {
    let every = Duration::from_millis(ctx.settings.claim_interval_ms);
    let streams = stream_names(&ctx);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        for stream in &streams {
            if !claim_stream(&ctx, stream, &batches, &token).await {
                return;
            }
            if let Err(e) = prune_consumers(&ctx, stream).await {
                tracing::debug!(error = %e, stream = %stream, "pruning idle consumers failed");
            }
        }
    }
}

/// Claims every idle entry of `stream` there is room for. False when the
/// processor is gone.
async fn claim_stream(
    ctx: &Context,
    stream: &Arc<str>,
    batches: &mpsc::Sender<Vec<Entry>>,
    token: &CancellationToken,
) -> bool {
    let mut after = None;
    while !token.is_cancelled() {
        // As many as there is room for, up to a batch: on a tight budget the
        // readers' blocked reads hold their shares, and a whole batch would never fit.
        let room = ctx.in_flight.available().min(ctx.settings.batch_size);
        if room == 0 {
            return true; // busy: the next round takes the rest
        }
        // And no more than the size room left holds.
        let room = ctx.in_flight.fitting(room);
        let Some(permits) = ctx.in_flight.try_acquire(room) else {
            return true; // taken meanwhile by a reader
        };
        match take_pending(ctx, stream, None, ctx.settings.claim_idle_ms, after, room).await {
            Ok((mut batch, last)) => {
                if !batch.is_empty() {
                    metrics::counter!("entries_claimed_total").increment(batch.len() as u64);
                    tracing::info!(
                        stream = %stream,
                        claimed = batch.len(),
                        "took over entries left pending"
                    );
                    if !permits.admit(&mut batch).await || batches.send(batch).await.is_err() {
                        return false;
                    }
                }
                match last {
                    Some(id) => after = Some(id),
                    None => return true,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, stream = %stream, "claiming pending entries failed");
                return true;
            }
        }
    }
    true
}

/// Every third of `claim_idle_ms`, resets the idle time of the entries this process
/// holds (XCLAIM JUSTID to itself, which does not count as a delivery).
pub async fn heartbeat_loop(ctx: Arc<Context>, token: CancellationToken) {
    let every = Duration::from_millis((ctx.settings.claim_idle_ms / 3).max(1));
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = beat(&ctx).await {
            tracing::warn!(error = %e, "heartbeat of in-flight entries failed");
        }
    }
}

async fn beat(ctx: &Context) -> Result<(), StreamError> {
    let held = ctx.in_flight.held();
    if held.is_empty() {
        return Ok(());
    }
    let mut conn = ctx.redis.get().await?;
    for (stream, ids) in held {
        // Only what is still this consumer's: an entry another replica took over
        // (after a heartbeat failed for longer than claim_idle_ms) stays with it.
        let ours: std::collections::HashSet<EntryId> = streams::pending(
            &mut conn,
            &stream,
            &ctx.settings.group,
            0,
            None,
            ids.len().max(ctx.settings.max_in_flight) * 2,
            Some(&ctx.consumer),
        )
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
        let ids: Vec<EntryId> = ids.into_iter().filter(|id| ours.contains(id)).collect();
        for chunk in ids.chunks(1_000) {
            streams::touch(
                &mut conn,
                &stream,
                &ctx.settings.group,
                &ctx.consumer,
                chunk,
            )
            .await?;
        }
    }
    Ok(())
}

/// Deletes consumers with nothing pending that have been idle ten claim periods.
async fn prune_consumers(ctx: &Context, stream: &str) -> Result<(), StreamError> {
    use redis::AsyncCommands;
    let mut conn = ctx.redis.get().await?;
    let consumers: redis::streams::StreamInfoConsumersReply =
        conn.xinfo_consumers(stream, &ctx.settings.group).await?;
    let limit = ctx.settings.claim_idle_ms.saturating_mul(10) as usize;
    for c in consumers.consumers {
        if c.name != ctx.consumer && c.pending == 0 && c.idle > limit {
            let _: i64 = redis::cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(stream)
                .arg(&ctx.settings.group)
                .arg(&c.name)
                .query_async(&mut conn)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_share_a_tight_budget_and_take_whole_batches_otherwise() {
        assert_eq!(read_share(1000, 4096, 1), 1000);
        assert_eq!(read_share(1000, 4096, 4), 1000);
        assert_eq!(read_share(1000, 4096, 8), 512);
        assert_eq!(read_share(10, 10, 3), 3);
        assert_eq!(read_share(10, 2, 3), 1, "at least one entry a read");
    }
}
