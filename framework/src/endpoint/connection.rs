//! One TCP connection served by hyper.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

use super::{Config, ConnInfo, SharedRef};
use crate::router::RouteFuture;
use crate::{Body, Router};

/// Serves one connection until the client closes it, it idles out, or `token` asks it to drain.
pub(crate) async fn serve(
    stream: TcpStream,
    remote_addr: SocketAddr,
    router: Router,
    config: Arc<Config>,
    shared: SharedRef,
    token: CancellationToken,
) {
    let _gauge = crate::telemetry::Gauge::open(crate::telemetry::GaugeKind::Connections);
    let _ = stream.set_nodelay(true);
    // hyper's header read timeout only starts once the protocol is known, which takes a
    // first byte: a client that never sends one is held to the same allowance here instead.
    let first_request = config.header_read_timeout.min(config.idle_timeout);
    let activity = Arc::new(Activity::new(config.idle_timeout, first_request));
    let service =
        ConnService { router, info: ConnInfo { remote_addr, shared }, activity: activity.clone() };
    // The protocol is read off the first bytes, left in the socket. hyper-util's automatic
    // builder would read them itself and then wrap the socket and the connection to replay
    // them, which costs a few hundred instructions on every request of an HTTP/1 connection;
    // it still serves what does not look like HTTP/1 (HTTP/2, or a preface cut short).
    let http1 = tokio::select! {
        biased;
        () = token.cancelled() => return,
        () = tokio::time::sleep_until(activity.idle_deadline()) => {
            tracing::debug!(peer = %remote_addr, "closing idle connection");
            return;
        }
        http1 = speaks_http1(&stream) => http1,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let mut conn = if http1 {
        let mut h1 = hyper::server::conn::http1::Builder::new();
        h1.timer(ReusingTimer::default())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(config.max_header_bytes.max(8192));
        Served::Http1(h1.serve_connection(TokioIo::new(stream), service).with_upgrades())
    } else {
        builder
            .http1()
            .timer(ReusingTimer::default())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(config.max_header_bytes.max(8192));
        builder.http2().timer(TokioTimer::new());
        Served::Auto(Box::pin(
            builder.serve_connection_with_upgrades(TokioIo::new(stream), service),
        ))
    };
    // The drain signal and the idle check are polled with their own waker, and only after it
    // fired: polling them on every wake-up of the connection (each read and write) would cost
    // a lock in the cancellation token and a timer check per request.
    let watchdog = Arc::new(Watchdog { fired: AtomicBool::new(true), task: AtomicWaker::new() });
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
        if draining {
            return Poll::Pending;
        }
        watchdog.task.register(cx.waker());
        if !watchdog.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut watchdog_cx = Context::from_waker(&watchdog_waker);
        if cancelled.as_mut().poll(&mut watchdog_cx).is_ready() {
            draining = true;
            conn.graceful_shutdown();
            // hyper acts on it when polled.
            continue;
        }
        while idle.as_mut().poll(&mut watchdog_cx).is_ready() {
            if activity.is_idle() {
                tracing::debug!(peer = %remote_addr, "closing idle connection");
                draining = true;
                conn.graceful_shutdown();
                break;
            }
            idle.as_mut().reset(activity.next_idle_check());
        }
        if !draining {
            return Poll::Pending;
        }
    })
    .await;
    if let Err(err) = result {
        tracing::debug!(peer = %remote_addr, error = %err, "connection ended with an error");
    }
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

type Http1Conn = hyper::server::conn::http1::UpgradeableConnection<TokioIo<TcpStream>, ConnService>;
type AutoConn<'a> = auto::UpgradeableConnection<'a, TokioIo<TcpStream>, ConnService, TokioExecutor>;

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

impl Wake for Watchdog {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Requests in flight and when the last one ended, for the idle timeout.
struct Activity {
    start: Instant,
    idle: Duration,
    /// How long the connection may wait for its first request.
    first_request: Duration,
    in_flight: AtomicUsize,
    /// Whether any request has begun.
    served: AtomicBool,
    last_ms: AtomicU64,
}

impl Activity {
    fn new(idle: Duration, first_request: Duration) -> Self {
        Self {
            start: Instant::now(),
            idle,
            first_request,
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            last_ms: AtomicU64::new(0),
        }
    }

    fn end_request(&self, now: Instant) {
        let ms = u64::try_from(now.saturating_duration_since(self.start).as_millis());
        self.last_ms.store(ms.unwrap_or(u64::MAX), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    fn idle_deadline(&self) -> Instant {
        if !self.served.load(Ordering::Acquire) {
            return self.start + self.first_request;
        }
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Acquire)) + self.idle
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= self.idle_deadline()
    }

    /// When to look again. While a request runs, its end (which moves the deadline) is not
    /// known, so the next look is a whole timeout away rather than at a deadline that may
    /// already have passed, which would wake the connection again at once.
    fn next_idle_check(&self) -> Instant {
        let deadline = self.idle_deadline();
        if self.in_flight.load(Ordering::Acquire) == 0 {
            deadline
        } else {
            deadline.max(Instant::now() + self.idle)
        }
    }
}

/// One request counted in its connection's [`Activity`] until it ends or is dropped.
struct InFlight(Option<Arc<Activity>>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.served.store(true, Ordering::Release);
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

#[derive(Clone)]
struct ConnService {
    router: Router,
    info: ConnInfo,
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
            path = %req.uri().path(),
            request_id = tracing::field::Empty,
        );
        // Routed here, outside the future, so the future holds the conn rather than the
        // request. The conn carries the connection info without inserting it into the
        // request's extensions (see `Conn::extensions`).
        let routed = self.router.route(req.map(Body::new), Some(self.info.clone()));
        let run = self.router.run(routed);
        RequestFuture { run, span, start, method, in_flight }
    }
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
        this.in_flight.end(now);
        let elapsed = now.saturating_duration_since(this.start);
        crate::telemetry::endpoint_stop(&this.method, resp.status(), elapsed);
        let _entered = this.span.enter();
        tracing::info!(
            status = resp.status().as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "sent"
        );
        Poll::Ready(Ok(resp))
    }
}

