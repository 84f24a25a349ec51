//! Who subscribes to what.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::{Broadcast, PubSub};
use crate::mailbox::Mailbox;

/// Identifies one subscription, for `broadcast_from` and `unsubscribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriberId(u64);

/// A subscriber's sink. `deliver` runs on the broadcaster's task: it must not block.
pub trait Deliver: Send + Sync + 'static {
    /// Takes one broadcast.
    fn deliver(&self, msg: &Arc<Broadcast>);
}

/// Topics are spread over shards so that joins on one topic do not stall broadcasts on others.
const SHARDS: usize = 16;

type Subscribers = Vec<(SubscriberId, Arc<dyn Deliver>)>;

pub(crate) struct Registry {
    shards: Vec<RwLock<HashMap<String, Subscribers>>>,
    next_id: AtomicU64,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            next_id: AtomicU64::new(1),
        }
    }
}

impl Registry {
    fn shard(&self, topic: &str) -> &RwLock<HashMap<String, Subscribers>> {
        // FNV-1a: cheap, and topics are not attacker-chosen keys of a hash table here (each
        // shard's map uses the standard randomised hasher).
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in topic.bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        &self.shards[(hash % SHARDS as u64) as usize]
    }

    pub(crate) fn subscribe(&self, topic: &str, sink: Arc<dyn Deliver>) -> SubscriberId {
        let id = SubscriberId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut shard = self.shard(topic).write().unwrap_or_else(|e| e.into_inner());
        shard.entry(topic.to_owned()).or_default().push((id, sink));
        id
    }

    pub(crate) fn unsubscribe(&self, topic: &str, id: SubscriberId) {
        let mut shard = self.shard(topic).write().unwrap_or_else(|e| e.into_inner());
        if let Some(subs) = shard.get_mut(topic) {
            if let Some(i) = subs.iter().position(|(s, _)| *s == id) {
                subs.swap_remove(i);
            }
            if subs.is_empty() {
                shard.remove(topic);
            }
        }
    }

    pub(crate) fn count(&self, topic: &str) -> usize {
        let shard = self.shard(topic).read().unwrap_or_else(|e| e.into_inner());
        shard.get(topic).map_or(0, Vec::len)
    }

    /// Delivers `msg` to the topic's subscribers; how many it reached.
    pub(crate) fn dispatch(&self, msg: &Arc<Broadcast>) -> u64 {
        let shard = self.shard(msg.topic()).read().unwrap_or_else(|e| e.into_inner());
        let Some(subs) = shard.get(msg.topic()) else {
            return 0;
        };
        let mut delivered = 0;
        for (id, sink) in subs {
            if msg.from() != Some(*id) {
                sink.deliver(msg);
                delivered += 1;
            }
        }
        delivered
    }
}

/// Subscriptions hold at most this many undelivered messages; past it new ones are dropped.
/// A consumer that falls this far behind (a GraphQL subscription whose client does not read)
/// must not hold a replica's memory: messages of 8 KiB make 8 MiB already.
pub(crate) const SUBSCRIPTION_LIMIT: usize = 1024;

struct Queue(Arc<Mailbox<Arc<Broadcast>>>);

impl Deliver for Queue {
    fn deliver(&self, msg: &Arc<Broadcast>) {
        if self.0.push_bounded(msg.clone(), SUBSCRIPTION_LIMIT).is_err() {
            crate::instrument::limited!(
                10,
                warn!(
                    topic = %crate::instrument::clip(msg.topic()),
                    "subscription is full; message dropped"
                )
            );
        }
    }
}

/// A subscription to one topic; dropping it unsubscribes.
pub struct Subscription {
    pubsub: PubSub,
    topic: String,
    id: SubscriberId,
    queue: Arc<Mailbox<Arc<Broadcast>>>,
}

impl Subscription {
    pub(crate) fn new(pubsub: PubSub, topic: &str) -> Self {
        let queue = Mailbox::new();
        let id = pubsub.subscribe_sink(topic, Arc::new(Queue(queue.clone())));
        Self { pubsub, topic: topic.to_owned(), id, queue }
    }

    /// This subscription's id, for [`PubSub::broadcast_from`].
    pub fn id(&self) -> SubscriberId {
        self.id
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next message.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a message is taken only when this resolves.
    pub async fn recv(&mut self) -> Option<Arc<Broadcast>> {
        self.queue.recv().await
    }

    /// The broadcasts as a stream, for what consumes streams: a GraphQL subscription's
    /// resolver, a server-sent events body. Dropping the stream unsubscribes.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_util::StreamExt as _;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pubsub = fawkes::PubSub::new("node-a");
    /// let mut messages = pubsub.subscribe("room:1").into_stream();
    /// pubsub.broadcast("room:1", "new_msg", serde_json::json!({"body": "hi"}));
    /// let message = messages.next().await.unwrap();
    /// assert_eq!(message.event(), "new_msg");
    /// # }
    /// ```
    pub fn into_stream(self) -> futures_util::stream::BoxStream<'static, Arc<Broadcast>> {
        Box::pin(futures_util::stream::unfold(self, |mut subscription| async move {
            subscription.recv().await.map(|message| (message, subscription))
        }))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.pubsub.unsubscribe(&self.topic, self.id);
        self.queue.close();
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("topic", &self.topic).field("id", &self.id).finish()
    }
}
