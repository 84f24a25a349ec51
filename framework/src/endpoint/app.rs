//! What an endpoint serves: its router, called directly, or any tower service.
//!
//! A router alone is served on the fast path: routed where hyper calls the connection's
//! service, one boxed future a request (see `RouteFuture`). Layers around it, or a service of
//! the application's own, go through [`Service`]: each layer is one boxed tower service, the
//! router inside them is not boxed, and the outermost service's future runs inside the
//! request's `RouteFuture`, where its errors and panics are answered and a HEAD answer loses
//! its body (after the layers, so they see the answer GET would get).

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use http::{Method, Request, Response};
use tower::util::BoxCloneSyncService;
use tower::ServiceExt as _;
use tower_service::Service as _;

use crate::router::{service_failed, service_panicked, RouteFuture};
use crate::{Body, BoxError, Router};

/// What an endpoint serves.
#[derive(Clone, Debug)]
pub(crate) enum App {
    Router(Router),
    Service(Service),
}

impl App {
    /// Runs one request. `info` goes into the request's extensions for a service, where
    /// [`Conn::conn_info`](crate::Conn::conn_info) finds it when the service wraps a router.
    pub(crate) fn call(&self, mut req: Request<Body>, info: &super::ConnInfo) -> RouteFuture {
        match self {
            Self::Router(router) => {
                router.run(router.route(req, Some(info.clone())), crate::router::Dispatch::ByCaller)
            }
            Self::Service(service) => {
                req.extensions_mut().insert(info.clone());
                service.start(req)
            }
        }
    }
}

type Boxed = BoxCloneSyncService<Request<Body>, Response<Body>, BoxError>;

/// A tower service an endpoint serves: the router with the layers given to
/// [`Endpoint::layer`](super::Endpoint::layer) around it, or the service given to
/// [`Endpoint::service`](super::Endpoint::service), boxed.
///
/// It takes requests with a Fawkes [`Body`] and answers with one; its errors are boxed. The
/// endpoint answers an error of the outermost service with a 500 (logged), and a panic in it
/// too, which leaves the connection and its other requests alone.
///
/// # Examples
///
/// Layers name it as the service they wrap:
///
/// ```
/// use fawkes::endpoint::Service;
/// use tower::Layer;
///
/// fn with_cors(inner: Service) -> tower_http::cors::Cors<Service> {
///     tower_http::cors::CorsLayer::permissive().layer(inner)
/// }
/// ```
#[derive(Clone)]
pub struct Service(Inner);

#[derive(Clone)]
enum Inner {
    /// The endpoint's router, innermost under its layers: called without a box.
    Router(Router),
    Boxed(Boxed),
}

impl Service {
    /// Boxes `service`, its bodies turned into [`Body`] and its errors into [`BoxError`].
    pub fn new<S, B>(service: S) -> Self
    where
        S: tower_service::Service<Request<Body>, Response = Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let service = service.map_response(|resp| resp.map(Body::new)).map_err(Into::into);
        Self(Inner::Boxed(BoxCloneSyncService::new(service)))
    }

    pub(crate) fn router(router: Router) -> Self {
        Self(Inner::Router(router))
    }

    /// Starts `req` as the endpoint's outermost service, on a clone of it, as tower servers
    /// do: what a service's readiness holds (a concurrency limit's permit, a queue's slot)
    /// belongs to that one request, and goes with it when the request ends or fails. A clone
    /// ready at once (most are) is called here and its future polled inside the request's; one
    /// that is not waits for this request in a future of its own. An error or a panic, now or
    /// later, answers a 500.
    fn start(&self, req: Request<Body>) -> RouteFuture {
        let is_head = req.method() == Method::HEAD;
        let service = match &self.0 {
            Inner::Router(router) => {
                return router.run(router.route(req, None), crate::router::Dispatch::ByCaller)
            }
            Inner::Boxed(service) => service,
        };
        let started = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut service = service.clone();
            match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Ok(())) => Ok(RouteFuture::service(service.call(req), is_head)),
                Poll::Ready(Err(err)) => Ok(RouteFuture::ready(service_failed(&err), false)),
                // Boxed: rare, and the request and service are much larger than the future.
                Poll::Pending => Err(Box::new((service, req))),
            }
        }));
        match started {
            Ok(Ok(run)) => run,
            Ok(Err(waiting)) => {
                let (service, req) = *waiting;
                let answer = async move {
                    match AssertUnwindSafe(service.oneshot(req)).catch_unwind().await {
                        Ok(answered) => answered,
                        Err(panic) => Ok(service_panicked(&*panic)),
                    }
                };
                RouteFuture::service(Box::pin(answer), is_head)
            }
            Err(panic) => RouteFuture::ready(service_panicked(&*panic), false),
        }
    }
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Router(router) => f.debug_tuple("Service").field(router).finish(),
            Inner::Boxed(_) => f.write_str("Service(..)"),
        }
    }
}

/// Any request body: a layer that wraps the body (a body limit, request decompression) hands
/// the service its own body type.
impl<B> tower_service::Service<Request<B>> for Service
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = ServiceFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match &mut self.0 {
            Inner::Router(_) => Poll::Ready(Ok(())),
            Inner::Boxed(service) => service.poll_ready(cx),
        }
    }

    fn call(&mut self, req: Request<B>) -> ServiceFuture {
        let req = req.map(Body::new);
        ServiceFuture(match &mut self.0 {
            Inner::Router(router) => Running::Router(router.run_in_stack(req)),
            Inner::Boxed(service) => Running::Boxed(service.call(req)),
        })
    }
}

/// The future of a [`Service`]'s `call`.
#[must_use = "futures do nothing unless polled"]
pub struct ServiceFuture(Running);

enum Running {
    Router(RouteFuture),
    Boxed(BoxFuture<'static, Result<Response<Body>, BoxError>>),
}

impl Future for ServiceFuture {
    type Output = Result<Response<Body>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Running::Router(run) => Pin::new(run).poll(cx).map(Ok),
            Running::Boxed(run) => run.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for ServiceFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceFuture")
    }
}

/// The layers given to [`Endpoint::layer`](super::Endpoint::layer), applied when the endpoint
/// starts: after its body limit is set on the router, whatever the order of the calls.
pub(crate) struct Layers(Vec<Box<dyn FnOnce(Service) -> Service + Send + Sync>>);

impl Layers {
    pub(crate) fn new() -> Self {
        Self(Vec::new())
    }

    pub(crate) fn push<L, B>(&mut self, layer: L)
    where
        L: tower_layer::Layer<Service> + Send + Sync + 'static,
        L::Service: tower_service::Service<Request<Body>, Response = Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower_service::Service<Request<Body>>>::Error: Into<BoxError>,
        <L::Service as tower_service::Service<Request<Body>>>::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.0.push(Box::new(move |inner| Service::new(layer.layer(inner))));
    }

    /// `app` with the layers around it, the first one given innermost.
    pub(crate) fn apply(self, app: App) -> App {
        if self.0.is_empty() {
            return app;
        }
        let inner = match app {
            App::Router(router) => Service::router(router),
            App::Service(service) => service,
        };
        App::Service(self.0.into_iter().fold(inner, |inner, layer| layer(inner)))
    }
}

impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} layers", self.0.len())
    }
}
