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
    Ok(HANDLE.get_or_init(|| handle).clone())
}

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
