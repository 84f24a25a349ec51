//! The Redis adapter: every node publishes to, and subscribes to, one Redis channel.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::{Adapter, PubSub};
use crate::mailbox::{Mailbox, PushError};
use crate::supervisor::ChildSpec;

/// Messages per `PUBLISH` pipeline.
const BATCH: usize = 256;

/// Carries broadcasts between nodes through Redis pub/sub, as Phoenix's
/// `phoenix_pubsub_redis` does: one Redis channel per namespace (`fawkes:<namespace>`), every
/// message tagged with its origin so a node skips its own.
///
/// [`Adapter::publish`] only queues: the adapter's worker, a permanent child of the
/// endpoint's supervisor, owns the connections. When Redis goes away the worker reconnects
/// with exponential backoff and subscribes again; meanwhile local subscribers are served as
/// usual, messages for other nodes wait in a bounded queue (past
/// [`queue_limit`](Redis::queue_limit) new ones are dropped and counted), and
/// [`Adapter::is_connected`] is false, which `/readyz` reports (and answers 503 for, when
/// [`required_for_readiness`](Redis::required_for_readiness) is set).
///
/// Redis pub/sub is fire-and-forget: a message published while a node is not subscribed never
/// reaches it. So after a reconnect the queue is held until every other node this one knew
/// before has subscribed again, or [`peer_wait`](Redis::peer_wait) has passed: nodes announce
/// themselves on a second channel (`fawkes-nodes:<namespace>`) each time they subscribe and
/// answer each other's announcements. When Redis restarts, what every node queued meanwhile
/// therefore reaches every node that comes back in time, once. What others publish while only
/// this node is cut off (its own network trouble) it still misses: presence recovers from that
/// on its own (heartbeats carry clocks); application broadcasts do not.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use fawkes::pubsub::{PubSub, Redis};
///
/// # async fn run(router: fawkes::Router) -> Result<(), Box<dyn std::error::Error>> {
/// let redis = Redis::new("redis://127.0.0.1:6379/")?.namespace("chat");
/// let pubsub = PubSub::with_adapter(fawkes::endpoint::default_node_name(), Arc::new(redis));
/// fawkes::Endpoint::new(router).pubsub(pubsub).serve().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    channel: String,
    /// Where nodes announce themselves (see [`Control`]). Data channels all start with
    /// `fawkes:`, so no namespace can collide with it.
    nodes_channel: String,
    required_for_readiness: bool,
    backoff: (Duration, Duration),
    queue_limit: usize,
    peer_wait: Duration,
    state: Arc<State>,
}

struct State {
    outbox: Arc<Mailbox<Bytes>>,
    connected: AtomicBool,
    dropped: AtomicU64,
    /// This node's id on the nodes channel; unique per adapter, like the origin tag of its
    /// messages, so that two processes given one node name are still two peers.
    id: String,
    peers: Mutex<Peers>,
    /// The telemetry of the pubsub this adapter serves, once attached.
    telemetry: std::sync::OnceLock<crate::instrument::Telemetry>,
}

/// A Redis URL that could not be parsed.
#[derive(Debug)]
pub struct InvalidUrl(redis::RedisError);

impl fmt::Display for InvalidUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Redis URL: {}", self.0)
    }
}

