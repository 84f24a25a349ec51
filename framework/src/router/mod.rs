//! The router: from a request to the pipeline and action of its route.
//!
//! Routes live in one matchit tree per method (plus one for routes that match any method and
//! for forwards), so a lookup is one radix-tree walk whatever the number of routes. A path known
//! under another method answers 405 with an `allow` header, an unknown one 404; HEAD falls back
//! to GET. Before the pipeline runs, the router decodes the body of JSON and form requests into
//! params (bounded by the body limit), and it turns any panic in a plug or action into a 500.
//!
//! The [`router!`](crate::router!) macro is the usual front-end; [`Builder`] is the runtime API
//! it expands to. The router knows nothing about sockets, connections or the endpoint: it is a
//! `tower::Service<Request<B>>` usable with plain hyper or inside any tower stack.

mod builder;
mod future;
mod service;
mod table;

#[cfg(test)]
mod tests;

pub(crate) use builder::ForwardedAssigns;
pub use builder::{Builder, ForwardedFrom, MethodFilter};
pub(crate) use future::{service_failed, service_panicked, RouteFuture};
pub(crate) use service::Dispatch;
pub use service::{Router, RouterFuture};
pub use table::{route_table, RouteInfo};

/// The default limit on a request body the router decodes: 8 MB.
pub const DEFAULT_MAX_BODY: usize = 8 * 1024 * 1024;
