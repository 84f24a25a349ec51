//! Controllers: JSON actions over the chat context, their views, and the fallback that renders
//! their errors; the browser pages and the login session beside them.
//!
//! Every API action returns `Result<Conn, FallbackError>`; the router renders the error half
//! (Phoenix's `action_fallback`), so actions read as the happy path.

pub mod fallback_controller;
pub mod message_controller;
pub mod message_json;
pub mod page_controller;
pub mod room_controller;
pub mod room_json;
pub mod session_controller;

pub use fallback_controller::FallbackError;

/// A timestamp as the JSON views render it: ISO 8601 in UTC, `2026-11-22T01:02:03Z`, the way
/// Phoenix renders a `:utc_datetime`.
///
/// # Examples
///
/// ```
/// use time::{OffsetDateTime, UtcOffset};
///
/// let at = OffsetDateTime::from_unix_timestamp(1_795_309_323).unwrap();
/// let in_paris = at.to_offset(UtcOffset::from_hms(1, 0, 0).unwrap());
/// assert_eq!(example_app::controllers::iso8601(in_paris), "2026-11-22T01:02:03Z");
/// ```
pub fn iso8601(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
