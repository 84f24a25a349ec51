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

use fawkes::Conn;

pub use fallback_controller::FallbackError;

use crate::repo::Repo;

/// The repo `router::build` assigned to every request.
fn repo(conn: &Conn) -> Result<Repo, FallbackError> {
    conn.get_assign::<Repo>().cloned().ok_or(FallbackError::MissingRepo)
}

/// An integer id from the path; anything else names no record, so it is a 404.
fn id_param(conn: &Conn, name: &str) -> Result<i64, FallbackError> {
    conn.path_param(name).and_then(|id| id.parse().ok()).ok_or(FallbackError::NotFound)
}
