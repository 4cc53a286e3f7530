//! Reading the input streams: new entries with XREADGROUP, this consumer's own
//! pending entries at start, and entries left pending by dead consumers.
//!
//! Dead consumers' entries are found with XPENDING (which gives each entry's delivery
//! count) and taken with XCLAIM, rather than XAUTOCLAIM, so that an entry delivered
//! `worker.max_deliveries` times goes to the dead-letter stream instead of being
//! tried forever. Entries are never re-added to a stream (that would reset their
//! delivery count) and never XDEL'd after acknowledgement (that would make the
//! group's `lag` unknown, and autoscaling reads it).

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use crate::context::Context;

/// One stream entry on its way through the worker. Holds its in-flight permit
/// until it is acknowledged.
pub struct Entry {
    pub stream: Arc<str>,
    pub id: String,
    pub fields: Vec<(String, Vec<u8>)>,
    /// How many times it has been delivered, this time included.
    pub deliveries: u64,
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Entry {
    /// The claim token of this entry in the gate: stream and id.
    pub fn token(&self) -> String {
        format!("{}/{}", self.stream, self.id)
    }
}

fn entries_of(stream: &Arc<str>, ids: Vec<StreamId>, deliveries: u64) -> Vec<Entry> {
    ids.into_iter()
        .map(|sid| Entry {
            stream: Arc::clone(stream),
            fields: sid
                .map
                .into_iter()
                .map(|(k, v)| (k, redis::from_redis_value::<Vec<u8>>(v).unwrap_or_default()))
                .collect(),
            id: sid.id,
            deliveries,
            permit: None,
        })
        .collect()
}

/// A connection of the reader's own: a blocking XREADGROUP must not hold a pooled one.
pub async fn reader_connection(
    redis_url: &str,
    block_ms: u64,
) -> redis::RedisResult<MultiplexedConnection> {
    let client = redis::Client::open(redis_url)?;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(
        Duration::from_millis(block_ms) + Duration::from_secs(10),
    ));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Hands this consumer's own pending entries (read but not acknowledged before a
/// restart under the same name) to the processor, oldest first.
async fn own_pending(
    ctx: &Context,
    conn: &mut MultiplexedConnection,
    streams: &[Arc<str>],
    batches: &mpsc::Sender<Vec<Entry>>,
) -> redis::RedisResult<()> {
    for stream in streams {
        let mut cursor = "0".to_owned();
        loop {
            let permits = match Arc::clone(&ctx.in_flight)
                .acquire_many_owned(ctx.settings.batch_size as u32)
                .await
            {
                Ok(p) => p,
                Err(_) => return Ok(()),
            };
            let opts = StreamReadOptions::default()
                .group(&ctx.settings.group, &ctx.consumer)
                .count(ctx.settings.batch_size);
            let reply: Option<StreamReadReply> = conn
                .xread_options(&[&**stream], &[cursor.as_str()], &opts)
                .await?;
            let ids: Vec<StreamId> = reply
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| k.ids)
                .collect();
            let Some(last) = ids.last().map(|i| i.id.clone()) else {
                break;
            };
            let full = ids.len() >= ctx.settings.batch_size;
            let mut batch = entries_of(stream, ids, 2);
            let mut permits = permits;
            for entry in &mut batch {
                entry.permit = permits.split(1);
            }
            drop(permits);
            tracing::info!(stream = %stream, entries = batch.len(), "resuming own pending entries");
            if batches.send(batch).await.is_err() || !full {
                break;
            }
            cursor = last;
        }
    }
    Ok(())
}

/// Reads new entries until cancelled, handing batches to the processor.
pub async fn read_loop(
    ctx: Arc<Context>,
    redis_url: String,
    batches: mpsc::Sender<Vec<Entry>>,
    token: CancellationToken,
) {
    let streams: Vec<Arc<str>> = ctx
        .settings
        .streams
        .iter()
        .map(|s| Arc::from(s.as_str()))
        .collect();
    let mut conn: Option<MultiplexedConnection> = None;
    let mut resumed = false;
    let mut failures: u32 = 0;
    while !token.is_cancelled() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match reader_connection(&redis_url, ctx.settings.block_ms).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "reader cannot connect to Redis; retrying");
                    pause(&token, failures).await;
                    continue;
                }
            },
        };
        if !resumed {
            if let Err(e) = own_pending(&ctx, c, &streams, &batches).await {
                tracing::warn!(error = %e, "reading own pending entries failed; they will be claimed later");
            }
            resumed = true;
        }
        // Wait for room before reading: entries in flight are bounded.
        let permits = tokio::select! {
            _ = token.cancelled() => break,
            p = Arc::clone(&ctx.in_flight).acquire_many_owned(ctx.settings.batch_size as u32) => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let opts = StreamReadOptions::default()
            .group(&ctx.settings.group, &ctx.consumer)
            .count(ctx.settings.batch_size)
            .block(ctx.settings.block_ms as usize);
        let ids: Vec<&str> = streams.iter().map(|_| ">").collect();
        let keys: Vec<&str> = streams.iter().map(|s| &**s).collect();
        let reply: redis::RedisResult<Option<StreamReadReply>> =
            c.xread_options(&keys, &ids, &opts).await;
        match reply {
            Ok(reply) => {
                failures = 0;
                let mut batch = Vec::new();
                for key in reply.map(|r| r.keys).unwrap_or_default() {
                    let stream = streams
                        .iter()
                        .find(|s| ***s == *key.key)
                        .cloned()
                        .unwrap_or_else(|| Arc::from(key.key.as_str()));
                    batch.extend(entries_of(&stream, key.ids, 1));
                }
                metrics::counter!("events_read_total").increment(batch.len() as u64);
                if batch.is_empty() {
                    continue;
                }
                let mut permits = permits;
                for entry in &mut batch {
                    entry.permit = permits.split(1);
                }
                drop(permits);
                if batches.send(batch).await.is_err() {
                    break;
                }
            }
            Err(e) if e.code() == Some("NOGROUP") => {
                // Redis lost the group (a restart without persistence, or a manual
                // XGROUP DESTROY): recreate it deliberately from the stream's start,
                // so nothing produced since is skipped; idempotency absorbs repeats.
                tracing::warn!(
                    "consumer group is gone; recreating it from the start of each stream"
                );
                metrics::counter!("consumer_group_recreated_total").increment(1);
                for stream in &ctx.settings.streams {
                    if let Err(e) =
                        rules_store::streams::ensure_group_from(c, stream, &ctx.settings.group, "0")
                            .await
                    {
                        tracing::warn!(error = %e, stream, "recreating the consumer group failed");
                    }
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "XREADGROUP failed; reconnecting");
                conn = None;
                pause(&token, failures).await;
            }
        }
    }
    tracing::info!("reader stopped");
}

