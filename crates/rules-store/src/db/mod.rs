//! PostgreSQL access: the pool, the schema and the migrations.

pub mod connect;
pub mod executions;
pub mod migrations;
pub mod prepared;
pub mod raw_json;
pub mod record;
pub mod retention;
pub mod rules;
pub mod schema;
pub mod stats;

use deadpool::managed::{Hook, HookError, Metrics};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::AsyncPgConnection;
use futures_util::FutureExt;
use std::time::Duration;

use crate::config::DatabaseSettings;
pub use connect::{PgTarget, SslMode, TlsSetupError};

pub type PgPool = Pool<AsyncPgConnection>;
pub type PgConn = deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// The pool's error: a connection could not be had (timeout, connect error).
pub type PoolError = deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>;

/// Database errors. The pool's errors are kept whole, their message shown inline
/// (so not also reported as a source, which would print the cause twice).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database pool: {0}")]
    Pool(PoolError),
    #[error("database pool configuration: {0}")]
    Build(deadpool::managed::BuildError),
    #[error("database.url: {0}")]
    Target(#[from] TlsSetupError),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
}

impl DbError {
    /// PostgreSQL found no partition of the decision log for a row's day (its days
    /// ahead not made: maintenance failed for longer than they last, or a partition
    /// was dropped by hand).
    pub fn is_missing_partition(&self) -> bool {
        matches!(self, DbError::Query(diesel::result::Error::DatabaseError(_, info))
            if info.message().starts_with("no partition of relation"))
    }

    /// A row broke a unique key.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

impl From<PoolError> for DbError {
    fn from(e: PoolError) -> Self {
        Self::Pool(e)
    }
}

impl From<deadpool::managed::BuildError> for DbError {
    fn from(e: deadpool::managed::BuildError) -> Self {
        Self::Build(e)
    }
}

/// Where `database.url` and `database.ca_file` say to connect, and how.
pub fn target(settings: &DatabaseSettings) -> Result<PgTarget, TlsSetupError> {
    PgTarget::new(&settings.url, settings.ca_file.as_deref())
}

/// How long a pooled connection may go unused before it is verified with a round
/// trip as it is handed out ([`verify_if_idle`]).
pub const VERIFY_AFTER_IDLE: Duration = Duration::from_secs(5);

/// Builds the connection pool; connections open lazily, bounded by the configured
/// timeouts, each through [`PgTarget::connect`] (TLS as the URL's `sslmode` says).
///
/// A connection is handed out again without a round trip when it was in use within
/// [`VERIFY_AFTER_IDLE`]: one PostgreSQL closed (a restart, a terminated backend)
/// is known without asking (diesel-async's `is_broken`: its socket's end has been
/// read), and one in a broken transaction too. Asking every time (`SELECT 1`, the
/// default) was a third round trip for a history request, 9% of its requests a
/// second. A connection idle for longer is asked first ([`verify_if_idle`]), as one
/// a network dropped silently answers nothing.
pub fn build_pool(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let target = std::sync::Arc::new(target(settings)?);
    let verify_within = Duration::from_millis(settings.connect_timeout_ms);
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |_url| {
        let target = std::sync::Arc::clone(&target);
        async move { target.connect().await }.boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        settings.url.clone(),
        config,
    );
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .wait_timeout(Some(Duration::from_millis(settings.acquire_timeout_ms)))
        .create_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
        .recycle_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
        .pre_recycle(Hook::async_fn(move |conn, metrics| {
            Box::pin(verify_if_idle(conn, metrics, verify_within))
        }))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(DbError::from)
}

/// Before a connection unused for [`VERIFY_AFTER_IDLE`] is handed out: a round
/// trip within `bound`, or the connection is dropped for a new one.
async fn verify_if_idle(
    conn: &mut AsyncPgConnection,
    metrics: &Metrics,
    bound: Duration,
) -> Result<(), HookError<diesel_async::pooled_connection::PoolError>> {
    use diesel_async::RunQueryDsl;
    if metrics.last_used() < VERIFY_AFTER_IDLE {
        return Ok(());
    }
    match tokio::time::timeout(bound, diesel::sql_query("SELECT 1").execute(conn)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(HookError::Backend(
            diesel_async::pooled_connection::PoolError::QueryError(e),
        )),
        Err(_) => Err(HookError::message(format!(
            "an idle connection did not answer within {} ms",
            bound.as_millis()
        ))),
    }
}

/// A round trip to the database: start-up checks and readiness probes.
pub async fn ping(pool: &PgPool) -> Result<(), DbError> {
    use diesel_async::RunQueryDsl;
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}