impl std::error::Error for InvalidUrl {}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("channel", &self.channel)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// An adapter for the Redis at `url` (`redis://[:password@]host[:port][/db]`, or
    /// `rediss://` for TLS where the `redis` crate is built with it). Nothing connects until
    /// the worker starts.
    ///
    /// # Errors
    ///
    /// When `url` is not a Redis URL.
    pub fn new(url: &str) -> Result<Self, InvalidUrl> {
        let client = redis::Client::open(url).map_err(InvalidUrl)?;
        Ok(Self {
            client,
            channel: "fawkes:fawkes".to_owned(),
            nodes_channel: "fawkes-nodes:fawkes".to_owned(),
            required_for_readiness: false,
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            queue_limit: 100_000,
            peer_wait: Duration::from_secs(10),
            state: Arc::new(State {
                outbox: Mailbox::new(),
                connected: AtomicBool::new(false),
                dropped: AtomicU64::new(0),
                id: format!("{:016x}", rand::random::<u64>()),
                peers: Mutex::new(Peers::default()),
                telemetry: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Separates applications sharing one Redis: nodes talk on `fawkes:<namespace>`
    /// (default `fawkes`) and announce themselves on `fawkes-nodes:<namespace>`.
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.channel = format!("fawkes:{namespace}");
        self.nodes_channel = format!("fawkes-nodes:{namespace}");
        self
    }

    /// Whether `/readyz` answers 503 while Redis is unreachable (default false: a node keeps
    /// serving its own clients, and every replica losing Redis at once would otherwise leave
    /// the load balancer with none).
    #[must_use]
    pub fn required_for_readiness(mut self, required: bool) -> Self {
        self.required_for_readiness = required;
        self
    }

    /// The reconnect backoff: from `min`, doubling up to `max` (default 100 ms to 5 s).
    #[must_use]
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max.max(min));
        self
    }

    /// How many messages for other nodes may wait while Redis is unreachable, or while the
    /// queue is held after a reconnect (default 100,000); past it new ones are dropped and
    /// counted ([`dropped`](Redis::dropped), `fawkes_pubsub_adapter_dropped_total`).
    #[must_use]
    pub fn queue_limit(mut self, messages: usize) -> Self {
        self.queue_limit = messages.max(1);
        self
    }

    /// How long, after reconnecting, the queue may be held for other nodes to subscribe again
    /// (default 10 s). When Redis restarts every node reconnects on its own schedule, up to
    /// about one longest [`backoff`](Redis::backoff) (5 s by default) after the others, and
    /// sending before they are back would lose the queue for them: keep this above the other
    /// nodes' longest backoff. Nodes that have not returned by then (crashed meanwhile) are
    /// given up: the queue goes out, they miss it, and later reconnects no longer wait for
    /// them. A node that stops gracefully says so and is never waited for.
    #[must_use]
    pub fn peer_wait(mut self, wait: Duration) -> Self {
        self.peer_wait = wait;
        self
    }

    /// The Redis channel the nodes share.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Messages for other nodes dropped so far.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }

    /// The names of the other nodes this one knows through Redis, sorted: those it waits for
    /// after a reconnect.
    pub fn peers(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.peers_lock().known.values().map(|(name, _)| name.clone()).collect();
        names.sort_unstable();
        names
    }

    fn peers_lock(&self) -> MutexGuard<'_, Peers> {
        self.state.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn queue(&self, message: Bytes) {
        match self.state.outbox.push_bounded(message, self.queue_limit) {
            Ok(()) => {}
            Err(PushError::Full(_) | PushError::Closed(_)) => {
                let dropped = self.state.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(telemetry) = self.state.telemetry.get() {
                    telemetry.pubsub_adapter_dropped("redis", 1);
                }
                // One line per thousand keeps an outage from flooding the logs.
                if dropped % 1000 == 1 {
                    tracing::warn!(dropped, "redis pubsub: queue full, messages dropped");
                }
            }
        }
    }

    fn set_connected(&self, connected: bool) {
        if self.state.connected.swap(connected, Ordering::AcqRel) != connected {
            if let Some(telemetry) = self.state.telemetry.get() {
                telemetry.pubsub_adapter_connected("redis", connected);
            }
        }
    }
}

impl Adapter for Redis {
    fn publish(&self, message: Bytes) {
        self.queue(message);
    }

    fn publish_direct(&self, _node: &str, message: Bytes) {
        // The target travels inside the message; every node but the target ignores it.
        self.queue(message);
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn is_connected(&self) -> bool {
        self.state.connected.load(Ordering::Acquire)
    }

    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "channel": self.channel,
            "peers": self.peers(),
            "queued": self.state.outbox.len(),
            "dropped": self.dropped(),
        })
    }

    fn required_for_readiness(&self) -> bool {
        self.required_for_readiness
    }

    fn attach(&self, telemetry: &crate::instrument::Telemetry) {
        telemetry.pubsub_adapter("redis");
        let _ = self.state.telemetry.set(telemetry.clone());
    }

    fn worker(&self, pubsub: &PubSub) -> Option<ChildSpec> {
        let (redis, pubsub) = (self.clone(), pubsub.clone());
        let spec =
            ChildSpec::new("pubsub.redis", move |token| run(redis.clone(), pubsub.clone(), token))
                .shutdown_timeout(Duration::from_secs(5));
        Some(spec)
    }
}

