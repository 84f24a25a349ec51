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
//! The recording itself lives in a crate-private module below everything else, so every layer
//! records without depending on this one; this module, at the top, holds what an application
//! mounts and reads: the probes, the exporter, the counters. It knows nothing about routes; it
//! reads the endpoint's state from the request.

mod health;
mod prometheus;

pub use crate::instrument::stats::{rss_bytes, snapshot, Latency, Snapshot};
pub use crate::instrument::{action_panics, clip, enable_metrics, LOG_TEXT_LIMIT};
pub use health::{healthz, readyz};
pub use prometheus::{install_prometheus, prometheus};

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