async fn pause(token: &CancellationToken, failures: u32) {
    let delay = Duration::from_millis(100u64.saturating_mul(1 << failures.min(6)));
    tokio::select! {
        _ = token.cancelled() => {}
        _ = tokio::time::sleep(delay) => {}
    }
}

/// Takes over entries other consumers left pending longer than `claim_idle_ms`,
/// and forgets consumers that are long gone and own nothing.
pub async fn claim_loop(
    ctx: Arc<Context>,
    batches: mpsc::Sender<Vec<Entry>>,
    token: CancellationToken,
) {
    let every = Duration::from_millis(ctx.settings.claim_interval_ms);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        for stream in &ctx.settings.streams {
            match claim_stream(&ctx, stream).await {
                Ok(batch) if !batch.is_empty() => {
                    metrics::counter!("entries_claimed_total").increment(batch.len() as u64);
                    tracing::info!(
                        stream,
                        claimed = batch.len(),
                        "took over entries of a dead consumer"
                    );
                    if batches.send(batch).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, stream, "claiming pending entries failed"),
            }
            if let Err(e) = prune_consumers(&ctx, stream).await {
                tracing::debug!(error = %e, stream, "pruning idle consumers failed");
            }
        }
    }
}

async fn claim_stream(ctx: &Context, stream: &str) -> redis::RedisResult<Vec<Entry>> {
    let mut conn = pooled(ctx).await?;
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(&ctx.settings.group)
        .arg("IDLE")
        .arg(ctx.settings.claim_idle_ms)
        .arg("-")
        .arg("+")
        .arg(ctx.settings.batch_size)
        .query_async(&mut conn)
        .await?;
    // Our own pending entries are in flight here, not abandoned.
    let others: Vec<(String, u64)> = pending
        .into_iter()
        .filter(|(_, consumer, _, _)| *consumer != ctx.consumer)
        .map(|(id, _, _, deliveries)| (id, deliveries))
        .collect();
    if others.is_empty() {
        return Ok(Vec::new());
    }
    let permits = match Arc::clone(&ctx.in_flight).try_acquire_many_owned(others.len() as u32) {
        Ok(p) => p,
        Err(_) => return Ok(Vec::new()), // busy: the next round will take them
    };
    let ids: Vec<&str> = others.iter().map(|(id, _)| id.as_str()).collect();
    let claimed: redis::streams::StreamClaimReply = redis::cmd("XCLAIM")
        .arg(stream)
        .arg(&ctx.settings.group)
        .arg(&ctx.consumer)
        .arg(ctx.settings.claim_idle_ms)
        .arg(&ids)
        .query_async(&mut conn)
        .await?;
    let stream: Arc<str> = Arc::from(stream);
    let mut permits = permits;
    let mut entries = Vec::new();
    for sid in claimed.ids {
        let before = others
            .iter()
            .find(|(id, _)| *id == sid.id)
            .map_or(1, |(_, d)| *d);
        let mut batch = entries_of(&stream, vec![sid], before + 1);
        for e in &mut batch {
            e.permit = permits.split(1);
        }
        entries.extend(batch);
    }
    Ok(entries)
}

/// Deletes consumers with nothing pending that have been idle ten claim periods.
async fn prune_consumers(ctx: &Context, stream: &str) -> redis::RedisResult<()> {
    let mut conn = pooled(ctx).await?;
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

/// A pooled connection, its pool error as a Redis error (the callers' error type).
async fn pooled(ctx: &Context) -> redis::RedisResult<deadpool_redis::Connection> {
    ctx.redis
        .get()
        .await
        .map_err(|e| redis::RedisError::from((redis::ErrorKind::Io, "pool", e.to_string())))
}

/// Copies unreadable entries to the dead-letter stream with the reason, the source
/// and the original fields.
pub async fn dead_letter(ctx: &Context, entries: &[(&Entry, String)]) -> redis::RedisResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut conn = pooled(ctx).await?;
    let mut pipe = redis::pipe();
    for (entry, reason) in entries {
        let cmd = pipe
            .cmd("XADD")
            .arg(&ctx.settings.dead_letter_stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(ctx.settings.dead_letter_maxlen)
            .arg("*")
            .arg("reason")
            .arg(reason)
            .arg("source_stream")
            .arg(&*entry.stream)
            .arg("source_id")
            .arg(&entry.id);
        for (k, v) in &entry.fields {
            // The envelope's own fields cannot collide with ours: ours come first
            // and a reader takes the first occurrence.
            cmd.arg(k).arg(v);
        }
        cmd.ignore();
    }
    pipe.query_async::<()>(&mut conn).await
}
