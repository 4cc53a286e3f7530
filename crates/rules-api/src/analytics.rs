//! Analytics from per-minute counters: totals, rates, percentiles and a series with
//! every bucket of the range present (zeros where nothing happened). Hour and day
//! buckets start at the hours and midnights of a time zone (`tz`, an IANA name;
//! UTC by default), so a day bucket is 23 or 25 hours long across a daylight-saving
//! change; minute counters are summed into them.

use chrono::{
    DateTime, DurationRound, FixedOffset, LocalResult, TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use rules_store::db::stats::{histogram_add, percentile_ms, BucketSums};
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
    /// The time zone whose hours and midnights the buckets start at.
    pub tz: String,
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
    /// RFC 3339 with the time zone's offset at that instant (`Z` for UTC).
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub bucket_start: DateTime<FixedOffset>,
    pub matched: i64,
    pub executed: i64,
    pub suppressed_by_cooldown: i64,
    pub skipped: i64,
    pub succeeded: i64,
    pub failed: i64,
}

impl Analytics {
    /// Nothing counted in the range. Counts are never negative, so any count
    /// means a counter row of the rule exists.
    pub fn counted_nothing(&self) -> bool {
        [
            self.matched,
            self.executed,
            self.suppressed_by_cooldown,
            self.skipped,
            self.succeeded,
            self.failed,
        ]
        .iter()
        .all(|count| *count == 0)
    }
}

/// Checks a range and aligns it: `from` down to its minute (counters are per minute).
pub fn range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
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
    Ok((from, to))
}

/// Minute buckets reach back `minutes_days` (`retention.stats_minutes_days`): older
/// minutes are rolled up into quarter hours, which hour and day buckets sum as they
/// summed the minutes, but which cannot be split into minutes again.
pub fn check_minutes_kept(
    from: DateTime<Utc>,
    bucket: Bucket,
    now: DateTime<Utc>,
    minutes_days: u32,
) -> Result<(), ApiError> {
    let horizon = now - TimeDelta::days(i64::from(minutes_days));
    if bucket == Bucket::Minute && from < horizon {
        return Err(ApiError::bad_request(
            "bad_query",
            format!(
                "minute buckets reach back {minutes_days} days (retention.stats_minutes_days), to {}; \
                 older counters are kept per quarter hour: ask for `bucket=hour` or `bucket=day`",
                horizon.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ));
    }
    Ok(())
}

/// The time zone a `tz` parameter names (default UTC).
pub fn time_zone(name: Option<&str>) -> Result<Tz, ApiError> {
    match name {
        None => Ok(Tz::UTC),
        Some(name) => name.parse::<Tz>().map_err(|_| {
            ApiError::bad_request(
                "bad_query",
                format!("`tz` is not an IANA time zone name (like Europe/Berlin): {name:?}"),
            )
        }),
    }
}

/// The starts of the buckets covering `[from, to)` in `tz`, the first at or before
/// `from`; at most [`MAX_BUCKETS`].
pub fn starts(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Bucket,
    tz: Tz,
) -> Result<Vec<DateTime<Utc>>, ApiError> {
    let mut starts: Vec<DateTime<Utc>> = Vec::new();
    let mut t = floor(from, bucket, tz);
    while t < to {
        if starts.len() as i64 >= MAX_BUCKETS {
            let width = bucket.width().num_seconds();
            let buckets = ((to - starts[0]).num_seconds() + width - 1) / width;
            return Err(ApiError::bad_request(
                "bad_query",
                format!("the range holds {buckets} {bucket:?} buckets, over the limit of {MAX_BUCKETS}; use a wider bucket"),
            ));
        }
        starts.push(t);
        t = match bucket {
            Bucket::Minute => t + TimeDelta::minutes(1),
            // The next local hour or midnight, whatever the day's length (23 to 25 h).
            Bucket::Hour => floor(t + TimeDelta::hours(1), bucket, tz),
            Bucket::Day => floor(t + TimeDelta::hours(26), bucket, tz),
        };
    }
    Ok(starts)
}

/// The start of the bucket holding `t` in `tz`.
fn floor(t: DateTime<Utc>, bucket: Bucket, tz: Tz) -> DateTime<Utc> {
    let local = t.with_timezone(&tz).naive_local();
    let start = match bucket {
        Bucket::Minute => return t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t),
        Bucket::Hour => local.date().and_hms_opt(local.hour(), 0, 0),
        Bucket::Day => local.date().and_hms_opt(0, 0, 0),
    };
    instant(tz, start.unwrap_or(local), t)
}

