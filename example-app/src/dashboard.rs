//! The live dashboard's data: a worker samples the endpoint's telemetry every second and
//! broadcasts each sample on [`TOPIC`], where the `/dashboard` page listens through
//! [`DashboardChannel`](crate::channels::DashboardChannel).
//!
//! The last minute of samples is kept in a [`Dashboard`], which the app's state hands to the
//! worker and, through the socket's assigns, to the channel: a page that joins late draws full
//! charts at once, and a restarted worker keeps the history.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fawkes::supervisor::{ChildSpec, Stats, Supervisor};
use fawkes::telemetry::{Snapshot, Telemetry};
use fawkes::PubSub;
use serde::Serialize;
use serde_json::Value;

/// The topic samples are broadcast on, as the event `sample`.
pub const TOPIC: &str = "dashboard:metrics";

/// How often the worker samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// How many samples are kept for late joiners: one minute's worth.
pub const HISTORY: usize = 60;

/// The dashboard's history: the last [`HISTORY`] samples, oldest first. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    samples: Arc<Mutex<VecDeque<Value>>>,
}

/// The numbers the dashboard shows at one moment. Rates are per second over the interval since
/// the previous sample; latency quantiles are over the requests answered in that interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Requests answered since the process started.
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
fn between(
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

impl Dashboard {
    fn samples(&self) -> std::sync::MutexGuard<'_, VecDeque<Value>> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `sample` as the latest, dropping samples older than [`HISTORY`].
    pub(crate) fn remember(&self, sample: Value) {
        let mut samples = self.samples();
        if samples.len() == HISTORY {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The samples kept so far, oldest first.
    pub fn history(&self) -> Vec<Value> {
        self.samples().iter().cloned().collect()
    }

    /// The latest sample, or, before the worker has taken one, a sample of `telemetry` now
    /// (with zero rates: there is no interval yet).
    pub fn latest(&self, telemetry: &Telemetry) -> Value {
        let kept = self.samples().back().cloned();
        kept.unwrap_or_else(|| to_value(&Sampler::new(telemetry.clone()).sample(None)))
    }

    /// The worker, as a permanent child of `supervisor` (the endpoint's): samples the
    /// endpoint's `telemetry` every [`INTERVAL`], keeps the sample here for late joiners and
    /// broadcasts it on [`TOPIC`] as `sample`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(
    /// #     running: fawkes::endpoint::RunningEndpoint,
    /// #     dashboard: example_app::dashboard::Dashboard,
    /// # ) -> anyhow::Result<()> {
    /// let supervisor = running.supervisor();
    /// let worker = dashboard.worker(
    ///     supervisor.clone(),
    ///     running.pubsub().clone(),
    ///     running.telemetry().clone(),
    /// );
    /// supervisor.start_child(worker).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn worker(
        &self,
        supervisor: Supervisor,
        pubsub: PubSub,
        telemetry: Telemetry,
    ) -> ChildSpec {
        let dashboard = self.clone();
        ChildSpec::new("dashboard", move |token| {
            let (supervisor, pubsub, dashboard) =
                (supervisor.clone(), pubsub.clone(), dashboard.clone());
            let mut sampler = Sampler::new(telemetry.clone());
            async move {
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
                // After a stall, one late sample covers the gap rather than a burst of catch-ups.
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = token.cancelled() => return Ok::<_, Infallible>(()),
                        _ = ticks.tick() => {}
                    }
                    let sample = to_value(&sampler.sample(Some(&supervisor.stats())));
                    dashboard.remember(sample.clone());
                    // This node's figures are for this node's dashboards only, whatever the
                    // adapter.
                    pubsub.local_broadcast(TOPIC, "sample", sample);
                }
            }
        })
    }
}

fn to_value(sample: &Sample) -> Value {
    serde_json::to_value(sample).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_worker_broadcasts_samples_every_interval() {
        let supervisor = Supervisor::builder().name("dashboard-test").start();
        let pubsub = PubSub::new("dashboard-test");
        let mut samples = pubsub.subscribe(TOPIC);
        let dashboard = Dashboard::default();
        let worker = dashboard.worker(supervisor.clone(), pubsub.clone(), Telemetry::new());
        supervisor.start_child(worker).await.unwrap();

        let started = Instant::now();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let message = tokio::time::timeout(INTERVAL * 3, samples.recv())
                .await
                .expect("a sample every interval")
                .expect("pubsub alive");
            assert_eq!(message.event(), "sample");
            seen.push(message.payload().as_json().expect("JSON").clone());
        }
        // Two ticks take about two intervals: neither a burst nor a stall.
        let elapsed = started.elapsed();
        assert!(elapsed >= INTERVAL + INTERVAL / 2 && elapsed < INTERVAL * 5, "{elapsed:?}");
        assert!(seen[1]["at_ms"].as_u64() > seen[0]["at_ms"].as_u64(), "{seen:?}");
        assert!(seen[1]["memory_mb"].as_f64().unwrap() > 0.0, "{seen:?}");
        let kept = dashboard.history();
        assert!(kept.len() >= 2 && kept.len() <= HISTORY);
        assert!(kept.contains(&seen[1]), "the broadcast sample is kept for late joiners");
        supervisor.shutdown().await.unwrap();
    }

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
