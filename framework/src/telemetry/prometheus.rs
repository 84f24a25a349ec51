//! The Prometheus exporter.

use http::header::{HeaderValue, CONTENT_TYPE};

use crate::Conn;

/// Serves the endpoint's [`Telemetry`](super::Telemetry) in Prometheus text format.
///
/// # Examples
///
/// ```
/// fawkes::router! {
///     pub Ops;
///     get "/metrics" => fawkes::telemetry::prometheus;
/// }
/// # let _ = Ops::new();
/// ```
pub async fn prometheus(conn: Conn) -> Conn {
    let text = conn.telemetry().render();
    let mut conn = conn.put_resp_body(text);
    conn.resp_headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    conn
}
