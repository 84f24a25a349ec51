//! One request on a connection: the service hyper calls (the host check, the body watch, the
//! handoff to the router or the endpoint's service), the request's future with its span and
//! latency record, and a streamed answer that keeps its request in flight.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::activity::{Activity, InFlight};
use super::ConnInfo;
use super::{App, SharedRef};
use crate::router::RouteFuture;
use crate::Body;

pub(super) const CLOSE: http::HeaderValue = http::HeaderValue::from_static("close");

/// A streamed response body, which keeps its request in flight until hyper has sent it: the
/// connection is not idle while it streams.
pub(super) struct Streaming {
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

pub(super) struct ConnService {
    pub(super) app: App,
    pub(super) info: ConnInfo,
    /// The activity again, as the watch over request bodies.
    pub(super) watch: Arc<dyn crate::conn::ReadWatch>,
    pub(super) activity: Arc<Activity>,
    /// Whether the connection is TLS: its HTTP/1 requests get the `https` scheme.
    pub(super) tls: bool,
    /// On a connection the probe lane took over TLS, before its request could be seen: the
    /// probe paths, the only requests it serves (anything else is the 503 of a full endpoint).
    pub(super) probes_only: Option<Vec<String>>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = RequestFuture;

    fn call(&self, req: Request<Incoming>) -> RequestFuture {
        let start = Instant::now();
        let in_flight = InFlight::begin(&self.activity);
        let method = req.method().clone();
        let span = crate::otel::request_span(&req, self.info.remote_addr());
        // Routed here, outside the future, so the future holds the conn rather than the
        // request. The conn carries the connection info without inserting it into the
        // request's extensions (see `Conn::extensions`).
        let mut req = req.map(|incoming| {
            let mut body = Body::new(incoming);
            body.watch_reads(&self.watch);
            body
        });
        let http1 = req.version() < http::Version::HTTP_2;
        if self.tls && req.uri().scheme().is_none() {
            with_https_scheme(&mut req);
        }
        if let Some(paths) = &self.probes_only {
            if !super::slots::Slots::is_probe_request(paths, req.method(), req.uri().path()) {
                return RequestFuture {
                    run: turn_away(&req),
                    span,
                    start,
                    method,
                    in_flight,
                    http1,
                };
            }
        }
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

/// Gives an HTTP/1 request that came over TLS the `https` scheme (and its `Host` as the
/// authority), as an HTTP/2 request has from its `:scheme`.
fn with_https_scheme<B>(req: &mut Request<B>) {
    let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok());
    let Some(authority) = host.and_then(|h| h.parse::<http::uri::Authority>().ok()) else {
        // Without a valid host the request is refused below: its URI stays as it came.
        return;
    };
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(http::uri::Scheme::HTTPS);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
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

/// Answers larger than this, in memory, count against the endpoint's
/// [`max_unsent_body_bytes`](crate::endpoint::Config::max_unsent_body_bytes) until written.
const LARGE_ANSWER: usize = 16 * 1024;

/// A large answer's bytes, counted against the endpoint's budget until hyper has written them
/// and dropped the last reference (for HTTP/2, once flow control let them all out).
struct Unsent {
    bytes: bytes::Bytes,
    shared: SharedRef,
}

impl AsRef<[u8]> for Unsent {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Unsent {
    fn drop(&mut self) {
        self.shared.unsent_bodies.give_back(self.bytes.len());
    }
}

/// `resp`, whose body is `len` bytes in memory, held against the budget of answers waiting for
/// their clients; a 503 instead when the budget is spent (the answer is dropped at once).
fn hold_until_sent(mut resp: Response<Body>, len: usize, shared: &SharedRef) -> Response<Body> {
    if !shared.unsent_bodies.try_take(len) {
        crate::instrument::limited!(
            10,
            warn!(bytes = len, "answering 503: the endpoint holds its most unread answers")
        );
        let mut busy = Response::new(Body::from(
            "{\"errors\":{\"detail\":\"too many answers wait for their clients, retry\"}}",
        ));
        *busy.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        let headers = busy.headers_mut();
        headers
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("5"));
        return busy;
    }
    let shared = shared.clone();
    resp.body_mut().map_bytes(|bytes| bytes::Bytes::from_owner(Unsent { bytes, shared }));
    resp
}

/// The 503 of an endpoint whose connections are all busy, for a request that reached the probe
/// lane over TLS without being a probe; the connection closes after it.
fn turn_away(req: &Request<Body>) -> RouteFuture {
    let mut resp = Response::builder()
        .status(http::StatusCode::SERVICE_UNAVAILABLE)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::RETRY_AFTER, "1")
        .body(Body::from(super::slots::SHED_BODY))
        .unwrap_or_default();
    if req.version() < http::Version::HTTP_2 {
        resp.headers_mut().insert(http::header::CONNECTION, CLOSE);
    }
    RouteFuture::ready(resp, req.method() == http::Method::HEAD)
}

/// Answers a request the endpoint will not route with a 400, closing an HTTP/1 connection.
fn refuse(req: Request<Body>, problem: &'static str) -> RouteFuture {
    use crate::RenderError as _;
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
        // A large answer in memory is held against the endpoint's budget until written, or
        // replaced by a 503 here, before anything records its status.
        let resp = match (&this.in_flight.0, resp.body().as_bytes().map(<[u8]>::len)) {
            (Some(activity), Some(len)) if len > LARGE_ANSWER => {
                hold_until_sent(resp, len, &activity.shared)
            }
            _ => resp,
        };
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(this.start);
        // A router served directly leaves its dispatch to be recorded here: one record,
        // with the same clock reading, stands for the endpoint's and the route's.
        let dispatched = this.run.dispatched();
        crate::otel::record_response(
            &this.span,
            &this.method,
            resp.status(),
            dispatched.map(|(p, _)| p),
        );
        if let Some(activity) = &this.in_flight.0 {
            let telemetry = &activity.shared.telemetry;
            let route = dispatched.and_then(|(pattern, panicked)| (!panicked).then_some(pattern));
            telemetry.endpoint_stop(&this.method, resp.status(), elapsed, route);
            if let Some((pattern, true)) = dispatched {
                telemetry.route_exception(pattern);
            }
        }
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
    /// hyper keeps a connection's request future in one allocation it reuses; it stays under
    /// the allocator's small size classes (ARCHITECTURE.md, "A `Conn` is one pointer").
    #[test]
    fn a_request_future_stays_small() {
        let size = std::mem::size_of::<super::RequestFuture>();
        assert!(size <= 152, "{size}");
    }
}
