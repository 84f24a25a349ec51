//! What the dashboard shows: the endpoint's figures once a second ([`Sample`]) and the state
//! of its pubsub, cluster and supervisor ([`Status`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::presence::NodePresences;
use crate::supervisor::{Stats, Supervisor, Tree};
use crate::telemetry::{Snapshot, Telemetry};
use crate::PubSub;

/// The numbers the dashboard charts at one moment. Rates are per second over the interval
/// since the previous sample; latency quantiles are over the requests answered in that
/// interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Sample {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Requests answered since the endpoint started.
    pub requests: u64,
    /// Requests answered per second.
    pub requests_per_sec: f64,
    /// Median request latency in milliseconds.
    pub latency_p50_ms: f64,
    /// 90th percentile request latency in milliseconds.
    pub latency_p90_ms: f64,
    /// 99th percentile request latency in milliseconds.
    pub latency_p99_ms: f64,
    /// Open HTTP connections.
    pub connections: i64,
    /// Open sockets (WebSocket and LongPoll).
    pub sockets: i64,
    /// Joined channels.
    pub channels: i64,
    /// Pubsub broadcasts per second.
    pub broadcasts_per_sec: f64,
    /// Messages delivered to subscribers per second.
    pub deliveries_per_sec: f64,
    /// Supervisor restarts since the endpoint started.
    pub restarts: u64,
    /// Panics caught: in actions and channels, and in supervised tasks.
    pub panics: u64,
    /// Resident memory in megabytes.
    pub memory_mb: f64,
}

/// Turns successive snapshots of an endpoint's telemetry into [`Sample`]s.
///
/// # Examples
///
/// ```
/// use fawkes::dashboard::Sampler;
/// use fawkes::telemetry::Telemetry;
///
/// let mut sampler = Sampler::new(Telemetry::new());
/// let sample = sampler.sample(None);
/// assert_eq!(sample.requests, 0);
/// assert!(sample.memory_mb > 0.0);
/// ```
#[derive(Debug)]
pub struct Sampler {
    telemetry: Telemetry,
    previous: Snapshot,
    at: Instant,
}

impl Sampler {
    /// Starts measuring `telemetry`'s rates from now.
    pub fn new(telemetry: Telemetry) -> Self {
        Self { previous: telemetry.snapshot(), telemetry, at: Instant::now() }
    }

    /// The numbers since the previous call (or since [`new`](Self::new)); `supervisor` adds
    /// its restarts and panics.
    pub fn sample(&mut self, supervisor: Option<&Stats>) -> Sample {
        let now = self.telemetry.snapshot();
        let at = Instant::now();
        let sample = between(&self.previous, &now, at.duration_since(self.at), supervisor);
        self.previous = now;
        self.at = at;
        sample
    }
}

/// The sample of the interval `elapsed` long from `previous` to `now`.
pub(super) fn between(
    previous: &Snapshot,
    now: &Snapshot,
    elapsed: Duration,
    supervisor: Option<&Stats>,
) -> Sample {
    // A zero interval (two calls in a row) would divide by zero; it has no rate anyway.
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = |now: u64, before: u64| round(now.saturating_sub(before) as f64 / secs, 1);
    let latency = now.latency.since(&previous.latency);
    Sample {
        at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        requests: now.requests,
        requests_per_sec: rate(now.requests, previous.requests),
        latency_p50_ms: round(latency.quantile_ms(0.50), 3),
        latency_p90_ms: round(latency.quantile_ms(0.90), 3),
        latency_p99_ms: round(latency.quantile_ms(0.99), 3),
        connections: now.connections,
        sockets: now.sockets,
        channels: now.channels,
        broadcasts_per_sec: rate(now.broadcasts, previous.broadcasts),
        deliveries_per_sec: rate(now.deliveries, previous.deliveries),
        restarts: supervisor.map_or(0, |s| s.restarts),
        panics: now.panics + supervisor.map_or(0, |s| s.panics),
        memory_mb: round(now.resident_memory_bytes as f64 / (1024.0 * 1024.0), 1),
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// The state the dashboard lists rather than charts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// This node's name.
    pub node: String,
    /// The pubsub adapter.
    pub pubsub: AdapterStatus,
    /// The nodes of the cluster this one hears from (itself included), with the presences
    /// each tracks.
    pub nodes: Vec<NodePresences>,
    /// The endpoint's supervisor and its children.
    pub supervisor: Tree,
}

/// A pubsub adapter as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AdapterStatus {
    /// `local`, `redis`, or a custom adapter's name.
    pub adapter: &'static str,
    /// Whether it reaches the other nodes now.
    pub connected: bool,
    /// What else it reports ([`Adapter::details`](crate::pubsub::Adapter::details)).
    pub details: serde_json::Value,
}

impl Status {
    /// The state of `pubsub` and `supervisor` now.
    pub fn of(pubsub: &PubSub, supervisor: &Supervisor) -> Self {
        let adapter = pubsub.adapter();
        Self {
            node: pubsub.node().to_owned(),
            pubsub: AdapterStatus {
                adapter: adapter.name(),
                connected: adapter.is_connected(),
                details: adapter.details(),
            },
            nodes: pubsub.presence().nodes(),
            supervisor: supervisor.tree(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_over_the_interval() {
        let mut before = Telemetry::new().snapshot();
        (before.requests, before.broadcasts, before.deliveries, before.panics) = (100, 7, 0, 1);
        let mut now = before.clone();
        (now.requests, now.broadcasts, now.deliveries) = (130, 7, 45);
        let mut stats = Stats::default();
        (stats.restarts, stats.panics) = (2, 3);

        let sample = between(&before, &now, Duration::from_secs(2), Some(&stats));
        assert_eq!(sample.requests, 130);
        assert_eq!(sample.requests_per_sec, 15.0);
        assert_eq!(sample.broadcasts_per_sec, 0.0);
        assert_eq!(sample.deliveries_per_sec, 22.5);
        assert_eq!((sample.restarts, sample.panics), (2, 4));
        // No request in the interval: no latency rather than a made-up one.
        assert_eq!(sample.latency_p99_ms, 0.0);
        assert!(sample.memory_mb > 0.0, "{sample:?}");

        // Two samples in a row: a tiny interval, finite rates.
        let burst = between(&before, &now, Duration::ZERO, None);
        assert!(burst.requests_per_sec.is_finite());
        assert_eq!((burst.restarts, burst.panics), (0, 1));
    }
}
