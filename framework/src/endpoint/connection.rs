//! One TCP connection served by hyper.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::app::ConnApp;
use super::slots::{Slot, Slots};
use super::{App, Config, ConnInfo, SharedRef};
use crate::router::RouteFuture;
use crate::Body;
#[cfg(feature = "fuzzing")]
use crate::Router;

/// Serves one connection until the client closes it, it idles out, or `token` asks it to drain.
pub(crate) async fn serve(
    stream: TcpStream,
    remote_addr: SocketAddr,
    app: App,
    config: Arc<Config>,
    shared: SharedRef,
    (slots, slot): (Arc<Slots>, Slot),
    token: CancellationToken,
) {
    let _gauge = crate::instrument::Gauge::open(crate::instrument::GaugeKind::Connections);
    let _ = stream.set_nodelay(true);
    // Until its first request begins, a connection has the shorter of the two allowances, and
    // hyper's header read timeout only starts once the protocol is known, which takes a first
    // byte: a client that never sends one is held to the same allowance here.
    let start = Instant::now();
    let first_request = config.header_read_timeout.min(config.idle_timeout);
    let activity = Arc::new(Activity::new(
        start,
        first_request,
        (config.body_read_timeout, config.send_timeout),
        shared.clone(),
    ));
    // A probe served beyond the limit answers one request and is never closed to make room:
    // its slot is not one a newcomer could take.
    activity.one_request.store(slot.probe, Ordering::Release);
    let _registered = (!slot.probe).then(|| slots.register(activity.clone()));
    // The protocol is read off the first bytes, left in the socket. hyper-util's automatic
    // builder would read them itself and then wrap the socket and the connection to replay
    // them, which costs a few hundred instructions on every request of an HTTP/1 connection;
    // it still serves what does not look like HTTP/1 (HTTP/2, or a preface cut short).
    // A connection that is drained before its first bytes arrive still has a moment to send
    // them: it may have been waiting in the listener's backlog.
    let drained = async {
        token.cancelled().await;
        tokio::time::sleep(DRAIN_GRACE).await;
    };
    let http1 = tokio::select! {
        biased;
        () = drained => return,
        () = activity.evicted() => return,
        () = tokio::time::sleep_until(start + first_request) => {
            tracing::debug!(peer = %remote_addr, "closing idle connection");
            return;
        }
        http1 = speaks_http1(&stream) => http1,
    };
    // On HTTP/1 the endpoint keeps the header read timeout itself, as the allowance between
    // requests (see `Activity`): hyper's arms a timer for every request head, which costs
    // about a thousand instructions a request.
    if !http1 {
        activity.set_allowance(config.idle_timeout);
    }
    let service = ConnService {
        app: app.connect(),
        info: ConnInfo { remote_addr, shared },
        watch: activity.clone(),
        activity: activity.clone(),
    };
    // Only what hyper-util serves needs its builder, which the connection borrows.
    let mut builder;
    let mut conn = if http1 {
        let mut h1 = hyper::server::conn::http1::Builder::new();
        h1.header_read_timeout(None).max_buf_size(config.max_header_bytes.max(8192));
        let socket = Socket { io: stream, activity: Some(activity.clone()), _slot: slot };
        Served::Http1(h1.serve_connection(TokioIo::new(socket), service).with_upgrades())
    } else {
        builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(config.max_header_bytes.max(8192));
        // A peer that stops reading stops answering PINGs too: its connection, and the
        // answers it holds, go after `send_timeout`.
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(config.send_timeout)
            .keep_alive_timeout(config.send_timeout);
        let socket = Socket { io: stream, activity: None, _slot: slot };
        Served::Auto(Box::pin(
            builder.serve_connection_with_upgrades(TokioIo::new(socket), service),
        ))
    };
    // The drain signal, the idle check and eviction are polled with their own waker, and
    // only after it fired: polling them on every wake-up of the connection (each read and
    // write) would cost a lock in the cancellation token and a timer check per request.
    let watchdog = &activity.watchdog;
    watchdog.fired.store(true, Ordering::Release);
    let watchdog_waker = Waker::from(watchdog.clone());
    let cancelled = token.cancelled();
    tokio::pin!(cancelled);
    let idle = tokio::time::sleep_until(activity.idle_deadline());
    tokio::pin!(idle);
    let mut draining = false;
    let result = std::future::poll_fn(|cx| loop {
        if let Poll::Ready(result) = conn.poll(cx) {
            return Poll::Ready(result);
        }
        watchdog.task.register(cx.waker());
        if !watchdog.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        if activity.is_evicted() {
            // Another client needs the slot, and this one was the longest waiting for its
            // client (see `Slots`).
            tracing::debug!(peer = %remote_addr, "closing connection: slot needed");
            return Poll::Ready(Ok(()));
        }
        let mut watchdog_cx = Context::from_waker(&watchdog_waker);
        let mut shut_down = !draining && cancelled.as_mut().poll(&mut watchdog_cx).is_ready();
        if shut_down {
            if let Served::Http1(_) = conn {
                // hyper's graceful shutdown closes an idle HTTP/1 connection at once, and a
                // request the client sent a moment before is lost with it. Instead the
                // connection stays open a little, answers what comes with `connection:
                // close`, and closes when idle.
                draining = true;
                shut_down = false;
                activity.drain_within(Instant::now(), DRAIN_GRACE);
                idle.as_mut().reset(activity.next_idle_check());
            }
        }
        while idle.as_mut().poll(&mut watchdog_cx).is_ready() {
            if activity.send_stalled(Instant::now()) {
                tracing::debug!(peer = %remote_addr, "closing connection: the client does not read");
                return Poll::Ready(Ok(()));
            }
            if !activity.is_idle() {
                idle.as_mut().reset(activity.next_idle_check());
                continue;
            }
            if let Served::Http1(_) = conn {
                // Nothing in flight and nothing left to send: hyper is waiting for a request
                // head, or has part of one. Either way its time is up.
                tracing::debug!(peer = %remote_addr, "closing connection: no request in time");
                return Poll::Ready(Ok(()));
            }
            tracing::debug!(peer = %remote_addr, "closing idle connection");
            shut_down = !draining;
            break;
        }
        if !shut_down {
            return Poll::Pending;
        }
        draining = true;
        // hyper acts on it when polled.
        conn.graceful_shutdown();
    })
    .await;
    if let Err(err) = result {
        tracing::debug!(peer = %remote_addr, error = %err, "connection ended with an error");
    }
}

