//! A live dashboard any application mounts with one line: requests, latency percentiles,
//! connections, sockets, channels, pubsub, the Redis adapter's state, the nodes of the
//! cluster with their presence counts, and the supervisor tree with its restarts.
//!
//! [`Dashboard`] is a service to `forward` to, under the pipeline that should guard it:
//!
//! ```
//! use fawkes::Conn;
//!
//! # async fn require_admin(conn: Conn) -> Conn { conn }
//! fawkes::router! {
//!     pub App;
//!     pipeline admin {
//!         plug require_admin;
//!     }
//!     scope "/dev" {
//!         pipe_through admin;
//!         forward "/dashboard" => fawkes::dashboard::Dashboard::new();
//!     }
//! }
//! # let _ = App::new();
//! ```
//!
//! The page (`/dev/dashboard`), its script and stylesheet, the channels client and the
//! socket the page joins (`/dev/dashboard/socket`) are all served under the mount, so the
//! pipeline's plugs guard every one of them, the WebSocket upgrade included. Nothing is
//! fetched from elsewhere: no npm, no CDN.
//!
//! Once a second, a worker samples the endpoint's telemetry ([`Sample`]) and its state
//! ([`Status`]) and sends both to the open pages over a channel of the dashboard's own socket.
//! The worker starts with the first request the dashboard serves, as a child of the
//! endpoint's supervisor (so it shows in the tree it reports), and keeps the last minute of
//! samples, so a page opened late draws full charts at once. A node's dashboard shows that
//! node: its figures never leave it, whatever the pubsub adapter.

mod sample;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};
use tower::{Service, ServiceExt as _};

pub use sample::{AdapterStatus, Sample, Sampler, Status};

use crate::channel::{Channel, ChannelSocket, Payload, Reply};
use crate::conn::ConnInfo;
use crate::router::ForwardedFrom;
use crate::socket::{Channels, ConnectInfo, Refused, Socket, Transport};
use crate::supervisor::{ChildSpec, Supervisor};
use crate::{Body, PubSub};

/// How often the worker samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// How many samples are kept for pages opened late: one minute's worth.
pub const HISTORY: usize = 60;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("dashboard.js");
const STYLE: &str = include_str!("dashboard.css");
const ICON: &str = include_str!("favicon.svg");

/// The live dashboard, as a service to `forward` to (see the [module](self) docs).
///
/// Clones share the dashboard: its history, its worker and its socket.
#[derive(Clone)]
pub struct Dashboard {
    shared: Arc<Shared>,
    transport: Transport<DashboardSocket>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").field("topic", &self.shared.topic).finish_non_exhaustive()
    }
}

/// What the service, its worker and its channel share.
struct Shared {
    /// The topic samples go out on: one per dashboard, so two mounted in one endpoint do not
    /// mix their samples.
    topic: String,
    /// The worker's child id in the endpoint's supervisor.
    worker_id: String,
    /// The last [`HISTORY`] samples, oldest first.
    history: Mutex<VecDeque<Sample>>,
    /// The join reply (`{history, status}`) as of the latest sample, built once for every page
    /// that joins before the next: a page rejoining in a loop costs a copy, not a rebuild.
    join_reply: Mutex<Option<(u64, Value)>>,
    /// The endpoint the worker samples, set by the first request, which starts the worker.
    endpoint: OnceLock<(PubSub, Supervisor)>,
    /// Names a page's socket from its pipeline's assigns ([`Dashboard::socket_id`]).
    socket_id: OnceLock<SocketId>,
}

/// How a page's socket is named from the assigns its pipeline put.
type SocketId = Box<dyn Fn(&crate::conn::Assigns) -> Option<String> + Send + Sync>;

impl Default for Dashboard {
    fn default() -> Self {
        Self::new()
    }
}

