//! [`Telemetry`]: an endpoint's figures, kept in a `metrics` registry of its own, read by the
//! Prometheus exporter and by [`Telemetry::snapshot`] alike.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use http::{Method, StatusCode};
use metrics::{Key, KeyName, Label, Metadata, SharedString, Unit};
use metrics_util::registry::{Registry, Storage};

use super::histogram::{self, Latency, LogHistogram};

/// Where each kind of series is kept: plain atomics for counters and gauges (a gauge holds the
/// bits of an `f64`, as `metrics` does), [`LogHistogram`]s for histograms.
struct Store;

impl Storage<Key> for Store {
    type Counter = Arc<AtomicU64>;
    type Gauge = Arc<AtomicU64>;
    type Histogram = Arc<LogHistogram>;

    fn counter(&self, _: &Key) -> Self::Counter {
        Arc::default()
    }

    fn gauge(&self, _: &Key) -> Self::Gauge {
        Arc::default()
    }

    fn histogram(&self, _: &Key) -> Self::Histogram {
        Arc::default()
    }
}

/// The kinds of series, for the exporter's `# TYPE` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A route's pattern (its address and length), a method's and a status class's index, and
/// whether the samples are the endpoint's too.
type RouteKey = (usize, usize, u8, u8, bool);

/// Durations by route, method and status class, summed over the telemetry's records.
type RouteTotals = BTreeMap<(&'static str, usize, usize), (Latency, f64)>;

/// Hashes a [`RouteKey`] with a multiply per word: its parts are the program's own addresses
/// and small indices, not client input, and SipHash cost more than the rest of the record.
type RouteHasher = std::hash::BuildHasherDefault<WordHasher>;

#[derive(Default)]
struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        // The multiplier of FxHash: it spreads the low bits (addresses are aligned) upwards,
        // where hashbrown reads its control bytes.
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

const METHODS: usize = 8;
const STATUSES: usize = 5;

pub(crate) const ENDPOINT_STOP: &str = "fawkes_endpoint_stop_duration_seconds";
const ROUTER_STOP: &str = "fawkes_router_dispatch_stop_duration_seconds";
const ROUTER_EXCEPTION: &str = "fawkes_router_dispatch_exception_total";
const SOCKET_CONNECTED: &str = "fawkes_socket_connected_total";
const CHANNEL_JOINED: &str = "fawkes_channel_joined_total";
const CHANNEL_HANDLED_IN: &str = "fawkes_channel_handled_in_duration_seconds";
const CHANNEL_PUSHES: &str = "fawkes_channel_pushes_total";
const PUBSUB_BROADCASTS: &str = "fawkes_pubsub_broadcasts_total";
const PUBSUB_DELIVERIES: &str = "fawkes_pubsub_deliveries_total";
const ADAPTER_CONNECTED: &str = "fawkes_pubsub_adapter_connected";
const ADAPTER_DISCONNECTS: &str = "fawkes_pubsub_adapter_disconnects_total";
const ADAPTER_DROPPED: &str = "fawkes_pubsub_adapter_dropped_total";
const CONNECTION_LIMIT: &str = "fawkes_endpoint_connection_limit_total";
const PANICS: &str = "fawkes_panics_total";
const GAUGES: [&str; 3] = ["fawkes_connections", "fawkes_sockets", "fawkes_channels"];

/// What each of the framework's series means, for the exporter's `# HELP` lines.
const DESCRIPTIONS: &[(&str, Kind, &str)] = &[
    (ENDPOINT_STOP, Kind::Histogram, "Requests from first byte to response head"),
    (ROUTER_STOP, Kind::Histogram, "Requests a route's pipeline and action answered"),
    (ROUTER_EXCEPTION, Kind::Counter, "Panics in a route's pipeline or action"),
    (SOCKET_CONNECTED, Kind::Counter, "Sockets a client asked to open, by outcome"),
    (CHANNEL_JOINED, Kind::Counter, "Channel joins, by outcome"),
    (CHANNEL_HANDLED_IN, Kind::Histogram, "Client messages a channel handled"),
    (CHANNEL_PUSHES, Kind::Counter, "Replies and pushes channels sent to their own clients"),
    (PUBSUB_BROADCASTS, Kind::Counter, "Pubsub broadcasts"),
    (PUBSUB_DELIVERIES, Kind::Counter, "Broadcast messages delivered to subscribers"),
    (ADAPTER_CONNECTED, Kind::Gauge, "Whether the pubsub adapter reaches the other nodes"),
    (ADAPTER_DISCONNECTS, Kind::Counter, "Times the pubsub adapter lost the other nodes"),
    (ADAPTER_DROPPED, Kind::Counter, "Messages for other nodes the adapter could not carry"),
    (CONNECTION_LIMIT, Kind::Counter, "Connections that arrived at the connection limit"),
    (PANICS, Kind::Counter, "Panics caught in plugs, actions and channels"),
    (GAUGES[0], Kind::Gauge, "Open HTTP connections"),
    (GAUGES[1], Kind::Gauge, "Open sockets (WebSocket and LongPoll)"),
    (GAUGES[2], Kind::Gauge, "Joined channels"),
];

/// An endpoint's telemetry: the framework's series (Phoenix's telemetry events as metrics),
/// the process's own (CPU, memory, open files, from `metrics-process`) and whatever the
/// application records into it. Cheap to clone: clones share the figures.
///
/// Every endpoint has one ([`Endpoint::telemetry`](crate::Endpoint::telemetry) gives your
/// own, [`RunningEndpoint::telemetry`](crate::endpoint::RunningEndpoint::telemetry) reads it);
/// [`prometheus`](crate::telemetry::prometheus) serves the endpoint's in Prometheus text
/// format and [`snapshot`](Self::snapshot) reads the same figures for a dashboard. It is a
/// `metrics` [`Recorder`](metrics::Recorder): install it as the process's recorder
/// ([`install`](Self::install)) and the application's own `metrics::counter!` calls appear in
/// the same export.
///
/// # Examples
///
/// ```
/// use fawkes::telemetry::Telemetry;
///
/// let telemetry = Telemetry::new();
/// metrics::with_local_recorder(&telemetry, || metrics::counter!("orders_total").increment(2));
/// let text = telemetry.render();
/// assert!(text.contains("orders_total 2"), "{text}");
/// // The framework's series are there at 0 before first use.
/// assert!(text.contains("fawkes_sockets 0"), "{text}");
/// assert_eq!(telemetry.snapshot().requests, 0);
/// ```
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry<Key, Store>,
    descriptions: Mutex<HashMap<String, (Option<Unit>, SharedString)>>,
    /// `ENDPOINT_STOP` by method and status class: the requests no route's dispatch stands
    /// for (see `routes`).
    endpoint: Box<[[LogHistogram; STATUSES]; METHODS]>,
    /// `ROUTER_STOP` by route (the pattern's address and length), method, status class and
    /// whether the endpoint recorded it with its own duration: those samples stand for the
    /// endpoint's too, which are their sums with `endpoint` (one record a routed request).
    routes: RwLock<HashMap<RouteKey, (&'static str, LogHistogram), RouteHasher>>,
    gauges: [Arc<AtomicU64>; 3],
    pushes: Arc<AtomicU64>,
    panics: Arc<AtomicU64>,
    broadcasts: Arc<AtomicU64>,
    deliveries: Arc<AtomicU64>,
    /// Other telemetry rendered and read with this one (the pubsub's, its adapter's).
    included: Mutex<Vec<Telemetry>>,
    /// The process's figures, read when rendered (at most once per
    /// [`PROCESS_COLLECT_INTERVAL`]); only on an endpoint's telemetry.
    process: Option<metrics_process::Collector>,
    /// When the process's figures were last read.
    process_collected: Mutex<Option<tokio::time::Instant>>,
}

/// The least time between two reads of the process's figures. A read walks `/proc` (every
/// open file, so every connection, is counted), and `/metrics` may be public: scrapes more
/// often than this (Prometheus scrapes every 15 s or so) reuse the last figures, so a client
/// requesting `/metrics` in a loop costs a render, not a walk of the process's files.
pub const PROCESS_COLLECT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// Which gauge a [`Gauge`] guard holds up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GaugeKind {
    Connections = 0,
    Sockets = 1,
    Channels = 2,
}

