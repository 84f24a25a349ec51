//! Controllers: actions and how their errors become responses.
//!
//! An action is any `async fn(Conn) -> Conn` or `async fn(Conn) -> Result<Conn, E>` where `E`
//! implements [`IntoResponse`] — Phoenix's `action_fallback`: the error renders onto a conn that
//! still carries the request line, the response headers and the before-send callbacks that plugs
//! set. [`ActionError`] is a ready-made error in Phoenix's JSON shapes.
//!
//! This module knows nothing about routing: the router calls [`ActionResult::into_conn`].

mod error;

use std::future::Future;

pub use error::ActionError;

use crate::Conn;

/// Renders a value onto a conn; the error half of an action's `Result`.
///
/// # Examples
///
/// ```
/// use fawkes::{Conn, IntoResponse};
/// use http::StatusCode;
///
/// enum RoomError { Missing }
///
/// impl IntoResponse for RoomError {
///     fn render(self, conn: Conn) -> Conn {
///         match self {
///             RoomError::Missing => conn.put_status(StatusCode::NOT_FOUND).text("no such room"),
///         }
///     }
/// }
///
/// async fn show(conn: Conn) -> Result<Conn, RoomError> {
///     Err(RoomError::Missing)
/// }
/// ```
pub trait IntoResponse {
    /// Writes `self` as the response of `conn`.
    fn render(self, conn: Conn) -> Conn;
}

impl IntoResponse for Conn {
    fn render(self, _conn: Conn) -> Conn {
        self
    }
}

impl IntoResponse for std::convert::Infallible {
    fn render(self, _conn: Conn) -> Conn {
        match self {}
    }
}

/// What an action may return: a `Conn`, or a `Result<Conn, E>` with `E: IntoResponse`.
pub trait ActionResult: Send + 'static {
    /// Resolves to the final conn; `fallback` is the conn errors render onto.
    fn into_conn(self, fallback: Conn) -> Conn;
}

impl ActionResult for Conn {
    fn into_conn(self, fallback: Conn) -> Conn {
        self.adopt_callbacks(fallback)
    }
}

impl<E: IntoResponse + Send + 'static> ActionResult for Result<Conn, E> {
    fn into_conn(self, fallback: Conn) -> Conn {
        match self {
            Ok(conn) => conn.adopt_callbacks(fallback),
            Err(err) => err.render(fallback),
        }
    }
}

/// Any function usable as a controller action.
///
/// Implemented for every `Fn(Conn) -> impl Future<Output = impl ActionResult>` that is
/// `Clone + Send + Sync + 'static`: plain `async fn`s and closures.
pub trait Action: Clone + Send + Sync + 'static {
    /// The action's future.
    type Future: Future<Output = Self::Output> + Send + 'static;
    /// What the action returns.
    type Output: ActionResult;
    /// Runs the action.
    fn call(&self, conn: Conn) -> Self::Future;
}

impl<F, Fut> Action for F
where
    F: Fn(Conn) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: ActionResult,
{
    type Future = Fut;
    type Output = Fut::Output;
    fn call(&self, conn: Conn) -> Fut {
        self(conn)
    }
}

/// Runs an action, rendering its error onto a conn that kept the request line, the response
/// headers and the before-send callbacks.
pub(crate) async fn run<A: Action>(action: &A, mut conn: Conn) -> Conn {
    let fallback = conn.fallback();
    action.call(conn).await.into_conn(fallback)
}
