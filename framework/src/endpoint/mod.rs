//! The endpoint: a listener, its supervisor, and the connections it serves.
//!
//! [`Endpoint`] binds a TCP listener and serves HTTP/1.1 and HTTP/2 (hyper-util's `auto`
//! connection) through a [`Router`]. Every connection is a temporary child of the endpoint's
//! [`Supervisor`](crate::Supervisor): a panic in one is caught and counted, and shutdown drains them all. The
//! application's own long-running workers can join the same supervisor as permanent children.
//!
//! Shutdown, on SIGTERM or ctrl-c (or a future of the caller's), follows what a rolling deploy
//! needs: readiness turns false (`/readyz` answers 503), after an optional delay the listener
//! stops accepting, in-flight requests finish and idle connections close, and whatever is still
//! running when the deadline passes is aborted.
//!
//! The endpoint knows nothing about routes: it hands every request to the router, or to the
//! tower service around it ([`Endpoint::layer`]), or to a service of the application's own
//! ([`Endpoint::service`]).

mod activity;
mod app;
mod config;
mod connection;
#[cfg(feature = "fuzzing")]
pub(crate) use connection::serve_script;
mod request;
mod running;
mod slots;
#[cfg(feature = "tls")]
mod tls;

use std::time::Duration;

pub use crate::conn::ConnInfo;
pub(crate) use crate::conn::{Shared, SharedRef};
pub(crate) use app::App;
pub use app::{Service, ServiceFuture};
pub use config::Config;
pub use running::RunningEndpoint;
#[cfg(feature = "tls")]
pub use tls::{Tls, TlsError};

use crate::supervisor::ChildSpec;
use crate::{Error, Router};

