//! Controllers: actions and how their errors become responses.
//!
//! An action is any `async fn(Conn) -> Conn` or `async fn(Conn) -> Result<Conn, E>` where `E`
//! implements [`RenderError`] — Phoenix's `action_fallback`: the error renders onto a conn that
//! still carries the request line, the response headers and the before-send callbacks that
//! plugs set (and the assigns, which those callbacks read). [`ActionError`] is a ready-made
//! error in Phoenix's JSON shapes.
//!
//! This module knows nothing about routing: the router calls [`ActionResult::into_outcome`].

mod error;

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

pub use error::ActionError;

use crate::Conn;

/// Renders a value onto a conn; the error half of an action's `Result`.
///
/// # Examples
///
/// ```
/// use fawkes::{Conn, RenderError};
/// use http::StatusCode;
///
/// enum RoomError { Missing }
///
/// impl RenderError for RoomError {
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
pub trait RenderError {
    /// Writes `self` as the response of `conn`.
    fn render(self, conn: Conn) -> Conn;
}

impl RenderError for Conn {
    fn render(self, _conn: Conn) -> Conn {
        self
    }
}

impl RenderError for std::convert::Infallible {
    fn render(self, _conn: Conn) -> Conn {
        match self {}
    }
}

/// What an action may return: a `Conn`, or a `Result<Conn, E>` with `E: RenderError`.
pub trait ActionResult: Send + 'static {
    /// Whether [`ActionResult::into_outcome`] can return an error. When it cannot, the router
    /// sets nothing aside for an error response, which saves copying the response headers on
    /// every request.
    const CAN_FAIL: bool = true;

    /// The conn, or what renders the error.
    fn into_outcome(self) -> Result<Conn, Failure>;
}

/// Renders an action's error onto the conn the router keeps for it.
pub struct Failure(Box<dyn FnOnce(Conn) -> Conn + Send>);

impl Failure {
    /// Wraps an error.
    pub fn new<E: RenderError + Send + 'static>(err: E) -> Self {
        Self(Box::new(move |conn| err.render(conn)))
    }

    /// Renders onto `conn`.
    pub fn render(self, conn: Conn) -> Conn {
        (self.0)(conn)
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Failure")
    }
}

impl ActionResult for Conn {
    const CAN_FAIL: bool = false;

    fn into_outcome(self) -> Result<Conn, Failure> {
        Ok(self)
    }
}

impl<E: RenderError + Send + 'static> ActionResult for Result<Conn, E> {
    fn into_outcome(self) -> Result<Conn, Failure> {
        self.map_err(Failure::new)
    }
}

/// An action ready to run: a [`Handler`] given its router's state ([`with_state`]). The
/// router runs these; applications write handlers (`async fn(Conn)`,
/// `async fn(Conn, State<T>)`).
pub trait Action: Clone + Send + Sync + 'static {
    /// The action's future.
    type Future: Future<Output = Self::Output> + Send + 'static;
    /// What the action returns.
    type Output: ActionResult;
    /// Runs the action.
    fn call(&self, conn: Conn) -> Self::Future;
}

/// The application state a router was built with, for the actions that ask for it as their
/// second argument.
///
/// A router declares its state with `state T;` in [`router!`](crate::router!) and is built
/// with `App::new(state)`: forgetting the state does not compile, and neither does an action
/// that asks for a `State` of another type. Cloning one clones an `Arc`.
///
/// # Examples
///
/// ```
/// use fawkes::{Conn, State};
///
/// struct AppState { greeting: String }
///
/// async fn hello(conn: Conn, state: State<AppState>) -> Conn {
///     conn.text(state.greeting.clone())
/// }
///
/// fawkes::router! {
///     pub App;
///     state AppState;
///     get "/" => hello;
/// }
///
/// let router = App::new(AppState { greeting: "hello".into() });
/// ```
pub struct State<S>(pub Arc<S>);

impl<S> State<S> {
    /// The shared state.
    pub fn arc(&self) -> &Arc<S> {
        &self.0
    }
}

impl<S> Clone for State<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S> Deref for State<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for State<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("State").field(&self.0).finish()
    }
}

