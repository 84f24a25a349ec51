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
//! client's paths or event names. Every series without labels, and the sockets' and the
//! connection limit's with their few labels, are exported at 0 from the start, so that rates
//! work from the first scrape. The process's own series (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, …) come from `metrics-process`.
//!
//! Each endpoint keeps its figures in its own [`Telemetry`] (tests read exact values, and two
//! endpoints in one process do not mix theirs). [`prometheus`] serves the endpoint's in
//! Prometheus text format; [`Telemetry::snapshot`] reads the same figures for a live
//! dashboard. [`healthz`] and [`readyz`] are the probes.
//!
//! The recording itself lives in a crate-private module below everything else, so every layer
//! records without depending on this one; this module, at the top, holds what an application
//! mounts and reads: the probes, the exporter. It knows nothing about routes; it reads the
//! endpoint's state from the request.

mod health;
mod prometheus;

pub use crate::instrument::{clip, Latency, Snapshot, Telemetry, LOG_TEXT_LIMIT};
pub use health::{healthz, readyz};
pub use prometheus::prometheus;

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
    async fn prometheus_exposes_exact_request_metrics_labelled_by_route() {
        let running =
            Endpoint::new(MetricsRouter::new()).bind("127.0.0.1:0").start().await.unwrap();
        let http = reqwest::Client::new();
        for name in ["a", "b", "c"] {
            let resp = http.get(format!("{}/hello/{name}", running.url())).send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
        let snapshot = running.telemetry().snapshot();
        assert_eq!(snapshot.requests, 3);
        assert_eq!(snapshot.latency.count(), 3);
        assert_eq!(snapshot.connections, 1, "reqwest keeps its connection");
        let text = http
            .get(format!("{}/metrics", running.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |prefix: &str, label: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(prefix) && l.contains(label))
                .unwrap_or_else(|| panic!("no {prefix} {label} in:\n{text}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        let route = r#"route="/hello/:name""#;
        assert_eq!(value("fawkes_router_dispatch_stop_duration_seconds_count", route), 3.0);
        assert_eq!(
            value("fawkes_router_dispatch_stop_duration_seconds_bucket", r#"le="+Inf""#),
            3.0
        );
        // The scrape itself is not counted until it is answered.
        assert_eq!(value("fawkes_endpoint_stop_duration_seconds_count", r#"status="2xx""#), 3.0);
        assert!(text.contains("# TYPE fawkes_connections gauge"), "{text}");
        assert!(text.contains("# HELP fawkes_sockets Open sockets"), "{text}");
        assert_eq!(value("fawkes_sockets", ""), 0.0);
        assert_eq!(value("fawkes_pubsub_broadcasts_total", ""), 0.0);
        assert_eq!(value("fawkes_socket_connected_total", r#"transport="websocket""#), 0.0);
        assert!(value("process_resident_memory_bytes", "") > 0.0, "{text}");
        assert!(value("process_open_fds", "") > 0.0, "{text}");
        running.shutdown();
        running.wait().await.unwrap();
    }

    #[tokio::test]
    async fn two_endpoints_keep_their_own_figures() {
        let one = Endpoint::new(MetricsRouter::new()).bind("127.0.0.1:0").start().await.unwrap();
        let two = Endpoint::new(MetricsRouter::new()).bind("127.0.0.1:0").start().await.unwrap();
        let http = reqwest::Client::new();
        for _ in 0..2 {
            http.get(format!("{}/hello/x", one.url())).send().await.unwrap();
        }
        http.get(format!("{}/nowhere", two.url())).send().await.unwrap();
        assert_eq!(one.telemetry().snapshot().requests, 2);
        assert_eq!(two.telemetry().snapshot().requests, 1);
        for running in [one, two] {
            running.shutdown();
            running.wait().await.unwrap();
        }
    }
}
