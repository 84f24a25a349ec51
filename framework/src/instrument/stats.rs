//! Process-wide counters behind [`snapshot`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub(crate) static REQUESTS: AtomicU64 = AtomicU64::new(0);
pub(crate) static CONNECTIONS: AtomicI64 = AtomicI64::new(0);
pub(crate) static SOCKETS: AtomicI64 = AtomicI64::new(0);
pub(crate) static CHANNELS: AtomicI64 = AtomicI64::new(0);
pub(crate) static BROADCASTS: AtomicU64 = AtomicU64::new(0);
pub(crate) static DELIVERIES: AtomicU64 = AtomicU64::new(0);
pub(crate) static PUSHES: AtomicU64 = AtomicU64::new(0);
pub(crate) static PANICS: AtomicU64 = AtomicU64::new(0);

/// Request durations in logarithmic buckets: bucket `i` holds durations below
/// `2^(i/2)` microseconds, so 48 buckets reach past 16 s with ±20 % resolution.
const BUCKETS: usize = 48;
static LATENCY: [AtomicU64; BUCKETS] = [const { AtomicU64::new(0) }; BUCKETS];

pub(crate) fn record_latency(duration: std::time::Duration) {
    LATENCY[latency_bucket(duration)].fetch_add(1, Ordering::Relaxed);
}

/// `floor(2 log2 µs) + 1`, read off the binary exponent of µs² rather than computed with
/// `log2` and `floor`, which cost more than the rest of a request's bookkeeping. The two agree
/// but within a rounding error of a bucket's edge.
fn latency_bucket(duration: std::time::Duration) -> usize {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1.0 {
        return 0;
    }
    // Normal (or infinite) for µs ≥ 1, so the biased exponent is at least 1023.
    let exponent = ((micros * micros).to_bits() >> 52) & 0x7ff;
    usize::try_from(exponent - 1023).map_or(BUCKETS - 1, |e| (e + 1).min(BUCKETS - 1))
}

/// Request latencies: counts per bucket, cumulative since start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    buckets: Vec<u64>,
}

impl Latency {
    /// The latencies recorded between `earlier` and `self`.
    #[must_use]
    pub fn since(&self, earlier: &Latency) -> Latency {
        let buckets =
            self.buckets.iter().zip(&earlier.buckets).map(|(a, b)| a.saturating_sub(*b)).collect();
        Latency { buckets }
    }

    /// How many requests.
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
                let upper_micros = if i == 0 { 1.0 } else { 2f64.powf(i as f64 / 2.0) };
                return upper_micros / 1000.0;
            }
        }
        0.0
    }
}

/// The framework's counters at one moment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Snapshot {
    /// Requests answered.
    pub requests: u64,
    /// Open HTTP connections.
    pub connections: i64,
    /// Open sockets (WebSocket and LongPoll).
    pub sockets: i64,
    /// Joined channels.
    pub channels: i64,
    /// Pubsub broadcasts.
    pub broadcasts: u64,
    /// Broadcast messages delivered to subscribers.
    pub deliveries: u64,
    /// Replies and pushes channels sent to their own clients.
    pub pushes: u64,
    /// Panics caught.
    pub panics: u64,
    /// Request latencies.
    pub latency: Latency,
}

/// Reads the counters.
///
/// # Examples
///
/// ```
/// let before = fawkes::telemetry::snapshot();
/// let after = fawkes::telemetry::snapshot();
/// let recent = after.latency.since(&before.latency);
/// assert!(recent.quantile_ms(0.99) >= 0.0);
/// ```
pub fn snapshot() -> Snapshot {
    Snapshot {
        requests: REQUESTS.load(Ordering::Relaxed),
        connections: CONNECTIONS.load(Ordering::Relaxed),
        sockets: SOCKETS.load(Ordering::Relaxed),
        channels: CHANNELS.load(Ordering::Relaxed),
        broadcasts: BROADCASTS.load(Ordering::Relaxed),
        deliveries: DELIVERIES.load(Ordering::Relaxed),
        pushes: PUSHES.load(Ordering::Relaxed),
        panics: PANICS.load(Ordering::Relaxed),
        latency: Latency { buckets: LATENCY.iter().map(|b| b.load(Ordering::Relaxed)).collect() },
    }
}

/// The process's resident memory in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else { return 0 };
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
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
        assert_eq!(Latency { buckets: vec![0; BUCKETS] }.quantile_ms(0.5), 0.0);
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
                assert_eq!(latency_bucket(duration), by_log2(micros), "{duration:?}");
            }
            nanos = nanos * 21 / 20 + 1;
        }
        assert_eq!(latency_bucket(std::time::Duration::MAX), BUCKETS - 1);
        assert_eq!(latency_bucket(std::time::Duration::from_nanos(999)), 0);
        assert_eq!(latency_bucket(std::time::Duration::from_micros(1)), 1);
        assert_eq!(latency_bucket(std::time::Duration::from_micros(2)), 3);
    }
}
