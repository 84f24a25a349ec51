//! What the crate's unit tests share. (Integration tests have the `tests` crate's helpers; a
//! unit test cannot use that crate, which depends on this one.)

use std::time::{Duration, Instant};

/// Polls `check` until it holds, failing the test with `what` after `limit` of real time: the
/// deadline holds under tokio's paused clock too, whose sleeps here let virtual time advance.
pub(crate) async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "gave up after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
