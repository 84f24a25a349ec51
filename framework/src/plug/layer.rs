//! Tower layers as pipeline stages.

use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use super::chain::{Chain, SharedChain};
use super::pipeline::{IntoStage, Stage};
use crate::{Body, BoxError, Conn};

/// Wraps a `tower::Layer` so it can stand in a pipeline.
///
/// The layer wraps the rest of the pipeline and the action: it sees the request as it is at
/// its place in the pipeline and the response the rest produced. Assigns and params set
/// before it reach the plugs after it.
///
/// # Examples
///
/// ```
/// use fawkes::plug::layer;
///
/// fawkes::router! {
///     pub Api;
///     pipeline api {
///         plug layer(tower_http::cors::CorsLayer::permissive());
///     }
///     scope "/api" {
///         pipe_through api;
///         get "/ping" => ping;
///     }
/// }
///
/// async fn ping(conn: fawkes::Conn) -> fawkes::Conn {
///     conn.text("pong")
/// }
/// # let _ = Api::new();
/// ```
pub fn layer<L>(layer: L) -> LayerPlug<L> {
    LayerPlug { layer }
}

/// A tower layer in a pipeline; see [`layer`].
#[derive(Clone)]
pub struct LayerPlug<L> {
    layer: L,
}

impl<L> fmt::Debug for LayerPlug<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerPlug").field("layer", &std::any::type_name::<L>()).finish()
    }
}

pub(crate) trait DynLayer: Send + Sync + 'static {
    fn wrap(&self, next: Next) -> SharedChain;
}

impl<L, S, B> DynLayer for LayerPlug<L>
where
    L: Layer<Next, Service = S> + Send + Sync + 'static,
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn wrap(&self, next: Next) -> SharedChain {
        // Built once, so layers that keep state in their service (limits, counters) work.
        SharedChain(Arc::new(Layered { service: self.layer.layer(next) }))
    }
}

/// A layer's service around the rest of a pipeline.
struct Layered<S> {
    service: S,
}

impl<S, B> Chain for Layered<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn run(&self, conn: Conn) -> impl std::future::Future<Output = Conn> + Send {
        let service = self.service.clone();
        async move {
            let (mut req, rest) = conn.into_request();
            let slot = ConnSlot(Arc::new(Mutex::new(Some(rest))));
            req.extensions_mut().insert(slot.clone());
            let result = service.oneshot(req).await;
            // The inner stages put the conn back; a layer that answered by itself left the
            // one we put in.
            let mut conn =
                slot.take().unwrap_or_else(|| Conn::from_request(Request::new(Body::empty())));
            match result {
                Ok(resp) => conn.set_response(resp.map(Body::new)),
                Err(err) => {
                    let err: BoxError = err.into();
                    tracing::error!(error = %err, "tower layer in a pipeline failed");
                    conn = crate::controller::ActionError::internal().render_halted(conn);
                }
            }
            conn
        }
    }
}

impl<L, S, B> IntoStage for LayerPlug<L>
where
    L: Layer<Next, Service = S> + Send + Sync + 'static,
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn into_stage(self) -> Stage {
        Stage::layer(Arc::new(self))
    }
}

/// Carries the conn past a tower layer, in the request's extensions.
#[derive(Clone)]
struct ConnSlot(Arc<Mutex<Option<Conn>>>);

impl ConnSlot {
    fn take(&self) -> Option<Conn> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn put(&self, conn: Conn) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn);
    }
}

/// The rest of a pipeline, as the `tower::Service` a layer wraps.
#[derive(Clone)]
pub struct Next {
    run: SharedChain,
}

impl Next {
    pub(crate) fn new(run: SharedChain) -> Self {
        Self { run }
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").finish_non_exhaustive()
    }
}

impl Service<Request<Body>> for Next {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let run = self.run.clone();
        let slot = req.extensions_mut().remove::<ConnSlot>();
        Box::pin(async move {
            let mut conn = match slot.as_ref().and_then(ConnSlot::take) {
                Some(mut conn) => {
                    conn.restore_request(req);
                    conn
                }
                None => Conn::from_request(req),
            };
            conn = run.run(conn).await;
            let resp = conn.take_response();
            if let Some(slot) = slot {
                slot.put(conn);
            }
            Ok(resp)
        })
    }
}