const CLOSE: http::HeaderValue = http::HeaderValue::from_static("close");

/// How long an idle HTTP/1 connection stays open once the endpoint closes its listener: long
/// enough for a request already on its way to arrive and be answered.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Serves one HTTP/1 connection whose client sends `input`, `chunk` bytes at a time, then
/// closes its side; returns everything the server wrote. The request path is the endpoint's
/// own (hyper's parser, the host check, the body watch, the router, the answer's drain and
/// telemetry); only the first-bytes sniff and the connection's timers are left out. For the
/// whole-request fuzz target.
#[cfg(feature = "fuzzing")]
pub(crate) async fn serve_script(
    router: Router,
    shared: SharedRef,
    input: bytes::Bytes,
    chunk: usize,
) -> Vec<u8> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let activity = Arc::new(Activity::new(
        Instant::now(),
        Duration::from_secs(10),
        (Duration::from_secs(15), Duration::from_secs(30)),
        shared.clone(),
    ));
    let remote_addr = SocketAddr::from(([127, 0, 0, 1], 1));
    let service = ConnService {
        app: ConnApp::Router(router),
        info: ConnInfo { remote_addr, shared },
        watch: activity.clone(),
        activity,
    };
    let (client, server) = tokio::io::duplex(64 * 1024);
    let mut h1 = hyper::server::conn::http1::Builder::new();
    h1.header_read_timeout(None).max_buf_size(64 * 1024);
    let serving = h1.serve_connection(TokioIo::new(server), service);
    let (mut reader, mut writer) = tokio::io::split(client);
    let sending = async move {
        for piece in input.chunks(chunk.max(1)) {
            if writer.write_all(piece).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    };
    let mut output = Vec::new();
    let (_, _, _) = tokio::join!(serving, sending, reader.read_to_end(&mut output));
    output
}

