//! One TCP connection served by hyper.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{Config, ConnInfo, SharedRef};
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192));
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let idle_at = activity.idle_deadline();
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(peer = %remote_addr, error = %err, "connection ended with an error");
                }
                break;
            }
            () = token.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(idle_at), if !draining => {
                if activity.is_idle() {
                    tracing::debug!(peer = %remote_addr, "closing idle connection");
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
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

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
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
}

struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.served.store(true, Ordering::Release);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_ms.store(self.0.now_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
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
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let start = std::time::Instant::now();
        req.extensions_mut().insert(self.info.clone());
        let in_flight = InFlight::begin(&self.activity);
        let router = self.router.clone();
        let method = req.method().clone();
        // Plugs record into this span (the request id plug fills `request_id`), so every log
        // line of a request carries its method, path and id.
        let span = tracing::info_span!(
            "request",
            method = %method,
            path = %req.uri().path(),
            request_id = tracing::field::Empty,
        );
        Box::pin(
            async move {
                let resp = router.dispatch(req.map(Body::new)).await;
                drop(in_flight);
                let elapsed = start.elapsed();
                crate::telemetry::endpoint_stop(&method, resp.status(), elapsed);
                tracing::info!(
                    status = resp.status().as_u16(),
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "sent"
                );
                Ok(resp)
            }
            .instrument(span),
        )
    }
}
