//! OpenTelemetry traces (feature `otel`): a server span per request, a span per channel join
//! and per message a channel handles, the caller's W3C trace context continued, and OTLP/HTTP
//! export configured by the standard `OTEL_*` variables.
//!
//! The endpoint instruments with `tracing` spans whose fields follow OpenTelemetry's semantic
//! conventions; `Otel::layer` is the `tracing-opentelemetry` layer that turns them into
//! OpenTelemetry spans, composed with the application's log layers (`Otel` has the example;
//! docs/observability.md the whole setup).
//!
//! What the endpoint records once OpenTelemetry is on:
//!
//! - **Requests**: a `SERVER` span named `GET /api/rooms/:id` (the method and the route's
//!   pattern, never the raw path) with `http.request.method`, `http.route`,
//!   `http.response.status_code`, `url.path`, `server.address` and `client.address`; a `5xx`
//!   sets its status to error. An incoming `traceparent` (and `tracestate`) makes it a child
//!   of the caller's span. The span's `trace_id` and `request_id` fields go into every log line
//!   of the request, text or JSON.
//! - **Channels**: a `CONSUMER` span `join room:*` (the route's pattern) per join, a child of
//!   the request that opened the socket, and a span `handle_in room:*` per message, linked to
//!   its join rather than a child of it, so a socket open for hours does not make one endless
//!   trace. Both carry `messaging.system` (`phoenix`), `messaging.destination.name` (the topic)
//!   and `messaging.destination.template` (the pattern); a message also `phoenix.event`.
//! - **Calls out**: `inject` writes the current span's context into a request's headers.
//!
//! Without the feature, or with it but no `Otel` built, the request span is the plain one
//! the logs have always had (`method`, `path`, `request_id`) and channels open no span.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::Empty;

/// Whether an `Otel` was built: the endpoint then records the conventions' spans.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether OpenTelemetry spans are being recorded.
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The span of one request: with OpenTelemetry on, named and filled as the HTTP conventions
/// say and continuing the caller's trace; otherwise the plain one.
#[inline]
pub(crate) fn request_span<B>(
    req: &http::Request<B>,
    client: std::net::SocketAddr,
) -> tracing::Span {
    if !active() {
        // Plugs record into this span (the request id plug fills `request_id`), so every log
        // line of a request carries its method, path and id. With the level off it is a
        // no-op: nothing is evaluated.
        return tracing::info_span!(
            "request",
            method = %req.method(),
            path = %crate::instrument::clip(req.uri().path()),
            request_id = Empty,
        );
    }
    otel_request_span(req, client)
}

/// [`request_span`] with OpenTelemetry on, out of the common path.
#[inline(never)]
fn otel_request_span<B>(req: &http::Request<B>, client: std::net::SocketAddr) -> tracing::Span {
    let path = crate::instrument::clip(req.uri().path());
    // `host:port` from the URI (HTTP/2) or the `Host` header (HTTP/1), without the port.
    let authority = req.uri().authority().cloned().or_else(|| {
        let host = req.headers().get(http::header::HOST)?;
        http::uri::Authority::try_from(host.as_bytes()).ok()
    });
    let host = authority.as_ref().map_or("", http::uri::Authority::host);
    let span = tracing::info_span!(
        "request",
        otel.name = %req.method(),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %req.method(),
        http.route = Empty,
        http.response.status_code = Empty,
        url.path = %path,
        server.address = %crate::instrument::clip(host),
        client.address = %client.ip(),
        request_id = Empty,
        trace_id = Empty,
    );
    #[cfg(feature = "otel")]
    export::continue_trace(&span, req.headers());
    span
}

/// Records the answer on a request's span: its status, and the route that served it.
pub(crate) fn record_response(
    span: &tracing::Span,
    method: &http::Method,
    status: http::StatusCode,
    route: Option<&str>,
) {
    if !active() {
        return;
    }
    span.record("http.response.status_code", status.as_u16());
    if let Some(route) = route {
        span.record("http.route", route);
        // The span started with the method for a name (the route was not known yet): an
        // OpenTelemetry span is renamed through its own API.
        #[cfg(feature = "otel")]
        export::rename(span, format!("{method} {route}"));
        #[cfg(not(feature = "otel"))]
        let _ = method;
    }
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}

/// The trace a socket's channels continue: the context of the request that opened it.
#[derive(Clone, Default)]
pub(crate) struct Parent {
    // Boxed: a socket keeps it for its whole life, and is usually not traced.
    #[cfg(feature = "otel")]
    cx: Option<Box<opentelemetry::Context>>,
}

impl std::fmt::Debug for Parent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Parent")
    }
}

impl Parent {
    /// The current span's context, when OpenTelemetry is on.
    pub(crate) fn current() -> Self {
        if !active() {
            return Self::default();
        }
        #[cfg(feature = "otel")]
        {
            use tracing_opentelemetry::OpenTelemetrySpanExt as _;
            Self { cx: Some(Box::new(tracing::Span::current().context())) }
        }
        #[cfg(not(feature = "otel"))]
        Self::default()
    }
}

/// The span of a channel's join, a child of the request that opened its socket; disabled
/// when OpenTelemetry is off.
pub(crate) fn join_span(topic: &str, pattern: &str, parent: &Parent) -> tracing::Span {
    if !active() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "join",
        otel.name = %format_args!("join {pattern}"),
        otel.kind = "consumer",
        messaging.system = "phoenix",
        messaging.operation.type = "process",
        messaging.destination.name = %crate::instrument::clip(topic),
        messaging.destination.template = %pattern,
    );
    #[cfg(feature = "otel")]
    if let Some(cx) = &parent.cx {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let _ = span.set_parent((**cx).clone());
    }
    #[cfg(not(feature = "otel"))]
    let _ = parent;
    span
}

/// What a channel's messages link to: its join's span, once that span has ended.
#[derive(Clone, Default)]
pub(crate) struct Link {
    #[cfg(feature = "otel")]
    cx: Option<opentelemetry::trace::SpanContext>,
}

impl Link {
    /// The link to `span` (nothing when OpenTelemetry is off).
    pub(crate) fn to(span: &tracing::Span) -> Self {
        if !active() || span.is_disabled() {
            return Self::default();
        }
        #[cfg(feature = "otel")]
        {
            use opentelemetry::trace::TraceContextExt as _;
            use tracing_opentelemetry::OpenTelemetrySpanExt as _;
            let cx = span.context().span().span_context().clone();
            Self { cx: cx.is_valid().then_some(cx) }
        }
        #[cfg(not(feature = "otel"))]
        Self::default()
    }
}

/// The span of one message a channel handles, linked to its join; disabled when
/// OpenTelemetry is off.
pub(crate) fn handle_in_span(
    topic: &str,
    pattern: &str,
    event: &str,
    join: &Link,
) -> tracing::Span {
    if !active() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "handle_in",
        otel.name = %format_args!("handle_in {pattern}"),
        otel.kind = "consumer",
        messaging.system = "phoenix",
        messaging.operation.type = "process",
        messaging.destination.name = %crate::instrument::clip(topic),
        messaging.destination.template = %pattern,
        phoenix.event = %crate::instrument::clip(event),
    );
    #[cfg(feature = "otel")]
    if let Some(cx) = &join.cx {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        span.add_link(cx.clone());
    }
    #[cfg(not(feature = "otel"))]
    let _ = join;
    span
}

#[cfg(feature = "otel")]
mod export;
#[cfg(feature = "otel")]
pub use export::{inject, Otel, OtelError};
