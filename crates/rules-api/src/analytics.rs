//! Analytics from per-minute counters: totals, rates, percentiles and a series with
//! every bucket of the range present (zeros where nothing happened).

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use rules_store::db::stats::{histogram_add, percentile_ms, StatsRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;

/// Most buckets one answer may hold.
pub const MAX_BUCKETS: i64 = 10_080;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub fn width(self) -> TimeDelta {
        match self {
            Bucket::Minute => TimeDelta::minutes(1),
            Bucket::Hour => TimeDelta::hours(1),
            Bucket::Day => TimeDelta::days(1),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Analytics {
    pub rule_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: Bucket,
    /// Trigger firings: the condition held (and a threshold, if any, was reached).
    pub matched: i64,
    pub executed: i64,
    pub suppressed_by_cooldown: i64,
    /// Matches whose every action was skipped as stale (`max_age_seconds`):
    /// `matched = executed + suppressed_by_cooldown + skipped`.
    pub skipped: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// `succeeded / executed`; null without executions.
    pub success_rate: Option<f64>,
    pub avg_duration_ms: Option<f64>,
    /// Upper bound of the histogram bucket holding the 95th percentile.
    pub p95_duration_ms: Option<f64>,
    pub last_executed_at: Option<DateTime<Utc>>,
    pub series: Vec<SeriesPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    pub bucket_start: DateTime<Utc>,
    pub matched: i64,
    pub executed: i64,
    pub suppressed_by_cooldown: i64,
    pub skipped: i64,
    pub succeeded: i64,
    pub failed: i64,
}

/// Checks a range and aligns it: `from` down to its minute (counters are per minute).
pub fn range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    bucket: Bucket,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    // Buckets are computed in nanoseconds (chrono's rounding): 1677–2262.
    for (name, value) in [("from", from), ("to", to)] {
        if value.is_some_and(|t| t.timestamp_nanos_opt().is_none()) {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("`{name}` is out of range: between the years 1678 and 2261"),
            ));
        }
    }
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to - TimeDelta::hours(24));
    if (from - TimeDelta::days(1)).timestamp_nanos_opt().is_none() {
        return Err(ApiError::bad_request(
            "bad_query",
            "`from` is out of range: between the years 1678 and 2261",
        ));
    }
    if from >= to {
        return Err(ApiError::bad_request(
            "bad_query",
            "`from` must be before `to`",
        ));
    }
    let from = from
        .duration_trunc(TimeDelta::minutes(1))
        .map_err(ApiError::internal)?;
    let start = align(from, bucket)?;
    // The series has a bucket for every start before `to`.
    let width = bucket.width().num_seconds();
    let buckets = ((to - start).num_seconds() + width - 1) / width;
    if buckets > MAX_BUCKETS {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("the range holds {buckets} {bucket:?} buckets, over the limit of {MAX_BUCKETS}; use a wider bucket"),
        ));
    }
    Ok((from, to))
}

fn align(t: DateTime<Utc>, bucket: Bucket) -> Result<DateTime<Utc>, ApiError> {
    t.duration_trunc(bucket.width()).map_err(ApiError::internal)
}