impl Dashboard {
    /// A dashboard, to mount with `forward`.
    ///
    /// Its socket takes one channel a socket, 256 pages at once, and 8 pages a client.
    #[must_use]
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            topic: format!("fawkes_dashboard:{n}"),
            worker_id: if n == 0 { "dashboard".to_owned() } else { format!("dashboard-{n}") },
            history: Mutex::default(),
            join_reply: Mutex::default(),
            endpoint: OnceLock::new(),
            socket_id: OnceLock::new(),
        });
        let transport = crate::socket::transport(DashboardSocket(Arc::clone(&shared)))
            .max_channels(1)
            .max_channels_total(256)
            .max_sockets_per_client(8)
            .max_channels_per_client(8)
            // The page sends joins and heartbeats only.
            .max_frame_size(4 * 1024);
        Self { shared, transport }
    }

    /// Names each page's socket from the assigns the pipeline in front of the mount put, so
    /// that a `disconnect` broadcast to that name closes the open pages, as it closes the
    /// application's own sockets of that name: a logout then ends the dashboards its user had
    /// open, rather than leaving them streaming until closed. Set once; a second call is
    /// ignored.
    ///
    /// ```
    /// use fawkes::{Assigns, Conn};
    ///
    /// #[derive(Clone)]
    /// struct Admin(String);
    ///
    /// async fn require_admin(conn: Conn) -> Conn {
    ///     // A real pipeline reads the session; this one trusts a header.
    ///     match conn.header("x-admin").map(str::to_owned) {
    ///         Some(name) => conn.assign(Admin(name)),
    ///         None => conn.send_resp(http::StatusCode::UNAUTHORIZED, "admins only").halt(),
    ///     }
    /// }
    ///
    /// /// The name the application's logout broadcasts `disconnect` to.
    /// fn admin_socket(assigns: &Assigns) -> Option<String> {
    ///     assigns.get::<Admin>().map(|admin| format!("admins_socket:{}", admin.0))
    /// }
    ///
    /// fn dashboard() -> fawkes::dashboard::Dashboard {
    ///     fawkes::dashboard::Dashboard::new().socket_id(admin_socket)
    /// }
    ///
    /// fawkes::router! {
    ///     pub App;
    ///     pipeline admin {
    ///         plug require_admin;
    ///     }
    ///     scope "/dev" {
    ///         pipe_through admin;
    ///         forward "/dashboard" => dashboard();
    ///     }
    /// }
    /// # let _ = App::new();
    /// // At logout: pubsub.broadcast("admins_socket:ada", "disconnect", serde_json::json!({}));
    /// ```
    #[must_use]
    pub fn socket_id(
        self,
        id: impl Fn(&crate::conn::Assigns) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        let _ = self.shared.socket_id.set(Box::new(id));
        self
    }

    /// The samples kept so far, oldest first: the last minute's.
    #[must_use]
    pub fn history(&self) -> Vec<Sample> {
        self.shared.history().iter().cloned().collect()
    }

    async fn handle(mut self, mut req: Request<Body>) -> Response<Body> {
        if let Some(info) =
            req.extensions().get::<ConnInfo>().filter(|_| self.shared.endpoint.get().is_none())
        {
            let (pubsub, supervisor) = (info.pubsub().clone(), info.supervisor().clone());
            let telemetry = info.telemetry().clone();
            self.shared.start(pubsub, supervisor, telemetry).await;
        }
        let path = req.uri().path();
        if let Some(rest) = path.strip_prefix("/socket").filter(|r| r.starts_with('/')) {
            let rest = match req.uri().query() {
                Some(query) => format!("{rest}?{query}"),
                None => rest.to_owned(),
            };
            if let Ok(uri) = rest.parse() {
                *req.uri_mut() = uri;
            }
            return match self.transport.ready().await {
                Ok(transport) => transport.call(req).await.unwrap_or_else(|never| match never {}),
                Err(never) => match never {},
            };
        }
        let (content_type, body): (_, Body) = match path {
            "/" => ("text/html; charset=utf-8", self.page(&req).into()),
            "/dashboard.js" => ("text/javascript; charset=utf-8", SCRIPT.into()),
            "/dashboard.css" => ("text/css; charset=utf-8", STYLE.into()),
            "/favicon.svg" => ("image/svg+xml", ICON.into()),
            "/client.js" => ("text/javascript; charset=utf-8", crate::socket::CLIENT_JS.into()),
            _ => return plain(StatusCode::NOT_FOUND, "Not Found"),
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        // The files are the binary's: their tag is their hash, so a page load revalidates
        // them with a 304 rather than fetching them again. (For `HEAD`, hyper sends the
        // headers, the length among them, and drops the body.)
        let etag = (path != "/").then(|| crate::socket::etag_of(hash(path)));
        let fresh =
            etag.as_ref().is_some_and(|tag| crate::socket::if_none_match(req.headers(), tag));
        let mut resp = if fresh {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            resp
        } else {
            Response::new(body)
        };
        let headers = resp.headers_mut();
        if let Some(tag) = etag.and_then(|tag| HeaderValue::from_str(&tag).ok()) {
            headers.insert(header::ETAG, tag);
        }
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
        );
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        resp
    }

    /// The page, with the mount's path for its script and stylesheet.
    fn page(&self, req: &Request<Body>) -> String {
        let base = ForwardedFrom::mount_path(req);
        let node = self.shared.endpoint.get().map_or("", |(pubsub, _)| pubsub.node());
        PAGE.replace("{{base}}", &crate::live::escape(base))
            .replace("{{topic}}", &crate::live::escape(&self.shared.topic))
            .replace("{{node}}", &crate::live::escape(node))
    }
}

