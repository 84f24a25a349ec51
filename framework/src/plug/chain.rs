//! Pipelines composed at compile time: the stages of a `router!` route nested into one type,
//! so a request runs its plugs and action in one future instead of one boxed future per plug.
//!
//! Nothing here is meant to be named by applications; `router!` expands to it. The erased,
//! run-time form of the same thing is [`Pipeline::new`](super::Pipeline::new).

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::layer::{DynLayer, Next};
use super::pipeline::{DynPlug, Stage, StageKind};
use super::Plug;
use crate::controller::{self, Action};
use crate::Conn;

/// The rest of a pipeline from some stage on, ending with an action.
#[doc(hidden)]
pub trait Chain: Send + Sync + 'static {
    /// Runs the rest of the pipeline on `conn`.
    fn run(&self, conn: Conn) -> impl Future<Output = Conn> + Send;
}

/// A chain behind a pointer, for the places that cannot name its type: the router's table and
/// the service a tower layer wraps. Running it costs one boxed future.
pub(crate) trait DynChain: Send + Sync + 'static {
    fn run_boxed(&self, conn: Conn) -> BoxFuture<'_, Conn>;

    /// Like [`DynChain::run_boxed`], for a future that outlives the borrow of the chain:
    /// it holds the chain's `Arc` in the same box.
    fn run_owned(self: Arc<Self>, conn: Conn) -> BoxFuture<'static, Conn>;
}

impl<C: Chain> DynChain for C {
    fn run_boxed(&self, conn: Conn) -> BoxFuture<'_, Conn> {
        Box::pin(self.run(conn))
    }

    fn run_owned(self: Arc<Self>, conn: Conn) -> BoxFuture<'static, Conn> {
        Box::pin(async move { self.run(conn).await })
    }
}

/// An erased chain, usable where a [`Chain`] is expected.
#[derive(Clone)]
pub(crate) struct SharedChain(pub(crate) Arc<dyn DynChain>);

impl Chain for SharedChain {
    fn run(&self, conn: Conn) -> impl Future<Output = Conn> + Send {
        self.0.run_boxed(conn)
    }
}

/// The end of a route's chain: its action.
pub(crate) struct ActionChain<A>(A);

impl<A: Action> ActionChain<A> {
    pub(crate) fn new(action: A) -> Self {
        Self(action)
    }
}

impl<A: Action> Chain for ActionChain<A> {
    fn run(&self, conn: Conn) -> impl Future<Output = Conn> + Send {
        controller::run(&self.0, conn)
    }
}

/// A stage of a `router!` pipeline whose type is kept, so the route's plugs and action
/// compose into one future: a plug (as `Arc<P>`) or an erased [`Stage`] (a tower layer). It is
/// evaluated once and shared by every route that pipes through it; see
/// [`IntoStage::typed`](super::IntoStage::typed).
#[doc(hidden)]
pub trait TypedStage: Clone + Send + Sync + 'static {
    /// Puts this stage in front of `rest`.
    fn then<R: Chain>(self, rest: R) -> impl Chain;

    /// The erased stage, for [`Builder::forward`](crate::router::Builder::forward).
    fn to_stage(&self) -> Stage;
}

/// The typed stages of a route, in order, as nested pairs ending with `()`:
/// `(first, (second, ()))`.
#[doc(hidden)]
pub trait TypedStages {
    /// Puts these stages, in order, in front of `rest`.
    fn then<R: Chain>(self, rest: R) -> impl Chain;
}

impl TypedStages for () {
    fn then<R: Chain>(self, rest: R) -> impl Chain {
        rest
    }
}

impl<P: TypedStage, S: TypedStages> TypedStages for (P, S) {
    fn then<R: Chain>(self, rest: R) -> impl Chain {
        self.0.then(self.1.then(rest))
    }
}

impl<P: Plug> TypedStage for Arc<P> {
    fn then<R: Chain>(self, rest: R) -> impl Chain {
        PlugThen { plug: self, rest }
    }

    fn to_stage(&self) -> Stage {
        Stage(StageKind::Plug(self.clone()))
    }
}

struct PlugThen<P, R> {
    plug: Arc<P>,
    rest: R,
}

impl<P: Plug, R: Chain> Chain for PlugThen<P, R> {
    async fn run(&self, conn: Conn) -> Conn {
        let conn = self.plug.call(conn).await;
        if conn.halted() {
            return conn;
        }
        self.rest.run(conn).await
    }
}

/// A tower layer, or any stage known only erased.
impl TypedStage for Stage {
    fn then<R: Chain>(self, rest: R) -> impl Chain {
        match self.0 {
            StageKind::Plug(plug) => StageThen::Plug(plug, rest),
            StageKind::Layer(layer) => StageThen::Layer(wrap(&*layer, rest)),
        }
    }

    fn to_stage(&self) -> Stage {
        self.clone()
    }
}

/// A layer wraps everything after it, which it sees as a `tower::Service`: the rest is erased
/// there, and the layer's service is built once, so layers that keep state in it work.
pub(crate) fn wrap<R: Chain>(layer: &dyn DynLayer, rest: R) -> SharedChain {
    layer.wrap(Next::new(SharedChain(Arc::new(rest))))
}

enum StageThen<R> {
    Plug(Arc<dyn DynPlug>, R),
    Layer(SharedChain),
}

impl<R: Chain> Chain for StageThen<R> {
    async fn run(&self, conn: Conn) -> Conn {
        match self {
            Self::Plug(plug, rest) => {
                let conn = plug.call_boxed(conn).await;
                if conn.halted() {
                    return conn;
                }
                rest.run(conn).await
            }
            Self::Layer(layer) => layer.run(conn).await,
        }
    }
}
