//! Keeps the database's time-bound tables (`rules_store::db::retention`): at start
//! and every hour, the decision log's partitions of the days ahead are made and the
//! expired ones dropped (and when the recorder meets a day without its partition,
//! that day is made at once), and the analytics minutes past `retention.stats_minutes_days` are
//! rolled up into quarter hours, those past `retention.stats_days` deleted. A
//! failed run is logged and counted, and the next one tries again: the days ahead
//! (`retention.partitions_ahead_days`) outlast many failed hours, and minutes not
//! rolled up yet are still read.

use chrono::NaiveDate;
use diesel_async::AsyncPgConnection;
use rules_store::config::RetentionSettings;
use rules_store::db::retention::{self, PartitionChange};
use rules_store::db::{DbError, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the tables are looked after.
const EVERY: Duration = Duration::from_secs(3600);

pub async fn keep_maintained(db: PgPool, settings: RetentionSettings, token: CancellationToken) {
    loop {
        maintain_log_days(&db, settings).await;
        roll_up_analytics(&db, settings).await;
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// One run of the decision log's maintenance; its outcome is logged (and a
/// failure counted).
pub async fn maintain_log_days(db: &PgPool, settings: RetentionSettings) {
    let result = async {
        let mut conn = db.get().await?;
        retention::maintain(&mut conn, settings, None).await
    }
    .await;
    log_changes(result, settings);
}

/// Makes the partitions of `days` that are missing (the days of a batch the
/// recorder could not record), on the recorder's own connection; the outcome is
/// logged like a maintenance run's.
pub async fn make_log_days(
    conn: &mut AsyncPgConnection,
    settings: RetentionSettings,
    days: &[NaiveDate],
) {
    log_changes(retention::make_days(conn, days).await, settings);
}

fn log_changes(result: Result<Vec<PartitionChange>, DbError>, settings: RetentionSettings) {
    match result {
        Ok(changes) => {
            for change in changes {
                match change {
                    PartitionChange::Created(name) => {
                        tracing::info!(partition = %name, "decision log partition created");
                    }
                    PartitionChange::Dropped(name) => {
                        metrics::counter!("log_partitions_dropped_total").increment(1);
                        tracing::info!(partition = %name, retention_days = settings.executions_days, "expired decision log partition dropped");
                    }
                }
            }
        }
        Err(e) => {
            metrics::counter!("log_maintenance_failures_total").increment(1);
            tracing::warn!(error = %e, "decision log maintenance failed; retrying within the hour");
        }
    }
}

/// One roll-up of the analytics counters; its outcome is logged (and a failure
/// counted).
pub async fn roll_up_analytics(db: &PgPool, settings: RetentionSettings) {
    let result = async {
        let mut conn = db.get().await?;
        retention::roll_up_stats(&mut conn, settings, None).await
    }
    .await;
    match result {
        Ok(done) => {
            metrics::counter!("stats_minutes_rolled_up_total")
                .increment(u64::try_from(done.minutes_rolled_up).unwrap_or(0));
            if done.minutes_rolled_up > 0 || done.quarters_expired > 0 || done.minutes_sorted > 0 {
                tracing::info!(
                    minutes_rolled_up = done.minutes_rolled_up,
                    quarters_expired = done.quarters_expired,
                    minutes_sorted = done.minutes_sorted,
                    "analytics counters rolled up"
                );
            }
        }
        Err(e) => {
            metrics::counter!("stats_rollup_failures_total").increment(1);
            tracing::warn!(error = %e, "analytics roll-up failed; retrying within the hour");
        }
    }
}
