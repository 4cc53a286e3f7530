//! Webhook destinations that misbehave: a circuit breaker and a rate limit per host,
//! kept in Redis so every worker replica shares them (a dead bot endpoint is
//! discovered once, not by each replica spending its retries on it).

use redis::Script;
use std::sync::LazyLock;

use crate::keys;
use crate::redis::RedisError;

static DESTINATION: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("destination.lua")));

/// Breaker and rate-limit settings.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Consecutive transient failures that open the breaker.
    pub failures_to_open: u32,
    pub cooloff_ms: u64,
    /// Calls per second per destination; 0: unlimited.
    pub per_second: u32,
}

/// May a call to `host` go now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit {
    Go,
    /// Go: this call probes a destination whose cool-off has passed.
    Probe,
    /// The breaker is open: fail fast. `last_error` is the last real failure that
    /// counted toward opening it (a timeout, an HTTP 500, a reset), if known.
    Open {
        last_error: Option<String>,
    },
    /// Over the rate: try again after this many milliseconds.
    Wait(u64),
    /// The cool-off is over and another call is probing the destination: ask again
    /// (its answer closes or reopens the breaker within this many milliseconds). A
    /// call arriving then waits instead of failing for arriving at that moment.
    Probing(u64),
}

/// A call's outcome as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The destination answered (even 4xx): it is up.
    Up,
    /// A transient failure (connect error, timeout, 429, 5xx), with its cause.
    Failed(&'a str),
}

/// Longest cause kept with a breaker.
const MAX_CAUSE_BYTES: usize = 300;

async fn call<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    host: &str,
    mode: &str,
    cause: &str,
    policy: Policy,
) -> Result<(i64, i64, String), RedisError> {
    let second = chrono::Utc::now().timestamp();
    Ok(DESTINATION
        .key(keys::destination_breaker(host))
        .key(keys::destination_probe(host))
        .key(keys::destination_rate(host, second))
        .arg(mode)
        .arg(policy.failures_to_open)
        .arg(policy.cooloff_ms)
        .arg(policy.per_second)
        .arg(cause)
        .invoke_async(conn)
        .await?)
}

pub async fn acquire<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    host: &str,
    policy: Policy,
) -> Result<Permit, RedisError> {
    let (verdict, wait, cause) = call(conn, host, "acquire", "", policy).await?;
    Ok(match verdict {
        1 => Permit::Go,
        2 => Permit::Probe,
        3 => Permit::Wait(u64::try_from(wait).unwrap_or(1000).max(1)),
        4 => Permit::Probing(u64::try_from(wait).unwrap_or(1000).max(1)),
        _ => Permit::Open {
            last_error: (!cause.is_empty()).then_some(cause),
        },
    })
}

/// Records a call's outcome: a success closes the breaker; a transient failure
/// counts toward opening it (a failed probe reopens it at once) and is kept as the
/// breaker's last cause. True when this failure opened the breaker.
pub async fn record<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    host: &str,
    outcome: Outcome<'_>,
    policy: Policy,
) -> Result<bool, RedisError> {
    let (mode, cause) = match outcome {
        Outcome::Up => ("success", String::new()),
        Outcome::Failed(cause) => (
            "failure",
            rules_core::truncated(cause, MAX_CAUSE_BYTES).to_owned(),
        ),
    };
    let (opened, _, _) = call(conn, host, mode, &cause, policy).await?;
    Ok(opened == 1)
}
