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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Go,
    /// Go: this call probes a destination whose cool-off has passed.
    Probe,
    /// The breaker is open: fail fast.
    Open,
    /// Over the rate: try again after this many milliseconds.
    Wait(u64),
}

async fn call<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    host: &str,
    mode: &str,
    policy: Policy,
) -> Result<(i64, i64), RedisError> {
    let second = chrono::Utc::now().timestamp();
    Ok(DESTINATION
        .key(keys::destination_breaker(host))
        .key(keys::destination_probe(host))
        .key(keys::destination_rate(host, second))
        .arg(mode)
        .arg(policy.failures_to_open)
        .arg(policy.cooloff_ms)
        .arg(policy.per_second)
        .invoke_async(conn)
        .await?)
}

pub async fn acquire<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    host: &str,
    policy: Policy,
) -> Result<Permit, RedisError> {
    let (verdict, wait) = call(conn, host, "acquire", policy).await?;
    Ok(match verdict {
        1 => Permit::Go,
        2 => Permit::Probe,
        3 => Permit::Wait(u64::try_from(wait).unwrap_or(1000).max(1)),
        _ => Permit::Open,
    })
}

/// Records a call's outcome: a success closes the breaker; a transient failure
/// counts toward opening it (a failed probe reopens it at once).
pub async fn record<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    host: &str,
    ok: bool,
    policy: Policy,
) -> Result<(), RedisError> {
    call(conn, host, if ok { "success" } else { "failure" }, policy).await?;
    Ok(())
}
