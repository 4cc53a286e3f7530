//! Per-rule, per-minute counters (`rule_stats_minute`) and their duration histograms;
//! past `retention.stats_minutes_days` they are rolled up into quarter hours
//! (`rule_stats_quarter`, `db::retention::roll_up_stats`), read together with the
//! minutes.
//!
//! Fixed bucket bounds make per-minute rows summable, so a percentile over any range
//! is read from counters instead of scanning the execution log. The estimate is the
//! upper bound of the bucket that holds the percentile, capped by the range's
//! observed maximum bucket: at most one bucket too high, never too low.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::rule_stats_minute as stats;
use super::schema::rule_stats_quarter as quarters;
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
///
/// The rows travel as one array per column (`unnest`), one statement text for any
/// number of rows; a histogram, an array itself, as its text (`{1,0,2}`).
pub async fn add(conn: &mut AsyncPgConnection, rows: &[StatsRow]) -> Result<(), DbError> {
    use diesel::sql_types::{Array, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};
    if rows.is_empty() {
        return Ok(());
    }
    let counter = |f: fn(&StatsRow) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let histograms: Vec<String> = rows
        .iter()
        .map(|r| {
            let items: Vec<String> = r.duration_histogram.iter().map(i64::to_string).collect();
            format!("{{{}}}", items.join(","))
        })
        .collect();
    diesel::sql_query(
        "INSERT INTO rule_stats_minute AS s (rule_id, bucket_start, matched, executed, \
           suppressed_by_cooldown, succeeded, failed, duration_ms_sum, duration_histogram, \
           last_executed_at, skipped) \
         SELECT r, b, m, e, c, ok, f, d, h::int8[], l, k FROM unnest($1::uuid[], \
           $2::timestamptz[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], \
           $8::int8[], $9::text[], $10::timestamptz[], $11::int8[]) \
           AS t(r, b, m, e, c, ok, f, d, h, l, k) \
         ON CONFLICT (rule_id, bucket_start) DO UPDATE SET \
           matched = s.matched + excluded.matched, \
           executed = s.executed + excluded.executed, \
           suppressed_by_cooldown = s.suppressed_by_cooldown + excluded.suppressed_by_cooldown, \
           succeeded = s.succeeded + excluded.succeeded, \
           failed = s.failed + excluded.failed, \
           skipped = s.skipped + excluded.skipped, \
           duration_ms_sum = s.duration_ms_sum + excluded.duration_ms_sum, \
           duration_histogram = histogram_add(s.duration_histogram, excluded.duration_histogram), \
           last_executed_at = greatest(s.last_executed_at, excluded.last_executed_at)",
    )
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.rule_id).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.bucket_start).collect::<Vec<_>>())
    .bind::<Array<Int8>, _>(counter(|r| r.matched))
    .bind::<Array<Int8>, _>(counter(|r| r.executed))
    .bind::<Array<Int8>, _>(counter(|r| r.suppressed_by_cooldown))
    .bind::<Array<Int8>, _>(counter(|r| r.succeeded))
    .bind::<Array<Int8>, _>(counter(|r| r.failed))
    .bind::<Array<Int8>, _>(counter(|r| r.duration_ms_sum))
    .bind::<Array<Text>, _>(histograms)
    .bind::<Array<Nullable<Timestamptz>>, _>(
        rows.iter().map(|r| r.last_executed_at).collect::<Vec<_>>(),
    )
    .bind::<Array<Int8>, _>(counter(|r| r.skipped))
    .execute(conn)
    .await?;
    Ok(())
}

/// A rule's counters whose bucket starts in `[from, to)`, oldest first: its minutes
/// and, older than `retention.stats_minutes_days`, its quarter hours, read in one
/// statement (one snapshot: a roll-up running meanwhile shows every count once).
pub async fn load_range(
    conn: &mut AsyncPgConnection,
    rule_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StatsRow>, DbError> {
    let minutes = stats::table
        .filter(stats::rule_id.eq(rule_id))
        .filter(stats::bucket_start.ge(from))
        .filter(stats::bucket_start.lt(to))
        .select(stats::all_columns);
    let rolled_up = quarters::table
        .filter(quarters::rule_id.eq(rule_id))
        .filter(quarters::bucket_start.ge(from))
        .filter(quarters::bucket_start.lt(to))
        .select(quarters::all_columns);
    let mut rows: Vec<StatsRow> = minutes.union_all(rolled_up).load(conn).await?;
    rows.sort_by_key(|r| r.bucket_start);
    Ok(rows)
}

/// Upper bounds (inclusive, milliseconds) of each bucket; a last bucket holds the rest.
pub const DURATION_BUCKETS_MS: [u32; 15] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000,
];

/// Number of buckets, the open-ended one included. The SQL `histogram_add`
/// (migration 000010) sums histograms of up to this many buckets as an inlined
/// expression: a change of this length needs a migration changing it too (longer
/// ones take its general, slower form).
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
