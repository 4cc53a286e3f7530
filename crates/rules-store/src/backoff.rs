//! The one backoff of the service: exponential from `min`, doubling, with jitter
//! (each delay plus a random part of itself, so retries of many replicas spread
//! out), capped at `max`, never giving up by itself. Every retry loop (waiting for
//! the services at start, the worker's reader, pipeline steps, publishes, webhook
//! attempts, the rule listener) draws its delays from here.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// Delays for successive retries; endless.
pub fn delays(min: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
        .map(move |d| d.min(max))
}

/// The delay before retry number `attempt` (1-based) of such a sequence.
pub fn nth(min: Duration, max: Duration, attempt: u32) -> Duration {
    delays(min, max)
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_from_min_with_jitter_and_stays_under_max() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(5));
        let taken: Vec<Duration> = delays(min, max).take(12).collect();
        assert_eq!(taken.len(), 12, "never runs out");
        for (i, d) in taken.iter().enumerate() {
            let nominal = min.saturating_mul(1 << i.min(20)).min(max);
            assert!(
                *d >= nominal.min(max) && *d <= nominal.saturating_mul(2).min(max),
                "{i}: {d:?}"
            );
        }
        assert_eq!(*taken.last().expect("some"), max);
        assert!(nth(min, max, 1) < Duration::from_millis(201));
    }
}
