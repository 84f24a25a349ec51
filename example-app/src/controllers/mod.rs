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