/// How a connected session ended.
enum End {
    Stopped,
    Lost(String),
}

async fn run(redis: Redis, pubsub: PubSub, token: CancellationToken) -> Result<(), Infallible> {
    // What was taken from the queue but not yet published; kept across reconnects.
    let mut pending: Vec<Bytes> = Vec::new();
    let mut backoff = redis.backoff.0;
    let mut failures = 0u32;
    loop {
        let session = tokio::select! {
            () = token.cancelled() => return Ok(()),
            session = connect(&redis) => session,
        };
        match session {
            Ok(session) => {
                redis.set_connected(true);
                tracing::info!(channel = %redis.channel, "redis pubsub: connected");
                backoff = redis.backoff.0;
                failures = 0;
                let end = serve(&redis, &pubsub, &token, session, &mut pending).await;
                redis.set_connected(false);
                redis.peers_lock().lost(std::time::Instant::now());
                match end {
                    End::Stopped => return Ok(()),
                    End::Lost(reason) => {
                        tracing::warn!(%reason, "redis pubsub: connection lost, reconnecting");
                    }
                }
            }
            Err(err) => {
                redis.set_connected(false);
                failures += 1;
                // The first failure and then one in ten, so a long outage stays readable.
                if failures % 10 == 1 {
                    tracing::warn!(error = %err, failures, "redis pubsub: cannot connect");
                }
            }
        }
        // Jitter spreads the reconnects of many replicas after Redis restarts.
        let jitter = Duration::from_millis(rand::random::<u64>() % 50);
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            () = tokio::time::sleep(backoff + jitter) => {}
        }
        backoff = (backoff * 2).min(redis.backoff.1);
    }
}

struct Connection {
    publisher: redis::aio::MultiplexedConnection,
    sink: redis::aio::PubSubSink,
    stream: redis::aio::PubSubStream,
}

/// How long Redis may take to answer a command before the connection is given up. Generous:
/// a node whose runtime is saturated (tens of thousands of sockets connecting at once) can
/// take seconds to get round to reading a reply, and a spurious reconnect costs more (the
/// subscription lapses meanwhile) than a slow notice of a dead connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

