//! The decision log's days: partitions made ahead, old ones dropped.
//!
//! `rule_execution_keys`, `rule_suppressions` and `rule_threshold_counts` (the
//! decision memory) are partitioned by the UTC day of the event's time (migrations
//! 000007, 000012), `rule_executions` (the history) by the UTC day of its
//! execution time (000012). One SQL function, `rules_maintain_log`, makes the
//! partitions of the days from yesterday to `partitions_ahead_days` ahead and drops
//! those whose every day is older than `executions_days` before today: a `DROP
//! TABLE` per partition, never a row-by-row delete. The worker runs it at start and hourly, `rules-migrate maintain` on
//! demand (a CronJob). `rules_make_log_days` (migration 000011) makes the days a
//! batch needs that have no partition (an older day within retention, say), when
//! the recorder meets one. Runs from many places at once are serialised by an
//! advisory lock inside the functions.
//!
//! The same jobs keep the analytics counters small: `rules_roll_up_stats` (migration
//! 000008) moves the minute rows older than `stats_minutes_days` into quarter hours
//! and deletes the quarter hours older than `stats_days`.

use chrono::{DateTime, NaiveDate, Utc};
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
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT action, partition_name FROM rules_maintain_log($1, $2, \
           coalesce($3, (now() AT TIME ZONE 'UTC')::date))",
    )
    .bind::<Integer, _>(days_param(settings.executions_days))
    .bind::<Integer, _>(days_param(settings.partitions_ahead_days))
    .bind::<Nullable<Date>, _>(today)
    .load(conn)
    .await?;
    Ok(changes(rows))
}

/// Makes the partitions of those of `days` that none covers yet (whatever the
/// days: bounding them by retention is the caller's).
pub async fn make_days(
    conn: &mut AsyncPgConnection,
    days: &[NaiveDate],
) -> Result<Vec<PartitionChange>, DbError> {
    use diesel::sql_types::{Array, Date};
    let rows: Vec<Row> =
        diesel::sql_query("SELECT action, partition_name FROM rules_make_log_days($1)")
            .bind::<Array<Date>, _>(days)
            .load(conn)
            .await?;
    Ok(changes(rows))
}

fn changes(rows: Vec<Row>) -> Vec<PartitionChange> {
    rows.into_iter()
        .map(|r| match r.action.as_str() {
            "dropped" => PartitionChange::Dropped(r.partition_name),
            _ => PartitionChange::Created(r.partition_name),
        })
        .collect()
}

/// What one roll-up of the analytics counters did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct StatsRollUp {
    /// Minute rows moved into their quarter hours.
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub minutes_rolled_up: i64,
    /// Quarter hours deleted, older than `stats_days`.
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub quarters_expired: i64,
    /// Minute rows of an ended day written again in key order, so that a rule's
    /// minutes of the day lie together (migration 000018).
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub minutes_sorted: i64,
}

/// Rolls the minutes older than `settings.stats_minutes_days` up into quarter
/// hours and deletes the quarter hours older than `settings.stats_days`
/// (`rules_roll_up_stats`), and writes the minutes of the oldest ended day not yet
/// sorted again in key order (`rules_sort_minutes`, migration 000018), in one
/// statement, as of `at` when given, else the database's now.
pub async fn roll_up_stats(
    conn: &mut AsyncPgConnection,
    settings: RetentionSettings,
    at: Option<DateTime<Utc>>,
) -> Result<StatsRollUp, DbError> {
    use diesel::sql_types::{Integer, Nullable, Timestamptz};
    Ok(diesel::sql_query(
        "SELECT r.minutes_rolled_up, r.quarters_expired, s.minutes_sorted \
         FROM rules_roll_up_stats($1, $2, coalesce($3, now())) AS r, \
           rules_sort_minutes($1, coalesce($3, now())) AS s",
    )
    .bind::<Integer, _>(days_param(settings.stats_minutes_days))
    .bind::<Integer, _>(days_param(settings.stats_days))
    .bind::<Nullable<Timestamptz>, _>(at)
    .get_result(conn)
    .await?)
}

/// From when the analytics counters still hold every execution, as of `now`: the
/// roll-up deletes the quarter hours older than `stats_days` before its own now,
/// an hour's margin allowed for its clock running ahead of the caller's. A page of
/// failures is found through the counters after this time, in the log before it
/// (`executions::list_for_rule`).
pub fn counters_complete_since(stats_days: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    now.checked_sub_signed(chrono::TimeDelta::days(i64::from(stats_days)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
        + chrono::TimeDelta::hours(1)
}

/// A number of days as the SQL functions take it (an `int`).
fn days_param(days: u32) -> i32 {
    i32::try_from(days).unwrap_or(i32::MAX)
}
