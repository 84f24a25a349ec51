//! The Redis adapter: every node publishes to, and subscribes to, one Redis channel.

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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
/// usual, messages for other nodes wait in a bounded queue (sent after the reconnect; the
/// oldest are dropped past the limit), and [`Adapter::is_connected`] is false, which
/// `/readyz` reports (and answers 503 for, when
/// [`required_for_readiness`](Redis::required_for_readiness) is set).
///
/// Redis pub/sub is fire-and-forget: a node that is disconnected misses what others publish
/// meanwhile. Presence recovers from that on its own (heartbeats carry clocks); application
/// broadcasts do not.
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
    required_for_readiness: bool,
    backoff: (Duration, Duration),
    queue_limit: usize,
    state: Arc<State>,
}

struct State {
    outbox: Arc<Mailbox<Bytes>>,
    connected: AtomicBool,
    dropped: AtomicU64,
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
            required_for_readiness: false,
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            queue_limit: 100_000,
            state: Arc::new(State {
                outbox: Mailbox::new(),
                connected: AtomicBool::new(false),
                dropped: AtomicU64::new(0),
            }),
        })
    }

    /// Separates applications sharing one Redis: nodes talk on `fawkes:<namespace>`
    /// (default `fawkes`).
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.channel = format!("fawkes:{namespace}");
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

    /// How many messages for other nodes may wait while Redis is unreachable (default
    /// 100,000); past it new ones are dropped and counted.
    #[must_use]
    pub fn queue_limit(mut self, messages: usize) -> Self {
        self.queue_limit = messages.max(1);
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

    fn queue(&self, message: Bytes) {
        match self.state.outbox.push_bounded(message, self.queue_limit) {
            Ok(()) => {}
            Err(PushError::Full(_) | PushError::Closed(_)) => {
                let dropped = self.state.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                crate::telemetry::pubsub_adapter_dropped("redis", 1);
                // One line per thousand keeps an outage from flooding the logs.
                if dropped % 1000 == 1 {
                    tracing::warn!(dropped, "redis pubsub: queue full, messages dropped");
                }
            }
        }
    }

    fn set_connected(&self, connected: bool) {
        if self.state.connected.swap(connected, Ordering::AcqRel) != connected {
            crate::telemetry::pubsub_adapter_connected("redis", connected);
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

    fn required_for_readiness(&self) -> bool {
        self.required_for_readiness
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

struct Session {
    publisher: redis::aio::MultiplexedConnection,
    sink: redis::aio::PubSubSink,
    stream: redis::aio::PubSubStream,
}

/// How long Redis may take to answer a command before the connection is given up. Generous:
/// a node whose runtime is saturated (tens of thousands of sockets connecting at once) can
/// take seconds to get round to reading a reply, and a spurious reconnect costs more (the
/// subscription lapses meanwhile) than a slow notice of a dead connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

async fn connect(redis: &Redis) -> Result<Session, String> {
    const TIMEOUT: Duration = Duration::from_secs(5);
    let attempt = async {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let mut subscriber = redis.client.get_async_pubsub().await?;
        subscriber.subscribe(&redis.channel).await?;
        let (sink, stream) = subscriber.split();
        let publisher = redis.client.get_multiplexed_async_connection_with_config(&config).await?;
        Ok::<_, redis::RedisError>(Session { publisher, sink, stream })
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
    mut session: Session,
    pending: &mut Vec<Bytes>,
) -> End {
    // A ping every few seconds notices a half-open connection that would never end the stream.
    // (A subscribed connection answers `["pong", ""]`, hence the untyped reply.)
    let mut ping = tokio::time::interval(Duration::from_secs(10));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !pending.is_empty() {
            if let Err(err) = publish(redis, &mut session.publisher, pending).await {
                return End::Lost(err);
            }
        }
        tokio::select! {
            biased;
            () = token.cancelled() => {
                // Whatever the node said last (presence farewells) still goes out.
                redis.state.outbox.close();
                let mut rest = Vec::new();
                while redis.state.outbox.recv_all(&mut rest).await {}
                pending.extend(rest);
                let flush = publish(redis, &mut session.publisher, pending);
                if tokio::time::timeout(Duration::from_secs(2), flush).await.is_err() {
                    tracing::warn!("redis pubsub: could not flush before stopping");
                }
                return End::Stopped;
            }
            msg = session.stream.next() => match msg {
                Some(msg) => {
                    if let Err(err) = pubsub.receive_remote(msg.get_payload_bytes()) {
                        tracing::warn!(error = %err, "redis pubsub: malformed message ignored");
                    }
                }
                None => return End::Lost("subscription closed".to_owned()),
            },
            open = redis.state.outbox.recv_all(pending) => {
                if !open && pending.is_empty() {
                    return End::Stopped;
                }
            }
            _ = ping.tick() => {
                let pong = tokio::time::timeout(RESPONSE_TIMEOUT, session.sink.ping::<redis::Value>());
                match pong.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return End::Lost(err.to_string()),
                    Err(_) => return End::Lost("ping timed out".to_owned()),
                }
            }
        }
    }
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
            crate::telemetry::pubsub_adapter_dropped("redis", n as u64);
            return Err(err.to_string());
        }
    }
    Ok(())
}