/// Whether the client's first bytes can only be HTTP/1: they are not the start of the HTTP/2
/// preface. `false` too when the client closes before sending any.
async fn speaks_http1(stream: &TcpStream) -> bool {
    const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut first = [0; 24];
    match stream.peek(&mut first).await {
        Ok(n) if n > 0 => first[..n] != H2_PREFACE[..n],
        _ => false,
    }
}

/// A connection served by hyper's HTTP/1 implementation directly, or by hyper-util's
/// automatic one when it may be HTTP/2.
enum Served<H, A> {
    Http1(H),
    Auto(Pin<Box<A>>),
}

type Http1Conn = hyper::server::conn::http1::UpgradeableConnection<TokioIo<Socket>, ConnService>;
type AutoConn<'a> = auto::UpgradeableConnection<'a, TokioIo<Socket>, ConnService, TokioExecutor>;

impl Served<Http1Conn, AutoConn<'_>> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), crate::BoxError>> {
        match self {
            Self::Http1(conn) => Pin::new(conn).poll(cx).map_err(Into::into),
            Self::Auto(conn) => conn.as_mut().poll(cx),
        }
    }

    fn graceful_shutdown(&mut self) {
        match self {
            Self::Http1(conn) => Pin::new(conn).graceful_shutdown(),
            Self::Auto(conn) => conn.as_mut().graceful_shutdown(),
        }
    }
}

/// Wakes a connection's task for its drain signal or idle check, and says that it did.
struct Watchdog {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Watchdog {
    fn wake_by_ref_inner(&self) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Wake for Watchdog {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref_inner();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_by_ref_inner();
    }
}

/// Requests in flight and when the connection last went quiet, for the idle timeout and, on
/// HTTP/1, the header read timeout: a connection with no request in flight and no write
/// waiting for the client is waiting for a request head, and has the allowance for it.
pub(super) struct Activity {
    start: Instant,
    /// The allowance between requests, in milliseconds: the first request's until the
    /// protocol is known.
    allowance_ms: AtomicI64,
    /// The first request's allowance, in milliseconds.
    first_request_ms: i64,
    /// Requests from their head until their response body is sent.
    in_flight: AtomicUsize,
    /// When the connection last went quiet, in milliseconds after `start`: the end of its last
    /// request, or of a write that had to wait for the client. Before either, set so that the
    /// allowance ends `first_request` after `start`.
    quiet_ms: AtomicI64,
    /// Whether a write is waiting for the client to read.
    blocked: AtomicBool,
    /// Since when, in milliseconds after `start`, while `blocked`.
    blocked_ms: AtomicI64,
    /// The longest a request body may wait for its next piece.
    body_read_timeout: Duration,
    /// The longest a write may wait for the client to read.
    send_timeout: Duration,
    /// Request bodies waiting for the client.
    bodies_waiting: AtomicUsize,
    /// Chosen to be closed, to make room for a new connection.
    evicted: AtomicBool,
    watchdog: Arc<Watchdog>,
    /// The endpoint's state: once it drains, HTTP/1 answers carry `connection: close`.
    shared: SharedRef,
    /// Whether the connection serves one request only.
    one_request: AtomicBool,
}

impl Activity {
    fn new(
        start: Instant,
        first_request: Duration,
        (body_read_timeout, send_timeout): (Duration, Duration),
        shared: SharedRef,
    ) -> Self {
        Self {
            start,
            allowance_ms: AtomicI64::new(millis(first_request)),
            first_request_ms: millis(first_request),
            in_flight: AtomicUsize::new(0),
            quiet_ms: AtomicI64::new(0),
            blocked: AtomicBool::new(false),
            blocked_ms: AtomicI64::new(0),
            body_read_timeout,
            send_timeout,
            bodies_waiting: AtomicUsize::new(0),
            evicted: AtomicBool::new(false),
            watchdog: Arc::new(Watchdog {
                fired: AtomicBool::new(false),
                task: AtomicWaker::new(),
            }),
            shared,
            one_request: AtomicBool::new(false),
        }
    }