/// The instant a local time names, not after `at_most`: in a fall-back overlap the
/// later of the two that is not after it, in a spring-forward gap the first instant
/// after the gap.
fn instant(tz: Tz, mut local: chrono::NaiveDateTime, at_most: DateTime<Utc>) -> DateTime<Utc> {
    for _ in 0..=24 * 60 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(d) => return d.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, later) => {
                let later = later.with_timezone(&Utc);
                return if later <= at_most {
                    later
                } else {
                    earlier.with_timezone(&Utc)
                };
            }
            LocalResult::None => local += TimeDelta::minutes(1),
        }
    }
    at_most
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// The analytics body of a rule's counters in `[from, to)`, summed per bucket of
/// `tz` that starts at `starts` (from [`starts`]) by `stats::sum_by_bucket`.
pub fn aggregate(
    rule_id: Uuid,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    bucket: Bucket,
    (tz, starts): (Tz, &[DateTime<Utc>]),
    sums: &[BucketSums],
) -> Result<Analytics, ApiError> {
    let point = |t: DateTime<Utc>| SeriesPoint {
        bucket_start: t.with_timezone(&tz).fixed_offset(),
        matched: 0,
        executed: 0,
        suppressed_by_cooldown: 0,
        skipped: 0,
        succeeded: 0,
        failed: 0,
    };
    let mut series: Vec<SeriesPoint> = starts.iter().map(|t| point(*t)).collect();
    let mut totals = point(starts.first().copied().unwrap_or(from));
    let mut histogram = Vec::new();
    let mut duration_sum = 0i64;
    let mut last_executed_at: Option<DateTime<Utc>> = None;
    for sum in sums {
        // Bucket `i` is `series[i - 1]`; 0 (before the first start) counts in the
        // totals only.
        let in_series = usize::try_from(sum.bucket)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| series.get_mut(i));
        for point in [in_series, Some(&mut totals)].into_iter().flatten() {
            point.matched += sum.matched;
            point.executed += sum.executed;
            point.suppressed_by_cooldown += sum.suppressed_by_cooldown;
            point.skipped += sum.skipped;
            point.succeeded += sum.succeeded;
            point.failed += sum.failed;
        }
        histogram_add(&mut histogram, &sum.duration_histogram);
        duration_sum += sum.duration_ms_sum;
        last_executed_at = last_executed_at.max(sum.last_executed_at);
    }
    let executed = totals.executed;
    Ok(Analytics {
        rule_id,
        from,
        to,
        bucket,
        tz: tz.name().to_owned(),
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

    /// The sums of bucket `bucket` (`stats::sum_by_bucket`), last executed at `at`.
    fn sums(
        bucket: i32,
        at: &str,
        executed: i64,
        failed: i64,
        suppressed: i64,
        ms: u32,
    ) -> BucketSums {
        let mut h = Vec::new();
        for _ in 0..executed {
            histogram_add(&mut h, &histogram_of(ms));
        }
        BucketSums {
            bucket,
            matched: executed + suppressed,
            executed,
            suppressed_by_cooldown: suppressed,
            skipped: 0,
            succeeded: executed - failed,
            failed,
            duration_ms_sum: executed * i64::from(ms),
            duration_histogram: h,
            last_executed_at: Some(t(at)),
        }
    }

    #[test]
    fn sums_buckets_and_fills_gaps() {
        // Two sums for one bucket add up (as two rows of one bucket would).
        let rows = [
            sums(1, "2026-11-24T10:00:00Z", 2, 1, 1, 10),
            sums(1, "2026-11-24T10:59:00Z", 1, 0, 0, 40),
            sums(3, "2026-11-24T12:30:00Z", 1, 0, 3, 1000),
        ];
        let (from, to) = (t("2026-11-24T10:00:00Z"), t("2026-11-24T13:00:00Z"));
        let starts = starts(from, to, Bucket::Hour, Tz::UTC).expect("starts");
        let a = aggregate(
            Uuid::nil(),
            (from, to),
            Bucket::Hour,
            (Tz::UTC, &starts),
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
        let (from, to) = (t("2026-11-24T10:00:00Z"), t("2026-11-24T10:03:00Z"));
        let starts = starts(from, to, Bucket::Minute, Tz::UTC).expect("starts");
        let a = aggregate(
            Uuid::nil(),
            (from, to),
            Bucket::Minute,
            (Tz::UTC, &starts),
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
        let utc = Tz::UTC;
        let buckets = |from: DateTime<Utc>, bucket| {
            let (from, to) = range(Some(from), Some(now), now)?;
            starts(from, to, bucket, utc)
        };
        assert!(range(Some(now), Some(now), now).is_err());
        assert!(buckets(now - TimeDelta::days(30), Bucket::Minute).is_err());
        assert!(buckets(now - TimeDelta::days(30), Bucket::Hour).is_ok());
        let (from, to) = range(None, None, now).expect("default range");
        assert_eq!((to - from).num_hours(), 24);
        // Exactly seven days of minutes is exactly the limit.
        assert_eq!(
            buckets(now - TimeDelta::days(7), Bucket::Minute)
                .map(|s| s.len())
                .ok(),
            Some(10_080)
        );
        assert!(buckets(
            now - TimeDelta::days(7) - TimeDelta::minutes(1),
            Bucket::Minute
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
            match range(from, to, now) {
                Err(ApiError::BadRequest { message, .. }) => {
                    assert!(message.contains(name), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(time_zone(Some("Mars/Olympus")).is_err());
        assert_eq!(time_zone(None).map(|tz| tz.name()).ok(), Some("UTC"));
    }

    fn labels(from: &str, to: &str, bucket: Bucket, tz: &str) -> Vec<String> {
        let tz = time_zone(Some(tz)).expect("tz");
        let starts = starts(t(from), t(to), bucket, tz).expect("starts");
        let a = aggregate(Uuid::nil(), (t(from), t(to)), bucket, (tz, &starts), &[])
            .expect("aggregates");
        a.series
            .iter()
            .map(|p| {
                serde_json::to_value(p).expect("json")["bucket_start"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn days_start_at_local_midnight_across_daylight_saving() {
        // Berlin: 23 hours on 2026-03-29, 25 hours on 2026-10-25.
        assert_eq!(
            labels(
                "2026-03-28T00:00:00+01:00",
                "2026-03-31T00:00:00+02:00",
                Bucket::Day,
                "Europe/Berlin"
            ),
            vec![
                "2026-03-28T00:00:00+01:00",
                "2026-03-29T00:00:00+01:00",
                "2026-03-30T00:00:00+02:00"
            ]
        );
        assert_eq!(
            labels(
                "2026-10-25T00:00:00+02:00",
                "2026-10-27T00:00:00+01:00",
                Bucket::Day,
                "Europe/Berlin"
            ),
            vec!["2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"]
        );
        // The hour that happens twice is two buckets.
        assert_eq!(
            labels(
                "2026-10-25T01:00:00+02:00",
                "2026-10-25T03:00:00+01:00",
                Bucket::Hour,
                "Europe/Berlin"
            ),
            vec![
                "2026-10-25T01:00:00+02:00",
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00"
            ]
        );
        // Half-hour offsets: hours start at :30 UTC; from mid-hour, the first bucket
        // starts at the local hour before it.
        assert_eq!(
            labels(
                "2026-11-24T10:45:00Z",
                "2026-11-24T12:00:00Z",
                Bucket::Hour,
                "Asia/Kolkata"
            ),
            vec!["2026-11-24T16:00:00+05:30", "2026-11-24T17:00:00+05:30"]
        );
        assert_eq!(
            labels(
                "2026-11-24T00:00:00Z",
                "2026-11-24T02:00:00Z",
                Bucket::Hour,
                "UTC"
            ),
            vec!["2026-11-24T00:00:00Z", "2026-11-24T01:00:00Z"]
        );
    }

    #[test]
    fn what_precedes_the_first_bucket_counts_in_the_totals_only() {
        let (from, to) = (t("2026-11-24T10:00:00Z"), t("2026-11-24T12:00:00Z"));
        let starts = starts(from, to, Bucket::Hour, Tz::UTC).expect("starts");
        let rows = [
            sums(0, "2026-11-24T09:59:00Z", 4, 0, 0, 5),
            sums(2, "2026-11-24T11:00:00Z", 1, 1, 0, 5),
        ];
        let a = aggregate(
            Uuid::nil(),
            (from, to),
            Bucket::Hour,
            (Tz::UTC, &starts),
            &rows,
        )
        .expect("aggregates");
        assert_eq!(
            a.series.iter().map(|p| p.executed).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!((a.executed, a.failed), (5, 1));
    }
}
