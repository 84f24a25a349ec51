//! Telemetry: health and readiness actions, and the framework's own counters.
//!
//! `/healthz` says the process is alive; `/readyz` says whether the endpoint takes traffic (503
//! once shutdown has begun). Both are plain actions, mounted in the application's router.
//!
//! This module knows nothing about routes; it reads the endpoint's state from the request.

use std::sync::atomic::{AtomicU64, Ordering};

use http::StatusCode;
use serde_json::json;

use crate::endpoint::ConnInfo;
use crate::Conn;

static PANICS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn record_panic() {
    PANICS.fetch_add(1, Ordering::Relaxed);
}

/// Panics caught in plugs and actions since the process started.
pub fn action_panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

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
