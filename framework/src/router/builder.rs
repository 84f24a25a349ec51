//! Building a router at run time.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use tower::ServiceExt;
use tower_service::Service;

use super::service::{Inner, Router, Target};
use crate::controller::{self, Handler};
use crate::plug::chain::ActionChain;
use crate::plug::{Pipeline, Stage, TypedStages};
use crate::{Body, BoxError, Conn};

/// Which methods a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MethodFilter {
    /// GET (and HEAD, when no HEAD route is declared).
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// OPTIONS.
    Options,
    /// HEAD.
    Head,
    /// Any method (Phoenix's `match :*`).
    Any,
}

impl MethodFilter {
    pub(crate) const METHODS: [Method; 7] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::HEAD,
    ];

    /// The index of a method's tree; `None` for the any-method tree.
    pub(crate) fn index(self) -> Option<usize> {
        Some(match self {
            Self::Get => 0,
            Self::Post => 1,
            Self::Put => 2,
            Self::Patch => 3,
            Self::Delete => 4,
            Self::Options => 5,
            Self::Head => 6,
            Self::Any => return None,
        })
    }

    pub(crate) fn of(method: &Method) -> Option<usize> {
        Self::METHODS.iter().position(|m| m == method)
    }
}

/// Builds a [`Router`] route by route.
///
/// Paths use matchit's syntax (`/rooms/{id}`, `/files/{*path}`); `pattern` is the route as the
/// user wrote it (`/rooms/:id`), reported by [`Conn::route`] and in telemetry.
///
/// # Panics
///
/// [`Builder::route`] and [`Builder::forward`] panic on a malformed or conflicting path; the
/// `router!` macro rules these out at compile time.
///
/// # Examples
///
/// ```
/// use fawkes::router::{Builder, MethodFilter};
/// use fawkes::Conn;
///
/// async fn show(conn: Conn) -> Conn {
///     let id = conn.path_param("id").unwrap_or_default().to_owned();
///     conn.text(id)
/// }
///
/// let router = Builder::new().route(MethodFilter::Get, "/rooms/{id}", "/rooms/:id", vec![], show).build();
/// ```
#[must_use]
pub struct Builder {
    trees: Vec<matchit::Router<usize>>,
    any: matchit::Router<usize>,
    targets: Vec<Target>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder").field("routes", &self.targets.len()).finish()
    }
}

impl Builder {
    /// An empty router.
    pub fn new() -> Self {
        Self {
            trees: MethodFilter::METHODS.iter().map(|_| matchit::Router::new()).collect(),
            any: matchit::Router::new(),
            targets: Vec::new(),
        }
    }

    /// Adds a route: `stages` run in order, then `action`: an `async fn(Conn)`, or a handler
    /// given its state with [`with_state`](crate::controller::with_state).
    #[track_caller]
    pub fn route<M: 'static, H: Handler<M, ()>>(
        self,
        method: MethodFilter,
        path: &str,
        pattern: &'static str,
        stages: Vec<Stage>,
        action: H,
    ) -> Self {
        let action = controller::with_state(&Arc::new(()), action);
        let pipeline = Pipeline::new(stages, move |conn| {
            let action = action.clone();
            async move { controller::run(&action, conn).await }
        });
        self.add_route(method, path, pattern, pipeline)
    }

    /// Adds a route whose stages `router!` composes with the action into one type, so that a
    /// request runs them in one future. The action gets the router's `state` if it asks.
    #[doc(hidden)]
    #[track_caller]
    pub fn route_chain<S, M, H, St>(
        self,
        method: MethodFilter,
        path: &str,
        pattern: &'static str,
        state: &Arc<S>,
        action: H,
        stages: St,
    ) -> Self
    where
        S: Send + Sync + 'static,
        M: 'static,
        H: Handler<M, S>,
        St: TypedStages,
    {
        let action = controller::with_state(state, action);
        let pipeline = Pipeline::from_chain(stages.then(ActionChain::new(action)));
        self.add_route(method, path, pattern, pipeline)
    }

    #[track_caller]
    fn add_route(
        mut self,
        method: MethodFilter,
        path: &str,
        pattern: &'static str,
        pipeline: Pipeline,
    ) -> Self {
        let id = self.targets.len();
        self.targets.push(Target {
            pattern,
            params: crate::conn::path_params::RouteParams::of(path),
            pipeline,
            forward: None,
            decode_body: true,
        });
        let tree = match method.index() {
            Some(i) => &mut self.trees[i],
            None => &mut self.any,
        };
        if let Err(err) = tree.insert(path, id) {
            panic!("cannot add route {method:?} {pattern}: {err}");
        }
        self
    }

    /// Mounts any tower service under `prefix`, for every method (Phoenix's `forward`).
    ///
    /// The service sees the path with the prefix removed; `stages` run first.
    #[track_caller]
    pub fn forward<S, B>(
        mut self,
        prefix: &str,
        pattern: &'static str,
        stages: Vec<Stage>,
        service: S,
    ) -> Self
    where
        S: Service<Request<Body>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let prefix = prefix.trim_end_matches('/').to_owned();
        let strip = prefix.clone();
        let pipeline = Pipeline::new(stages, move |conn: Conn| {
            let service = service.clone();
            let strip = strip.clone();
            async move { call_forward(service, &strip, conn).await }
        });
        let id = self.targets.len();
        self.targets.push(Target {
            pattern,
            params: None,
            pipeline,
            forward: Some(prefix.len()),
            decode_body: false,
        });
        let exact = if prefix.is_empty() { "/".to_owned() } else { prefix.clone() };
        let rest = format!("{prefix}/{{*__forward_rest}}");
        for path in [exact, rest] {
            if let Err(err) = self.any.insert(path, id) {
                panic!("cannot forward {pattern}: {err}");
            }
        }
        self
    }

    /// Finishes the router.
    pub fn build(self) -> Router {
        Router::from_inner(Arc::new(Inner {
            trees: self.trees,
            any: self.any,
            targets: self.targets,
        }))
    }
}

