//! Where the framework reports what happened.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};

use super::stats::{
    self, BROADCASTS, CHANNELS, CONNECTIONS, DELIVERIES, PANICS, PUSHES, REQUESTS, SOCKETS,
};

/// Whether a `metrics` recorder listens. Building a metric's key costs an allocation per call
/// even with no recorder installed, so the hot paths skip it until one is.
static METRICS: AtomicBool = AtomicBool::new(false);

/// Turns on reporting through the `metrics` facade, for an application that installs its own
/// recorder; [`install_prometheus`](crate::telemetry::install_prometheus) does it for its own.
pub fn enable_metrics() {
    METRICS.store(true, Ordering::Relaxed);
}

/// Whether metrics are reported; callers skip measuring what nobody records.
#[inline]
pub(crate) fn metrics_on() -> bool {
    METRICS.load(Ordering::Relaxed)
}

/// Label values must be `'static` to cost no allocation.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_label(status: StatusCode) -> &'static str {
    // Classes keep the label set small; the exact code is in the logs.
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

pub(crate) fn endpoint_stop(method: &Method, status: StatusCode, duration: Duration) {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    stats::record_latency(duration);
    if metrics_on() {
        metrics::histogram!(
            "fawkes_endpoint_stop_duration_seconds",
            "method" => method_label(method),
            "status" => status_label(status)
        )
        .record(duration.as_secs_f64());
    }
}

pub(crate) fn router_dispatch_stop(
    route: &'static str,
    method: &Method,
    status: StatusCode,
    duration: Duration,
) {
    if metrics_on() {
        metrics::histogram!(
            "fawkes_router_dispatch_stop_duration_seconds",
            "route" => route,
            "method" => method_label(method),
            "status" => status_label(status)
        )
        .record(duration.as_secs_f64());
    }
}

pub(crate) fn router_dispatch_exception(route: &'static str) {
    if metrics_on() {
        metrics::counter!("fawkes_router_dispatch_exception_total", "route" => route).increment(1);
    }
    record_panic();
}

pub(crate) fn record_panic() {
    PANICS.fetch_add(1, Ordering::Relaxed);
    if metrics_on() {
        metrics::counter!("fawkes_panics_total").increment(1);
    }
}

pub(crate) fn socket_connected(transport: &'static str, vsn: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    if metrics_on() {
        metrics::counter!(
            "fawkes_socket_connected_total",
            "transport" => transport,
            "vsn" => vsn,
            "result" => result
        )
        .increment(1);
    }
}

pub(crate) fn channel_joined(channel: &str, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    if metrics_on() {
        metrics::counter!("fawkes_channel_joined_total", "channel" => channel.to_owned(), "result" => result)
            .increment(1);
    }
}

pub(crate) fn channel_handled_in(channel: &str, duration: Duration) {
    if metrics_on() {
        metrics::histogram!("fawkes_channel_handled_in_duration_seconds", "channel" => channel.to_owned())
            .record(duration.as_secs_f64());
    }
}

pub(crate) fn channel_push() {
    PUSHES.fetch_add(1, Ordering::Relaxed);
    if metrics_on() {
        metrics::counter!("fawkes_channel_pushes_total").increment(1);
    }
}

pub(crate) fn pubsub_broadcast(deliveries: u64) {
    BROADCASTS.fetch_add(1, Ordering::Relaxed);
    DELIVERIES.fetch_add(deliveries, Ordering::Relaxed);
    if metrics_on() {
        metrics::counter!("fawkes_pubsub_broadcasts_total").increment(1);
    }
    if metrics_on() {
        metrics::counter!("fawkes_pubsub_deliveries_total").increment(deliveries);
    }
}

/// Which gauge a [`Gauge`] guard holds up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GaugeKind {
    Connections,
    Sockets,
    Channels,
}

/// Counts one open connection, socket or channel while it lives.
#[derive(Debug)]
pub(crate) struct Gauge(GaugeKind);

impl Gauge {
    pub(crate) fn open(kind: GaugeKind) -> Self {
        let (counter, name) = Self::parts(kind);
        counter.fetch_add(1, Ordering::Relaxed);
        if metrics_on() {
            metrics::gauge!(name).increment(1.0);
        }
        Self(kind)
    }

    fn parts(kind: GaugeKind) -> (&'static std::sync::atomic::AtomicI64, &'static str) {
        match kind {
            GaugeKind::Connections => (&CONNECTIONS, "fawkes_connections"),
            GaugeKind::Sockets => (&SOCKETS, "fawkes_sockets"),
            GaugeKind::Channels => (&CHANNELS, "fawkes_channels"),
        }
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        let (counter, name) = Self::parts(self.0);
        counter.fetch_sub(1, Ordering::Relaxed);
        if metrics_on() {
            metrics::gauge!(name).decrement(1.0);
        }
    }
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
/// The pubsub adapter connected to (or lost) the other nodes.
pub(crate) fn pubsub_adapter_connected(adapter: &'static str, connected: bool) {
    if metrics_on() {
        metrics::gauge!("fawkes_pubsub_adapter_connected", "adapter" => adapter)
            .set(if connected { 1.0 } else { 0.0 });
        if !connected {
            metrics::counter!("fawkes_pubsub_adapter_disconnects_total", "adapter" => adapter)
                .increment(1);
        }
    }
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
/// Messages for other nodes the adapter could not carry (its queue was full, or the
/// connection failed while they were in flight).
pub(crate) fn pubsub_adapter_dropped(adapter: &'static str, messages: u64) {
    if metrics_on() {
        metrics::counter!("fawkes_pubsub_adapter_dropped_total", "adapter" => adapter)
            .increment(messages);
    }
}

/// A connection that arrived at the connection limit: `evicted` when a connection waiting for
/// its client was closed to make room for it, `full` when it was turned away with a 503.
pub(crate) fn connection_turned_away(outcome: &'static str) {
    tracing::debug!(outcome, "connection limit reached");
    if metrics_on() {
        metrics::counter!("fawkes_endpoint_connection_limit_total", "outcome" => outcome)
            .increment(1);
    }
}
