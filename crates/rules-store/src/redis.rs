//! Redis access: the shared connection pool.
//!
//! A blocking `XREADGROUP` must not hold a pooled connection (it would starve the
//! pool for its whole BLOCK); the worker opens a dedicated connection for reading.

use deadpool_redis::{Manager, Pool, PoolConfig, Runtime, Timeouts};
use std::time::Duration;

use crate::config::RedisSettings;

pub type RedisPool = Pool;

/// Redis errors. The pool's errors are kept whole (not as text); their message is
/// shown inline, so they are not also reported as a source (which would print the
/// same cause twice in an error chain).
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis pool: {0}")]
    Pool(deadpool_redis::PoolError),
    #[error("redis pool configuration: {0}")]
    Build(deadpool_redis::CreatePoolError),
    #[error("redis: {0}")]
    Command(#[from] redis::RedisError),
    /// Redis answered, but not what the command or script answers.
    #[error("unexpected reply to {command}: {detail}")]
    Reply {
        command: &'static str,
        detail: String,
    },
}

impl From<deadpool_redis::PoolError> for RedisError {
    fn from(e: deadpool_redis::PoolError) -> Self {
        Self::Pool(e)
    }
}

impl From<deadpool_redis::CreatePoolError> for RedisError {
    fn from(e: deadpool_redis::CreatePoolError) -> Self {
        Self::Build(e)
    }
}

/// The pool of the process's Redis connections. Each connection is made with the
/// settings' connect and reply bounds: redis-rs's own defaults (1 s to connect, 500
/// ms for a reply) would fail a pipeline of a thousand gate scripts, or any command
/// while Redis fsyncs a large write, and every such failure is a retried batch or a
/// publish whose outcome is unknown.
pub fn build_pool(settings: &RedisSettings) -> Result<RedisPool, RedisError> {
    let connection = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
        .set_response_timeout(Some(Duration::from_millis(settings.response_timeout_ms)));
    let manager = Manager::new_with_config(settings.url.as_str(), connection)?;
    let mut pool = PoolConfig::new(settings.pool_size);
    pool.timeouts = Timeouts {
        wait: Some(Duration::from_millis(settings.acquire_timeout_ms)),
        create: Some(Duration::from_millis(settings.connect_timeout_ms)),
        recycle: Some(Duration::from_millis(settings.connect_timeout_ms)),
    };
    Pool::builder(manager)
        .config(pool)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| RedisError::Build(deadpool_redis::CreatePoolError::Build(e)))
}

/// A connection of its own (not pooled), for a caller whose commands must not share
/// one: a blocking read, or a harness measuring the service. `reply` bounds how long
/// a reply may take (`None`: no bound); redis-rs's own default, 500 ms, is too short
/// for a blocking read or a large reply on a loaded machine.
pub async fn dedicated_connection(
    url: &str,
    connect: Duration,
    reply: Option<Duration>,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(reply);
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// One multiplexed connection of the pool, shared by every caller of [`Self::get`]
/// until one of them [`Self::forget`]s it (after an I/O error): commands that many
/// tasks issue at once (the publishes of a batch's executions) then go out together
/// in one write and come back in one read, where a connection each would cost a
/// round trip and a system call each. After a forget the next caller takes one
/// from the pool again, which checks an idle connection (PING) before handing it
/// out and replaces a dead one.
pub struct SharedConnection {
    pool: RedisPool,
    current: std::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl SharedConnection {
    pub fn new(pool: RedisPool) -> Self {
        Self {
            pool,
            current: std::sync::Mutex::new(None),
        }
    }

    /// The shared connection, taken from the pool when there is none.
    pub async fn get(&self) -> Result<redis::aio::MultiplexedConnection, RedisError> {
        if let Some(conn) = self.lock().as_ref() {
            return Ok(conn.clone());
        }
        let pooled = self.pool.get().await?;
        let conn = (*pooled).clone();
        *self.lock() = Some(conn.clone());
        Ok(conn)
    }

    /// Stops sharing the current connection: the next [`Self::get`] takes another.
    pub fn forget(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<redis::aio::MultiplexedConnection>> {
        // Holding an optional handle: a panic elsewhere cannot leave it inconsistent.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A round trip to Redis: start-up checks and readiness probes.
pub async fn ping(pool: &RedisPool) -> Result<(), RedisError> {
    let mut conn = pool.get().await?;
    let _: String = redis::cmd("PING").query_async(&mut conn).await?;
    Ok(())
}
