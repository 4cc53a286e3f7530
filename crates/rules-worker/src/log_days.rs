//! Keeps the decision log's days: at start and every hour (and at once when the
//! recorder meets a day without its partition), the partitions of the days ahead
//! are made and the expired ones dropped (`rules_store::db::retention`). A failed run is logged and counted, and the next
//! one tries again: the days ahead (`retention.partitions_ahead_days`) outlast many
//! failed hours.

use rules_store::config::RetentionSettings;
use rules_store::db::retention::{self, PartitionChange};
use rules_store::db::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the days are looked after.
const EVERY: Duration = Duration::from_secs(3600);

pub async fn keep_log_days(db: PgPool, settings: RetentionSettings, token: CancellationToken) {
    loop {
        maintain_once(&db, settings).await;
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// One run of the maintenance; its outcome is logged (and a failure counted).
pub async fn maintain_once(db: &PgPool, settings: RetentionSettings) {
    let result = async {
        let mut conn = db.get().await?;
        retention::maintain(&mut conn, settings, None).await
    }
    .await;
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
