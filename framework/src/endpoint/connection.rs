//! One TCP connection served by hyper.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::activity::{Activity, Io, Socket};
use super::request::ConnService;
use super::slots::{Slot, Slots};
use super::{App, Config, ConnInfo, SharedRef};
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
    let _gauge = shared.telemetry.gauge(crate::instrument::GaugeKind::Connections);
    let _ = stream.set_nodelay(true);
    // Until its first request begins, a connection has the shorter of the two allowances, and
    // hyper's header read timeout only starts once the protocol is known, which takes a first
    // byte: a client that never sends one is held to the same allowance here.
    let start = Instant::now();
    let mut first_request = config.header_read_timeout.min(config.idle_timeout);
    if slot.probe {
        // A probe is a quick client (its handshake and request are moments away), and the
        // probe lane is small: a connection that dawdles in it is not one.
        first_request = first_request.min(PROBE_ALLOWANCE);
    }
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
    // them, which costs a few hundred instructions on every request of an HTTP/1 connection.
    // The whole preface goes to hyper's HTTP/2 directly; only a preface cut short (or no
    // bytes yet) leaves it to the automatic builder to decide.
    // A connection that is drained before its first bytes arrive still has a moment to send
    // them: it may have been waiting in the listener's backlog.
    let drained = async {
        token.cancelled().await;
        tokio::time::sleep(DRAIN_GRACE).await;
    };
    // Over TLS the protocol is the one ALPN agreed on (HTTP/2 only when the client asked for
    // `h2`); the handshake has the first request's allowance.
    let opening = async {
        #[cfg(feature = "tls")]
        if let Some(tls) = &config.tls {
            return match tls.acceptor().accept(stream).await {
                Ok(stream) => {
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                    let protocol = if h2 { Protocol::Http2 } else { Protocol::Http1 };
                    Some((Io::Tls(Box::new(stream)), protocol))
                }
                Err(err) => {
                    tracing::debug!(peer = %remote_addr, error = %err, "TLS handshake failed");
                    None
                }
            };
        }
        let protocol = sniff(&stream).await;
        Some((Io::Plain(stream), protocol))
    };
    let (io, protocol) = tokio::select! {
        biased;
        () = drained => return,
        () = activity.evicted() => return,
        () = tokio::time::sleep_until(start + first_request) => {
            tracing::debug!(peer = %remote_addr, "closing idle connection");
            return;
        }
        opened = opening => match opened {
            Some(opened) => opened,
            None => return,
        },
    };
    // On HTTP/1 the endpoint keeps the header read timeout itself, as the allowance between
    // requests (see `Activity`): hyper's arms a timer for every request head, which costs
    // about a thousand instructions a request.
    if protocol != Protocol::Http1 {
        activity.set_allowance(config.idle_timeout);
    }
    let tls = !matches!(io, Io::Plain(_));
    // Over TLS the probe lane takes a connection before its request can be seen: it answers
    // only the probe paths (see `Slots::shed`).
    let probes_only = (tls && slot.probe).then(|| config.probe_paths.clone());
    let service = ConnService {
        app,
        info: ConnInfo { remote_addr, shared },
        watch: activity.clone(),
        activity: activity.clone(),
        tls,
        probes_only,
    };
    // Only what hyper-util serves needs its builder, which the connection borrows.
    let mut builder;
    let mut conn = if protocol == Protocol::Http1 {
        let mut h1 = hyper::server::conn::http1::Builder::new();
        h1.header_read_timeout(None).max_buf_size(config.max_header_bytes.max(8192));
        let socket = Socket { io, activity: Some(activity.clone()), _slot: slot };
        Served::Http1(h1.serve_connection(TokioIo::new(socket), service).with_upgrades())
    } else if protocol == Protocol::Http2 {
        // Known to be HTTP/2 (the whole preface, or ALPN): hyper's HTTP/2 directly, without
        // the automatic builder's second read of the preface behind a rewinding wrapper. A
        // peer that stops reading stops answering PINGs too: its connection, and the answers
        // it holds, go after `send_timeout`.
        let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .keep_alive_interval(config.send_timeout)
            .keep_alive_timeout(config.send_timeout);
        let socket = Socket { io, activity: None, _slot: slot };
        Served::Http2(Box::pin(h2.serve_connection(TokioIo::new(socket), service)))
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
        let socket = Socket { io, activity: None, _slot: slot };
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

/// The longest a connection of the probe lane has for its first request (its TLS handshake
/// included).
const PROBE_ALLOWANCE: Duration = Duration::from_secs(1);

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
        app: App::Router(router),
        info: ConnInfo { remote_addr, shared },
        watch: activity.clone(),
        activity,
        tls: false,
        probes_only: None,
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

/// What a connection speaks, as far as its first bytes (or ALPN) tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// The first bytes cannot begin the HTTP/2 preface.
    Http1,
    /// The whole preface came, or ALPN agreed on `h2`.
    Http2,
    /// Part of the preface, or nothing yet: hyper-util's automatic builder reads on and
    /// decides.
    Unsure,
}

