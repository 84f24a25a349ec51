//! Fawkes: a Phoenix-like web framework for Rust.
//!
//! Requests flow `Endpoint → Router → pipelines of plugs → controller action → Conn → response`.
//! Every connection runs as a child of the endpoint's [`Supervisor`], so a panic anywhere is
//! isolated, counted and answered with a 500, and shutdown drains every connection in order.
//!
//! # Examples
//!
//! ```
//! use fawkes::prelude::*;
//!
//! async fn hello(conn: Conn) -> Conn {
//!     conn.text("hello")
//! }
//!
//! fawkes::router! {
//!     pub AppRouter;
//!     scope "/" {
//!         get "/hello" => hello;
//!     }
//! }
//!
//! # let _ = AppRouter::new();
//! ```
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

// Lets macro expansions (`::fawkes::...`) resolve inside this crate: `html!` in the live
// module's default flash markup, `router!` in the crate's own tests.
extern crate self as fawkes;

pub mod assets;
pub mod channel;
pub mod conn;
pub mod controller;
pub mod dashboard;
pub mod endpoint;
#[cfg(feature = "graphql")]
pub mod graphql;
pub mod live;
#[doc = include_str!("../../docs/channels.md")]
pub mod channels_guide {}
#[doc = include_str!("../../docs/liveview.md")]
pub mod liveview_guide {}
#[doc = include_str!("../../docs/guide.md")]
pub mod guide {}
#[doc = include_str!("../../docs/security.md")]
pub mod security_guide {}
#[doc = include_str!("../../docs/observability.md")]
pub mod observability_guide {}
#[cfg(feature = "graphql")]
#[doc = include_str!("../../docs/graphql.md")]
pub mod graphql_guide {}
#[cfg(feature = "redis")]
#[doc = include_str!("../../docs/scaling.md")]
pub mod scaling_guide {}
mod budget;
mod error;
mod instrument;
mod secret;
// Entry points for the fuzz targets in `fuzz/`: hidden, and absent unless asked for.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;
mod mailbox;
#[cfg(feature = "otel")]
pub mod otel;
#[cfg(not(feature = "otel"))]
mod otel;
pub mod plug;
pub mod presence;
pub mod pubsub;
pub mod router;
pub mod security;
pub mod serializer;
pub mod socket;
pub mod supervisor;
pub mod telemetry;
#[cfg(feature = "test")]
pub mod test;
#[cfg(test)]
mod testing;

pub use conn::{Assigns, Body, Conn, FieldErrors};
pub use controller::{ActionError, RenderError, State};
pub use endpoint::Endpoint;
pub use error::{BoxError, Error};
/// The `http` crate, whose types (`StatusCode`, `Method`, `HeaderMap`, `Request`,
/// `Extensions`) appear in Fawkes' signatures: no separate dependency needed to name them.
pub use http;
pub use plug::Plug;
pub use pubsub::PubSub;
pub use router::Router;
pub use supervisor::Supervisor;

/// Declares a router: pipelines, scopes, routes, resources and forwards.
///
/// See the [routing guide](crate::guide) for the full syntax.
pub use fawkes_macros::router;

/// What applications use every day.
pub mod prelude {
    pub use crate::channel::{Channel, ChannelSocket, Payload, Reply};
    pub use crate::conn::Conn;
    pub use crate::controller::{ActionError, RenderError, State};
    pub use crate::endpoint::Endpoint;
    pub use crate::plug::Plug;
    pub use crate::router::Router;
    pub use crate::socket::Socket;
    pub use http::{Method, StatusCode};
}

// The README's example compiles as a doc-test.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[doc(hidden)]
pub mod __private {
    //! Items the `router!` macro expands to. Not public API.

    use std::fmt::Write as _;

    /// Appends a path param, percent-encoded; a wildcard keeps its `/`.
    pub fn push_param(path: &mut String, value: &dyn std::fmt::Display, wildcard: bool) {
        const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
            .add(b' ')
            .add(b'"')
            .add(b'#')
            .add(b'<')
            .add(b'>')
            .add(b'?')
            .add(b'`')
            .add(b'{')
            .add(b'}')
            .add(b'/')
            .add(b'%');
        let text = value.to_string();
        if wildcard {
            for (i, part) in text.split('/').enumerate() {
                if i > 0 {
                    path.push('/');
                }
                let _ = write!(path, "{}", percent_encoding::utf8_percent_encode(part, SEGMENT));
            }
        } else {
            let _ = write!(path, "{}", percent_encoding::utf8_percent_encode(&text, SEGMENT));
        }
    }
}