/// An HTTP endpoint: configuration, router and supervised workers.
///
/// # Examples
///
/// ```no_run
/// use fawkes::Endpoint;
///
/// async fn hello(conn: fawkes::Conn) -> fawkes::Conn {
///     conn.text("hello")
/// }
///
/// fawkes::router! {
///     pub App;
///     scope "/" { get "/" => hello; }
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), fawkes::Error> {
///     Endpoint::new(App::new())
///         .bind("127.0.0.1:4000")
///         .serve()
///         .await
/// }
/// ```
#[must_use]
#[derive(Debug)]
pub struct Endpoint {
    app: App,
    layers: app::Layers,
    config: Config,
    workers: Vec<ChildSpec>,
    pubsub: Option<crate::PubSub>,
    telemetry: Option<crate::instrument::Telemetry>,
    /// An address given to [`Endpoint::bind`] that did not resolve, reported by `start`.
    bind_error: Option<Error>,
}

impl Endpoint {
    /// An endpoint serving `router` with the default [`Config`].
    pub fn new(router: impl Into<Router>) -> Self {
        Self::serving(App::Router(router.into()))
    }

    /// An endpoint serving any tower service, with the default [`Config`]: an application of
    /// another framework, or a router inside a tower stack of the application's own.
    ///
    /// The service takes requests with a Fawkes [`Body`](crate::Body); the endpoint's
    /// [`ConnInfo`] is in their extensions, where a router inside reads it. Its errors and
    /// panics answer 500. The endpoint's own work is the same as for a router: connection
    /// limits, timeouts, health of the connections, graceful shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::{Body, Endpoint};
    ///
    /// let hello = tower::service_fn(|req: http::Request<Body>| async move {
    ///     let peer = req.extensions().get::<fawkes::endpoint::ConnInfo>().map(|i| i.remote_addr());
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(format!("{peer:?}"))))
    /// });
    /// let endpoint = Endpoint::service(hello);
    /// # let _ = endpoint;
    /// ```
    pub fn service<S, B>(service: S) -> Self
    where
        S: tower_service::Service<http::Request<crate::Body>, Response = http::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<crate::BoxError>,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<crate::BoxError>,
    {
        Self::serving(App::Service(Service::new(service)))
    }

    fn serving(app: App) -> Self {
        Self {
            app,
            layers: app::Layers::new(),
            config: Config::default(),
            workers: Vec::new(),
            pubsub: None,
            telemetry: None,
            bind_error: None,
        }
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The address to listen on (default `127.0.0.1:4000`; port 0 picks a free one): what
    /// `TcpListener::bind` takes, such as `"0.0.0.0:4000"`, `"localhost:4000"` or a
    /// `SocketAddr`. A name resolves here, to its first address; one that does not resolve
    /// makes [`Endpoint::start`] fail, naming it.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn home(conn: fawkes::Conn) -> fawkes::Conn { conn }
    /// # fawkes::router! { pub App; get "/" => home; }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let running = fawkes::Endpoint::new(App::new()).bind("localhost:0").start().await.unwrap();
    /// assert!(running.local_addr().ip().is_loopback());
    /// running.shutdown();
    ///
    /// let err = fawkes::Endpoint::new(App::new()).bind("no-such-host.invalid:80").start().await;
    /// assert!(err.unwrap_err().is_bind());
    /// # });
    /// ```
    pub fn bind(mut self, addr: impl std::net::ToSocketAddrs + std::fmt::Display) -> Self {
        match addr.to_socket_addrs().map(|mut addrs| addrs.next()) {
            Ok(Some(resolved)) => {
                self.config.bind = resolved;
                self.bind_error = None;
            }
            Ok(None) => {
                let err = std::io::Error::other("it resolves to no address");
                self.bind_error = Some(Error::resolve(addr.to_string(), err));
            }
            Err(err) => self.bind_error = Some(Error::resolve(addr.to_string(), err)),
        }
        self
    }

    /// Wraps what the endpoint serves in a tower [`Layer`](tower_layer::Layer), for
    /// middleware that must see every request: CORS preflights for any path, compression,
    /// rate limits, request timeouts. Each layer wraps those given before it, as in
    /// `tower::ServiceBuilder` read from the bottom up.
    ///
    /// A router alone is called directly; behind layers it is a boxed service like any other,
    /// which costs the layers and about one allocation a request. Middleware for some routes
    /// only belongs in a pipeline instead ([`plug::layer`](crate::plug::layer)). A layer that
    /// replaces the request body hides it from the endpoint's body watch: such a body is no
    /// longer held to [`Config::body_read_timeout`] or the endpoint's buffered-body budget.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn hello(conn: fawkes::Conn) -> fawkes::Conn { conn.text("hello") }
    /// fawkes::router! { pub App; get "/" => hello; }
    ///
    /// let endpoint = fawkes::Endpoint::new(App::new())
    ///     .layer(tower_http::cors::CorsLayer::permissive())
    ///     .layer(tower_http::compression::CompressionLayer::new());
    /// # let _ = endpoint;
    /// ```
    pub fn layer<L, B>(mut self, layer: L) -> Self
    where
        L: tower_layer::Layer<Service> + Send + Sync + 'static,
        L::Service: tower_service::Service<http::Request<crate::Body>, Response = http::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower_service::Service<http::Request<crate::Body>>>::Error:
            Into<crate::BoxError>,
        <L::Service as tower_service::Service<http::Request<crate::Body>>>::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<crate::BoxError>,
    {
        self.layers.push(layer);
        self
    }

    /// The largest request body the router decodes; larger ones answer 413. Overrides the
    /// router's own limit ([`Router::max_body`](crate::Router::max_body), 8 MiB by default),
    /// which applies when this is not called. It sets the limit of the endpoint's router,
    /// layers or not; an endpoint serving a [`service`](Endpoint::service) has none, and
    /// [`start`](Endpoint::start) refuses it there rather than ignore it.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.config.max_body = Some(bytes);
        self
    }

    /// How long a client may take to send a request's headers (default 10 s).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// Sets how long a request body may go without sending anything; see
    /// [`Config::body_read_timeout`].
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.body_read_timeout = timeout;
        self
    }

    /// Sets how many bytes of request bodies still coming the endpoint holds at once; see
    /// [`Config::max_buffered_body_bytes`].
    pub fn max_buffered_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_buffered_body_bytes = bytes;
        self
    }

    /// Sets how many bytes of large answers the endpoint holds for clients that have not read
    /// them; see [`Config::max_unsent_body_bytes`].
    pub fn max_unsent_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_unsent_body_bytes = bytes;
        self
    }

    /// Sets how long an answer may wait for the client to read it; see
    /// [`Config::send_timeout`].
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.config.send_timeout = timeout;
        self
    }

    /// How long a keep-alive connection may sit idle between requests (default 60 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// The most connections served at once, WebSockets included (default 16,384); see
    /// [`Config::max_connections`] for what happens at the limit.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.config.max_connections = max;
        self
    }

    /// How long shutdown waits for in-flight requests before aborting them (default 25 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// How long the endpoint keeps accepting after readiness turns false (default 0), so a
    /// load balancer can take it out of rotation first.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.config.drain_delay = delay;
        self
    }

    /// The restart intensity of the endpoint's workers (default 3 within 5 s): one restart
    /// more than `max_restarts` within `within` stops the endpoint, and
    /// [`RunningEndpoint::wait`] returns the error.
    pub fn restart_intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.config.max_restarts = max_restarts;
        self.config.restart_window = within;
        self
    }

    /// The secret key base of this endpoint (see [`Config::secret_key_base`]): the same on
    /// every replica, so that what one signs the others accept. [`SecretKeyBase::new`]
    /// refuses a secret shorter than 64 bytes, so a bad one stops the application before it
    /// starts, with the reason.
    ///
    /// [`SecretKeyBase::new`]: crate::security::SecretKeyBase::new
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::security::SecretKeyBase;
    ///
    /// fawkes::router! { pub App; get "/" => fawkes::telemetry::healthz; }
    ///
    /// let key = SecretKeyBase::new("k".repeat(64)).unwrap();
    /// let endpoint = fawkes::Endpoint::new(App::new()).secret_key_base(key);
    /// # let _ = endpoint;
    /// assert!(SecretKeyBase::new("too short").is_err());
    /// ```
    pub fn secret_key_base(mut self, key: crate::security::SecretKeyBase) -> Self {
        self.config.secret_key_base = Some(key);
        self
    }

    /// Serves over TLS (feature `tls`) with this certificate: HTTP/2 or HTTP/1.1 as each
    /// client's ALPN asks, sockets as `wss://`. Requests see the `https` scheme, so secure
    /// cookies and [`force_ssl`](crate::security::force_ssl) know it. On Unix, `SIGHUP`
    /// reloads the certificate from its files (see [`Tls`]).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: Tls) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// Adds a permanent worker to the endpoint's supervisor, started before the listener and
    /// stopped after the connections.
    pub fn worker(mut self, spec: ChildSpec) -> Self {
        self.workers.push(spec);
        self
    }

    /// The pubsub sockets, channels and controllers of this endpoint share (default: a local
    /// one for a node named after `HOSTNAME`, or the process id).
    pub fn pubsub(mut self, pubsub: crate::PubSub) -> Self {
        self.pubsub = Some(pubsub);
        self
    }

    /// The telemetry this endpoint records into (default: a new one). Give your own to read it
    /// before the endpoint starts (a dashboard's sampler) or to
    /// [`install`](crate::telemetry::Telemetry::install) it as the process's `metrics`
    /// recorder; [`RunningEndpoint::telemetry`](crate::endpoint::RunningEndpoint::telemetry) reads it after.
    /// The endpoint's pubsub's figures are included either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::telemetry::Telemetry;
    ///
    /// fawkes::router! { pub App; get "/metrics" => fawkes::telemetry::prometheus; }
    ///
    /// let telemetry = Telemetry::new();
    /// let endpoint = fawkes::Endpoint::new(App::new()).telemetry(telemetry.clone());
    /// # let _ = endpoint;
    /// assert_eq!(telemetry.snapshot().requests, 0);
    /// ```
    pub fn telemetry(mut self, telemetry: crate::instrument::Telemetry) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// Binds and serves until SIGTERM or ctrl-c, then drains.
    ///
    /// An application that set no `tracing` subscriber gets one here (see
    /// [`install_default_logger`]), so the server says where it listens and logs a line per
    /// request out of the box.
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound, or the supervisor fails.
    pub async fn serve(self) -> Result<(), Error> {
        install_default_logger();
        self.serve_with_shutdown(shutdown_signal()).await
    }

    /// Binds and serves until `signal` resolves, then drains.
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound, or the supervisor fails.
    pub async fn serve_with_shutdown(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let running = self.start().await?;
        let handle = running.clone();
        tokio::spawn(async move {
            signal.await;
            handle.shutdown();
        });
        running.wait().await
    }

    /// Binds and starts serving in the background.
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound.
    pub async fn start(self) -> Result<RunningEndpoint, Error> {
        if let Some(err) = self.bind_error {
            return Err(err);
        }
        let app = match (self.app, self.config.max_body) {
            (App::Router(router), Some(limit)) => App::Router(router.max_body(limit)),
            (App::Service(_), Some(_)) => {
                return Err(Error::config(
                    "Endpoint::max_body sets the body limit of a router, and this endpoint \
                     serves a service: set the limit inside it (Router::max_body for a router)",
                ))
            }
            (app, None) => app,
        };
        let app = self.layers.apply(app);
        let pubsub = self.pubsub.unwrap_or_else(|| crate::PubSub::new(default_node_name()));
        // The adapter's worker starts first and stops last, so the presence farewell and the
        // application's last broadcasts still leave the node; presence replication only
        // matters when there are other nodes.
        let mut workers = Vec::with_capacity(self.workers.len() + 2);
        workers.extend(pubsub.adapter().worker(&pubsub));
        if !pubsub.adapter().is_local() {
            workers.push(pubsub.presence().child_spec());
        }
        workers.extend(self.workers);
        let telemetry = self.telemetry.unwrap_or_default();
        telemetry.include(pubsub.telemetry());
        running::start(app, self.config, workers, pubsub, telemetry).await
    }
}

