//! The future of one routed request, written out by hand so that a request costs one boxed
//! future (its route's pipeline) and the endpoint can hold this one inline.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::header::{self, HeaderValue};
use http::{Request, Response};

use crate::controller::{ActionError, RenderError as _};
use crate::instrument::Telemetry;
use crate::supervisor::panic_message;
use crate::{Body, Conn};

/// Runs a routed request: its route's pipeline and action, with a panic in them answered as a
/// 500, or a response decided before any of it ran.
#[must_use = "futures do nothing unless polled"]
pub(crate) struct RouteFuture {
    state: State,
    is_head: bool,
}

enum State {
    Pipeline {
        run: BoxFuture<'static, Conn>,
        pattern: &'static str,
        /// When the dispatch began and where it is recorded, when this future records it
        /// itself (under layers, or outside an endpoint). The endpoint serving a router
        /// directly records it instead, from [`RouteFuture::dispatched`] and the times it
        /// reads anyway, so that its requests read the clock and find the route's histogram
        /// once.
        timing: Option<Box<Timing>>,
    },
    /// A pipeline that ran, for the endpoint to record: its route and whether it panicked.
    Dispatched { pattern: &'static str, panicked: bool },
    /// A request whose body is decoded first: rare enough to box as a whole.
    Boxed(BoxFuture<'static, Response<Body>>),
    /// The future of the tower service an endpoint serves instead of a router alone.
    Service(BoxFuture<'static, Result<Response<Body>, crate::BoxError>>),
    /// Boxed, as it is rare (a 404, a 405) and would otherwise make every request's future,
    /// which hyper and the endpoint move around, several times larger.
    Ready(Option<Box<Response<Body>>>),
}

/// What a route's future that records its own dispatch keeps.
pub(super) struct Timing {
    start: Instant,
    telemetry: Telemetry,
}

impl Timing {
    pub(super) fn now(telemetry: Telemetry) -> Box<Self> {
        Box::new(Self { start: Instant::now(), telemetry })
    }
}

impl RouteFuture {
    pub(super) fn pipeline(
        run: BoxFuture<'static, Conn>,
        pattern: &'static str,
        timing: Option<Box<Timing>>,
        is_head: bool,
    ) -> Self {
        Self { state: State::Pipeline { run, pattern, timing }, is_head }
    }

    /// After completion, the route whose pipeline ran and whether it panicked, for the
    /// endpoint to record; `None` when this future recorded it itself or no pipeline ran.
    pub(crate) fn dispatched(&self) -> Option<(&'static str, bool)> {
        match self.state {
            State::Dispatched { pattern, panicked } => Some((pattern, panicked)),
            _ => None,
        }
    }

    /// `run` strips a HEAD response itself.
    pub(crate) fn boxed(run: BoxFuture<'static, Response<Body>>) -> Self {
        Self { state: State::Boxed(run), is_head: false }
    }

    /// An endpoint's service's answer: an error or a panic in it answers a 500; with
    /// `is_head`, the answer loses its body here, after every layer saw it whole.
    pub(crate) fn service(
        run: BoxFuture<'static, Result<Response<Body>, crate::BoxError>>,
        is_head: bool,
    ) -> Self {
        Self { state: State::Service(run), is_head }
    }

    pub(crate) fn ready(resp: Response<Body>, is_head: bool) -> Self {
        Self { state: State::Ready(Some(Box::new(resp))), is_head }
    }
}

impl Future for RouteFuture {
    type Output = Response<Body>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        let this = &mut *self;
        let mut dispatched = None;
        let mut resp = match &mut this.state {
            State::Pipeline { run, pattern, timing } => {
                let pattern = *pattern;
                // What `FutureExt::catch_unwind` does, without a wrapper around the box.
                match std::panic::catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(conn)) => match timing.take() {
                        Some(timing) => {
                            let method = conn.method().clone();
                            let resp = conn.into_response();
                            let elapsed = timing.start.elapsed();
                            timing.telemetry.route_stop(pattern, &method, resp.status(), elapsed);
                            resp
                        }
                        None => {
                            dispatched = Some(State::Dispatched { pattern, panicked: false });
                            conn.into_response()
                        }
                    },
                    Err(panic) => {
                        let reason = panic_message(&*panic);
                        tracing::error!(route = pattern, reason = %reason, "action panicked");
                        match timing.take() {
                            Some(timing) => timing.telemetry.route_exception(pattern),
                            None => {
                                dispatched = Some(State::Dispatched { pattern, panicked: true });
                            }
                        }
                        internal_error()
                    }
                }
            }
            State::Dispatched { .. } => panic!("RouteFuture polled after completion"),
            State::Service(run) => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Ok(resp))) => resp,
                    Ok(Poll::Ready(Err(err))) => service_failed(&err),
                    Err(panic) => service_panicked(&*panic),
                }
            }
            State::Boxed(run) => match run.as_mut().poll(cx) {
                Poll::Ready(resp) => resp,
                Poll::Pending => return Poll::Pending,
            },
            State::Ready(resp) => *resp.take().expect("RouteFuture polled after completion"),
        };
        // The pipeline and its conn go now, not when hyper drops this future.
        this.state = dispatched.unwrap_or(State::Ready(None));
        if this.is_head {
            strip_head(&mut resp);
        }
        Poll::Ready(resp)
    }
}

/// The 500 for an error from the tower service an endpoint serves, logged.
pub(crate) fn service_failed(err: &crate::BoxError) -> Response<Body> {
    tracing::error!(error = %err, "the endpoint's service failed");
    internal_error()
}

/// The 500 for a panic in the tower service an endpoint serves, logged.
pub(crate) fn service_panicked(panic: &(dyn std::any::Any + Send)) -> Response<Body> {
    tracing::error!(reason = %panic_message(panic), "the endpoint's service panicked");
    internal_error()
}

fn internal_error() -> Response<Body> {
    let blank = Conn::from_request(Request::new(Body::empty()));
    ActionError::internal().render(blank).into_response()
}

/// HEAD answers like GET without the body, keeping the length the body would have had.
fn strip_head(resp: &mut Response<Body>) {
    let len = http_body::Body::size_hint(resp.body()).exact();
    if let (Some(len), false) = (len, resp.headers().contains_key(header::CONTENT_LENGTH)) {
        resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    *resp.body_mut() = Body::empty();
}

#[cfg(test)]
mod tests {
    /// Every request's future holds this one inline and hyper moves it around: the rare states
    /// are boxed to keep it at a few words (ARCHITECTURE.md, "A `Conn` is one pointer").
    #[test]
    fn a_route_future_is_a_few_words() {
        let size = std::mem::size_of::<super::RouteFuture>();
        assert!(size <= 56, "{size}");
    }
}
