//! PubSub: topics, subscribers, and broadcasts within a node and across nodes.
//!
//! A broadcast reaches every subscriber of its topic. Channel subscribers take the fast lane: the
//! message is encoded once per serializer version, lazily, and the same bytes go straight to
//! every subscribed socket. Other subscribers (background tasks, tests) get the message itself
//! through a [`Subscription`]. An [`Adapter`] carries broadcasts to other nodes as serialised
//! bytes tagged with the origin node, so a node skips its own; [`Local`] is the embedded default.
//!
//! This module knows nothing about HTTP or sockets: subscribers are values implementing
//! [`Deliver`].

mod adapter;
mod broadcast;
#[cfg(feature = "redis")]
mod redis;
mod registry;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

pub use adapter::{Adapter, Local};
pub use broadcast::Broadcast;
#[cfg(feature = "redis")]
pub use redis::Redis;
pub use registry::{Deliver, SubscriberId, Subscription};

use crate::instrument::Telemetry;
use crate::serializer::Payload;

/// A handle to a pubsub; clones share it.
///
/// # Examples
///
/// ```
/// use fawkes::pubsub::PubSub;
/// use serde_json::json;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let pubsub = PubSub::new("node-a");
/// let mut sub = pubsub.subscribe("room:lobby");
/// pubsub.broadcast("room:lobby", "new_msg", json!({"body": "hi"}));
/// let msg = sub.recv().await.unwrap();
/// assert_eq!(msg.event(), "new_msg");
/// # });
/// ```
#[derive(Clone)]
pub struct PubSub {
    inner: Arc<Inner>,
}

struct Inner {
    node: Arc<str>,
    /// Unique per pubsub, so that two processes given the same node name still skip only
    /// their own messages.
    instance: Arc<str>,
    registry: registry::Registry,
    adapter: Arc<dyn Adapter>,
    /// Broadcasts and deliveries, and the adapter's figures; endpoints include it in theirs.
    telemetry: Telemetry,
    /// Presence's tracker, made on first use; the pubsub knows it only as a node service.
    service: std::sync::OnceLock<Arc<dyn NodeService>>,
}

/// A node-wide service that rides on a pubsub (presence's tracker): made on its first use and
/// kept with the pubsub, it alone receives the messages other nodes send on its topic, which
/// never reach a subscriber.
pub(crate) trait NodeService: std::any::Any + Send + Sync {
    /// The topic of its messages between nodes.
    fn topic(&self) -> &'static str;
    /// A message from another node on that topic.
    fn inbox(&self, msg: Arc<Broadcast>);
}

impl fmt::Debug for PubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSub")
            .field("node", &self.inner.node)
            .field("adapter", &self.inner.adapter.name())
            .finish_non_exhaustive()
    }
}

impl PubSub {
    /// A local pubsub for the node named `node`.
    pub fn new(node: impl Into<Arc<str>>) -> Self {
        Self::with_adapter(node, Arc::new(Local))
    }

    /// A pubsub whose broadcasts also go to other nodes through `adapter`.
    pub fn with_adapter(node: impl Into<Arc<str>>, adapter: Arc<dyn Adapter>) -> Self {
        let node = node.into();
        let instance = Arc::from(format!("{node}#{:016x}", rand::random::<u64>()));
        let telemetry = Telemetry::part(None);
        adapter.attach(&telemetry);
        Self {
            inner: Arc::new(Inner {
                service: std::sync::OnceLock::new(),
                node,
                instance,
                registry: registry::Registry::default(),
                adapter,
                telemetry,
            }),
        }
    }

