//! Recording what happens: each endpoint's [`Telemetry`], the metrics named after Phoenix's
//! telemetry events. Every layer of the crate records here, so it depends on nothing else in
//! the crate; what applications mount and read is in [`telemetry`].
//!
//! [`telemetry`]: crate::telemetry

mod histogram;
mod log_budget;
mod recorder;

pub use histogram::Latency;
pub(crate) use log_budget::{limited, LogBudget};
pub(crate) use recorder::GaugeKind;
pub use recorder::{Snapshot, Telemetry, PROCESS_COLLECT_INTERVAL};

/// The longest client-chosen text (a path, a topic) a log line carries, in bytes.
pub const LOG_TEXT_LIMIT: usize = 256;

/// `text` cut to [`LOG_TEXT_LIMIT`] bytes (at a character boundary, with `…` when cut), for
/// log lines: a client that sends 60 KB paths must not write 60 KB a request to the logs.
///
/// # Examples
///
/// ```
/// let long = "a".repeat(1000);
/// let clipped = fawkes::telemetry::clip(&long);
/// assert!(clipped.len() <= fawkes::telemetry::LOG_TEXT_LIMIT + 3);
/// assert_eq!(fawkes::telemetry::clip("/api/rooms"), "/api/rooms");
/// ```
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= LOG_TEXT_LIMIT {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = LOG_TEXT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &text[..end]))
}