    /// Whether answers should close their connections: the endpoint drains, or the connection
    /// serves one request only.
    fn draining(&self) -> bool {
        !self.shared.is_ready() || self.one_request.load(Ordering::Relaxed)
    }

    /// Gives an HTTP/1 connection at most `grace` more to send a request, from `now`. Answers
    /// to requests it sends meanwhile close it (see [`Activity::draining`]).
    fn drain_within(&self, now: Instant, grace: Duration) {
        let grace = millis(grace);
        let now = millis(now.saturating_duration_since(self.start));
        let deadline = self.quiet_ms.load(Ordering::Acquire).saturating_add(self.allowance_ms());
        self.allowance_ms.store(grace, Ordering::Release);
        self.quiet_ms.store(deadline.min(now.saturating_add(grace)) - grace, Ordering::Release);
    }

    fn allowance_ms(&self) -> i64 {
        self.allowance_ms.load(Ordering::Acquire)
    }

    /// Sets the allowance between requests, before the first request; the first request's
    /// allowance stays as it was.
    fn set_allowance(&self, allowance: Duration) {
        let ms = millis(allowance);
        self.allowance_ms.store(ms, Ordering::Release);
        self.quiet_ms.store(self.first_request_ms - ms, Ordering::Release);
    }

    /// Since when the connection has been waiting for its client alone (for a request head,
    /// or for a request body), or `None` while the server has work on it: a request the
    /// application is handling, or an answer being written. A body is taken to wait since its
    /// request began, so a client that trickles it does not look new.
    pub(super) fn waiting_since(&self) -> Option<Instant> {
        if self.evicted.load(Ordering::Acquire) || self.blocked.load(Ordering::Acquire) {
            return None;
        }
        let waiting = self.in_flight.load(Ordering::Acquire) == 0
            || self.bodies_waiting.load(Ordering::Acquire) > 0;
        let quiet = u64::try_from(self.quiet_ms.load(Ordering::Acquire)).unwrap_or(0);
        waiting.then(|| self.start + Duration::from_millis(quiet))
    }

    /// Asks the connection to close.
    pub(super) fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.watchdog.wake_by_ref_inner();
    }

    fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Resolves once the connection is evicted; for the time before hyper serves it.
    fn evicted(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            self.watchdog.task.register(cx.waker());
            if self.is_evicted() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    fn quiet_since(&self, now: Instant) {
        let ms = millis(now.saturating_duration_since(self.start));
        self.quiet_ms.store(ms, Ordering::Release);
    }

    fn end_request(&self, now: Instant) {
        self.quiet_since(now);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    fn idle_deadline(&self) -> Instant {
        let quiet = self.quiet_ms.load(Ordering::Acquire);
        let ms = u64::try_from(quiet.saturating_add(self.allowance_ms())).unwrap_or(0);
        self.start + Duration::from_millis(ms)
    }

    /// Whether a write has waited for the client longer than the send timeout at `now`.
    fn send_stalled(&self, now: Instant) -> bool {
        self.blocked.load(Ordering::Acquire) && {
            let since = self.blocked_ms.load(Ordering::Acquire);
            let now = millis(now.saturating_duration_since(self.start));
            now.saturating_sub(since) >= millis(self.send_timeout)
        }
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0 || self.blocked.load(Ordering::Acquire)
    }

    fn is_idle(&self) -> bool {
        !self.busy() && Instant::now() >= self.idle_deadline()
    }

    /// When to look again. While a request runs or a write waits, the moment the connection
    /// goes quiet (which moves the deadline) is not known, so the next look is a whole
    /// allowance away rather than at a deadline that may already have passed, which would
    /// wake the connection again at once.
    fn next_idle_check(&self) -> Instant {
        let deadline = self.idle_deadline();
        if self.busy() {
            // A blocked write is looked at again within the send timeout.
            let allowance = Duration::from_millis(u64::try_from(self.allowance_ms()).unwrap_or(0))
                .min(self.send_timeout);
            deadline.max(Instant::now() + allowance)
        } else {
            deadline
        }
    }
}

impl crate::conn::ReadWatch for Activity {
    fn timeout(&self) -> Duration {
        self.body_read_timeout
    }

    fn buffer(&self, bytes: usize) -> bool {
        self.shared.buffered_bodies.try_take(bytes)
    }

    fn unbuffer(&self, bytes: usize) {
        self.shared.buffered_bodies.give_back(bytes);
    }

    fn waiting(&self, waiting: bool) {
        if waiting {
            self.bodies_waiting.fetch_add(1, Ordering::AcqRel);
        } else {
            self.bodies_waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// `d` in whole milliseconds, for [`Activity`]'s offsets; absurdly long ones are clamped well
/// short of overflowing a sum of two.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// One request counted in its connection's [`Activity`] until it ends or is dropped.
struct InFlight(Option<Arc<Activity>>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(Some(activity.clone()))
    }

    /// Ends the request at `now`, a time the caller read anyway.
    fn end(&mut self, now: Instant) {
        if let Some(activity) = self.0.take() {
            activity.end_request(now);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(activity) = self.0.take() {
            activity.end_request(Instant::now());
        }
    }
}

/// A connection's socket. On HTTP/1 it tells its [`Activity`] while a write waits for the
/// client: a slow reader of a large answer is not idle. It holds the connection's slot, which
/// an upgrade to a WebSocket takes along.
struct Socket {
    io: TcpStream,
    /// Let go once the connection is gone and only this socket holds it, as after an upgrade
    /// to a WebSocket, which then has no use for it.
    activity: Option<Arc<Activity>>,
    _slot: Slot,
}

impl Socket {
    fn note<T>(&self, written: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Some(activity) = &self.activity {
            let blocked = activity.blocked.load(Ordering::Acquire);
            match written {
                Poll::Pending if !blocked => {
                    let now = millis(Instant::now().saturating_duration_since(activity.start));
                    activity.blocked_ms.store(now, Ordering::Release);
                    activity.blocked.store(true, Ordering::Release);
                }
                Poll::Ready(_) if blocked => {
                    activity.quiet_since(Instant::now());
                    activity.blocked.store(false, Ordering::Release);
                }
                _ => {}
            }
        }
        written
    }
}

impl tokio::io::AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.activity.as_ref().is_some_and(|a| Arc::strong_count(a) == 1) {
            self.activity = None;
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.note(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.note(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A streamed response body, which keeps its request in flight until hyper has sent it: the
/// connection is not idle while it streams.
struct Streaming {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Streaming {
    type Data = bytes::Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

struct ConnService {
    app: ConnApp,
    info: ConnInfo,
    /// The activity again, as the watch over request bodies.
    watch: Arc<dyn crate::conn::ReadWatch>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = RequestFuture;

    fn call(&self, req: Request<Incoming>) -> RequestFuture {
        let start = Instant::now();
        let in_flight = InFlight::begin(&self.activity);
        let method = req.method().clone();
        // Plugs record into this span (the request id plug fills `request_id`), so every log
        // line of a request carries its method, path and id. With the level off it is a no-op.
        let span = tracing::info_span!(
            "request",
            method = %method,
            path = %crate::instrument::clip(req.uri().path()),
            request_id = tracing::field::Empty,
        );
        // Routed here, outside the future, so the future holds the conn rather than the
        // request. The conn carries the connection info without inserting it into the
        // request's extensions (see `Conn::extensions`).
        let req = req.map(|incoming| {
            let mut body = Body::new(incoming);
            body.watch_reads(&self.watch);
            body
        });
        let http1 = req.version() < http::Version::HTTP_2;
        if let Some(problem) = host_problem(&req) {
            return RequestFuture {
                run: refuse(req, problem),
                span,
                start,
                method,
                in_flight,
                http1,
            };
        }
        let run = self.app.call(req, &self.info);
        RequestFuture { run, span, start, method, in_flight, http1 }
    }
}

/// What is wrong with a request's `Host`, as RFC 9112 (3.2) has servers refuse: none on an
/// HTTP/1.1 request, more than one, or one that is not a host and port. Requests are routed by
/// path alone, but whatever reads the host (origin checks, redirects, logs) must see one.
fn host_problem<B>(req: &Request<B>) -> Option<&'static str> {
    let mut hosts = req.headers().get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => Some("more than one host header"),
        (None, _) if req.version() == http::Version::HTTP_11 => Some("missing host header"),
        (Some(host), _) => {
            let valid = http::uri::Authority::try_from(host.as_bytes())
                .is_ok_and(|a| !a.as_str().contains('@'));
            (!valid).then_some("invalid host header")
        }
        (None, _) => None,
    }
}

/// Answers a request the endpoint will not route with a 400, closing an HTTP/1 connection.
fn refuse(req: Request<Body>, problem: &'static str) -> RouteFuture {
    use crate::IntoResponse as _;
    let is_head = req.method() == http::Method::HEAD;
    let http1 = req.version() < http::Version::HTTP_2;
    let conn = crate::Conn::from_request(req);
    let mut conn = crate::ActionError::bad_request().with_detail(problem).render(conn);
    if http1 {
        conn.resp_headers_mut().insert(http::header::CONNECTION, CLOSE);
    }
    RouteFuture::ready(conn.into_response(), is_head)
}

/// One request on a connection: the router's future inside the request's span, then the
/// endpoint's latency record. A plain struct rather than a boxed `async` block: hyper keeps a
/// connection's request future in one allocation that it reuses, so this costs none.
#[must_use = "futures do nothing unless polled"]
pub(crate) struct RequestFuture {
    run: RouteFuture,
    span: tracing::Span,
    start: Instant,
    method: http::Method,
    in_flight: InFlight,
    http1: bool,
}

impl Future for RequestFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let resp = {
            let _entered = this.span.enter();
            match Pin::new(&mut this.run).poll(cx) {
                Poll::Ready(resp) => resp,
                Poll::Pending => return Poll::Pending,
            }
        };
        let now = Instant::now();
        let mut resp = resp;
        if this.http1 && this.in_flight.0.as_ref().is_some_and(|a| a.draining()) {
            // Clients learn that the connection ends after this answer, rather than finding it
            // closed under their next request.
            resp.headers_mut().insert(http::header::CONNECTION, CLOSE);
        }
        let resp = if resp.body().as_bytes().is_some() {
            this.in_flight.end(now);
            resp
        } else {
            let in_flight = InFlight(this.in_flight.0.take());
            resp.map(|body| Body::new(Streaming { body, _in_flight: in_flight }))
        };
        let elapsed = now.saturating_duration_since(this.start);
        crate::instrument::endpoint_stop(&this.method, resp.status(), elapsed);
        let _entered = this.span.enter();
        tracing::info!(
            status = resp.status().as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "sent"
        );
        Poll::Ready(Ok(resp))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// hyper keeps a connection's request future in one allocation it reuses; it stays under
    /// the allocator's small size classes (ARCHITECTURE.md, "A `Conn` is one pointer").
    #[test]
    fn a_request_future_stays_small() {
        assert!(std::mem::size_of::<super::RequestFuture>() <= 160);
    }

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    use crate::{Conn, Endpoint};

    async fn hello(conn: Conn) -> Conn {
        conn.text("hello")
    }

    async fn slow(conn: Conn) -> Conn {
        tokio::time::sleep(Duration::from_millis(600)).await;
        conn.text("slow")
    }

    crate::router! {
        pub TimerRouter;
        get "/hello" => hello;
        get "/slow" => slow;
    }

    /// Reads one `hello` response off a keep-alive connection.
    async fn read_hello(stream: &mut tokio::net::TcpStream) {
        let got = read_until(stream, b"hello").await;
        assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
    }

    /// Reads until `end` arrives, and returns everything read.
    async fn read_until(stream: &mut tokio::net::TcpStream, end: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.windows(end.len()).any(|w| w == end) {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .expect("a response in time")
                .unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[tokio::test]
    async fn http1_is_served_whatever_its_first_bytes_look_like() {
        let running = Endpoint::new(TimerRouter::new()).bind("127.0.0.1:0").start().await.unwrap();
        // A first byte that could begin the HTTP/2 preface leaves the choice to hyper-util,
        // which reads on; a first byte that cannot is served as HTTP/1 at once. Either way a
        // request arriving in pieces is answered, and the connection stays up for the next.
        for (first, rest, status) in [
            (&b"P"[..], &b"UT /hello HTTP/1.1\r\nhost: x\r\n\r\n"[..], &b"HTTP/1.1 405"[..]),
            (b"G", b"ET /hello HTTP/1.1\r\nhost: x\r\n\r\n", b"HTTP/1.1 200"),
            (b"PRI * HT", b"TP/1.1\r\nhost: x\r\n\r\n", b"HTTP/1.1 "),
        ] {
            let mut stream = tokio::net::TcpStream::connect(running.local_addr()).await.unwrap();
            stream.set_nodelay(true).unwrap();
            stream.write_all(first).await.unwrap();
            // Apart, so the server is likely to look at the first bytes alone.
            tokio::time::sleep(Duration::from_millis(30)).await;
            stream.write_all(rest).await.unwrap();
            let got = read_until(&mut stream, b"\r\n\r\n").await;
            assert!(got.starts_with(status), "{}", String::from_utf8_lossy(&got));
            if status == b"HTTP/1.1 405" || status == b"HTTP/1.1 200" {
                stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
                read_hello(&mut stream).await;
            }
        }
        running.shutdown();
        running.wait().await.unwrap();
    }

    #[tokio::test]
    async fn only_bytes_that_cannot_begin_the_http2_preface_count_as_http1() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for (sent, http1) in [
            (&b"GET / HTTP/1.1\r\n"[..], true),
            (b"PUT", true),
            (b"P", false),
            (b"PRI * HTTP/2.0", false),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false),
            (b"PRI * HTTP/1.1\r\n", true),
            (b"", false),
        ] {
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            client.write_all(sent).await.unwrap();
            if sent.is_empty() {
                client.shutdown().await.unwrap();
            }
            let got = tokio::time::timeout(Duration::from_secs(5), super::speaks_http1(&server));
            assert_eq!(got.await.expect("an answer"), http1, "{}", String::from_utf8_lossy(sent));
            // Peeked, not read: the bytes are still there for hyper.
            let mut left = vec![0; sent.len()];
            let mut server = server;
            server.read_exact(&mut left).await.unwrap();
            assert_eq!(left, sent);
        }
    }

    /// An endpoint with the given header read timeout.
    async fn with_header_read_timeout(timeout: Duration) -> crate::endpoint::RunningEndpoint {
        Endpoint::new(TimerRouter::new())
            .bind("127.0.0.1:0")
            .header_read_timeout(timeout)
            .start()
            .await
            .unwrap()
    }

    /// Reads until the server closes the stream (within 5 s); what was left unread.
    async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest));
        closed.await.expect("the server closes the connection").ok();
        rest
    }

    /// Sends `head`, a request head cut short, and checks that the server closes the stream
    /// once `timeout` has passed (less `early`: the timer may have started a little before),
    /// and not long after.
    async fn assert_stalled_head_cut(
        stream: &mut tokio::net::TcpStream,
        head: &[u8],
        timeout: Duration,
        early: Duration,
    ) {
        let stalled_at = Instant::now();
        stream.write_all(head).await.unwrap();
        read_until_closed(stream).await;
        let waited = stalled_at.elapsed();
        assert!(waited >= timeout - early, "cut after {waited:?}");
        assert!(waited < timeout * 4, "cut only after {waited:?}");
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_at_the_header_read_timeout() {
        const TIMEOUT: Duration = Duration::from_millis(200);
        let running = with_header_read_timeout(TIMEOUT).await;
        let opened = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(running.local_addr()).await.unwrap();
        let rest = read_until_closed(&mut stream).await;
        let waited = opened.elapsed();
        assert!(waited >= TIMEOUT - Duration::from_millis(50), "cut after {waited:?}");
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
        running.shutdown();
        running.wait().await.unwrap();
    }

    #[tokio::test]
    async fn a_stalled_head_is_cut_on_the_connections_hyper_util_serves_too() {
        const TIMEOUT: Duration = Duration::from_millis(300);
        let running = with_header_read_timeout(TIMEOUT).await;
        let mut stream = tokio::net::TcpStream::connect(running.local_addr()).await.unwrap();
        stream.set_nodelay(true).unwrap();
        // A first byte that may begin the HTTP/2 preface sends the connection to hyper-util,
        // which keeps hyper's own header read timeout.
        stream.write_all(b"P").await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let head = b"UT /hello HTTP/1.1\r\nhost: x\r\nx-half: ";
        assert_stalled_head_cut(&mut stream, head, TIMEOUT, Duration::from_millis(80)).await;
        running.shutdown();
        running.wait().await.unwrap();
    }

    #[tokio::test]
    async fn the_header_read_timeout_holds_for_every_head_on_a_connection() {
        const TIMEOUT: Duration = Duration::from_millis(300);
        let running = with_header_read_timeout(TIMEOUT).await;
        let mut stream = tokio::net::TcpStream::connect(running.local_addr()).await.unwrap();
        // Requests spread over more than one timeout: each head gets its own allowance, counted
        // from the end of the answer before.
        for _ in 0..4 {
            tokio::time::sleep(TIMEOUT / 3).await;
            stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
            read_hello(&mut stream).await;
        }
        // A head that stalls is still cut at the timeout, which runs from the moment the
        // server began waiting for it (the end of the answer before).
        let head = b"GET /hello HTTP/1.1\r\nhost: x\r\nx-half: ";
        assert_stalled_head_cut(&mut stream, head, TIMEOUT, Duration::from_millis(50)).await;
        running.shutdown();
        running.wait().await.unwrap();
    }

    /// CPU time, in clock ticks, of this process's threads named `name`.
    fn cpu_ticks_of_threads(name: &str) -> u64 {
        let mut ticks = 0;
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
            let Some((head, rest)) = stat.rsplit_once(')') else { continue };
            if !head.ends_with(&format!("({name}")) {
                continue;
            }
            let fields: Vec<&str> = rest.split_whitespace().collect();
            ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        }
        ticks
    }

    #[test]
    fn a_request_longer_than_the_idle_timeout_does_not_keep_the_connection_busy() {
        const THREAD: &str = "idle-check";
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(THREAD)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let running = Endpoint::new(TimerRouter::new())
                .bind("127.0.0.1:0")
                .idle_timeout(Duration::from_millis(100))
                .start()
                .await
                .unwrap();
            let before = cpu_ticks_of_threads(THREAD);
            let mut stream = tokio::net::TcpStream::connect(running.local_addr()).await.unwrap();
            stream.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            while !got.ends_with(b"slow") {
                let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                    .await
                    .expect("the slow answer in time")
                    .unwrap();
                assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&buf[..n]);
            }
            // The request outlived the idle deadline for 500 ms: waking for it over and over
            // would have used most of that on the server's thread (a clock tick is 10 ms).
            let used = cpu_ticks_of_threads(THREAD) - before;
            assert!(used < 15, "{used} ticks of CPU while one request waited");
            running.shutdown();
            running.wait().await.unwrap();
        });
    }
}