    /// The process's own pubsub, on this node alone: what [`Conn::pubsub`](crate::Conn::pubsub)
    /// gives a request served outside an endpoint (a router called with
    /// [`Router::dispatch`](crate::Router::dispatch), or mounted in another server). Subscribe
    /// to it to see what such controllers broadcast. Under an endpoint, requests get the
    /// endpoint's pubsub instead; under `ConnTest`, the test's.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::{Conn, PubSub};
    ///
    /// async fn create(conn: Conn) -> Conn {
    ///     conn.pubsub().broadcast("rooms", "created", serde_json::json!({"id": 1}));
    ///     conn.text("ok")
    /// }
    ///
    /// fawkes::router! { pub App; post "/rooms" => create; }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let mut inbox = PubSub::process().subscribe("rooms");
    /// let router = fawkes::Router::from(App::new());
    /// router.dispatch(http::Request::post("/rooms").body(fawkes::Body::empty()).unwrap()).await;
    /// assert_eq!(inbox.recv().await.unwrap().event(), "created");
    /// # });
    /// ```
    pub fn process() -> &'static PubSub {
        static PROCESS: std::sync::OnceLock<PubSub> = std::sync::OnceLock::new();
        PROCESS.get_or_init(|| PubSub::new("local"))
    }

    /// This pubsub's figures (broadcasts, deliveries, its adapter's), which an endpoint
    /// serving it includes in its own [`Telemetry`].
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// Delivers `msg` to this node's subscribers, counted.
    fn dispatch(&self, msg: &Arc<Broadcast>) {
        let delivered = self.inner.registry.dispatch(msg);
        self.inner.telemetry.pubsub_broadcast(delivered);
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The adapter carrying broadcasts to other nodes.
    pub fn adapter(&self) -> &dyn Adapter {
        &*self.inner.adapter
    }

    /// The node service of type `T`, made by `init` (given the node's name) on first use.
    ///
    /// # Panics
    ///
    /// When a service of another type was made first: a pubsub carries one kind.
    pub(crate) fn node_service<T: NodeService>(&self, init: impl FnOnce(&str) -> T) -> &T {
        let service = self.inner.service.get_or_init(|| Arc::new(init(&self.inner.node)));
        let service: &dyn std::any::Any = &**service;
        service.downcast_ref().expect("a pubsub carries one kind of node service")
    }

    /// Subscribes to `topic`; dropping the subscription unsubscribes.
    pub fn subscribe(&self, topic: &str) -> Subscription {
        registry::Subscription::new(self.clone(), topic)
    }

    /// Subscribes a custom sink, for transports; returns its id for [`PubSub::unsubscribe`].
    pub fn subscribe_sink(&self, topic: &str, sink: Arc<dyn Deliver>) -> SubscriberId {
        self.inner.registry.subscribe(topic, sink)
    }

    /// Removes a subscriber from a topic.
    pub fn unsubscribe(&self, topic: &str, id: SubscriberId) {
        self.inner.registry.unsubscribe(topic, id);
    }

    /// The number of local subscribers of `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.inner.registry.count(topic)
    }

    /// Broadcasts to every subscriber of `topic` on every node.
    pub fn broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) {
        let msg = Arc::new(Broadcast::new(topic, event, payload.into(), None));
        self.publish_remote(&msg, None);
        self.dispatch(&msg);
    }

    /// Broadcasts to every subscriber of `topic` on every node but `from`.
    pub fn broadcast_from(
        &self,
        from: SubscriberId,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) {
        let msg = Arc::new(Broadcast::new(topic, event, payload.into(), Some(from)));
        self.publish_remote(&msg, None);
        self.dispatch(&msg);
    }

    /// Broadcasts to the subscribers of `topic` on this node only.
    pub fn local_broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) {
        let msg = Arc::new(Broadcast::new(topic, event, payload.into(), None));
        self.dispatch(&msg);
    }

    /// Broadcasts to the subscribers of `topic` on the node named `node` only.
    pub fn direct_broadcast(
        &self,
        node: &str,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) {
        let msg = Arc::new(Broadcast::new(topic, event, payload.into(), None));
        if node == &*self.inner.node {
            self.dispatch(&msg);
        } else {
            self.publish_remote(&msg, Some(node));
        }
    }

    /// Delivers a message an adapter received from another node. Messages this node sent, and
    /// messages for another node, are ignored.
    ///
    /// # Errors
    ///
    /// When `bytes` is not a message in the adapter format.
    pub fn receive_remote(&self, bytes: &[u8]) -> Result<(), serde_json::Error> {
        let remote = adapter::RemoteMessage::decode(bytes)?;
        if remote.origin == *self.inner.instance {
            return Ok(());
        }
        if remote.target.as_deref().is_some_and(|t| t != &*self.inner.node) {
            return Ok(());
        }
        let msg = Arc::new(remote.into_broadcast());
        match self.inner.service.get() {
            // A node service's traffic goes to it alone, never to a channel whose route
            // happens to match the topic.
            Some(service) if msg.topic() == service.topic() => service.inbox(msg),
            _ => self.dispatch(&msg),
        }
        Ok(())
    }

    /// Sends to the other nodes only (to `target` alone when given), never to this one.
    pub(crate) fn broadcast_remote(
        &self,
        target: Option<&str>,
        topic: &str,
        event: &str,
        payload: serde_json::Value,
    ) {
        if !self.inner.adapter.is_local() {
            let msg = Broadcast::new(topic, event, Payload::Json(payload), None);
            self.publish_remote(&msg, target);
        }
    }

    fn publish_remote(&self, msg: &Broadcast, target: Option<&str>) {
        if self.inner.adapter.is_local() {
            return;
        }
        let bytes = adapter::RemoteMessage::encode(&self.inner.instance, target, msg);
        match target {
            Some(node) => self.inner.adapter.publish_direct(node, bytes),
            None => self.inner.adapter.publish(bytes),
        }
    }
}

impl Telemetry {
    /// An endpoint's telemetry with `pubsub`'s included.
    pub(crate) fn for_pubsub(pubsub: &PubSub) -> Self {
        let telemetry = Self::new();
        telemetry.include(pubsub.telemetry());
        telemetry
    }

    /// The telemetry of requests served outside an endpoint (a router called with
    /// [`Router::dispatch`](crate::Router::dispatch)), with the process's pubsub's
    /// ([`PubSub::process`]) included: what [`Conn::telemetry`](crate::Conn::telemetry) gives
    /// there.
    pub fn process() -> &'static Telemetry {
        static PROCESS: std::sync::OnceLock<Telemetry> = std::sync::OnceLock::new();
        PROCESS.get_or_init(|| Self::for_pubsub(PubSub::process()))
    }
}
