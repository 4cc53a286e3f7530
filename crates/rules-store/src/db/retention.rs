//! The decision log's days: partitions made ahead, old ones dropped.
//!
//! `rule_executions`, `rule_suppressions` and `rule_threshold_counts` are
//! partitioned by the UTC day of the event's time (migration 000007). One SQL
//! function, `rules_maintain_log`, makes the partitions of the days from yesterday
//! to `partitions_ahead_days` ahead and drops those whose every day is older than
//! `executions_days` before today: a `DROP TABLE` per partition, never a row-by-row
//! delete. The worker runs it at start and hourly, `rules-migrate maintain` on
//! demand (a CronJob); runs from many places at once are serialised by an advisory
//! lock inside the function.

use chrono::NaiveDate;
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::DbError;
use crate::config::RetentionSettings;

/// What one maintenance run did to one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionChange {
    Created(String),
    Dropped(String),
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    action: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    partition_name: String,
}

/// Makes the days ahead and drops the expired ones, as of `today` (UTC) when
/// given, else the database's today.
pub async fn maintain(
    conn: &mut AsyncPgConnection,
    settings: RetentionSettings,
    today: Option<NaiveDate>,
) -> Result<Vec<PartitionChange>, DbError> {
    use diesel::sql_types::{Date, Integer, Nullable};
    let as_int = |days: u32| i32::try_from(days).unwrap_or(i32::MAX);
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT action, partition_name FROM rules_maintain_log($1, $2, \
           coalesce($3, (now() AT TIME ZONE 'UTC')::date))",
    )
    .bind::<Integer, _>(as_int(settings.executions_days))
    .bind::<Integer, _>(as_int(settings.partitions_ahead_days))
    .bind::<Nullable<Date>, _>(today)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| match r.action.as_str() {
            "dropped" => PartitionChange::Dropped(r.partition_name),
            _ => PartitionChange::Created(r.partition_name),
        })
        .collect())
}
