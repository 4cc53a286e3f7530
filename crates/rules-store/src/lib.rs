//! rules-store: what the API and the worker share beyond matching.
//!
//! Configuration and logging set-up, the PostgreSQL schema, pool and migrations, and
//! the Redis pool live here once, so the binaries stay thin and never hold two
//! copies of the same query or key scheme.

pub mod backoff;
pub mod config;
pub mod cooldowns;
pub mod db;
pub mod gate;
pub mod keys;
pub mod redis;
pub mod streams;
pub mod telemetry;
pub mod wire;

pub use config::Settings;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Both pools, checked: what every long-running binary needs before it starts work.
#[derive(Clone)]
pub struct Pools {
    pub db: db::PgPool,
    pub redis: redis::RedisPool,
}

/// Why the services are not usable at start; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("PostgreSQL at database.url is not reachable")]
    Database(#[from] db::DbError),
    #[error("Redis at redis.url is not reachable")]
    Redis(#[from] redis::RedisError),
    #[error(
        "Redis at redis.url is {}.{}; the service needs {}.{} or newer",
        found.0, found.1, redis::OLDEST_SERVER.0, redis::OLDEST_SERVER.1
    )]
    RedisTooOld { found: (u32, u32) },
}

impl Pools {
    /// Builds the pools and makes one round trip to each, so a wrong URL fails at start.
    pub async fn connect(settings: &Settings) -> Result<Self, ConnectError> {
        let db = db::build_pool(&settings.database)?;
        let redis = redis::build_pool(&settings.redis)?;
        db::ping(&db).await?;
        redis::ping(&redis).await?;
        Ok(Self { db, redis })
    }

    /// Builds the pools without connecting (a URL that cannot be parsed fails).
    pub fn build(settings: &Settings) -> Result<Self, ConnectError> {
        Ok(Self {
            db: db::build_pool(&settings.database)?,
            redis: redis::build_pool(&settings.redis)?,
        })
    }

    /// Refuses a Redis older than [`redis::OLDEST_SERVER`] (once the services are
    /// up): the gate's commands would fail on every pair.
    pub async fn require_supported(&self) -> Result<(), ConnectError> {
        let found = redis::server_version(&self.redis).await?;
        if found < redis::OLDEST_SERVER {
            return Err(ConnectError::RedisTooOld { found });
        }
        Ok(())
    }

    /// Waits, with backoff, until both services answer: a binary started during an
    /// outage waits for it instead of exiting at once (a crash loop). Past `limit`
    /// the last failure is the error, naming the service.
    pub async fn wait_until_up(&self, limit: Duration) -> Result<(), ConnectError> {
        let started = Instant::now();
        let mut delays = backoff::delays(Duration::from_millis(100), Duration::from_secs(5));
        let mut waiting_logged = false;
        loop {
            let (db_up, redis_up) = tokio::join!(db::ping(&self.db), redis::ping(&self.redis));
            let failure = match (db_up, redis_up) {
                (Ok(()), Ok(())) => {
                    if waiting_logged {
                        tracing::info!(
                            waited_ms = started.elapsed().as_millis() as u64,
                            "PostgreSQL and Redis answer"
                        );
                    }
                    return Ok(());
                }
                (Err(e), _) => ConnectError::Database(e),
                (_, Err(e)) => ConnectError::Redis(e),
            };
            let Some(left) = limit
                .checked_sub(started.elapsed())
                .filter(|l| !l.is_zero())
            else {
                return Err(failure);
            };
            let delay = delays.next().unwrap_or(Duration::from_secs(5)).min(left);
            if !waiting_logged {
                let error = match std::error::Error::source(&failure) {
                    Some(cause) => format!("{failure}: {cause}"),
                    None => failure.to_string(),
                };
                tracing::warn!(%error, limit_seconds = limit.as_secs(), "waiting for the services to answer");
                waiting_logged = true;
            }
            tokio::time::sleep(delay).await;
        }
    }
}

/// How long a readiness check waits for its service: under a probe's usual one-second
/// timeout, so a service that does not answer (paused, or a pool waiting for a
/// connection) makes the probe say which part, not time out.
pub const READINESS_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

/// The readiness of a process that needs both services: whether both answer within
/// [`READINESS_CHECK_TIMEOUT`], and a body naming each check (`{"status", "checks":
/// {"postgres", "redis"}}`), so a failing probe says which part fails.
pub async fn readiness(db: &db::PgPool, redis: &redis::RedisPool) -> (bool, serde_json::Value) {
    static POSTGRES_FAILING: AtomicBool = AtomicBool::new(false);
    static REDIS_FAILING: AtomicBool = AtomicBool::new(false);
    async fn bounded<E: std::fmt::Display>(
        check: impl std::future::Future<Output = Result<(), E>>,
    ) -> Result<(), String> {
        match tokio::time::timeout(READINESS_CHECK_TIMEOUT, check).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} ms",
                READINESS_CHECK_TIMEOUT.as_millis()
            )),
        }
    }
    let (db, redis) = tokio::join!(bounded(db::ping(db)), bounded(redis::ping(redis)));
    // Probes come every few seconds: log when a check changes, not on every call.
    let check = |name: &str, failing: &AtomicBool, r: Result<(), String>| match r {
        Ok(()) => {
            if failing.swap(false, Ordering::Relaxed) {
                tracing::info!("readiness: {name} recovered");
            }
            serde_json::json!({"status": "ok"})
        }
        Err(e) => {
            if !failing.swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %e, "readiness: {name} failing");
            }
            serde_json::json!({"status": "failing", "error": e})
        }
    };
    let ok = db.is_ok() && redis.is_ok();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "failing" },
        "checks": {
            "postgres": check("postgres", &POSTGRES_FAILING, db),
            "redis": check("redis", &REDIS_FAILING, redis),
        }
    });
    (ok, body)
}
