//! Pipelines: plugs and layers strung in order in front of an endpoint.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::chain::{self, Chain, DynChain, SharedChain, TypedStage};
use super::layer::DynLayer;
use super::Plug;
use crate::Conn;

/// One erased step of a pipeline: a plug or a tower layer.
///
/// Build one with [`IntoStage::into_stage`]; cloning is cheap and shares the plug.
#[derive(Clone)]
pub struct Stage(pub(crate) StageKind);

#[derive(Clone)]
pub(crate) enum StageKind {
    Plug(Arc<dyn DynPlug>),
    Layer(Arc<dyn DynLayer>),
}

impl Stage {
    pub(crate) fn layer(layer: Arc<dyn DynLayer>) -> Self {
        Self(StageKind::Layer(layer))
    }
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            StageKind::Plug(_) => f.write_str("Stage::Plug"),
            StageKind::Layer(_) => f.write_str("Stage::Layer"),
        }
    }
}

pub(crate) trait DynPlug: Send + Sync + 'static {
    fn call_boxed(&self, conn: Conn) -> BoxFuture<'_, Conn>;
}

impl<P: Plug> DynPlug for P {
    fn call_boxed(&self, conn: Conn) -> BoxFuture<'_, Conn> {
        Box::pin(self.call(conn))
    }
}

/// Anything that can stand in a pipeline: every [`Plug`], and tower layers wrapped by
/// [`layer`](super::layer).
pub trait IntoStage {
    /// Erases `self` into a stage.
    fn into_stage(self) -> Stage;

    /// Keeps the stage's type where `router!` can compose it with the rest of a route, so a
    /// route's plugs and action run in one future. Stages that do not say otherwise run erased.
    #[doc(hidden)]
    fn typed(self) -> impl TypedStage
    where
        Self: Sized,
    {
        self.into_stage()
    }
}

impl<P: Plug> IntoStage for P {
    fn into_stage(self) -> Stage {
        Stage(StageKind::Plug(Arc::new(self)))
    }

    fn typed(self) -> impl TypedStage {
        Arc::new(self)
    }
}

impl IntoStage for Stage {
    fn into_stage(self) -> Stage {
        self
    }
}

/// Stages built, back to front, into one callable chain ending with an endpoint.
///
/// A plug that [halts](Conn::halt) stops the chain; a layer wraps everything after it.
///
/// # Examples
///
/// ```
/// use fawkes::plug::{IntoStage, Pipeline};
/// use fawkes::Conn;
///
/// async fn tag(conn: Conn) -> Conn {
///     conn.put_resp_header("x-tag", "1")
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let pipeline = Pipeline::new(vec![tag.into_stage()], |conn: Conn| async move { conn.text("done") });
/// let req = http::Request::get("/").body(fawkes::Body::empty()).unwrap();
/// let conn = pipeline.call(Conn::from_request(req)).await;
/// assert_eq!(conn.resp_headers()["x-tag"], "1");
/// assert_eq!(conn.resp_body_bytes().unwrap(), b"done");
/// # });
/// ```
#[derive(Clone)]
pub struct Pipeline {
    run: Arc<dyn DynChain>,
}

impl Pipeline {
    /// Builds `stages`, in order, in front of `endpoint`.
    pub fn new<F, Fut>(stages: impl IntoIterator<Item = Stage>, endpoint: F) -> Self
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Conn> + Send + 'static,
    {
        let mut run = SharedChain(Arc::new(Endpoint(endpoint)));
        let stages: Vec<Stage> = stages.into_iter().collect();
        let mut plugs: Vec<Arc<dyn DynPlug>> = Vec::new();
        // Walk back to front so that each stage closes over what follows it; consecutive plugs
        // share one loop so a pipeline of N plugs costs one future, not N nested ones.
        for stage in stages.into_iter().rev() {
            match stage.0 {
                StageKind::Plug(plug) => plugs.push(plug),
                StageKind::Layer(layer) => {
                    run = plugs_then(std::mem::take(&mut plugs), run);
                    run = chain::wrap(&*layer, run);
                }
            }
        }
        run = plugs_then(plugs, run);
        Self { run: run.0 }
    }

    /// A pipeline whose stages and action were composed into one type by `router!`.
    pub(crate) fn from_chain(chain: impl Chain) -> Self {
        Self { run: Arc::new(chain) }
    }

    /// Runs the pipeline on `conn`.
    pub fn call(&self, conn: Conn) -> BoxFuture<'static, Conn> {
        self.run.clone().run_owned(conn)
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline").finish_non_exhaustive()
    }
}

/// The end of a pipeline built at run time.
struct Endpoint<F>(F);

impl<F, Fut> Chain for Endpoint<F>
where
    F: Fn(Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Conn> + Send + 'static,
{
    fn run(&self, conn: Conn) -> impl Future<Output = Conn> + Send {
        (self.0)(conn)
    }
}

/// `plugs` were collected back to front.
fn plugs_then(mut plugs: Vec<Arc<dyn DynPlug>>, next: SharedChain) -> SharedChain {
    if plugs.is_empty() {
        return next;
    }
    plugs.reverse();
    SharedChain(Arc::new(Plugs { plugs: plugs.into(), next }))
}

/// Plugs known only at run time, each called through a boxed future, then the rest.
struct Plugs {
    plugs: Box<[Arc<dyn DynPlug>]>,
    next: SharedChain,
}

impl Chain for Plugs {
    async fn run(&self, mut conn: Conn) -> Conn {
        for plug in self.plugs.iter() {
            conn = plug.call_boxed(conn).await;
            if conn.halted() {
                return conn;
            }
        }
        self.next.run(conn).await
    }
}
