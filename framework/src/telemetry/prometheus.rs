//! The Prometheus exporter.

use std::sync::OnceLock;

use http::header::{HeaderValue, CONTENT_TYPE};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::{ActionError, Conn, IntoResponse};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs a Prometheus recorder for the whole process; later calls return the same handle.
///
/// # Errors
///
/// When another `metrics` recorder is installed already.
///
/// # Examples
///
/// ```
/// fawkes::telemetry::install_prometheus().unwrap();
/// fawkes::router! {
///     pub Ops;
///     get "/metrics" => fawkes::telemetry::prometheus;
/// }
/// # let _ = Ops::new();
/// ```
pub fn install_prometheus() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    // Latency buckets from 100 µs to 10 s.
    let buckets =
        [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)?
        .install_recorder()?;
    super::enable_metrics();
    let handle = HANDLE.get_or_init(|| handle).clone();
    // The recorder keeps every histogram sample until its upkeep folds them into the buckets,
    // which `render` does too: with nobody scraping `/metrics`, each request's samples (about
    // 40 bytes) would stay for the process's life. A thread rather than a task, so it runs
    // whatever runtime the application uses, or none.
    let upkeep = handle.clone();
    let spawned =
        std::thread::Builder::new().name("fawkes-metrics-upkeep".to_owned()).spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            upkeep.run_upkeep();
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot start the metrics upkeep thread");
    }
    Ok(handle)
}

/// How often the recorder folds histogram samples into buckets: what it holds between two
/// runs is this long's worth of samples.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves the metrics in Prometheus text format; 404 until [`install_prometheus`] ran.
pub async fn prometheus(conn: Conn) -> Conn {
    match HANDLE.get() {
        Some(handle) => {
            let conn = conn.put_resp_body(handle.render());
            let mut conn = conn;
            conn.resp_headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            conn
        }
        None => ActionError::not_found().with_detail("metrics are not enabled").render(conn),
    }
}
