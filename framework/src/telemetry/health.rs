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

/// Readiness: 200 `{"status":"ok","pubsub":{…}}`; 503 `{"status":"draining"}` once the
/// endpoint has begun shutting down; 503 `{"status":"pubsub_disconnected"}` while an adapter
/// that is [required for readiness](crate::pubsub::Adapter::required_for_readiness) cannot
/// reach the other nodes. `pubsub` names the adapter and says whether it is connected.
/// Outside an endpoint (in tests) it reports ready.
pub async fn readyz(conn: Conn) -> Conn {
    let Some(info) = conn.extensions().get::<ConnInfo>() else {
        return conn.json(&json!({ "status": "ok" }));
    };
    let adapter = info.pubsub().adapter();
    let connected = adapter.is_connected();
    let pubsub = json!({ "adapter": adapter.name(), "connected": connected });
    let status = if !info.is_ready() {
        "draining"
    } else if !connected && adapter.required_for_readiness() {
        "pubsub_disconnected"
    } else {
        "ok"
    };
    let body = json!({ "status": status, "pubsub": pubsub });
    if status == "ok" {
        conn.json(&body)
    } else {
        conn.put_status(StatusCode::SERVICE_UNAVAILABLE).json(&body)
    }
}
