//! Per-rule, per-minute counters (`rule_stats_minute`) and their duration histograms;
//! past `retention.stats_minutes_days` they are rolled up into quarter hours
//! (`rule_stats_quarter`, `db::retention::roll_up_stats`), summed together with the
//! minutes.
//!
//! Fixed bucket bounds make per-minute rows summable, so a percentile over any range
//! is read from counters instead of scanning the execution log. The estimate is the
//! upper bound of the bucket that holds the percentile, capped by the range's
//! observed maximum bucket: at most one bucket too high, never too low.

use std::sync::LazyLock;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::rule_stats_minute as stats;
use super::{prepared, DbError};

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
/// number of rows, kept prepared (`db::prepared`); a histogram, an array itself, as
/// its text (`{1,0,2}`).
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
    prepared::statement(
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

/// The sums of a rule's counters over one bucket of a range (`sum_by_bucket`), or
/// a part of them for the caller to add up (`sum_by_day`).
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct BucketSums {
    /// Which bucket: `i` for rows in `[starts[i - 1], starts[i])`, the last one
    /// open-ended; 0 for rows before `starts[0]`.
    #[diesel(sql_type = diesel::sql_types::Int4)]
    pub bucket: i32,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub matched: i64,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub executed: i64,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub suppressed_by_cooldown: i64,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub skipped: i64,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub succeeded: i64,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub failed: i64,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub duration_ms_sum: i64,
    /// Up to [`HISTOGRAM_LEN`] buckets (one missing at the end is 0: a counter
    /// row without executions may hold none).
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Int8>)]
    pub duration_histogram: Vec<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    pub last_executed_at: Option<DateTime<Utc>>,
}

impl BucketSums {
    /// These sums times `sign` (1 or -1), counted in bucket `bucket`; with no last
    /// execution (a correction does not say when anything ran).
    fn signed(&self, sign: i64, bucket: i32) -> Self {
        Self {
            bucket,
            matched: sign * self.matched,
            executed: sign * self.executed,
            suppressed_by_cooldown: sign * self.suppressed_by_cooldown,
            skipped: sign * self.skipped,
            succeeded: sign * self.succeeded,
            failed: sign * self.failed,
            duration_ms_sum: sign * self.duration_ms_sum,
            duration_histogram: self.duration_histogram.iter().map(|c| sign * c).collect(),
            last_executed_at: None,
        }
    }
}

/// The counts of a row, as [`BucketSums`] names them after `bucket`, without its
/// durations: all a bucket of the series shows.
const COUNTS: &str = "matched, executed, suppressed_by_cooldown, skipped, succeeded, failed";

/// The sums of one group of counter rows, as the columns of [`BucketSums`] after
/// `bucket` (without `last_executed_at`), by `rules_sum` (migration 000014: a
/// bigint sum in a bigint, 0 for no values; the built-in `sum` goes through
/// numeric).
fn sums_sql() -> String {
    format!("{}, {}", count_sums_sql(), duration_sums_sql())
}

