//! The one time base of the gate, the backtest and the live dry run: event time.
//!
//! An event's time is its `occurred_at`, never later than its stream entry's time and
//! never more than [`MAX_EVENT_AGE_MS`] earlier (a producer's clock far behind, or an
//! event buffered for hours, is taken as that old). Threshold windows, cooldowns and
//! `max_age_seconds` are measured on it, so a backlog processed late decides as it
//! would have live, and a backtest of a stream gives what the workers did on it.

use chrono::{DateTime, Utc};

/// How far before its entry's time an event's time may lie: one hour.
pub const MAX_EVENT_AGE_MS: i64 = 3_600_000;

/// The time (ms since the epoch) the gate decides `occurred_at` at, for an event read
/// from an entry written at `entry_time` (for the live dry run: now).
pub fn event_time_ms(occurred_at: DateTime<Utc>, entry_time: DateTime<Utc>) -> i64 {
    let entry = entry_time.timestamp_millis();
    occurred_at
        .timestamp_millis()
        .clamp(entry.saturating_sub(MAX_EVENT_AGE_MS), entry)
}

/// The UTC day of an event time (ms since the epoch): what the decision log is
/// partitioned by, the same for every delivery of the event.
pub fn day_of_ms(ms: i64) -> chrono::NaiveDate {
    from_ms(ms).date_naive()
}

/// An instant in ms since the epoch as a time (the epoch itself when out of range).
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn never_after_the_entry_nor_older_than_the_bound() {
        let entry = Utc::now();
        let ms = entry.timestamp_millis();
        assert_eq!(
            event_time_ms(entry - TimeDelta::seconds(5), entry),
            ms - 5_000
        );
        assert_eq!(event_time_ms(entry + TimeDelta::hours(1), entry), ms);
        assert_eq!(
            event_time_ms(entry - TimeDelta::days(3), entry),
            ms - MAX_EVENT_AGE_MS
        );
    }
}
