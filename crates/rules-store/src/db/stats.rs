//! Execution-duration histograms kept in `rule_stats_minute.duration_histogram`.
//!
//! Fixed bucket bounds make per-minute rows summable, so a percentile over any range
//! is read from counters instead of scanning the execution log. The estimate is the
//! upper bound of the bucket that holds the percentile, capped by the range's
//! observed maximum bucket: at most one bucket too high, never too low.

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
