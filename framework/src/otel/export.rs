//! The OpenTelemetry side: the tracer provider and its OTLP/HTTP exporter, the propagator,
//! the layer, and the trace context in and out of HTTP headers.

use std::fmt;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::ACTIVE;

/// Traces exported over OTLP/HTTP (protobuf) to a collector: build one at startup, add its
/// [`layer`](Otel::layer) to the subscriber, and [`shutdown`](Otel::shutdown) at exit to
/// send what is batched.
///
/// The standard variables configure it: `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_EXPORTER_OTLP_HEADERS`,
/// `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (default `parentbased_always_on`), the
/// batch's `OTEL_BSP_*`; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off.
///
/// The endpoint's spans are at the `INFO` level: a filter applied to the whole subscriber
/// (`RUST_LOG=warn` as a global `EnvFilter`) drops them before the layer sees them. Filter the
/// log layers alone, as below and in docs/observability.md.
///
/// # Examples
///
/// ```no_run
/// use tracing_subscriber::layer::SubscriberExt as _;
/// use tracing_subscriber::util::SubscriberInitExt as _;
/// use tracing_subscriber::Layer as _;
///
/// # fn main() -> Result<(), fawkes::otel::OtelError> {
/// // `None` unless an OTLP endpoint is configured.
/// let otel = fawkes::otel::Otel::from_env()?;
/// let logs = tracing_subscriber::fmt::layer()
///     .with_filter(tracing_subscriber::EnvFilter::from_default_env());
/// tracing_subscriber::registry()
///     .with(logs)
///     .with(otel.as_ref().map(|otel| otel.layer()))
///     .init();
/// // ... serve ...
/// if let Some(otel) = otel {
///     otel.shutdown();
/// }
/// # Ok(())
/// # }
/// ```
pub struct Otel {
    provider: SdkTracerProvider,
}

impl fmt::Debug for Otel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Otel").finish_non_exhaustive()
    }
}

/// Why OpenTelemetry could not start: a setting it does not support, or an exporter that
/// could not be built.
#[derive(Debug)]
pub struct OtelError(String);

impl fmt::Display for OtelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OtelError {}

/// The value of an environment variable, when set and not blank.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl Otel {
    /// OpenTelemetry as the environment configures it, or `None` when it is off: no OTLP
    /// endpoint set (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`),
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. A service without a collector
    /// sends nothing rather than failing to reach `localhost:4318` all day.
    ///
    /// # Errors
    ///
    /// An exporter other than `otlp`, a protocol other than `http/protobuf` (the default), or
    /// an exporter the SDK refuses to build (a malformed endpoint or header list).
    pub fn from_env() -> Result<Option<Self>, OtelError> {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match var("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(OtelError(format!(
                    "OTEL_TRACES_EXPORTER={other}: only `otlp` (over HTTP) and `none` are supported"
                )))
            }
        }
        for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            if let Some(protocol) = var(name) {
                if protocol != "http/protobuf" {
                    return Err(OtelError(format!(
                        "{name}={protocol}: only `http/protobuf` is supported (the collector's \
                         port 4318)"
                    )));
                }
                break;
            }
        }
        if var("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
            && var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|err| OtelError(format!("the OTLP exporter: {err}")))?;
        Ok(Some(Self::with_exporter(exporter)))
    }

    /// OpenTelemetry exporting to `endpoint` (`http://collector:4318`, to which
    /// `/v1/traces` is added) as `service_name`, whatever the environment says of them; the
    /// other `OTEL_*` variables still apply.
    ///
    /// # Errors
    ///
    /// An exporter the SDK refuses to build.
    pub fn new(endpoint: &str, service_name: &str) -> Result<Self, OtelError> {
        let endpoint = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .map_err(|err| OtelError(format!("the OTLP exporter: {err}")))?;
        let resource = Resource::builder().with_service_name(service_name.to_owned()).build();
        Ok(Self::start(exporter, resource))
    }

    fn with_exporter(exporter: opentelemetry_otlp::SpanExporter) -> Self {
        // The default detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
        Self::start(exporter, Resource::builder().build())
    }

    fn start(exporter: opentelemetry_otlp::SpanExporter, resource: Resource) -> Self {
        // The sampler comes from OTEL_TRACES_SAMPLER (parent-based, always on, by default).
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
        Self { provider }
    }

    /// The `tracing` layer that makes OpenTelemetry spans of the endpoint's spans (and the
    /// application's own).
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("fawkes"))
    }

    /// Sends the spans batched so far, waiting for the collector's answer.
    pub fn force_flush(&self) {
        if let Err(err) = self.provider.force_flush() {
            tracing::warn!(error = %err, "OpenTelemetry: cannot send the batched spans");
        }
    }

    /// Sends what is batched and stops the exporter: at exit, after the endpoint stopped.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!(error = %err, "OpenTelemetry: the exporter did not stop cleanly");
        }
    }
}

/// Writes the current span's trace context (`traceparent`, `tracestate`) into `headers`, for a
/// request to another service: the span that service records continues this trace. Nothing
/// is written when OpenTelemetry is off.
///
/// # Examples
///
/// ```
/// async fn call(conn: fawkes::Conn) -> fawkes::Conn {
///     let mut headers = fawkes::http::HeaderMap::new();
///     fawkes::otel::inject(&mut headers);
///     // reqwest::Client::new().get("http://rooms/api/rooms").headers(headers).send().await
///     conn.text("called")
/// }
/// # let _ = call;
/// ```
pub fn inject(headers: &mut http::HeaderMap) {
    if !super::active() {
        return;
    }
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// Makes `span` a child of the caller's span when `headers` carry a valid `traceparent`, and
/// records its trace id in the span's `trace_id` field, for the logs.
pub(super) fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let caller = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if caller.span().span_context().is_valid() {
        let _ = span.set_parent(caller);
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Renames the OpenTelemetry span of `span`, which has started.
pub(super) fn rename(span: &tracing::Span, name: String) {
    span.context().span().update_name(name);
}