/// Aggregates a rule's minutes in `[from, to)` into the analytics body.
pub fn aggregate(
    rule_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Bucket,
    rows: &[StatsRow],
) -> Result<Analytics, ApiError> {
    let width = bucket.width();
    let start = align(from, bucket)?;
    let mut series = Vec::new();
    let mut t = start;
    while t < to {
        series.push(SeriesPoint {
            bucket_start: t,
            matched: 0,
            executed: 0,
            suppressed_by_cooldown: 0,
            skipped: 0,
            succeeded: 0,
            failed: 0,
        });
        t += width;
    }
    let mut totals = SeriesPoint {
        bucket_start: start,
        matched: 0,
        executed: 0,
        suppressed_by_cooldown: 0,
        skipped: 0,
        succeeded: 0,
        failed: 0,
    };
    let mut histogram = Vec::new();
    let mut duration_sum = 0i64;
    let mut last_executed_at: Option<DateTime<Utc>> = None;
    for row in rows {
        if row.bucket_start < from || row.bucket_start >= to {
            continue;
        }
        let index = ((row.bucket_start - start).num_seconds() / width.num_seconds()) as usize;
        for point in [series.get_mut(index), Some(&mut totals)]
            .into_iter()
            .flatten()
        {
            point.matched += row.matched;
            point.executed += row.executed;
            point.suppressed_by_cooldown += row.suppressed_by_cooldown;
            point.skipped += row.skipped;
            point.succeeded += row.succeeded;
            point.failed += row.failed;
        }
        histogram_add(&mut histogram, &row.duration_histogram);
        duration_sum += row.duration_ms_sum;
        last_executed_at = last_executed_at.max(row.last_executed_at);
    }
    let executed = totals.executed;
    Ok(Analytics {
        rule_id,
        from,
        to,
        bucket,
        matched: totals.matched,
        executed,
        suppressed_by_cooldown: totals.suppressed_by_cooldown,
        skipped: totals.skipped,
        succeeded: totals.succeeded,
        failed: totals.failed,
        success_rate: (executed > 0).then(|| totals.succeeded as f64 / executed as f64),
        avg_duration_ms: (executed > 0).then(|| duration_sum as f64 / executed as f64),
        p95_duration_ms: percentile_ms(&histogram, 0.95),
        last_executed_at,
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules_store::db::stats::histogram_of;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn row(at: &str, executed: i64, failed: i64, suppressed: i64, ms: u32) -> StatsRow {
        let mut h = Vec::new();
        for _ in 0..executed {
            histogram_add(&mut h, &histogram_of(ms));
        }
        StatsRow {
            rule_id: Uuid::nil(),
            bucket_start: t(at),
            matched: executed + suppressed,
            executed,
            suppressed_by_cooldown: suppressed,
            succeeded: executed - failed,
            failed,
            duration_ms_sum: executed * i64::from(ms),
            duration_histogram: h,
            last_executed_at: Some(t(at)),
            skipped: 0,
        }
    }

    #[test]
    fn sums_buckets_and_fills_gaps() {
        let rows = [
            row("2026-11-24T10:00:00Z", 2, 1, 1, 10),
            row("2026-11-24T10:59:00Z", 1, 0, 0, 40),
            row("2026-11-24T12:30:00Z", 1, 0, 3, 1000),
            row("2026-11-24T14:00:00Z", 5, 0, 0, 1),
        ];
        let a = aggregate(
            Uuid::nil(),
            t("2026-11-24T10:00:00Z"),
            t("2026-11-24T13:00:00Z"),
            Bucket::Hour,
            &rows,
        )
        .expect("aggregates");
        assert_eq!(a.series.len(), 3);
        assert_eq!(
            a.series.iter().map(|p| p.executed).collect::<Vec<_>>(),
            vec![3, 0, 1]
        );
        assert_eq!(
            a.series[1].matched, 0,
            "an empty bucket is present with zeros"
        );
        assert_eq!((a.matched, a.executed, a.suppressed_by_cooldown), (8, 4, 4));
        assert_eq!(a.matched, a.executed + a.suppressed_by_cooldown);
        assert_eq!(a.executed, a.succeeded + a.failed);
        assert_eq!(a.success_rate, Some(0.75));
        assert_eq!(a.avg_duration_ms, Some((20.0 + 40.0 + 1000.0) / 4.0));
        assert_eq!(a.p95_duration_ms, Some(1000.0));
        assert_eq!(a.last_executed_at, Some(t("2026-11-24T12:30:00Z")));
    }

    #[test]
    fn empty_ranges_have_no_rates() {
        let a = aggregate(
            Uuid::nil(),
            t("2026-11-24T10:00:00Z"),
            t("2026-11-24T10:03:00Z"),
            Bucket::Minute,
            &[],
        )
        .expect("aggregates");
        assert_eq!(a.series.len(), 3);
        assert_eq!(
            (a.success_rate, a.avg_duration_ms, a.p95_duration_ms),
            (None, None, None)
        );
    }

    #[test]
    fn ranges_are_checked() {
        let now = t("2026-11-24T10:00:00Z");
        assert!(range(Some(now), Some(now), Bucket::Hour, now).is_err());
        assert!(range(
            Some(now - TimeDelta::days(30)),
            Some(now),
            Bucket::Minute,
            now
        )
        .is_err());
        assert!(range(
            Some(now - TimeDelta::days(30)),
            Some(now),
            Bucket::Hour,
            now
        )
        .is_ok());
        let (from, to) = range(None, None, Bucket::Hour, now).expect("default range");
        assert_eq!((to - from).num_hours(), 24);
        // Exactly seven days of minutes is exactly the limit.
        assert!(range(
            Some(now - TimeDelta::days(7)),
            Some(now),
            Bucket::Minute,
            now
        )
        .is_ok());
        assert!(range(
            Some(now - TimeDelta::days(7) - TimeDelta::minutes(1)),
            Some(now),
            Bucket::Minute,
            now
        )
        .is_err());
        // Out-of-range times are a 400 naming the parameter, never a 500.
        let old = t("1600-01-01T00:00:00Z");
        let far = t("2300-01-01T00:00:00Z");
        for (from, to, name) in [
            (Some(old), None, "from"),
            (None, Some(far), "to"),
            (Some(old), Some(far), "from"),
        ] {
            match range(from, to, Bucket::Day, now) {
                Err(ApiError::BadRequest { message, .. }) => {
                    assert!(message.contains(name), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
