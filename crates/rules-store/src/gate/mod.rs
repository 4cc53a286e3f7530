//! Thresholds, cooldowns and the decision memory, decided atomically in Redis.
//!
//! One Lua script (`gate.lua`) decides one (rule, event) pair on the event's time;
//! a batch sends every pair's call in one pipeline, so a batch costs one round trip
//! however many rules matched. All keys of a call share the rule's hash tag (see
//! [`crate::keys`]), so the script is atomic on a Redis Cluster too. Replicas racing
//! for one cooldown are serialised by Redis: exactly one takes it. The script stores
//! each decision with the state it changes, so a crash after the gate and before the
//! record loses nothing: the redelivered entry gets the same decision back.
//! [`rules_core::simulate`] is the same algorithm in Rust.

pub mod destination;

use redis::Script;
pub use rules_core::Decision;
use std::sync::LazyLock;

use crate::keys;
use crate::redis::RedisError;

static GATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("gate.lua")));

/// One pair to decide: the gate's input is the simulation's.
pub use rules_core::simulate::Pending as Pair;

/// What the gate answered for one pair: its decision, or the error of that pair's
/// script alone (a key of the wrong type, say), which fails that pair only. An error
/// the server would give any command (loading, failover) fails the whole round trip.
pub type PairOutcome = Result<Decision, RedisError>;

/// Decides every pair in one pipelined round trip, in order; each decision is
/// remembered for `memory_ttl_ms` (`worker.dedupe_seconds`). The outer error is the
/// round trip's (Redis unreachable): the whole batch is to be retried.
pub async fn decide<C>(
    conn: &mut C,
    pairs: &[Pair<'_>],
    memory_ttl_ms: u64,
) -> Result<Vec<PairOutcome>, RedisError>
where
    C: redis::aio::ConnectionLike + Send,
{
    Ok(run(conn, pairs, memory_ttl_ms, false)
        .await?
        .into_iter()
        .map(|r| r.map(|(decision, _)| decision))
        .collect())
}

/// What the gate would decide for one pair now, and the threshold progress it would
/// reach, without changing anything (the API's live dry run). Same script, same keys.
pub async fn inspect<C>(conn: &mut C, pair: &Pair<'_>) -> Result<(Decision, i64), RedisError>
where
    C: redis::aio::ConnectionLike + Send,
{
    run(conn, std::slice::from_ref(pair), 0, true)
        .await?
        .pop()
        .ok_or_else(|| RedisError::Reply {
            command: "gate script",
            detail: "no reply for the pair".into(),
        })?
}

async fn run<C>(
    conn: &mut C,
    pairs: &[Pair<'_>],
    memory_ttl_ms: u64,
    dry: bool,
) -> Result<Vec<Result<(Decision, i64), RedisError>>, RedisError>
where
    C: redis::aio::ConnectionLike + Send,
{
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for pair in pairs {
        let rule = pair.rule;
        let id = rule.id();
        let spec = &rule.rule().spec;
        let threshold = spec.trigger_config.threshold.as_ref();
        let cooldown_ms = u64::from(spec.cooldown_seconds) * 1000;
        let mut event_id = uuid::Uuid::encode_buffer();
        let event_id = pair.event.id.hyphenated().encode_lower(&mut event_id);
        let mut invocation = GATE.key(keys::decision(id, pair.event.id));
        invocation
            .arg(&*event_id)
            .arg(pair.token)
            .arg(memory_ttl_ms)
            .arg(if dry { "1" } else { "0" })
            .arg(if pair.stale { "1" } else { "0" })
            .arg(threshold.map_or(0, |t| t.count))
            .arg(cooldown_ms);
        if threshold.is_some() || cooldown_ms > 0 {
            invocation
                .arg(pair.at_ms)
                .arg(rules_core::clock::MAX_EVENT_AGE_MS);
        }
        if let Some(threshold) = threshold {
            let group = keys::scope(&rule.threshold_group(pair.event));
            let generation = rule.threshold_generation();
            invocation
                .key(keys::threshold(id, generation, &group))
                .key(keys::threshold_state(id, generation, &group))
                .arg(u64::from(threshold.window_seconds) * 1000);
        }
        if cooldown_ms > 0 {
            let cooldown_scope = rule.cooldown_scope(pair.event);
            let scope = keys::scope(&cooldown_scope);
            let key_json = cooldown_scope
                .value()
                .map(|v| v.to_string())
                .unwrap_or_default();
            invocation
                .key(keys::cooldown(id, &scope))
                .key(keys::cooldown_index(id))
                .arg(&scope)
                .arg(key_json);
        }
        pipe.invoke_script(&invocation);
    }
    let no_script = |r: &redis::RedisResult<(i64, i64, i64)>| matches!(r, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript));
    let mut replies: Vec<redis::RedisResult<(i64, i64, i64)>> = pipe.query_async(conn).await?;
    if replies.iter().any(no_script) {
        // After a Redis restart the script cache is empty: load it and try once more.
        GATE.prepare_invoke().load_async(conn).await?;
        replies = pipe.query_async(conn).await?;
    }
    // A server that cannot run any script now (still loading its data after a
    // restart, a failover under way, a connection cut mid-reply) fails the round
    // trip, to be retried: only an error of the pair's own script fails the pair.
    if let Some(Err(e)) = replies
        .iter()
        .find(|r| matches!(r, Err(e) if !matches!(e.retry_method(), redis::RetryMethod::NoRetry)))
    {
        return Err(RedisError::Command(e.clone()));
    }
    if replies.len() != pairs.len() {
        return Err(RedisError::Reply {
            command: "gate script",
            detail: format!("{} replies for {} pairs", replies.len(), pairs.len()),
        });
    }
    Ok(replies
        .into_iter()
        .map(|reply| {
            let (code, detail, progress) = reply?;
            let decision = Decision::from_code(code, detail).ok_or_else(|| RedisError::Reply {
                command: "gate script",
                detail: format!("unknown decision code {code}"),
            })?;
            Ok((decision, progress))
        })
        .collect())
}
