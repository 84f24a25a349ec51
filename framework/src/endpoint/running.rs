//! A started endpoint: its accept loop and its handle.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::FutureExt as _;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::slots::{Admission, Slot, Slots};
use super::App;
use super::{connection, Config, Shared, SharedRef};
use crate::supervisor::{ChildSpec, Supervisor};
use crate::Error;

/// A handle to a started endpoint; clones share it.
///
/// # Examples
///
/// ```
/// # async fn hello(conn: fawkes::Conn) -> fawkes::Conn { conn.text("hi") }
/// # fawkes::router! { pub App; scope "/" { get "/" => hello; } }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let running = fawkes::Endpoint::new(App::new())
///     .bind("127.0.0.1:0")
///     .start()
///     .await
///     .unwrap();
/// assert!(running.is_ready());
/// running.shutdown();
/// running.wait().await.unwrap();
/// assert!(!running.is_ready());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RunningEndpoint {
    local_addr: SocketAddr,
    /// Whether it serves TLS, for its URL's scheme.
    tls: bool,
    shared: SharedRef,
    stop: CancellationToken,
    done: watch::Receiver<Option<Result<(), String>>>,
}

impl RunningEndpoint {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<local address>`, or `https://` over TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Whether the endpoint reports ready (false once shutdown has begun).
    pub fn is_ready(&self) -> bool {
        self.shared.is_ready()
    }

    /// The endpoint's supervisor.
    pub fn supervisor(&self) -> &Supervisor {
        &self.shared.supervisor
    }

    /// The endpoint's pubsub.
    pub fn pubsub(&self) -> &crate::PubSub {
        &self.shared.pubsub
    }

    /// The endpoint's telemetry: what it served, what is open, its pubsub's figures.
    pub fn telemetry(&self) -> &crate::instrument::Telemetry {
        &self.shared.telemetry
    }

    /// Begins a graceful shutdown; returns at once, readiness already false. Idempotent.
    pub fn shutdown(&self) {
        // Set here rather than only by the drain task, so a probe sent after this call
        // already sees 503.
        self.shared.ready.store(false, Ordering::Release);
        self.stop.cancel();
    }

    /// Serves until SIGTERM or ctrl-c (or until the endpoint stops by itself), then drains and
    /// resolves when everything is down. The signal handlers are installed before this returns
    /// its future, so call it as soon as the address is known.
    ///
    /// # Errors
    ///
    /// When the supervisor failed (a worker exceeded its restart intensity).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn hello(conn: fawkes::Conn) -> fawkes::Conn { conn.text("hi") }
    /// # fawkes::router! { pub App; scope "/" { get "/" => hello; } }
    /// # async fn run() -> Result<(), fawkes::Error> {
    /// let running = fawkes::Endpoint::new(App::new()).bind("127.0.0.1:0").start().await?;
    /// println!("listening on {}", running.url());
    /// running.run_until_signal().await
    /// # }
    /// ```
    pub fn run_until_signal(
        &self,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send + '_ {
        let signal = super::shutdown_signal();
        async move {
            tokio::select! {
                () = signal => self.shutdown(),
                _ = self.wait() => {}
            }
            self.wait().await
        }
    }

    /// Resolves when the endpoint has stopped and every connection and worker is down.
    ///
    /// # Errors
    ///
    /// When the supervisor failed (a worker exceeded its restart intensity).
    pub async fn wait(&self) -> Result<(), Error> {
        let mut done = self.done.clone();
        let result = match done.wait_for(Option::is_some).await {
            Ok(result) => result.clone().unwrap_or(Ok(())),
            Err(_) => Ok(()),
        };
        result.map_err(Error::supervisor)
    }
}

pub(crate) async fn start(
    app: App,
    config: Config,
    workers: Vec<ChildSpec>,
    pubsub: crate::PubSub,
    telemetry: crate::instrument::Telemetry,
) -> Result<RunningEndpoint, Error> {
    let listener = listen(config.bind).map_err(|e| Error::bind(config.bind, e))?;
    let local_addr = listener.local_addr().map_err(Error::io)?;
    let mut builder = Supervisor::builder()
        .name(format!("endpoint {local_addr}"))
        .intensity(config.max_restarts, config.restart_window)
        .dynamic_shutdown_timeout(config.shutdown_timeout);
    for worker in workers {
        builder = builder.child(worker);
    }
    let supervisor = builder.start();
    let shared = Arc::new(Shared {
        ready: AtomicBool::new(true),
        buffered_bodies: crate::budget::Budget::new(config.max_buffered_body_bytes),
        unsent_bodies: crate::budget::Budget::new(config.max_unsent_body_bytes),
        supervisor,
        pubsub,
        telemetry,
        secret_key_base: config.secret_key_base.clone(),
    });
    let stop = CancellationToken::new();
    let (done_tx, done) = watch::channel(None);
    #[cfg(feature = "tls")]
    let tls = config.tls.is_some();
    #[cfg(not(feature = "tls"))]
    let tls = false;
    // `addr` ends the line: scripts read the address off its end.
    if tls {
        tracing::info!(addr = %local_addr, "endpoint listening (TLS)");
    } else {
        tracing::info!(addr = %local_addr, "endpoint listening");
    }
    tokio::spawn(run(listener, app, Arc::new(config), shared.clone(), stop.clone(), done_tx));
    Ok(RunningEndpoint { local_addr, tls, shared, stop, done })
}