/// What the client's first bytes say: HTTP/1 when they are not the start of the HTTP/2
/// preface, HTTP/2 when they are the whole of it, unsure otherwise (and when the client
/// closes before sending any). The bytes are peeked, left for hyper.
async fn sniff(stream: &TcpStream) -> Protocol {
    const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut first = [0; 24];
    match stream.peek(&mut first).await {
        Ok(n) if n > 0 && first[..n] != H2_PREFACE[..n] => Protocol::Http1,
        Ok(24) => Protocol::Http2,
        _ => Protocol::Unsure,
    }
}

/// A connection served by hyper's HTTP/1 or HTTP/2 implementation directly, or by
/// hyper-util's automatic one while its first bytes leave the protocol open.
enum Served<H, A> {
    Http1(H),
    Http2(Pin<Box<Http2Conn>>),
    Auto(Pin<Box<A>>),
}

type Http1Conn = hyper::server::conn::http1::UpgradeableConnection<TokioIo<Socket>, ConnService>;
type Http2Conn =
    hyper::server::conn::http2::Connection<TokioIo<Socket>, ConnService, TokioExecutor>;
type AutoConn<'a> = auto::UpgradeableConnection<'a, TokioIo<Socket>, ConnService, TokioExecutor>;

impl Served<Http1Conn, AutoConn<'_>> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), crate::BoxError>> {
        match self {
            Self::Http1(conn) => Pin::new(conn).poll(cx).map_err(Into::into),
            Self::Http2(conn) => conn.as_mut().poll(cx).map_err(Into::into),
            Self::Auto(conn) => conn.as_mut().poll(cx),
        }
    }

    fn graceful_shutdown(&mut self) {
        match self {
            Self::Http1(conn) => Pin::new(conn).graceful_shutdown(),
            Self::Http2(conn) => conn.as_mut().graceful_shutdown(),
            Self::Auto(conn) => conn.as_mut().graceful_shutdown(),
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
        use super::Protocol::{Http1, Http2, Unsure};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for (sent, protocol) in [
            (&b"GET / HTTP/1.1\r\n"[..], Http1),
            (b"PUT", Http1),
            (b"P", Unsure),
            (b"PRI * HTTP/2.0", Unsure),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Http2),
            (b"PRI * HTTP/1.1\r\n", Http1),
            (b"", Unsure),
        ] {
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            client.write_all(sent).await.unwrap();
            if sent.is_empty() {
                client.shutdown().await.unwrap();
            }
            let got = tokio::time::timeout(Duration::from_secs(5), super::sniff(&server));
            assert_eq!(
                got.await.expect("an answer"),
                protocol,
                "{}",
                String::from_utf8_lossy(sent)
            );
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
