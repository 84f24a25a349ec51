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
//! `process_resident_memory_bytes`, `process_open_fds`, …) come from `metrics-process`, read
//! at most once per [`PROCESS_COLLECT_INTERVAL`]: a client scraping a public `/metrics` in a
//! loop does not make the process walk its open files on every request.
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

pub use crate::instrument::{
    clip, Latency, Snapshot, Telemetry, LOG_TEXT_LIMIT, PROCESS_COLLECT_INTERVAL,
};
pub use health::{healthz, readyz};
pub use prometheus::prometheus;

#[cfg(test)]
mod tests {
    use crate::{Conn, Endpoint};

    async fn hello(conn: Conn) -> Conn {
        conn.text("hi")
    }

    async fn boom(_conn: Conn) -> Conn {
        panic!("boom")
    }

    crate::router! {
        pub MetricsRouter;
        get "/hello/:name" => hello;
        get "/boom" => boom;
        get "/metrics" => crate::telemetry::prometheus;
    }

    /// The value of the first line of `text` that starts with `prefix` and contains `label`.
    fn value(text: &str, prefix: &str, label: &str) -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(prefix) && l.contains(label))
            .unwrap_or_else(|| panic!("no {prefix} {label} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    /// Scrapes in a loop reuse the process's figures within the interval; the next one after
    /// it reads them again.
    #[tokio::test(start_paused = true)]
    async fn the_process_figures_are_read_at_most_once_per_interval() {
        let telemetry = crate::telemetry::Telemetry::new();
        let open_fds = |t: &crate::telemetry::Telemetry| value(&t.render(), "process_open_fds", "");
        let before = open_fds(&telemetry);
        // Other tests of this process open and close files meanwhile, by tens.
        let files: Vec<std::fs::File> =
            (0..512).map(|_| std::fs::File::open("/proc/self/stat").unwrap()).collect();
        assert_eq!(open_fds(&telemetry), before, "read again within the interval");
        tokio::time::advance(crate::telemetry::PROCESS_COLLECT_INTERVAL).await;
        let after = open_fds(&telemetry);
        assert!(after >= before + 256.0, "{before} then {after} open files");
        drop(files);
    }

    /// Whether the router is served alone (its dispatch recorded by the endpoint) or under a
    /// layer (recorded by the route's own future), the figures are the same and exact.
    #[tokio::test]
    async fn routes_endpoints_and_panics_are_counted_once_with_or_without_layers() {
        for layered in [false, true] {
            let endpoint = Endpoint::new(MetricsRouter::new());
            let endpoint = if layered {
                endpoint.layer(tower::layer::util::Identity::new())
            } else {
                endpoint
            };
            let running = endpoint.bind("127.0.0.1:0").start().await.unwrap();
            let http = reqwest::Client::new();
            for path in ["/hello/a", "/hello/b", "/nowhere", "/boom"] {
                http.get(format!("{}{path}", running.url())).send().await.unwrap();
            }
            let snapshot = running.telemetry().snapshot();
            assert_eq!((snapshot.requests, snapshot.panics), (4, 1), "layered: {layered}");
            let text = running.telemetry().render();
            let endpoint_count = "fawkes_endpoint_stop_duration_seconds_count";
            assert_eq!(value(&text, endpoint_count, r#"status="2xx""#), 2.0, "{text}");
            assert_eq!(value(&text, endpoint_count, r#"status="4xx""#), 1.0, "{text}");
            assert_eq!(value(&text, endpoint_count, r#"status="5xx""#), 1.0, "{text}");
            let route_count = "fawkes_router_dispatch_stop_duration_seconds_count";
            assert_eq!(value(&text, route_count, r#"route="/hello/:name""#), 2.0, "{text}");
            assert!(!text.contains(r#"dispatch_stop_duration_seconds_count{route="/boom""#));
            let exceptions = "fawkes_router_dispatch_exception_total";
            assert_eq!(value(&text, exceptions, r#"route="/boom""#), 1.0, "{text}");
            assert_eq!(text.matches("fawkes_endpoint_stop_duration_seconds_count{").count(), 3);
            running.shutdown();
            running.wait().await.unwrap();
        }
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
        let value = |prefix: &str, label: &str| value(&text, prefix, label);
        let route = r#"route="/hello/:name""#;
        assert_eq!(value("fawkes_router_dispatch_stop_duration_seconds_count", route), 3.0);
        assert_eq!(
            value("fawkes_router_dispatch_stop_duration_seconds_bucket", r#"le="+Inf""#),
            3.0
        );
        // Buckets at powers of 4 µs, the last at 16.8 s.
        assert_eq!(
            value("fawkes_router_dispatch_stop_duration_seconds_bucket", r#"le="16.777216""#),
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

    /// The pubsub's figures join the endpoint's as one line per series, whoever registered it.
    #[tokio::test]
    async fn the_pubsubs_figures_are_one_line_each_in_the_endpoints_export() {
        let running =
            Endpoint::new(MetricsRouter::new()).bind("127.0.0.1:0").start().await.unwrap();
        let mut inbox = running.pubsub().subscribe("room:1");
        running.pubsub().broadcast("room:1", "hi", serde_json::json!({}));
        inbox.recv().await.unwrap();
        let text = running.telemetry().render();
        for name in ["fawkes_pubsub_broadcasts_total ", "fawkes_pubsub_deliveries_total "] {
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(name)).collect();
            assert_eq!(lines, [format!("{name}1")], "{text}");
        }
        for name in ["fawkes_sockets ", "fawkes_panics_total "] {
            assert_eq!(text.lines().filter(|l| l.starts_with(name)).count(), 1, "{text}");
        }
        let snapshot = running.telemetry().snapshot();
        assert_eq!((snapshot.broadcasts, snapshot.deliveries), (1, 1));
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