async fn connect(redis: &Redis) -> Result<Connection, String> {
    const TIMEOUT: Duration = Duration::from_secs(5);
    let attempt = async {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let mut subscriber = redis.client.get_async_pubsub().await?;
        subscriber.subscribe(&[&redis.channel, &redis.nodes_channel]).await?;
        let (sink, stream) = subscriber.split();
        let publisher = redis.client.get_multiplexed_async_connection_with_config(&config).await?;
        Ok::<_, redis::RedisError>(Connection { publisher, sink, stream })
    };
    match tokio::time::timeout(TIMEOUT, attempt).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

async fn serve(
    redis: &Redis,
    pubsub: &PubSub,
    token: &CancellationToken,
    mut session: Connection,
    pending: &mut Vec<Bytes>,
) -> End {
    // Subscribed: from here on whatever others publish reaches this node, so say so. Until
    // every node known before has said the same, what this node sends would be lost for it:
    // the queue is held, up to the peer wait.
    let subscribed = tokio::time::Instant::now();
    let hold_until = subscribed + redis.peer_wait;
    let mut holding = {
        let mut peers = redis.peers_lock();
        peers.await_all(std::time::Instant::now());
        peers.is_waiting()
    };
    if holding {
        tracing::info!(
            peers = ?redis.peers(),
            "redis pubsub: holding queued messages until the other nodes have resubscribed"
        );
    }
    if let Err(err) = announce(redis, &mut session.publisher, Control::Hello, pubsub.node()).await {
        return End::Lost(err);
    }
    // A ping every few seconds notices a half-open connection that would never end the stream.
    // (A subscribed connection answers `["pong", ""]`, hence the untyped reply.)
    let mut ping = tokio::time::interval(Duration::from_secs(10));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Saying so now and then lets the others tell a node that is gone (crashed: no goodbye)
    // from one that is there, and not wait for it after an outage.
    let mut here = tokio::time::interval(HERE_EVERY);
    here.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !holding && !pending.is_empty() {
            if let Err(err) = publish(redis, &mut session.publisher, pending).await {
                return End::Lost(err);
            }
        }
        // Not a `sleep_until` in the branch: a timer would be made on every turn of the loop,
        // and the loop turns once per batch of messages.
        let hold_expires = async move {
            if holding {
                tokio::time::sleep_until(hold_until).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            () = token.cancelled() => {
                // Whatever the node said last (presence farewells) still goes out, held or
                // not: nothing would send it later.
                redis.state.outbox.close();
                let mut rest = Vec::new();
                while redis.state.outbox.recv_all(&mut rest).await {}
                pending.extend(rest);
                let flush = async {
                    publish(redis, &mut session.publisher, pending).await?;
                    announce(redis, &mut session.publisher, Control::Bye, pubsub.node()).await
                };
                if tokio::time::timeout(Duration::from_secs(2), flush).await.is_err() {
                    tracing::warn!("redis pubsub: could not flush before stopping");
                }
                return End::Stopped;
            }
            msg = session.stream.next() => match msg {
                Some(msg) if msg.get_channel_name() == redis.nodes_channel => {
                    let Some((control, id, node)) = Control::decode(msg.get_payload_bytes()) else {
                        tracing::warn!("redis pubsub: malformed node announcement ignored");
                        continue;
                    };
                    if id == redis.state.id {
                        continue;
                    }
                    let back = {
                        let mut peers = redis.peers_lock();
                        match control {
                            Control::Hello | Control::Here => peers.heard(id, node),
                            Control::Bye => peers.left(id),
                        }
                        !peers.is_waiting()
                    };
                    if control == Control::Hello {
                        // The newcomer subscribed before announcing, so it hears the answer
                        // (and this node's announcement may have gone out before that).
                        let here = announce(redis, &mut session.publisher, Control::Here, pubsub.node());
                        if let Err(err) = here.await {
                            return End::Lost(err);
                        }
                    }
                    if holding && back {
                        holding = false;
                        tracing::info!(
                            waited = ?subscribed.elapsed(),
                            "redis pubsub: every other node is back, sending queued messages"
                        );
                    }
                }
                Some(msg) => {
                    if let Err(err) = pubsub.receive_remote(msg.get_payload_bytes()) {
                        tracing::warn!(error = %err, "redis pubsub: malformed message ignored");
                    }
                }
                None => return End::Lost("subscription closed".to_owned()),
            },
            // While held, messages stay in the outbox, where the queue limit applies.
            open = redis.state.outbox.recv_all(pending), if !holding => {
                if !open && pending.is_empty() {
                    return End::Stopped;
                }
            }
            () = hold_expires => {
                holding = false;
                let missing = redis.peers_lock().give_up();
                tracing::warn!(
                    ?missing,
                    "redis pubsub: nodes did not resubscribe within the peer wait; sending \
                     queued messages anyway (those nodes miss them and are no longer waited for)"
                );
            }
            _ = ping.tick() => {
                let pong = tokio::time::timeout(RESPONSE_TIMEOUT, session.sink.ping::<redis::Value>());
                match pong.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return End::Lost(err.to_string()),
                    Err(_) => return End::Lost("ping timed out".to_owned()),
                }
            }
            _ = here.tick() => {
                let said = announce(redis, &mut session.publisher, Control::Here, pubsub.node());
                if let Err(err) = said.await {
                    return End::Lost(err);
                }
            }
        }
    }
}