/// The counts' part of [`sums_sql`]: what a bucket of the series shows.
fn count_sums_sql() -> String {
    COUNTS
        .split(", ")
        .map(|c| format!("rules_sum({c}) AS {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The durations' part of [`sums_sql`] (the histogram element-wise): what the
/// totals show.
fn duration_sums_sql() -> String {
    let histogram: Vec<String> = (1..=HISTOGRAM_LEN)
        .map(|i| format!("rules_sum(duration_histogram[{i}])"))
        .collect();
    format!(
        "rules_sum(duration_ms_sum) AS duration_ms_sum, ARRAY[{}] AS duration_histogram",
        histogram.join(", ")
    )
}

/// The statement of [`sum_by_bucket`]: its minutes and quarter hours in one
/// snapshot (a roll-up running meanwhile shows every count once), their counts
/// summed per bucket by `width_bucket` over the bucket starts, and their
/// durations (the histogram element-wise) and last execution once, for the
/// totals, as bucket 0. A bucket of the series shows counts only: sending each
/// bucket's histogram (168 arrays for a week in hours) was PostgreSQL's largest
/// cost in that answer.
static SUM_BY_BUCKET: LazyLock<String> = LazyLock::new(|| {
    let rows = |table: &str| {
        format!(
            "SELECT bucket_start, {COUNTS}, duration_ms_sum, duration_histogram, \
               last_executed_at FROM {table} \
             WHERE rule_id = $1 AND bucket_start >= $2 AND bucket_start < $3"
        )
    };
    format!(
        "WITH r AS MATERIALIZED ({} UNION ALL {}) \
         SELECT width_bucket(bucket_start, $4::timestamptz[]) AS bucket, {}, \
           0::int8 AS duration_ms_sum, '{{}}'::int8[] AS duration_histogram, \
           NULL::timestamptz AS last_executed_at \
         FROM r GROUP BY 1 \
         UNION ALL \
         SELECT 0, 0, 0, 0, 0, 0, 0, {}, max(last_executed_at) FROM r",
        rows("rule_stats_minute"),
        rows("rule_stats_quarter"),
        count_sums_sql(),
        duration_sums_sql(),
    )
});

/// A rule's counters whose bucket starts in `[from, to)`, their counts summed per
/// bucket of `starts` (ascending), their durations and last execution in one
/// more row, bucket 0 (in the totals only): its minutes and, older than
/// `retention.stats_minutes_days`, its quarter hours. PostgreSQL sums them, so an
/// answer carries a row per bucket, not one per minute or quarter hour.
pub async fn sum_by_bucket(
    conn: &mut AsyncPgConnection,
    rule_id: Uuid,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    starts: &[DateTime<Utc>],
) -> Result<Vec<BucketSums>, DbError> {
    use diesel::sql_types::{Array, Timestamptz, Uuid as SqlUuid};
    Ok(prepared::statement(SUM_BY_BUCKET.as_str())
        .bind::<SqlUuid, _>(rule_id)
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .bind::<Array<Timestamptz>, _>(starts)
        .load(conn)
        .await?)
}

/// The parts of [`SUM_BY_DAY`]'s rows.
const MINUTES: i16 = 0;
const DAYS: i16 = 1;
const EDGES: i16 = 2;
const LAST: i16 = 3;

/// The statement of [`sum_by_day`], in one snapshot: the minutes summed per
/// bucket (as [`SUM_BY_BUCKET`]: up to 1,440 a day), the day rows each with its
/// pair of the ends' nearest midnights, the quarter hours' counts summed per window
/// between an end and its nearest midnight (the two outer windows' durations too),
/// and the last execution among the quarter hours. Day rows
/// come as they are, for the caller to add: a day bucket holds about one day row, so
/// summing them in PostgreSQL (23 aggregates a group) cost more than it saved (a
/// 90-day answer's statement: a third less CPU in PostgreSQL without it). A
/// window's six counts are summed where they are read, one row a window (~90)
/// instead of one a quarter hour (~300): each row sent is decoded by the caller too.
///
/// The inner windows (between two buckets) are the same hours of every day, so
/// they are read by UTC time of day (migration 000019: the quarter hours' counts by
/// rule, time of day, day): one range scan per distinct range of hours, over a few
/// consecutive pages, each row then kept only within its window (`width_bucket`
/// over the windows' starts, below the window's end). Through the primary key they
/// were a descent a day, on a page a day or two: a rule's 90 days not in cache
/// read ~90 pages from the OS. The two outer windows are read by their bounds, a
/// descent each.
///
/// What is read is in the indexes (migration 000017: a day row's sums, a quarter
/// hour's counts), so index-only, not from a heap page each: the roll-up writes a
/// day of every rule at a time, so a rule's days lie on as many pages. Durations are
/// in the totals only, where the inner windows cancel out (each is added to one
/// bucket and taken from the next), so only the outer two are read for theirs, from
/// the table.
static SUM_BY_DAY: LazyLock<String> = LazyLock::new(|| {
    let sums = sums_sql();
    let count_sums = count_sums_sql();
    let raw = format!("{COUNTS}, duration_ms_sum, duration_histogram, NULL::timestamptz");
    let time_of_day = "(bucket_start AT TIME ZONE 'UTC')::time";
    format!(
        "SELECT {MINUTES}::int2 AS part, width_bucket(bucket_start, $4::timestamptz[]) AS bucket, \
           {sums}, max(last_executed_at) AS last_executed_at \
         FROM rule_stats_minute WHERE rule_id = $1 AND bucket_start >= $2 AND bucket_start < $3 \
         GROUP BY 2 \
         UNION ALL \
         SELECT {DAYS}::int2, width_bucket(bucket_start, $5::timestamptz[]), {raw} \
         FROM rule_stats_day WHERE rule_id = $1 AND bucket_start >= $6 AND bucket_start < $7 \
         UNION ALL \
         SELECT {EDGES}::int2, w.j, {raw} \
         FROM unnest($8::int4[], $9::timestamptz[], $10::timestamptz[]) AS w(j, lo, hi) \
         CROSS JOIN LATERAL (SELECT {sums} FROM rule_stats_quarter \
           WHERE rule_id = $1 AND bucket_start >= w.lo AND bucket_start < w.hi) AS q \
         UNION ALL \
         SELECT {EDGES}::int2, ($15::int4[])[b.k], {count_sums}, 0::int8, '{{}}'::int8[], \
           NULL::timestamptz \
         FROM unnest($11::text[]::time[], $12::text[]::time[]) AS r(lo, hi) \
         CROSS JOIN LATERAL (SELECT bucket_start, {COUNTS} FROM rule_stats_quarter \
           WHERE rule_id = $1 AND {time_of_day} >= r.lo AND {time_of_day} < r.hi \
             AND bucket_start >= $13 AND bucket_start < $14 OFFSET 0) AS q \
         CROSS JOIN LATERAL (SELECT width_bucket(q.bucket_start, $16::timestamptz[]) AS k) AS b \
         WHERE b.k > 0 AND q.bucket_start < ($17::timestamptz[])[b.k] \
         GROUP BY b.k \
         UNION ALL \
         SELECT {LAST}::int2, 0, 0, 0, 0, 0, 0, 0, 0, '{{}}'::int8[], \
           (SELECT last_executed_at FROM rule_stats_quarter \
            WHERE rule_id = $1 AND bucket_start >= $2 AND bucket_start < $3 AND executed > 0 \
            ORDER BY bucket_start DESC LIMIT 1)"
    )
});

/// The windows between bucket ends and their nearest UTC midnights, in order: the
/// end's index `j`, and the window's bounds.
#[derive(Default)]
struct Windows {
    j: Vec<i32>,
    lo: Vec<DateTime<Utc>>,
    hi: Vec<DateTime<Utc>>,
}

impl Windows {
    fn push(&mut self, j: usize, lo: DateTime<Utc>, hi: DateTime<Utc>) {
        self.j.push(i32::try_from(j).unwrap_or(i32::MAX));
        self.lo.push(lo);
        self.hi.push(hi);
    }

    /// The UTC times of day the windows cover (`HH:MM:SS`, up to `24:00:00`), as
    /// few disjoint ranges: each window lies within one UTC day (it ends or starts
    /// at its midnight), and a time zone's windows are the same hours of every day
    /// but across a change of its offset. A range may hold times of a day outside
    /// that day's window (an hour of a winter day in a summer window's range): the
    /// statement keeps a row only within its window.
    fn times_of_day(&self) -> (Vec<String>, Vec<String>) {
        let seconds = |at: DateTime<Utc>, day: DateTime<Utc>| (at - day).num_seconds();
        let mut ranges: Vec<(i64, i64)> = self
            .lo
            .iter()
            .zip(&self.hi)
            .map(|(lo, hi)| {
                let day = lo.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
                (seconds(*lo, day), seconds(*hi, day))
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        let time = |s: i64| format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60);
        merged.iter().map(|(lo, hi)| (time(*lo), time(*hi))).unzip()
    }
}

/// The UTC midnight nearest to `at` (the later one at noon). The analytics' range
/// is checked to lie within the years 1678–2261, where rounding cannot fail.
fn nearest_midnight(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_round(TimeDelta::days(1)).unwrap_or(at)
}

/// What [`sum_by_bucket`] answers, for buckets a day long or longer (any time
/// zone's days), read mostly from the day rows (`rule_stats_day`, migration
/// 000013): ~90 rows for 90 days where the quarter hours are ~8,600. A bucket
/// comes in parts (its minutes' sums, its day rows, the quarter hours at its ends
/// with their signs) that add up to its sums: the caller adds them, as it adds
/// the buckets into the totals.
///
/// With `P(b)` the sum of the rows before `b`, a bucket `[lo, hi)` sums to
/// `P(hi) - P(lo)`, and `P(b)` is the day rows before `b`'s nearest UTC midnight
/// `m`, plus the quarter hours in `[m, b)` or minus those in `[b, m)`: the
/// quarter hours read are those between each end and its midnight (four at each
/// end of a Europe/Berlin day, at most 48). Counts and histograms are sums, exact
/// under subtraction; the last execution is the newest quarter hour's that ran
/// something. Minutes (not rolled up) are summed per bucket as they are there.
pub async fn sum_by_day(
    conn: &mut AsyncPgConnection,
    rule_id: Uuid,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    starts: &[DateTime<Utc>],
) -> Result<Vec<BucketSums>, DbError> {
    use diesel::sql_types::{Array, Int2, Int4, Text, Timestamptz, Uuid as SqlUuid};
    #[derive(QueryableByName)]
    struct Part {
        #[diesel(sql_type = Int2)]
        part: i16,
        #[diesel(embed)]
        sums: BucketSums,
    }
    // The ends of the buckets: `from`, the starts after the first, `to`. Bucket
    // `i` (1-based, as `sum_by_bucket` counts) is `[ends[i - 1], ends[i])`.
    let ends: Vec<DateTime<Utc>> = std::iter::once(from)
        .chain(starts.iter().skip(1).copied())
        .chain(std::iter::once(to))
        .collect();
    let midnights: Vec<DateTime<Utc>> = ends.iter().map(|e| nearest_midnight(*e)).collect();
    let last = ends.len() - 1;
    let (mut outer, mut inner) = (Windows::default(), Windows::default());
    for (j, (end, midnight)) in ends.iter().zip(&midnights).enumerate() {
        if end != midnight {
            let windows = if j == 0 || j == last {
                &mut outer
            } else {
                &mut inner
            };
            windows.push(j, *end.min(midnight), *end.max(midnight));
        }
    }
    let (tod_lo, tod_hi) = inner.times_of_day();
    let parts: Vec<Part> = prepared::statement(SUM_BY_DAY.as_str())
        .bind::<SqlUuid, _>(rule_id)
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .bind::<Array<Timestamptz>, _>(starts)
        .bind::<Array<Timestamptz>, _>(&midnights)
        .bind::<Timestamptz, _>(nearest_midnight(from))
        .bind::<Timestamptz, _>(nearest_midnight(to))
        .bind::<Array<Int4>, _>(&outer.j)
        .bind::<Array<Timestamptz>, _>(&outer.lo)
        .bind::<Array<Timestamptz>, _>(&outer.hi)
        .bind::<Array<Text>, _>(tod_lo)
        .bind::<Array<Text>, _>(tod_hi)
        .bind::<Timestamptz, _>(inner.lo.as_slice().first().copied().unwrap_or(from))
        .bind::<Timestamptz, _>(inner.hi.as_slice().last().copied().unwrap_or(from))
        .bind::<Array<Int4>, _>(&inner.j)
        .bind::<Array<Timestamptz>, _>(&inner.lo)
        .bind::<Array<Timestamptz>, _>(&inner.hi)
        .load(conn)
        .await?;
    // P(ends[j]) holds the window at end `j` with this sign: added to the bucket
    // ending there, taken from the one starting there.
    let window_sign = |j: usize| match (ends.get(j), midnights.get(j)) {
        (Some(end), Some(midnight)) => Some(if end > midnight { 1 } else { -1 }),
        _ => None,
    };
    let mut sums = Vec::with_capacity(parts.len() * 2);
    for Part { part, sums: s } in parts {
        match part {
            // Minutes by the starts, days by the midnights: bucket `k` either way.
            MINUTES | DAYS => sums.push(s),
            // A window's counts are added to the bucket it ends and taken from the
            // one it starts; an outer window's durations (the inner ones carry none:
            // they cancel out) go with its counts into its one bucket, so into the
            // totals with the same sign.
            EDGES => {
                let j = usize::try_from(s.bucket).unwrap_or(usize::MAX);
                let Some(sign) = window_sign(j) else { continue };
                if j >= 1 {
                    sums.push(s.signed(sign, s.bucket));
                }
                if j + 1 < ends.len() {
                    sums.push(s.signed(-sign, s.bucket + 1));
                }
            }
            // The last execution: in the totals only.
            LAST => sums.push(BucketSums { bucket: 0, ..s }),
            _ => {}
        }
    }
    Ok(sums)
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