/// Counts one open connection, socket or channel while it lives.
#[derive(Debug)]
pub(crate) struct Gauge(Arc<AtomicU64>);

impl Drop for Gauge {
    fn drop(&mut self) {
        metrics::GaugeFn::decrement(&*self.0, 1.0);
    }
}

/// Label values are `'static`, so that making a key costs no copy of them.
fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::PATCH => 3,
        Method::DELETE => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

const METHOD_LABELS: [&str; METHODS] =
    ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "OTHER"];

/// Classes keep the label set small; the exact code is in the logs.
fn status_index(status: StatusCode) -> usize {
    match status.as_u16() {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

const STATUS_LABELS: [&str; STATUSES] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn key(name: &'static str, labels: Vec<Label>) -> Key {
    Key::from_parts(name, labels)
}

fn label(name: &'static str, value: &'static str) -> Label {
    Label::from_static_parts(name, value)
}

impl Telemetry {
    /// An endpoint's telemetry: the framework's series described and at 0, and the process's.
    pub fn new() -> Self {
        let telemetry = Self::part(Some(metrics_process::Collector::default()));
        for transport in ["websocket", "longpoll"] {
            for vsn in ["1.0.0", "2.0.0"] {
                for result in ["ok", "error"] {
                    telemetry.counter(key(
                        SOCKET_CONNECTED,
                        vec![
                            label("transport", transport),
                            label("vsn", vsn),
                            label("result", result),
                        ],
                    ));
                }
            }
        }
        for outcome in ["evicted", "full"] {
            telemetry.counter(key(CONNECTION_LIMIT, vec![label("outcome", outcome)]));
        }
        if let Some(process) = &telemetry.inner.process {
            metrics::with_local_recorder(&telemetry, || process.describe());
        }
        telemetry
    }

    /// Telemetry for one part of a node (a pubsub, an adapter), to be included in endpoints'.
    pub(crate) fn part(process: Option<metrics_process::Collector>) -> Self {
        let registry = Registry::new(Store);
        let counter = |name: &'static str| {
            registry.get_or_create_counter(&Key::from_static_name(name), Arc::clone)
        };
        let inner = Inner {
            pushes: counter(CHANNEL_PUSHES),
            panics: counter(PANICS),
            broadcasts: counter(PUBSUB_BROADCASTS),
            deliveries: counter(PUBSUB_DELIVERIES),
            gauges: GAUGES
                .map(|name| registry.get_or_create_gauge(&Key::from_static_name(name), Arc::clone)),
            registry,
            descriptions: Mutex::new(
                DESCRIPTIONS
                    .iter()
                    .map(|(name, _, help)| {
                        ((*name).to_owned(), (None, SharedString::const_str(help)))
                    })
                    .collect(),
            ),
            endpoint: Box::default(),
            routes: RwLock::default(),
            included: Mutex::default(),
            process,
            process_collected: Mutex::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Installs this telemetry as the process's `metrics` recorder, so that the application's
    /// `metrics::counter!`/`gauge!`/`histogram!` calls are exported with the endpoint's
    /// figures.
    ///
    /// # Errors
    ///
    /// When the process has a recorder already.
    pub fn install(&self) -> Result<(), metrics::SetRecorderError<Telemetry>> {
        metrics::set_global_recorder(self.clone())
    }

    /// Renders and reads `other`'s figures with these (a pubsub's, with its endpoint's).
    pub(crate) fn include(&self, other: &Telemetry) {
        if Arc::ptr_eq(&self.inner, &other.inner) {
            return;
        }
        let mut included = self.inner.included.lock().unwrap_or_else(PoisonError::into_inner);
        if !included.iter().any(|t| Arc::ptr_eq(&t.inner, &other.inner)) {
            included.push(other.clone());
        }
    }

    /// This telemetry and every one it includes, each once.
    fn all(&self) -> Vec<Telemetry> {
        let mut all: Vec<Telemetry> = vec![self.clone()];
        let mut i = 0;
        while i < all.len() {
            let included =
                all[i].inner.included.lock().unwrap_or_else(PoisonError::into_inner).clone();
            for t in included {
                if !all.iter().any(|seen| Arc::ptr_eq(&seen.inner, &t.inner)) {
                    all.push(t);
                }
            }
            i += 1;
        }
        all
    }

    fn counter(&self, key: Key) -> Arc<AtomicU64> {
        self.inner.registry.get_or_create_counter(&key, Arc::clone)
    }

    fn histogram(&self, key: Key) -> Arc<LogHistogram> {
        self.inner.registry.get_or_create_histogram(&key, Arc::clone)
    }

    /// A request answered by the endpoint, in `duration`; `route` when a route's pipeline
    /// answered it and the endpoint records its dispatch too (one record stands for both).
    pub(crate) fn endpoint_stop(
        &self,
        method: &Method,
        status: StatusCode,
        duration: Duration,
        route: Option<&'static str>,
    ) {
        let (m, s) = (method_index(method), status_index(status));
        match route {
            None => self.inner.endpoint[m][s].record_duration(duration),
            Some(route) => self.record_route(route, (m, s), true, duration),
        }
    }

    /// A request answered by a route's pipeline, timed by its own future.
    pub(crate) fn route_stop(
        &self,
        route: &'static str,
        method: &Method,
        status: StatusCode,
        duration: Duration,
    ) {
        let (m, s) = (method_index(method), status_index(status));
        self.record_route(route, (m, s), false, duration);
    }

    fn record_route(
        &self,
        route: &'static str,
        (m, s): (usize, usize),
        endpoint_too: bool,
        duration: Duration,
    ) {
        let id = (route.as_ptr() as usize, route.len(), m as u8, s as u8, endpoint_too);
        {
            let routes = self.inner.routes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, histogram)) = routes.get(&id) {
                return histogram.record_duration(duration);
            }
        }
        let mut routes = self.inner.routes.write().unwrap_or_else(PoisonError::into_inner);
        routes
            .entry(id)
            .or_insert_with(|| (route, LogHistogram::default()))
            .1
            .record_duration(duration);
    }

    /// The endpoint's durations (by method and status class, indexed `m * STATUSES + s`) and
    /// the routes' (by route, method and status class): the endpoint's include the routes'
    /// it recorded for both.
    fn request_totals(&self) -> (Vec<(Latency, f64)>, RouteTotals) {
        let mut endpoint: Vec<(Latency, f64)> =
            self.inner.endpoint.iter().flatten().map(|h| (h.latency(), h.sum())).collect();
        let mut routes = RouteTotals::new();
        for (&(_, _, m, s, endpoint_too), (route, histogram)) in
            self.inner.routes.read().unwrap_or_else(PoisonError::into_inner).iter()
        {
            let (m, s) = (usize::from(m), usize::from(s));
            let (latency, sum) = (histogram.latency(), histogram.sum());
            if endpoint_too {
                let total = &mut endpoint[m * STATUSES + s];
                total.0.add(&latency);
                total.1 += sum;
            }
            let entry = routes.entry((route, m, s)).or_default();
            entry.0.add(&latency);
            entry.1 += sum;
        }
        (endpoint, routes)
    }

    /// The endpoint's and the routes' durations, by their labels, for rendering.
    fn request_series(&self) -> [Vec<(Key, Latency, f64)>; 2] {
        let (endpoint, routes) = self.request_totals();
        let endpoint = endpoint
            .into_iter()
            .enumerate()
            .filter(|(_, (latency, _))| latency.count() > 0)
            .map(|(i, (latency, sum))| {
                let (m, s) = (i / STATUSES, i % STATUSES);
                let labels =
                    vec![label("method", METHOD_LABELS[m]), label("status", STATUS_LABELS[s])];
                (key(ENDPOINT_STOP, labels), latency, sum)
            })
            .collect();
        let routes = routes
            .into_iter()
            .map(|((route, m, s), (latency, sum))| {
                let labels = vec![
                    label("route", route),
                    label("method", METHOD_LABELS[m]),
                    label("status", STATUS_LABELS[s]),
                ];
                (key(ROUTER_STOP, labels), latency, sum)
            })
            .collect();
        [endpoint, routes]
    }

    /// A route's pipeline or action panicked.
    pub(crate) fn route_exception(&self, route: &'static str) {
        self.counter(key(ROUTER_EXCEPTION, vec![label("route", route)]))
            .fetch_add(1, Ordering::Relaxed);
        self.panic();
    }

    /// A panic caught.
    pub(crate) fn panic(&self) {
        self.inner.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// Panics caught so far, without the rest of a snapshot.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn panics(&self) -> u64 {
        self.inner.panics.load(Ordering::Relaxed)
    }

    pub(crate) fn socket_connected(&self, transport: &'static str, vsn: &'static str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        let labels =
            vec![label("transport", transport), label("vsn", vsn), label("result", result)];
        self.counter(key(SOCKET_CONNECTED, labels)).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn channel_joined(&self, channel: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        let labels = vec![Label::new("channel", channel.to_owned()), label("result", result)];
        self.counter(key(CHANNEL_JOINED, labels)).fetch_add(1, Ordering::Relaxed);
    }

    /// The histogram a channel's `handle_in` durations go to, looked up once per join.
    pub(crate) fn channel_handled_in(&self, channel: &str) -> Arc<LogHistogram> {
        self.histogram(key(CHANNEL_HANDLED_IN, vec![Label::new("channel", channel.to_owned())]))
    }

    pub(crate) fn channel_push(&self) {
        self.inner.pushes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn pubsub_broadcast(&self, deliveries: u64) {
        self.inner.broadcasts.fetch_add(1, Ordering::Relaxed);
        self.inner.deliveries.fetch_add(deliveries, Ordering::Relaxed);
    }

    /// Counts one open connection, socket or channel until the guard drops.
    pub(crate) fn gauge(&self, kind: GaugeKind) -> Gauge {
        let gauge = Arc::clone(&self.inner.gauges[kind as usize]);
        metrics::GaugeFn::increment(&*gauge, 1.0);
        Gauge(gauge)
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    /// Exports the adapter's series at their starting values.
    pub(crate) fn pubsub_adapter(&self, adapter: &'static str) {
        let labels = || vec![label("adapter", adapter)];
        self.inner.registry.get_or_create_gauge(&key(ADAPTER_CONNECTED, labels()), |_| ());
        self.counter(key(ADAPTER_DISCONNECTS, labels()));
        self.counter(key(ADAPTER_DROPPED, labels()));
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    /// The pubsub adapter connected to (or lost) the other nodes.
    pub(crate) fn pubsub_adapter_connected(&self, adapter: &'static str, connected: bool) {
        let labels = || vec![label("adapter", adapter)];
        let gauge =
            self.inner.registry.get_or_create_gauge(&key(ADAPTER_CONNECTED, labels()), Arc::clone);
        metrics::GaugeFn::set(&*gauge, if connected { 1.0 } else { 0.0 });
        if !connected {
            self.counter(key(ADAPTER_DISCONNECTS, labels())).fetch_add(1, Ordering::Relaxed);
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    /// Messages for other nodes the adapter could not carry (its queue was full, or the
    /// connection failed while they were in flight).
    pub(crate) fn pubsub_adapter_dropped(&self, adapter: &'static str, messages: u64) {
        self.counter(key(ADAPTER_DROPPED, vec![label("adapter", adapter)]))
            .fetch_add(messages, Ordering::Relaxed);
    }

    /// A connection that arrived at the connection limit: `evicted` when a connection waiting
    /// for its client was closed to make room for it, `full` when it was turned away with a
    /// 503.
    pub(crate) fn connection_turned_away(&self, outcome: &'static str) {
        tracing::debug!(outcome, "connection limit reached");
        self.counter(key(CONNECTION_LIMIT, vec![label("outcome", outcome)]))
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The figures now, this telemetry's and those it includes (its pubsub's).
    ///
    /// # Examples
    ///
    /// ```
    /// let telemetry = fawkes::telemetry::Telemetry::new();
    /// let before = telemetry.snapshot();
    /// let after = telemetry.snapshot();
    /// assert_eq!(after.latency.since(&before.latency).count(), 0);
    /// assert!(after.resident_memory_bytes > 0);
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for t in self.all() {
            let inner = &t.inner;
            for (latency, _) in t.request_totals().0 {
                snapshot.latency.add(&latency);
            }
            let gauge = |i: usize| f64::from_bits(inner.gauges[i].load(Ordering::Relaxed)) as i64;
            snapshot.connections += gauge(0);
            snapshot.sockets += gauge(1);
            snapshot.channels += gauge(2);
            snapshot.broadcasts += inner.broadcasts.load(Ordering::Relaxed);
            snapshot.deliveries += inner.deliveries.load(Ordering::Relaxed);
            snapshot.pushes += inner.pushes.load(Ordering::Relaxed);
            snapshot.panics += inner.panics.load(Ordering::Relaxed);
        }
        snapshot.requests = snapshot.latency.count();
        snapshot.resident_memory_bytes = resident_memory_bytes();
        snapshot
    }

    /// The figures in Prometheus text format, with `# HELP` and `# TYPE` lines; histograms
    /// get buckets at powers of 4 µs from 1 µs to 16.8 s.
    pub fn render(&self) -> String {
        use metrics_exporter_prometheus::formatting::{
            sanitize_metric_name, write_help_line, write_metric_line, write_type_line,
        };
        use metrics_exporter_prometheus::LabelSet;

        let all = self.all();
        let mut descriptions = HashMap::new();
        // Series by name; a name's series keep the kind of the first one seen.
        // Series by name, then by label set: the same series from two telemetries (an
        // endpoint's and its pubsub's) is one line, their values added.
        type Lines = BTreeMap<Vec<String>, (LabelSet, Value)>;
        let mut series: BTreeMap<String, (Kind, Lines)> = BTreeMap::new();
        let globals = indexmap::IndexMap::new();
        for t in &all {
            if let Some(process) = &t.inner.process {
                let now = tokio::time::Instant::now();
                let mut last =
                    t.inner.process_collected.lock().unwrap_or_else(PoisonError::into_inner);
                if last.is_none_or(|at| now.duration_since(at) >= PROCESS_COLLECT_INTERVAL) {
                    *last = Some(now);
                    metrics::with_local_recorder(t, || process.collect());
                }
            }
            descriptions.extend(
                t.inner.descriptions.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            );
            let mut add = |key: &Key, kind: Kind, value: Value| {
                let name = sanitize_metric_name(key.name());
                let labels = LabelSet::from_key_and_global(key, &globals);
                let lines = &mut series.entry(name).or_insert_with(|| (kind, Lines::new())).1;
                match lines.entry(labels.to_strings().collect()) {
                    std::collections::btree_map::Entry::Occupied(mut line) => {
                        line.get_mut().1.add(value);
                    }
                    std::collections::btree_map::Entry::Vacant(line) => {
                        line.insert((labels, value));
                    }
                }
            };
            let registry = &t.inner.registry;
            registry.visit_counters(|key, c| {
                add(key, Kind::Counter, Value::Number(c.load(Ordering::Relaxed) as f64));
            });
            registry.visit_gauges(|key, g| {
                add(key, Kind::Gauge, Value::Number(f64::from_bits(g.load(Ordering::Relaxed))));
            });
            registry.visit_histograms(|key, h| {
                add(key, Kind::Histogram, Value::Histogram(h.latency(), h.sum()));
            });
            for (key, latency, sum) in t.request_series().into_iter().flatten() {
                add(&key, Kind::Histogram, Value::Histogram(latency, sum));
            }
        }
        let mut out = String::new();
        for (name, (kind, lines)) in series {
            if let Some((unit, help)) = descriptions.get(&name) {
                write_help_line(&mut out, &name, *unit, None, help);
            }
            let kind_name = match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            write_type_line(&mut out, &name, None, None, kind_name);
            for (labels, value) in lines.into_values() {
                match value {
                    Value::Number(v) => {
                        write_metric_line::<&str, f64>(
                            &mut out, &name, None, &labels, None, v, None,
                        );
                    }
                    Value::Histogram(latency, sum) => {
                        let buckets = latency.buckets();
                        let mut cumulative = 0;
                        for (i, n) in buckets.iter().enumerate() {
                            cumulative += n;
                            if i % histogram::EXPORTED_EVERY == 0 && i + 1 < buckets.len() {
                                let le = histogram::upper_edge(i);
                                write_metric_line(
                                    &mut out,
                                    &name,
                                    Some("bucket"),
                                    &labels,
                                    Some(("le", le)),
                                    cumulative,
                                    None,
                                );
                            }
                        }
                        write_metric_line(
                            &mut out,
                            &name,
                            Some("bucket"),
                            &labels,
                            Some(("le", "+Inf")),
                            cumulative,
                            None,
                        );
                        write_metric_line::<&str, f64>(
                            &mut out,
                            &name,
                            Some("sum"),
                            &labels,
                            None,
                            sum,
                            None,
                        );
                        write_metric_line::<&str, u64>(
                            &mut out,
                            &name,
                            Some("count"),
                            &labels,
                            None,
                            cumulative,
                            None,
                        );
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner
            .descriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.as_str().to_owned(), (unit, description));
    }
}

enum Value {
    Number(f64),
    Histogram(Latency, f64),
}

impl Value {
    /// Adds `other`, a value of the same series from another telemetry.
    fn add(&mut self, other: Value) {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => *a += b,
            (Value::Histogram(latency, sum), Value::Histogram(more, more_sum)) => {
                latency.add(&more);
                *sum += more_sum;
            }
            // One name, two kinds: an application's series clashing with one of ours. The
            // first seen is kept.
            _ => {}
        }
    }
}

impl metrics::Recorder for Telemetry {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.counter(key.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.inner.registry.get_or_create_gauge(key, Arc::clone))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.histogram(key.clone()))
    }
}

/// An endpoint's figures at one moment.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Snapshot {
    /// Requests answered.
    pub requests: u64,
    /// Open HTTP connections.
    pub connections: i64,
    /// Open sockets (WebSocket and LongPoll).
    pub sockets: i64,
    /// Joined channels.
    pub channels: i64,
    /// Pubsub broadcasts.
    pub broadcasts: u64,
    /// Broadcast messages delivered to subscribers.
    pub deliveries: u64,
    /// Replies and pushes channels sent to their own clients.
    pub pushes: u64,
    /// Panics caught.
    pub panics: u64,
    /// Request durations.
    pub latency: Latency,
    /// The process's resident memory in bytes (0 where the platform does not tell).
    pub resident_memory_bytes: u64,
}

/// The process's resident memory, from `VmRSS` in `/proc/self/status` (Linux; 0 elsewhere):
/// one read, where a full `metrics-process` collection (done for each `/metrics` scrape) also
/// lists every open file, and a dashboard samples every second.
fn resident_memory_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB").and_then(|v| v.trim().parse::<u64>().ok()));
    kib.unwrap_or(0) * 1024
}
