//! Telemetry: metrics named after Phoenix's telemetry events, live counters, health checks.
//!
//! The framework records, through the `metrics` facade (free when no recorder is installed):
//!
//! | metric | kind | labels | Phoenix event |
//! |---|---|---|---|
//! | `fawkes_endpoint_stop_duration_seconds` | histogram | `method`, `status` | `[:phoenix, :endpoint, :stop]` |
//! | `fawkes_router_dispatch_stop_duration_seconds` | histogram | `route`, `method`, `status` | `[:phoenix, :router_dispatch, :stop]` |
//! | `fawkes_router_dispatch_exception_total` | counter | `route` | `[:phoenix, :router_dispatch, :exception]` |
//! | `fawkes_socket_connected_total` | counter | `transport`, `vsn`, `result` | `[:phoenix, :socket_connected]` |
//! | `fawkes_channel_joined_total` | counter | `channel`, `result` | `[:phoenix, :channel_joined]` |
//! | `fawkes_channel_handled_in_duration_seconds` | histogram | `channel` | `[:phoenix, :channel_handled_in]` |
//! | `fawkes_channel_pushes_total` | counter | | frames a channel sends its own client: replies and pushes |
//! | `fawkes_pubsub_broadcasts_total`, `fawkes_pubsub_deliveries_total` | counter | | |
//! | `fawkes_connections`, `fawkes_sockets`, `fawkes_channels` | gauge | | |
//! | `fawkes_panics_total` | counter | | |
//!
//! Labels are bounded: routes and channels are the patterns declared in code, never the
//! client's paths or event names. [`install_prometheus`] installs a Prometheus recorder and
//! [`prometheus`] serves its text format. [`snapshot`] reads the same numbers from process-wide
//! counters, for a live dashboard. [`healthz`] and [`readyz`] are the probes.
//!
//! This module knows nothing about routes; it reads the endpoint's state from the request.

mod events;
mod health;
mod prometheus;
mod stats;

pub use events::enable_metrics;
pub(crate) use events::*;
pub use health::{healthz, readyz};
pub use prometheus::{install_prometheus, prometheus};
pub use stats::{rss_bytes, snapshot, Latency, Snapshot};

/// Panics caught in plugs, actions and channels since the process started.
pub fn action_panics() -> u64 {
    stats::PANICS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The longest client-chosen text (a path, a topic) a log line carries, in bytes.
pub const LOG_TEXT_LIMIT: usize = 256;

/// `text` cut to [`LOG_TEXT_LIMIT`] bytes (at a character boundary, with `…` when cut), for
/// log lines: a client that sends 60 KB paths must not write 60 KB a request to the logs.
///
/// # Examples
///
/// ```
/// let long = "a".repeat(1000);
/// let clipped = fawkes::telemetry::clip(&long);
/// assert!(clipped.len() <= fawkes::telemetry::LOG_TEXT_LIMIT + 3);
/// assert_eq!(fawkes::telemetry::clip("/api/rooms"), "/api/rooms");
/// ```
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= LOG_TEXT_LIMIT {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = LOG_TEXT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &text[..end]))
}

#[cfg(test)]
mod tests {
    use crate::{Conn, Endpoint};

    async fn hello(conn: Conn) -> Conn {
        conn.text("hi")
    }

    crate::router! {
        pub MetricsRouter;
        get "/hello/:name" => hello;
        get "/metrics" => crate::telemetry::prometheus;
    }

    #[tokio::test]
    async fn prometheus_exposes_request_metrics_labelled_by_route() {
        crate::telemetry::install_prometheus().unwrap();
        let running =
            Endpoint::new(MetricsRouter::new()).bind("127.0.0.1:0").start().await.unwrap();
        let http = reqwest::Client::new();
        let before = crate::telemetry::snapshot();
        for name in ["a", "b", "c"] {
            let resp = http.get(format!("{}/hello/{name}", running.url())).send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
        let after = crate::telemetry::snapshot();
        assert!(after.requests >= before.requests + 3);
        assert!(after.latency.since(&before.latency).count() >= 3);
        let text = http
            .get(format!("{}/metrics", running.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("fawkes_router_dispatch_stop_duration_seconds_count")
                    && l.contains(r#"route="/hello/:name""#)
            })
            .unwrap_or_else(|| panic!("no dispatch metric for the route in:\n{text}"));
        let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(count >= 3.0, "{line}");
        assert!(text.contains("fawkes_endpoint_stop_duration_seconds_bucket"), "{text}");
        assert!(text.contains("# TYPE fawkes_connections gauge"), "{text}");
        running.shutdown();
        running.wait().await.unwrap();
    }
}