/// What nodes say on the nodes channel, as `<word> <id> <node name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    /// "I have just subscribed": sent on every (re)connect.
    Hello,
    /// "I am subscribed": the answer to a `Hello`.
    Here,
    /// "I am stopping": do not wait for me after a reconnect.
    Bye,
}

impl Control {
    fn word(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Here => "here",
            Self::Bye => "bye",
        }
    }

    fn encode(self, id: &str, node: &str) -> String {
        format!("{} {id} {node}", self.word())
    }

    fn decode(bytes: &[u8]) -> Option<(Self, &str, &str)> {
        let mut parts = std::str::from_utf8(bytes).ok()?.splitn(3, ' ');
        let control = match parts.next()? {
            "hello" => Self::Hello,
            "here" => Self::Here,
            "bye" => Self::Bye,
            _ => return None,
        };
        let id = parts.next().filter(|id| !id.is_empty())?;
        Some((control, id, parts.next().unwrap_or("")))
    }
}

/// The other nodes heard on the nodes channel and, after a reconnect, those not heard again
/// yet.
#[derive(Debug, Default)]
struct Peers {
    /// Id to node name (for logs and [`Redis::peers`]) and when it was last heard.
    known: HashMap<String, (String, std::time::Instant)>,
    awaited: HashSet<String>,
    /// When this node last lost its connection.
    lost_at: Option<std::time::Instant>,
}

/// How often a node says it is there.
const HERE_EVERY: Duration = Duration::from_secs(2);

/// A node not heard for this long before the connection was lost is taken for gone: three of
/// its [`HERE_EVERY`] announcements missed in a row.
const GONE_AFTER: Duration = Duration::from_secs(7);

impl Peers {
    /// A new session: until they announce themselves again, every node heard lately may still
    /// be unsubscribed. Nodes silent for [`GONE_AFTER`] before the connection was lost (the
    /// outage itself does not count) crashed or left, and are forgotten.
    fn await_all(&mut self, now: std::time::Instant) {
        let until = self.lost_at.unwrap_or(now);
        self.known.retain(|_, (_, heard)| until.saturating_duration_since(*heard) < GONE_AFTER);
        self.awaited = self.known.keys().cloned().collect();
    }

    fn lost(&mut self, now: std::time::Instant) {
        self.lost_at = Some(now);
    }

    fn heard(&mut self, id: &str, node: &str) {
        self.awaited.remove(id);
        self.known.insert(id.to_owned(), (node.to_owned(), std::time::Instant::now()));
    }

    fn left(&mut self, id: &str) {
        self.awaited.remove(id);
        self.known.remove(id);
    }

    fn is_waiting(&self) -> bool {
        !self.awaited.is_empty()
    }

    /// Forgets the nodes still awaited, so that no later reconnect waits for them again (one
    /// that was only slow is known again as soon as it announces itself); returns their names.
    fn give_up(&mut self) -> Vec<String> {
        let mut names: Vec<String> =
            self.awaited.drain().filter_map(|id| Some(self.known.remove(&id)?.0)).collect();
        names.sort_unstable();
        names
    }
}