/// How many connections the kernel may complete for the accept loop before it takes them
/// (Linux caps it at `net.core.somaxconn`). The 128 of the standard library and mio overflows
/// when hundreds of clients reconnect at once, as a drained replica's WebSockets do to the
/// others during a rolling restart: the kernel then drops their SYNs, each client waits a
/// second for its retransmission, and a load balancer with a one-second connect timeout gives
/// up on the attempt.
const BACKLOG: u32 = 1024;

/// Reloads the certificate on every `SIGHUP` until the endpoint stops: a renewal (cert-manager,
/// certbot's deploy hook) rewrites the files and signals the process.
#[cfg(all(feature = "tls", unix))]
fn reload_on_hangup(tls: super::Tls, stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP: the TLS certificate reloads only through Tls::reload");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                hangup = hangups.recv() => if hangup.is_none() { return },
            }
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: the TLS certificate is reloaded"),
                Err(err) => {
                    tracing::error!(error = %err, "SIGHUP: the TLS certificate cannot be reloaded; the current one stays");
                }
            }
        }
    });
}

/// Binds `addr` as `TcpListener::bind` does, with a larger backlog.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As mio's bind does: a restarted server binds its port again at once, past the TIME_WAIT
    // connections of the one before it. (On Windows the option would let another process take
    // the port over.)
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn run(
    listener: TcpListener,
    app: App,
    config: Arc<Config>,
    shared: SharedRef,
    stop: CancellationToken,
    done: watch::Sender<Option<Result<(), String>>>,
) {
    let stop_accepting = CancellationToken::new();
    let supervisor = shared.supervisor.clone();
    // Readiness turns false first; the listener keeps accepting through the drain delay so a
    // load balancer has time to stop sending before connections are refused.
    let drain = {
        let (stop, stop_accepting, shared, config) =
            (stop.clone(), stop_accepting.clone(), shared.clone(), config.clone());
        let supervisor = supervisor.clone();
        tokio::spawn(async move {
            let requested = tokio::select! {
                () = stop.cancelled() => true,
                _ = supervisor.wait() => false,
            };
            shared.ready.store(false, Ordering::Release);
            if requested {
                tracing::info!(delay = ?config.drain_delay, "endpoint draining");
                tokio::time::sleep(config.drain_delay).await;
            }
            stop_accepting.cancel();
        })
    };
    #[cfg(all(feature = "tls", unix))]
    if let Some(tls) = config.tls.clone() {
        reload_on_hangup(tls, stop.clone());
    }
    let acceptor = Acceptor {
        slots: Slots::new(config.max_connections, &config.probe_paths, shared.telemetry.clone()),
        app,
        config,
        shared,
        supervisor: supervisor.clone(),
    };
    loop {
        let (stream, remote) = tokio::select! {
            () = stop_accepting.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors or a connection reset before accept: back off
                    // briefly rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        if !acceptor.take(stream, remote).await {
            break;
        }
    }
    // Connections the kernel has completed but the loop has not taken yet would be reset
    // when the listener closes, requests and all: they are taken and served (their answers
    // close them). Only one that completes in the instant before the close can still be lost.
    let mut backlog = 0usize;
    while let Some(Ok((stream, remote))) = listener.accept().now_or_never() {
        if !acceptor.take(stream, remote).await {
            break;
        }
        backlog += 1;
    }
    drop(listener);
    tracing::info!(backlog, "listener closed, draining connections");
    let _ = drain.await;
    // After a restart-intensity failure this reports it; after a requested stop it is Ok.
    let result = supervisor.shutdown().await.map_err(|err| err.to_string());
    tracing::info!("endpoint stopped");
    done.send_replace(Some(result));
}

/// Takes up accepted connections: each gets a slot and a task of the supervisor's, or is
/// turned away (see [`Slots`]).
#[derive(Clone)]
struct Acceptor {
    slots: Arc<Slots>,
    app: App,
    config: Arc<Config>,
    shared: SharedRef,
    supervisor: Supervisor,
}

impl Acceptor {
    /// Takes up one connection; false once the supervisor admits no more children.
    ///
    /// When as many connections are being turned away as may be, it waits for one of them to
    /// end (half a second at most each) before accepting more: the connections after it wait
    /// in the listen backlog, and a health probe among them is late rather than reset.
    async fn take(&self, stream: TcpStream, remote: SocketAddr) -> bool {
        match self.slots.admit() {
            Admission::Admitted(slot) => self.serve(stream, remote, Some(slot)),
            Admission::Evicting => self.serve(stream, remote, None),
            Admission::Full => {
                self.turn_away(stream, remote).await;
                true
            }
        }
    }

    /// Serves a connection in its slot, or in the one being freed for it when `None`.
    fn serve(&self, stream: TcpStream, remote: SocketAddr, slot: Option<Slot>) -> bool {
        let this = self.clone();
        let spawned = self.supervisor.spawn_temporary("connection", move |token| async move {
            let slot = match slot {
                Some(slot) => slot,
                None => match this.slots.wait_evicted().await {
                    Some(slot) => slot,
                    None => return this.turn_away(stream, remote).await,
                },
            };
            let Acceptor { slots, app, config, shared, .. } = this;
            connection::serve(stream, remote, app, config, shared, (slots, slot), token).await;
        });
        spawned.is_ok()
    }

    /// Answers 503, or serves a health probe beyond the limit.
    async fn turn_away(&self, stream: TcpStream, remote: SocketAddr) {
        let this = self.clone();
        #[cfg(feature = "tls")]
        let tls = self.config.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let tls = false;
        self.slots
            .shed(stream, tls, move |stream, slot| {
                this.serve(stream, remote, Some(slot));
            })
            .await;
    }
}