async fn call_forward<S, B>(service: S, prefix: &str, conn: Conn) -> Conn
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut req, mut conn) = conn.into_request();
    let uri = req.uri().clone();
    let rest = uri.path().get(prefix.len()..).unwrap_or_default();
    let rest = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    if let Ok(stripped) = http::Uri::from_parts(parts) {
        *req.uri_mut() = stripped;
    }
    req.extensions_mut().insert(ForwardedFrom(uri.clone()));
    if !conn.assigns().is_empty() {
        req.extensions_mut().insert(ForwardedAssigns(conn.assigns().clone()));
    }
    let result = service.oneshot(req).await;
    let mut restored = Request::new(Body::empty());
    *restored.uri_mut() = uri;
    conn.restore_request(restored);
    match result {
        Ok(resp) => {
            let before = std::mem::take(conn.resp_headers_mut());
            conn.set_response(resp.map(Body::new));
            keep_pipeline_headers(before, conn.resp_headers_mut());
            conn
        }
        Err(err) => {
            let err: BoxError = err.into();
            tracing::error!(error = %err, "forwarded service failed");
            crate::controller::ActionError::internal().render_halted(conn)
        }
    }
}

/// Puts back on a forwarded service's response the headers its pipeline put before the
/// forward (the secure browser headers, a request id, a session's cookie), every value of
/// them: a header the service set itself wins, except `set-cookie` and `vary`, which hold a
/// list, whose values from both are kept.
fn keep_pipeline_headers(before: http::HeaderMap, headers: &mut http::HeaderMap) {
    if before.is_empty() {
        return;
    }
    let own: Vec<http::HeaderName> = headers.keys().cloned().collect();
    let mut name = None;
    for (key, value) in before {
        // Only a name's first value comes with its name.
        name = key.or(name);
        let Some(name) = &name else { continue };
        let listed = *name == http::header::SET_COOKIE || *name == http::header::VARY;
        if listed || !own.contains(name) {
            headers.append(name.clone(), value);
        }
    }
}

/// The conn's assigns, carried past a forward so what it forwards to (a socket's `connect`)
/// sees them.
#[derive(Debug, Clone)]
pub(crate) struct ForwardedAssigns(pub(crate) crate::conn::Assigns);

impl ForwardedAssigns {
    pub(crate) fn of(req: &http::Request<crate::Body>) -> crate::conn::Assigns {
        req.extensions().get::<ForwardedAssigns>().map(|a| a.0.clone()).unwrap_or_default()
    }
}

/// The original URI of a request a router forwarded, in the forwarded request's extensions.
#[derive(Debug, Clone)]
pub struct ForwardedFrom(pub http::Uri);

impl ForwardedFrom {
    /// The path a forwarded request's service is mounted at (`/dev/dashboard` for
    /// `/dev/dashboard/app.js`), without a trailing slash: `""` for a request that was not
    /// forwarded, or forwarded from `/`. A page the service serves links its own files with
    /// it.
    pub fn mount_path<B>(req: &http::Request<B>) -> &str {
        let Some(ForwardedFrom(original)) = req.extensions().get::<ForwardedFrom>() else {
            return "";
        };
        let original = original.path();
        // The router strips the mount's path; a request for the mount itself arrives as `/`,
        // with or without the original's trailing slash.
        match req.uri().path() {
            "/" => original.trim_end_matches('/'),
            rest => original.strip_suffix(rest).unwrap_or_default(),
        }
    }
}