/// A function a router with state `S` can run as an action: `async fn(Conn) -> R` or
/// `async fn(Conn, State<S>) -> R`, where `R` is a `Conn` or a `Result<Conn, E>` with
/// `E: RenderError`. `M` tells the two shapes apart; it is inferred.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an action of a router whose state is `{S}`",
    label = "not an action for this router",
    note = "an action is `async fn(Conn) -> R` or `async fn(Conn, State<{S}>) -> R`, where `R` is `Conn` or `Result<Conn, E>` with `E: RenderError`",
    note = "a router without a `state` declaration has the state `()`; declare the state the action reads with `state YourState;` in `router!`"
)]
pub trait Handler<M, S>: Clone + Send + Sync + 'static {
    /// The action's future.
    type Future: Future<Output = Self::Output> + Send + 'static;
    /// What the action returns.
    type Output: ActionResult;
    /// Runs the action with the router's state.
    fn call(&self, conn: Conn, state: &Arc<S>) -> Self::Future;
}

/// The shape of a handler already given its state ([`WithState`]) for [`Handler`].
#[doc(hidden)]
#[derive(Debug)]
pub struct Bound;

#[diagnostic::do_not_recommend]
impl<H, M, S> Handler<Bound, ()> for WithState<H, M, S>
where
    H: Handler<M, S>,
    M: 'static,
    S: Send + Sync + 'static,
{
    type Future = H::Future;
    type Output = H::Output;
    fn call(&self, conn: Conn, _state: &Arc<()>) -> H::Future {
        self.handler.call(conn, &self.state)
    }
}

/// The shape of `async fn(Conn)` for [`Handler`].
#[doc(hidden)]
#[derive(Debug)]
pub struct WithoutState;

impl<F, Fut, S> Handler<WithoutState, S> for F
where
    F: Fn(Conn) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: ActionResult,
{
    type Future = Fut;
    type Output = Fut::Output;
    fn call(&self, conn: Conn, _state: &Arc<S>) -> Fut {
        self(conn)
    }
}

impl<F, Fut, S> Handler<State<S>, S> for F
where
    F: Fn(Conn, State<S>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: ActionResult,
    S: Send + Sync + 'static,
{
    type Future = Fut;
    type Output = Fut::Output;
    fn call(&self, conn: Conn, state: &Arc<S>) -> Fut {
        self(conn, State(state.clone()))
    }
}

/// A [`Handler`] given its state: an [`Action`]. What `router!` makes of every route's
/// action; for routers built by hand with [`Builder`](crate::router::Builder).
pub struct WithState<H, M, S> {
    handler: H,
    state: Arc<S>,
    shape: PhantomData<fn() -> M>,
}

impl<H, M, S> std::fmt::Debug for WithState<H, M, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WithState")
    }
}

impl<H: Clone, M, S> Clone for WithState<H, M, S> {
    fn clone(&self) -> Self {
        Self { handler: self.handler.clone(), state: self.state.clone(), shape: PhantomData }
    }
}

/// Gives `handler` the router's `state`, making it an [`Action`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use fawkes::{Conn, State};
/// use fawkes::router::{Builder, MethodFilter};
///
/// async fn count(conn: Conn, state: State<u32>) -> Conn {
///     conn.text(state.to_string())
/// }
///
/// let state = Arc::new(7_u32);
/// let router = Builder::new()
///     .route(MethodFilter::Get, "/", "/", vec![], fawkes::controller::with_state(&state, count))
///     .build();
/// ```
pub fn with_state<S, M, H: Handler<M, S>>(state: &Arc<S>, handler: H) -> WithState<H, M, S> {
    WithState { handler, state: state.clone(), shape: PhantomData }
}

impl<H, M, S> Action for WithState<H, M, S>
where
    H: Handler<M, S>,
    M: 'static,
    S: Send + Sync + 'static,
{
    type Future = H::Future;
    type Output = H::Output;
    fn call(&self, conn: Conn) -> H::Future {
        self.handler.call(conn, &self.state)
    }
}

/// Runs an action, rendering its error onto a conn rebuilt from what was set aside: the
/// request line, the response headers and the before-send callbacks. The conn is built only
/// when there is an error to render, and nothing is set aside for an action that cannot fail.
pub(crate) async fn run<A: Action>(action: &A, mut conn: Conn) -> Conn {
    if !<A::Output as ActionResult>::CAN_FAIL {
        return match action.call(conn).await.into_outcome() {
            Ok(conn) => conn,
            // An `ActionResult` implementation that fails after all has lost its conn; the
            // error renders onto a blank one, as after a panic.
            Err(renderer) => {
                renderer.render(Conn::from_request(http::Request::new(crate::Body::empty())))
            }
        };
    }
    let fallback = conn.fallback();
    match action.call(conn).await.into_outcome() {
        Ok(conn) => conn.adopt_callbacks(fallback),
        Err(renderer) => renderer.render(fallback.into_conn()),
    }
}
