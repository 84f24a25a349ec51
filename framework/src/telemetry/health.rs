//! Health and readiness actions.

use http::StatusCode;
use serde_json::json;

use crate::endpoint::ConnInfo;
use crate::Conn;

/// Liveness: always 200 `{"status":"ok"}` while the process serves requests.
///
/// # Examples
///
/// ```
/// fawkes::router! {
///     pub App;
///     scope "/" {
///         get "/healthz" => fawkes::telemetry::healthz;
///         get "/readyz" => fawkes::telemetry::readyz;
///     }
/// }
/// # let _ = App::new();
/// ```
pub async fn healthz(conn: Conn) -> Conn {
    conn.json(&json!({ "status": "ok" }))
}

/// Readiness: 200 `{"status":"ok"}`, or 503 `{"status":"draining"}` once the endpoint has
/// begun shutting down. Outside an endpoint (in tests) it reports ready.
pub async fn readyz(conn: Conn) -> Conn {
    let ready = conn.extensions().get::<ConnInfo>().is_none_or(ConnInfo::is_ready);
    if ready {
        conn.json(&json!({ "status": "ok" }))
    } else {
        conn.put_status(StatusCode::SERVICE_UNAVAILABLE).json(&json!({ "status": "draining" }))
    }
}