/// The hash one of the dashboard's files is tagged with, computed when the binary is built.
fn hash(path: &str) -> u64 {
    const SCRIPT_HASH: u64 = crate::socket::fnv1a(SCRIPT.as_bytes());
    const STYLE_HASH: u64 = crate::socket::fnv1a(STYLE.as_bytes());
    const ICON_HASH: u64 = crate::socket::fnv1a(ICON.as_bytes());
    const CLIENT_HASH: u64 = crate::socket::fnv1a(crate::socket::CLIENT_JS.as_bytes());
    match path {
        "/dashboard.js" => SCRIPT_HASH,
        "/dashboard.css" => STYLE_HASH,
        "/favicon.svg" => ICON_HASH,
        _ => CLIENT_HASH,
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

impl Service<Request<Body>> for Dashboard {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

impl Shared {
    fn history(&self) -> MutexGuard<'_, VecDeque<Sample>> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `{history, status}` as of the latest sample.
    fn join_reply(&self) -> Value {
        let latest = self.history().back().map_or(0, |sample| sample.at_ms);
        let mut cached = self.join_reply.lock().unwrap_or_else(PoisonError::into_inner);
        match cached.as_ref() {
            Some((at, reply)) if *at == latest && latest > 0 => reply.clone(),
            _ => {
                let history: Vec<Sample> = self.history().iter().cloned().collect();
                let status = self.endpoint.get().map(|(pubsub, sup)| Status::of(pubsub, sup));
                let reply = json!({ "history": history, "status": status });
                *cached = Some((latest, reply.clone()));
                reply
            }
        }
    }

    fn remember(&self, sample: Sample) {
        let mut history = self.history();
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(sample);
    }

    /// Starts the worker under `supervisor`, once.
    async fn start(
        self: &Arc<Self>,
        pubsub: PubSub,
        supervisor: Supervisor,
        telemetry: crate::telemetry::Telemetry,
    ) {
        // The first request to set the endpoint starts the worker; any other returns.
        if self.endpoint.set((pubsub.clone(), supervisor.clone())).is_err() {
            return;
        }
        let spec = self.worker(pubsub, supervisor.clone(), telemetry);
        // Said once: a retry on every request would log on every request. A supervisor
        // refuses a child only while it shuts down, or for an id it already has (a child of
        // the application's own named like the worker).
        if let Err(error) = supervisor.start_child(spec).await {
            tracing::warn!(%error, id = %self.worker_id, "the dashboard's worker did not start");
        }
    }

    /// The worker: samples `telemetry` every [`INTERVAL`], keeps the sample for pages opened
    /// later, and sends it with the status to the open pages.
    fn worker(
        self: &Arc<Self>,
        pubsub: PubSub,
        supervisor: Supervisor,
        telemetry: crate::telemetry::Telemetry,
    ) -> ChildSpec {
        let shared = Arc::clone(self);
        ChildSpec::new(self.worker_id.clone(), move |token| {
            let (shared, pubsub, supervisor) =
                (Arc::clone(&shared), pubsub.clone(), supervisor.clone());
            let mut sampler = Sampler::new(telemetry.clone());
            async move {
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
                // After a stall, one late sample covers the gap rather than a burst.
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = token.cancelled() => return Ok::<_, Infallible>(()),
                        _ = ticks.tick() => {}
                    }
                    let sample = sampler.sample(Some(&supervisor.stats()));
                    shared.remember(sample.clone());
                    if pubsub.subscriber_count(&shared.topic) == 0 {
                        continue;
                    }
                    let status = Status::of(&pubsub, &supervisor);
                    let payload = json!({ "sample": sample, "status": status });
                    // This node's figures are for this node's pages only.
                    pubsub.local_broadcast(&shared.topic, "sample", payload);
                }
            }
        })
    }
}

/// The dashboard's own socket: its pages connect here, through the mount's pipeline.
struct DashboardSocket(Arc<Shared>);

impl Socket for DashboardSocket {
    async fn connect(
        &self,
        _params: &Map<String, Value>,
        info: &ConnectInfo,
    ) -> Result<crate::conn::Assigns, Refused> {
        // The pipeline in front of the mount has let the upgrade through. Its assigns are
        // kept only to name the socket.
        Ok(match self.0.socket_id.get() {
            Some(_) => info.assigns.clone(),
            None => crate::conn::Assigns::default(),
        })
    }

    fn id(&self, assigns: &crate::conn::Assigns) -> Option<String> {
        self.0.socket_id.get().and_then(|id| id(assigns))
    }

    fn channels(&self) -> Channels {
        Channels::new().channel_with::<DashboardChannel, _>(&self.0.topic, Arc::clone(&self.0))
    }
}

/// The dashboard's channel: the join replies with the history and the status now; the
/// worker's samples follow as `sample` events. Pages send nothing else.
struct DashboardChannel;

impl Channel<Arc<Shared>> for DashboardChannel {
    type Info = ();

    async fn join(
        _topic: &str,
        _payload: Payload,
        socket: &mut ChannelSocket<Arc<Shared>>,
    ) -> Result<(Self, Value), Value> {
        Ok((Self, socket.state().join_reply()))
    }

    async fn handle_in(
        &mut self,
        _event: &str,
        _payload: Payload,
        _socket: &mut ChannelSocket<Arc<Shared>>,
    ) -> Reply {
        Reply::error(json!({ "reason": "unknown event" }))
    }
}

#[cfg(test)]
mod tests;
