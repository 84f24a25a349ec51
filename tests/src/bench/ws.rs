//! The WebSocket suite: where channel benchmarks (join, push/reply round trips, broadcast
//! fan-out) plug in. It reports one JSON object per measurement into the report's `ws` array,
//! which stays empty until then; `--only ws` runs just this suite.

use serde_json::Value;

use crate::report::Settings;

/// Runs the WebSocket suite.
///
/// # Errors
///
/// When a measurement fails; none exist yet.
pub(crate) fn run(_settings: &Settings) -> anyhow::Result<Vec<Value>> {
    eprintln!("== ws: no WebSocket scenarios yet; the report's \"ws\" array stays empty");
    Ok(Vec::new())
}
