//! What the endpoint knows of a connection's activity: requests in flight, when it went quiet,
//! a write waiting for the client, and the allowances (idle, header read, body read, send)
//! measured from them; the socket wrapper that notes writes; the in-flight guard of a request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::slots::Slot;
use super::SharedRef;

/// Wakes a connection's task for its drain signal or idle check, and says that it did.
pub(super) struct Watchdog {
    pub(super) fired: AtomicBool,
    pub(super) task: AtomicWaker,
}

impl Watchdog {
    pub(super) fn wake_by_ref_inner(&self) {
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
    pub(super) watchdog: Arc<Watchdog>,
    /// The endpoint's state: once it drains, HTTP/1 answers carry `connection: close`; its
    /// telemetry records each request.
    pub(super) shared: SharedRef,
    /// Whether the connection serves one request only.
    pub(super) one_request: AtomicBool,
}

impl Activity {
    pub(super) fn new(
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
    pub(super) fn draining(&self) -> bool {
        !self.shared.is_ready() || self.one_request.load(Ordering::Relaxed)
    }

    /// Gives an HTTP/1 connection at most `grace` more to send a request, from `now`. Answers
    /// to requests it sends meanwhile close it (see [`Activity::draining`]).
    pub(super) fn drain_within(&self, now: Instant, grace: Duration) {
        let grace = millis(grace);
        let now = millis(now.saturating_duration_since(self.start));
        let deadline = self.quiet_ms.load(Ordering::Acquire).saturating_add(self.allowance_ms());
        self.allowance_ms.store(grace, Ordering::Release);
        self.quiet_ms.store(deadline.min(now.saturating_add(grace)) - grace, Ordering::Release);
    }

    pub(super) fn allowance_ms(&self) -> i64 {
        self.allowance_ms.load(Ordering::Acquire)
    }

    /// Sets the allowance between requests, before the first request; the first request's
    /// allowance stays as it was.
    pub(super) fn set_allowance(&self, allowance: Duration) {
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

    pub(super) fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Resolves once the connection is evicted; for the time before hyper serves it.
    pub(super) fn evicted(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            self.watchdog.task.register(cx.waker());
            if self.is_evicted() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    pub(super) fn quiet_since(&self, now: Instant) {
        let ms = millis(now.saturating_duration_since(self.start));
        self.quiet_ms.store(ms, Ordering::Release);
    }

    pub(super) fn end_request(&self, now: Instant) {
        self.quiet_since(now);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    pub(super) fn idle_deadline(&self) -> Instant {
        let quiet = self.quiet_ms.load(Ordering::Acquire);
        let ms = u64::try_from(quiet.saturating_add(self.allowance_ms())).unwrap_or(0);
        self.start + Duration::from_millis(ms)
    }

    /// Whether a write has waited for the client longer than the send timeout at `now`.
    pub(super) fn send_stalled(&self, now: Instant) -> bool {
        self.blocked.load(Ordering::Acquire) && {
            let since = self.blocked_ms.load(Ordering::Acquire);
            let now = millis(now.saturating_duration_since(self.start));
            now.saturating_sub(since) >= millis(self.send_timeout)
        }
    }

    pub(super) fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0 || self.blocked.load(Ordering::Acquire)
    }

    pub(super) fn is_idle(&self) -> bool {
        !self.busy() && Instant::now() >= self.idle_deadline()
    }

    /// When to look again. While a request runs or a write waits, the moment the connection
    /// goes quiet (which moves the deadline) is not known, so the next look is a whole
    /// allowance away rather than at a deadline that may already have passed, which would
    /// wake the connection again at once.
    pub(super) fn next_idle_check(&self) -> Instant {
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
pub(super) struct InFlight(pub(super) Option<Arc<Activity>>);

impl InFlight {
    pub(super) fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(Some(activity.clone()))
    }

    /// Ends the request at `now`, a time the caller read anyway.
    pub(super) fn end(&mut self, now: Instant) {
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
pub(super) struct Socket {
    pub(super) io: Io,
    /// Let go once the connection is gone and only this socket holds it, as after an upgrade
    /// to a WebSocket, which then has no use for it.
    pub(super) activity: Option<Arc<Activity>>,
    pub(super) _slot: Slot,
}

/// A connection's bytes: in the clear, or through TLS.
pub(super) enum Io {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// `$io` (an `Io`) as the stream it holds, pinned, for one call.
macro_rules! with_io {
    ($io:expr, |$stream:ident| $call:expr) => {
        match $io {
            Io::Plain($stream) => {
                let $stream = Pin::new($stream);
                $call
            }
            #[cfg(feature = "tls")]
            Io::Tls($stream) => {
                let $stream = Pin::new(&mut **$stream);
                $call
            }
        }
    };
}

impl Socket {
    pub(super) fn note<T>(&self, written: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
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
        with_io!(&mut self.io, |io| io.poll_read(cx, buf))
    }
}

impl tokio::io::AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = with_io!(&mut self.io, |io| io.poll_write(cx, buf));
        self.note(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = with_io!(&mut self.io, |io| io.poll_write_vectored(cx, bufs));
        self.note(written)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(io) => io.is_write_vectored(),
            #[cfg(feature = "tls")]
            Io::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        with_io!(&mut self.io, |io| io.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        with_io!(&mut self.io, |io| io.poll_shutdown(cx))
    }
}
