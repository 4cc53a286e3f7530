//! rules-worker: joins the consumer group on every input stream, keeps the enabled
//! rules in memory, and stops cleanly on SIGTERM/SIGINT.

pub mod shutdown;

use anyhow::Context;
use rules_core::RuleIndex;
use rules_store::Settings;
use std::sync::Arc;

/// Connects, loads the rules, joins the consumer groups, then runs until told to stop.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let rules_store::Pools { db, redis } = rules_store::Pools::connect(&settings).await?;

    let index = load_rules(&db).await?;
    tracing::info!(rules = index.len(), "rules loaded");

    let mut conn = redis.get().await.context("redis connection")?;
    for stream in &settings.worker.streams {
        rules_store::streams::ensure_group(&mut conn, stream, &settings.worker.group).await?;
    }
    drop(conn);
    tracing::info!(
        streams = ?settings.worker.streams,
        group = %settings.worker.group,
        "rules-worker joined its consumer groups"
    );

    let token = shutdown::on_signal();
    token.cancelled().await;
    tracing::info!("rules-worker stopped");
    Ok(())
}

/// Loads and compiles every enabled rule; a stored rule that no longer validates is
/// logged and skipped rather than stopping the worker.
async fn load_rules(db: &rules_store::db::PgPool) -> anyhow::Result<RuleIndex> {
    let mut conn = db.get().await.context("database connection")?;
    let rows = rules_store::db::rules::load_enabled(&mut conn).await?;
    let mut index = RuleIndex::new();
    for row in rows {
        let id = row.id;
        match row.compile() {
            Ok(rule) => index.upsert(Arc::new(rule)),
            Err(e) => tracing::error!(rule_id = %id, error = %e, "stored rule is invalid; skipped"),
        }
    }
    Ok(index)
}
