//! Per-rule, per-minute counters (`rule_stats_minute`) and their duration histograms.
//!
//! Fixed bucket bounds make per-minute rows summable, so a percentile over any range
//! is read from counters instead of scanning the execution log. The estimate is the
//! upper bound of the bucket that holds the percentile, capped by the range's
//! observed maximum bucket: at most one bucket too high, never too low.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::rule_stats_minute as stats;
use super::DbError;

/// One minute of one rule's counters.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = stats, check_for_backend(diesel::pg::Pg))]
pub struct StatsRow {
    pub rule_id: Uuid,
    pub bucket_start: DateTime<Utc>,
    pub matched: i64,
    pub executed: i64,
    pub suppressed_by_cooldown: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub duration_ms_sum: i64,
    pub duration_histogram: Vec<i64>,
    pub last_executed_at: Option<DateTime<Utc>>,
    /// Matches whose every action was skipped as stale.
    pub skipped: i64,
}

impl StatsRow {
    /// A minute with nothing counted yet.
    pub fn empty(rule_id: Uuid, bucket_start: DateTime<Utc>) -> Self {
        Self {
            rule_id,
            bucket_start,
            matched: 0,
            executed: 0,
            suppressed_by_cooldown: 0,
            succeeded: 0,
            failed: 0,
            duration_ms_sum: 0,
            duration_histogram: Vec::new(),
            last_executed_at: None,
            skipped: 0,
        }
    }
}

/// Adds counters to their minutes, creating rows as needed, in one statement.
/// Rows for the same (rule, minute) must be merged by the caller first.
pub async fn add(conn: &mut AsyncPgConnection, rows: &[StatsRow]) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    diesel::insert_into(stats::table)
        .values(rows)
        .on_conflict((stats::rule_id, stats::bucket_start))
        .do_update()
        .set((
            stats::matched.eq(stats::matched + excluded(stats::matched)),
            stats::executed.eq(stats::executed + excluded(stats::executed)),
            stats::suppressed_by_cooldown
                .eq(stats::suppressed_by_cooldown + excluded(stats::suppressed_by_cooldown)),
            stats::succeeded.eq(stats::succeeded + excluded(stats::succeeded)),
            stats::failed.eq(stats::failed + excluded(stats::failed)),
            stats::skipped.eq(stats::skipped + excluded(stats::skipped)),
            stats::duration_ms_sum.eq(stats::duration_ms_sum + excluded(stats::duration_ms_sum)),
            stats::duration_histogram.eq(histogram_add_sql(
                stats::duration_histogram,
                excluded(stats::duration_histogram),
            )),
            stats::last_executed_at.eq(greatest_sql(
                stats::last_executed_at,
                excluded(stats::last_executed_at),
            )),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

diesel::define_sql_function! {
    #[sql_name = "histogram_add"]
    fn histogram_add_sql(a: diesel::sql_types::Array<diesel::sql_types::Int8>, b: diesel::sql_types::Array<diesel::sql_types::Int8>) -> diesel::sql_types::Array<diesel::sql_types::Int8>;
}

diesel::define_sql_function! {
    #[sql_name = "greatest"]
    fn greatest_sql(a: diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>, b: diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>) -> diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>;
}

/// A rule's minutes in `[from, to)`, oldest first.
pub async fn load_range(
    conn: &mut AsyncPgConnection,
    rule_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StatsRow>, DbError> {
    Ok(stats::table
        .filter(stats::rule_id.eq(rule_id))
        .filter(stats::bucket_start.ge(from))
        .filter(stats::bucket_start.lt(to))
        .order(stats::bucket_start.asc())
        .select(StatsRow::as_select())
        .load(conn)
        .await?)
}

/// Upper bounds (inclusive, milliseconds) of each bucket; a last bucket holds the rest.
pub const DURATION_BUCKETS_MS: [u32; 15] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000,
];

/// Number of buckets, the open-ended one included.
pub const HISTOGRAM_LEN: usize = DURATION_BUCKETS_MS.len() + 1;

/// Which bucket a duration falls in.
pub fn bucket_index(duration_ms: u32) -> usize {
    DURATION_BUCKETS_MS
        .iter()
        .position(|bound| duration_ms <= *bound)
        .unwrap_or(DURATION_BUCKETS_MS.len())
}

/// A histogram holding one duration.
pub fn histogram_of(duration_ms: u32) -> Vec<i64> {
    let mut h = vec![0; HISTOGRAM_LEN];
    h[bucket_index(duration_ms)] = 1;
    h
}

/// Adds `other` into `into`, element-wise (the SQL `histogram_add`).
pub fn histogram_add(into: &mut Vec<i64>, other: &[i64]) {
    if into.len() < other.len() {
        into.resize(other.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(other) {
        *a += b;
    }
}

/// The `q`-quantile (0 < q ≤ 1) in milliseconds, or `None` for an empty histogram.
pub fn percentile_ms(histogram: &[i64], q: f64) -> Option<f64> {
    let total: i64 = histogram.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (i, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            let bound = DURATION_BUCKETS_MS.get(i).copied().unwrap_or(u32::MAX);
            let last = DURATION_BUCKETS_MS.last().copied().unwrap_or(u32::MAX);
            return Some(f64::from(bound.min(last)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(1), 0);
        assert_eq!(bucket_index(2), 1);
        assert_eq!(bucket_index(3), 2);
        assert_eq!(bucket_index(30_000), 14);
        assert_eq!(bucket_index(30_001), 15);
    }

    #[test]
    fn percentiles() {
        let mut h = Vec::new();
        for d in [1, 1, 1, 1, 1, 1, 1, 1, 1, 40] {
            histogram_add(&mut h, &histogram_of(d));
        }
        assert_eq!(percentile_ms(&h, 0.5), Some(1.0));
        assert_eq!(percentile_ms(&h, 0.9), Some(1.0));
        assert_eq!(percentile_ms(&h, 0.95), Some(50.0));
        assert_eq!(percentile_ms(&[], 0.95), None);
        assert_eq!(percentile_ms(&histogram_of(60_000), 0.95), Some(30_000.0));
    }
}
