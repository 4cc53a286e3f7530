//! Thresholds, cooldowns and the decision memory, decided atomically in Redis.
//!
//! One Lua script (`gate.lua`) decides one (rule, event) pair on the event's time;
//! a pair whose rule has neither threshold nor cooldown needs only the decision
//! memory and is decided by one native command instead ([`memory`]), which costs
//! Redis a quarter of the script. A batch sends every pair's call in one pipeline, so
//! a batch costs one round trip however many rules matched. All keys of a call
//! share the rule's hash tag (see [`crate::keys`]), so the script is atomic on a
//! Redis Cluster too. Replicas racing for one cooldown are serialised by Redis:
//! exactly one takes it. The script stores each decision with the state it
//! changes, so a crash after the gate and before the record loses nothing: the
//! redelivered entry gets the same decision back. [`rules_core::simulate`] is the
//! same algorithm in Rust.

pub mod destination;
mod memory;

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

/// How a pair is decided: rules with a threshold or a cooldown run the script; the
/// rest need only the decision memory ([`memory`]).
enum Call {
    Script,
    Memory { fresh: Decision },
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
    let mut calls = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let spec = &pair.rule.rule().spec;
        let call = if spec.trigger_config.threshold.is_none() && spec.cooldown_seconds == 0 {
            let fresh = if pair.stale {
                Decision::Skip
            } else {
                Decision::Execute
            };
            let key = keys::decision(pair.rule.id(), pair.event.id);
            pipe.add_command(memory::command(key, pair.token, fresh, memory_ttl_ms, dry));
            Call::Memory { fresh }
        } else {
            pipe.invoke_script(&script_call(pair, memory_ttl_ms, dry));
            Call::Script
        };
        calls.push(call);
    }
    let no_script = |r: &redis::RedisResult<redis::Value>| matches!(r, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript));
    let mut replies: Vec<redis::RedisResult<redis::Value>> = pipe.query_async(conn).await?;
    if replies.iter().any(no_script) {
        // After a Redis restart the script cache is empty: load it and try once more
        // (a decision memory set by the first try answers the second the same).
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
        .zip(pairs.iter().zip(calls))
        .map(|(reply, (pair, call))| match call {
            Call::Memory { fresh } => memory::answer(reply?, pair.token, fresh, dry),
            Call::Script => script_answer(reply?),
        })
        .collect())
}

/// The script's call for one pair: only the keys and arguments its rule uses.
fn script_call<'a>(pair: &Pair<'_>, memory_ttl_ms: u64, dry: bool) -> redis::ScriptInvocation<'a> {
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
        .arg(cooldown_ms)
        .arg(pair.at_ms)
        .arg(rules_core::clock::MAX_EVENT_AGE_MS);
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
    invocation
}

/// The script's `{code, detail, progress}`.
fn script_answer(reply: redis::Value) -> Result<(Decision, i64), RedisError> {
    let unexpected = |detail: String| RedisError::Reply {
        command: "gate script",
        detail,
    };
    let (code, detail, progress): (i64, i64, i64) =
        redis::from_redis_value(reply).map_err(|e| unexpected(e.to_string()))?;
    let decision = Decision::from_code(code, detail)
        .ok_or_else(|| unexpected(format!("unknown decision code {code}")))?;
    Ok((decision, progress))
}