/// hyper's timer for an HTTP/1 connection, which keeps one tokio sleep per connection.
///
/// hyper arms the header read timeout for every request head and drops it once the head is
/// in; with a fresh tokio sleep each time, every request would allocate a timer entry and
/// insert it into, then remove it from, the runtime's timer wheel under its lock. Here the
/// dropped sleep goes back to the connection and serves the next head. A later deadline is
/// only noted: the sleep still fires at the earlier one, and is pushed back then if the head
/// has not timed out, so a request costs no timer work at all.
#[derive(Clone, Default)]
struct ReusingTimer {
    spare: Arc<Mutex<Option<SpareSleep>>>,
}

/// The connection's tokio sleep, between two heads.
struct SpareSleep {
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// The waker the sleep was last polled with, while that poll's registration holds: polling
    /// again with the same waker would only register it again, and hyper polls the timeout
    /// every time a head is not complete yet, which is at least once per request.
    registered: Option<Waker>,
}

impl hyper::rt::Timer for ReusingTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let deadline = Instant::from_std(deadline);
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).take();
        let spare = match spare {
            Some(mut spare) => {
                // Only an earlier deadline needs the timer now; see `ReusedSleep::poll`.
                if deadline < spare.sleep.deadline() {
                    spare.reset(deadline);
                }
                spare
            }
            None => {
                SpareSleep { sleep: Box::pin(tokio::time::sleep_until(deadline)), registered: None }
            }
        };
        Box::pin(ReusedSleep { spare: Some(spare), deadline, home: self.spare.clone() })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<ReusedSleep>() {
            Some(mut reused) => {
                let deadline = Instant::from_std(new_deadline);
                reused.deadline = deadline;
                if let Some(spare) = reused.spare.as_mut() {
                    spare.reset(deadline);
                }
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    fn now(&self) -> std::time::Instant {
        // tokio's clock, which tests may pause, like the sleeps it drives.
        Instant::now().into_std()
    }
}

impl SpareSleep {
    fn reset(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(deadline);
        self.registered = None;
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(waker) = &self.registered {
            // Still in the timer wheel, set to wake this same task: nothing to do. Once it
            // fires it leaves the wheel, and the poll below sees it.
            if waker.will_wake(cx.waker()) && !self.sleep.is_elapsed() {
                return Poll::Pending;
            }
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Pending => {
                if !self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    self.registered = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Poll::Ready(()) => {
                self.registered = None;
                Poll::Ready(())
            }
        }
    }
}

/// A connection's tokio sleep lent to hyper; it goes back to the connection when dropped.
struct ReusedSleep {
    /// Set to fire at or before `deadline`.
    spare: Option<SpareSleep>,
    deadline: Instant,
    home: Arc<Mutex<Option<SpareSleep>>>,
}

impl Future for ReusedSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let Some(spare) = self.spare.as_mut() else { return Poll::Ready(()) };
        if spare.poll(cx).is_pending() {
            return Poll::Pending;
        }
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        // It fired for an earlier head's deadline: wait for this one's.
        spare.reset(deadline);
        spare.poll(cx)
    }
}

impl hyper::rt::Sleep for ReusedSleep {}

impl Drop for ReusedSleep {
    fn drop(&mut self) {
        if let Some(spare) = self.spare.take() {
            *self.home.lock().unwrap_or_else(|e| e.into_inner()) = Some(spare);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        let running = Endpoint::new(TimerRouter::new())
            .bind("127.0.0.1:0".parse().unwrap())
            .start()
            .await
            .unwrap();
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
            .bind("127.0.0.1:0".parse().unwrap())
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
    async fn the_header_read_timeout_holds_for_every_head_on_a_connection() {
        const TIMEOUT: Duration = Duration::from_millis(300);
        let running = with_header_read_timeout(TIMEOUT).await;
        let mut stream = tokio::net::TcpStream::connect(running.local_addr()).await.unwrap();
        // Requests spread over more than one timeout: each head gets its own allowance, so the
        // timer reused from the head before must have moved on with them.
        for _ in 0..4 {
            tokio::time::sleep(TIMEOUT / 3).await;
            stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
            read_hello(&mut stream).await;
        }
        // A head that stalls is still cut at the timeout, which runs from the moment the
        // server began waiting for it (the end of the answer before).
        let stalled_at = Instant::now();
        stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\nx-half: ").await.unwrap();
        read_until_closed(&mut stream).await;
        let waited = stalled_at.elapsed();
        assert!(waited >= TIMEOUT - Duration::from_millis(50), "cut after {waited:?}");
        assert!(waited < TIMEOUT * 4, "cut only after {waited:?}");
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
                .bind("127.0.0.1:0".parse().unwrap())
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
