//! The histogram every duration is recorded in: fixed logarithmic buckets, so recording is one
//! atomic add and nothing is kept per sample (no upkeep, no memory that grows with traffic).

use std::sync::atomic::{AtomicU64, Ordering};

/// Bucket `i` holds values below `2^(i/2)` millionths (microseconds for durations in
/// seconds), so 49 buckets reach 16.8 s with ±20 % resolution; the last holds the rest.
pub(crate) const BUCKETS: usize = 50;

/// The buckets the Prometheus exporter shows: every fourth edge, powers of 4 µs from 1 µs to
/// about 16.8 s (13 bounds, as many as a typical hand-picked set), so each exported count is
/// exact rather than interpolated.
pub(crate) const EXPORTED_EVERY: usize = 4;

/// A histogram of durations in seconds: its buckets run from 1 µs to 16.8 s. Other values
/// (an application's `histogram!` of bytes, say) are counted and summed exactly, but land in
/// the first or the last bucket outside that range.
#[derive(Debug)]
pub(crate) struct LogHistogram {
    buckets: [AtomicU64; BUCKETS],
    /// The sum of the durations in nanoseconds, so adding one is one integer add.
    sum_nanos: AtomicU64,
    /// The sum of the other values recorded (`metrics`' `f64`s), as `f64` bits.
    sum_values: AtomicU64,
}

impl Default for LogHistogram {
    fn default() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            sum_nanos: AtomicU64::new(0),
            sum_values: AtomicU64::new(0),
        }
    }
}

impl LogHistogram {
    pub(crate) fn record_duration(&self, duration: std::time::Duration) {
        // In integers: a float's saturating cast back costs more than the rest.
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket(nanos as f64 / 1e9)].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn record_value(&self, value: f64) {
        self.buckets[bucket(value)].fetch_add(1, Ordering::Relaxed);
        let _ = self.sum_values.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            Some((f64::from_bits(bits) + value).to_bits())
        });
    }

    /// The counts per bucket now.
    pub(crate) fn latency(&self) -> Latency {
        Latency { buckets: self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect() }
    }

    /// The sum of the recorded values.
    pub(crate) fn sum(&self) -> f64 {
        self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
            + f64::from_bits(self.sum_values.load(Ordering::Relaxed))
    }
}

impl metrics::HistogramFn for LogHistogram {
    fn record(&self, value: f64) {
        self.record_value(value);
    }
}

/// `floor(2 log2 µs) + 1`, read off the binary exponent of µs² rather than computed with
/// `log2` and `floor`, which cost more than the rest of a request's bookkeeping. The two agree
/// but within a rounding error of a bucket's edge.
fn bucket(value: f64) -> usize {
    let micros = value * 1e6;
    // Also negative values.
    if micros.is_nan() || micros < 1.0 {
        return 0;
    }
    // Normal (or infinite) for µs ≥ 1, so the biased exponent is at least 1023.
    let exponent = ((micros * micros).to_bits() >> 52) & 0x7ff;
    usize::try_from(exponent - 1023).map_or(BUCKETS - 1, |e| (e + 1).min(BUCKETS - 1))
}

/// The upper edge of bucket `i`, in the recorded unit.
pub(crate) fn upper_edge(i: usize) -> f64 {
    2f64.powf(i as f64 / 2.0) / 1e6
}

/// Recorded values per bucket, cumulative since the telemetry began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    buckets: Vec<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self { buckets: vec![0; BUCKETS] }
    }
}

impl Latency {
    /// The values recorded between `earlier` and `self`.
    #[must_use]
    pub fn since(&self, earlier: &Latency) -> Latency {
        let buckets =
            self.buckets.iter().zip(&earlier.buckets).map(|(a, b)| a.saturating_sub(*b)).collect();
        Latency { buckets }
    }

    /// How many values.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The `q` quantile (0.0–1.0) in milliseconds, the upper bound of its bucket; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return upper_edge(i) * 1000.0;
            }
        }
        0.0
    }

    /// Adds `other`'s counts to these.
    pub(crate) fn add(&mut self, other: &Latency) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }

    /// The counts per bucket.
    pub(crate) fn buckets(&self) -> &[u64] {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_buckets() {
        let mut buckets = vec![0; BUCKETS];
        buckets[21] = 90; // ~1.4 ms
        buckets[27] = 10; // ~11.6 ms
        let latency = Latency { buckets };
        assert!((latency.quantile_ms(0.5) - 1.448).abs() < 0.01, "{}", latency.quantile_ms(0.5));
        assert!((latency.quantile_ms(0.99) - 11.585).abs() < 0.01);
        assert_eq!(Latency::default().quantile_ms(0.5), 0.0);
    }

    #[test]
    fn buckets_are_those_of_the_log2_formula() {
        let by_log2 = |micros: f64| {
            if micros < 1.0 {
                0
            } else {
                ((micros.log2() * 2.0).floor() as usize + 1).min(BUCKETS - 1)
            }
        };
        let mut nanos: u64 = 0;
        while nanos < 100_000_000_000 {
            let duration = std::time::Duration::from_nanos(nanos);
            let micros = duration.as_secs_f64() * 1e6;
            // Off the edges, where either formula may round to the neighbour.
            let edge = (micros.log2() * 2.0).round();
            if micros < 1.0 || ((micros.log2() * 2.0) - edge).abs() > 1e-9 {
                assert_eq!(bucket(duration.as_secs_f64()), by_log2(micros), "{duration:?}");
            }
            nanos = nanos * 21 / 20 + 1;
        }
        assert_eq!(bucket(std::time::Duration::MAX.as_secs_f64()), BUCKETS - 1);
        assert_eq!(bucket(999e-9), 0);
        assert_eq!(bucket(1e-6), 1);
        assert_eq!(bucket(2e-6), 3);
        assert_eq!(bucket(f64::NAN), 0);
        assert_eq!(bucket(-1.0), 0);
    }

    #[test]
    fn the_sum_and_counts_are_exact() {
        let histogram = LogHistogram::default();
        for ms in [1, 2, 3] {
            histogram.record_duration(std::time::Duration::from_millis(ms));
        }
        assert_eq!(histogram.latency().count(), 3);
        assert!((histogram.sum() - 0.006).abs() < 1e-12, "{}", histogram.sum());
        // Values far outside the buckets' range are still summed exactly.
        let bytes = LogHistogram::default();
        for _ in 0..3 {
            metrics::HistogramFn::record(&bytes, 1e19);
        }
        assert_eq!(bytes.sum(), 3e19);
        assert_eq!(bytes.latency().buckets()[BUCKETS - 1], 3);
        assert_eq!(upper_edge(48), 16.777216);
    }
}
