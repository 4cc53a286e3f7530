//! Embedded migrations, applied under a PostgreSQL advisory lock.
//!
//! The SQL in `migrations/` is compiled into the binary, so a deploy needs no files
//! and no libpq. Several `rules-migrate` processes may start at once (one per
//! deploying pod, CI and a developer): each takes the same session advisory lock
//! before diesel reads what is pending, so the second one waits, then finds nothing
//! to do. Each migration runs in its own transaction.

use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::connect::PgTarget;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Key of the advisory lock that serialises migration runs (any fixed bigint).
const MIGRATION_LOCK_KEY: i64 = 0x7275_6c65_735f_6d67; // "rules_mg"

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("migration task failed: {0}")]
    Task(String),
}

/// What is applied and what is pending, by migration name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub applied: Vec<String>,
    pub pending: Vec<String>,
}

type SyncPg = AsyncConnectionWrapper<AsyncPgConnection>;

/// Applies every pending migration; returns the names of those it applied.
pub async fn run_pending(target: &PgTarget) -> Result<Vec<String>, MigrationError> {
    blocking(target, |conn| {
        with_lock(conn, |conn| {
            conn.run_pending_migrations(MIGRATIONS)
                .map(|versions| {
                    versions
                        .iter()
                        .map(|v| migration_name(&v.to_string()))
                        .collect()
                })
                .map_err(|e| MigrationError::Migration(one_line(&e.to_string())))
        })
    })
    .await
}

/// Lists applied and pending migrations without changing the schema (beyond
/// diesel's bookkeeping table, created empty when absent).
pub async fn status(target: &PgTarget) -> Result<MigrationStatus, MigrationError> {
    blocking(target, |conn| {
        with_lock(conn, |conn| {
            let fail = |e: Box<dyn std::error::Error + Send + Sync>| {
                MigrationError::Migration(one_line(&e.to_string()))
            };
            let mut applied: Vec<String> = conn
                .applied_migrations()
                .map_err(fail)?
                .iter()
                .map(|v| migration_name(&v.to_string()))
                .collect();
            applied.sort();
            let pending = conn
                .pending_migrations(MIGRATIONS)
                .map_err(fail)?
                .iter()
                .map(|m| m.name().to_string())
                .collect();
            Ok(MigrationStatus { applied, pending })
        })
    })
    .await
}

async fn blocking<T: Send + 'static>(
    target: &PgTarget,
    work: impl FnOnce(&mut SyncPg) -> Result<T, MigrationError> + Send + 'static,
) -> Result<T, MigrationError> {
    let conn = target
        .connect()
        .await
        .map_err(|e| MigrationError::Connect(one_line(&e.to_string())))?;
    tokio::task::spawn_blocking(move || work(&mut SyncPg::from(conn)))
        .await
        .map_err(|e| MigrationError::Task(e.to_string()))?
}

fn with_lock<T>(
    conn: &mut SyncPg,
    work: impl FnOnce(&mut SyncPg) -> Result<T, MigrationError>,
) -> Result<T, MigrationError> {
    use diesel::RunQueryDsl;
    let lock = |conn: &mut SyncPg, sql: &str| {
        diesel::sql_query(sql)
            .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK_KEY)
            .execute(conn)
            .map_err(|e| MigrationError::Migration(one_line(&e.to_string())))
    };
    lock(conn, "SELECT pg_advisory_lock($1)")?;
    let result = work(conn);
    // The session ends right after; unlocking early just lets a waiting run go sooner.
    let _ = lock(conn, "SELECT pg_advisory_unlock($1)");
    result
}

/// The full name (`2026-11-25-000001_create_rules`) of an embedded migration's version.
fn migration_name(version: &str) -> String {
    use diesel::migration::MigrationSource;
    MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .ok()
        .and_then(|all| {
            all.iter().map(|m| m.name().to_string()).find(|name| {
                name.chars()
                    .filter(char::is_ascii_digit)
                    .collect::<String>()
                    .starts_with(version)
            })
        })
        .unwrap_or_else(|| version.to_owned())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