/// Installs a `tracing` subscriber writing to standard error, unless the application set one
/// already; returns whether it did. [`Endpoint::serve`] calls it.
///
/// It honours `RUST_LOG` (default `info`: the endpoint's start and stop, one line per request
/// with its status and duration, warnings and errors) and `LOG_FORMAT=json` (one JSON object per
/// line, for log collectors). Set your own subscriber before `serve` to log differently.
pub fn install_default_logger() -> bool {
    if tracing::dispatcher::has_been_set() {
        return false;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.trim().eq_ignore_ascii_case("json"));
    // Colours only on a terminal: escape codes have no place in a log file or a collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let installed = if json { logs.json().try_init() } else { logs.try_init() };
    installed.is_ok()
}

/// Resolves on SIGTERM or ctrl-c (SIGINT).
///
/// The signal handlers are installed when this function is called, not when the future is
/// first polled, so a signal that arrives in between is not lost.
///
/// # Panics
///
/// Outside a tokio runtime, or when the handlers cannot be installed.
#[track_caller]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
        async move {
            tokio::select! {
                _ = int.recv() => tracing::info!("ctrl-c received, shutting down"),
                _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("ctrl-c received, shutting down");
    }
}

/// A node name unique enough for a cluster: the pod's `HOSTNAME` in Kubernetes. Two
/// processes sharing a name still tell their messages apart (each pubsub has a unique id);
/// only direct broadcasts to that name reach both.
pub fn default_node_name() -> String {
    match std::env::var("HOSTNAME") {
        Ok(host) if !host.is_empty() => host,
        _ => format!("node-{}", std::process::id()),
    }
}