/// Says `control` on the nodes channel. One round trip, only on (re)connects, stops and
/// others' reconnects: never per message.
async fn announce(
    redis: &Redis,
    publisher: &mut redis::aio::MultiplexedConnection,
    control: Control,
    node: &str,
) -> Result<(), String> {
    redis::cmd("PUBLISH")
        .arg(&redis.nodes_channel)
        .arg(control.encode(&redis.state.id, node))
        .query_async::<()>(publisher)
        .await
        .map_err(|err| err.to_string())
}

/// Publishes `pending` in pipelines. On failure the batch in flight is dropped (Redis may or
/// may not have taken it; sending it again could deliver it twice) and the rest stays pending.
async fn publish(
    redis: &Redis,
    publisher: &mut redis::aio::MultiplexedConnection,
    pending: &mut Vec<Bytes>,
) -> Result<(), String> {
    while !pending.is_empty() {
        let n = pending.len().min(BATCH);
        let mut pipe = redis::pipe();
        for message in &pending[..n] {
            pipe.cmd("PUBLISH").arg(&redis.channel).arg(message.as_ref()).ignore();
        }
        let result = pipe.query_async::<()>(publisher).await;
        pending.drain(..n);
        if let Err(err) = result {
            redis.state.dropped.fetch_add(n as u64, Ordering::Relaxed);
            if let Some(telemetry) = redis.state.telemetry.get() {
                telemetry.pubsub_adapter_dropped("redis", n as u64);
            }
            return Err(err.to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_announcements_round_trip_and_anything_else_is_refused() {
        for control in [Control::Hello, Control::Here, Control::Bye] {
            let text = control.encode("00ff", "node a");
            assert_eq!(Control::decode(text.as_bytes()), Some((control, "00ff", "node a")));
        }
        assert_eq!(Control::decode(b"hello 00ff"), Some((Control::Hello, "00ff", "")));
        for garbage in [&b""[..], b"hello", b"hello ", b"hi 00ff a", b"{\"origin\":1}", b"\xff 1 a"]
        {
            assert_eq!(Control::decode(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn after_a_reconnect_every_known_node_is_awaited_until_heard_bye_or_given_up() {
        let now = std::time::Instant::now;
        let mut peers = Peers::default();
        // A first connection waits for nobody.
        peers.await_all(now());
        assert!(!peers.is_waiting());
        for (id, node) in [("1", "a"), ("2", "b"), ("3", "c")] {
            peers.heard(id, node);
        }
        assert!(!peers.is_waiting(), "nodes heard while connected are not awaited");

        peers.lost(now());
        peers.await_all(now());
        assert!(peers.is_waiting());
        peers.heard("1", "a");
        peers.heard("4", "d"); // new: known, never awaited this time
        peers.left("2");
        assert!(peers.is_waiting(), "c is still awaited");
        assert_eq!(peers.give_up(), ["c"]);
        assert!(!peers.is_waiting());
        let mut known: Vec<&str> = peers.known.values().map(|(n, _)| n.as_str()).collect();
        known.sort_unstable();
        assert_eq!(known, ["a", "d"], "b said bye and c was given up: neither is awaited again");

        peers.await_all(now());
        peers.heard("1", "a");
        peers.heard("4", "d");
        assert!(!peers.is_waiting());
    }

    #[test]
    fn a_node_silent_before_the_outage_is_not_awaited_however_long_the_outage() {
        let mut peers = Peers::default();
        peers.heard("1", "a");
        peers.heard("2", "b");
        let heard = peers.known["2"].1;
        // b fell silent (crashed) long before the connection was lost; a was heard just before.
        peers.known.get_mut("2").unwrap().1 = heard.checked_sub(GONE_AFTER * 2).unwrap();
        let lost = heard + Duration::from_secs(1);
        peers.lost(lost);
        // An outage far longer than GONE_AFTER: a is still awaited, b is forgotten.
        peers.await_all(lost + GONE_AFTER * 10);
        assert_eq!(peers.awaited, HashSet::from(["1".to_owned()]));
        assert_eq!(peers.known.len(), 1);
    }
}
