//! Carrying broadcasts between nodes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Broadcast;
use crate::serializer::Payload;
use crate::supervisor::ChildSpec;

/// Carries serialised broadcasts to other nodes and hands received ones to
/// [`PubSub::receive_remote`](super::PubSub::receive_remote).
///
/// Messages are JSON carrying the origin pubsub's unique id, so the receiving node skips its
/// own, and for a direct broadcast the target node's name.
///
/// `publish` runs on the broadcaster's task: it must not block (queue the bytes and send them
/// from a worker, as [`Redis`](super::Redis) does).
pub trait Adapter: Send + Sync + 'static {
    /// Sends to every node.
    fn publish(&self, message: Bytes);
    /// Sends to one node.
    fn publish_direct(&self, node: &str, message: Bytes);
    /// Whether this adapter reaches no other node (broadcasts then skip encoding for it).
    fn is_local(&self) -> bool {
        false
    }
    /// A short name for logs, telemetry and `/readyz` (`"local"`, `"redis"`).
    fn name(&self) -> &'static str {
        "custom"
    }
    /// Whether the adapter currently reaches the other nodes.
    fn is_connected(&self) -> bool {
        true
    }
    /// What a live dashboard shows of the adapter beyond its name and connection: for
    /// [`Redis`](super::Redis), its channel, the peers it knows, the messages queued for
    /// the other nodes and those dropped. `null` when there is nothing more to say.
    fn details(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Whether `/readyz` should answer 503 while the adapter is disconnected.
    fn required_for_readiness(&self) -> bool {
        false
    }
    /// The telemetry of the pubsub this adapter serves, given once when the pubsub is made:
    /// where the adapter reports its figures (it is a `metrics` recorder, for
    /// `metrics::with_local_recorder`). Endpoints serving the pubsub export them.
    fn attach(&self, _telemetry: &crate::instrument::Telemetry) {}
    /// The long-running task that carries messages, if the adapter needs one: the endpoint
    /// runs it as a permanent child of its supervisor, started before the listener and
    /// stopped after the connections, with `pubsub` to deliver received messages into.
    fn worker(&self, _pubsub: &super::PubSub) -> Option<ChildSpec> {
        None
    }
}

/// The embedded default: one node, nothing leaves it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

impl Adapter for Local {
    fn publish(&self, _message: Bytes) {}
    fn publish_direct(&self, _node: &str, _message: Bytes) {}
    fn is_local(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "local"
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct RemoteMessage {
    pub(super) origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) target: Option<String>,
    topic: String,
    event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<serde_json::Value>,
    /// A binary payload, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binary: Option<String>,
}

impl RemoteMessage {
    pub(super) fn encode(origin: &str, target: Option<&str>, msg: &Broadcast) -> Bytes {
        use base64::Engine as _;
        let (payload, binary) = match msg.payload() {
            Payload::Json(v) => (Some(v.clone()), None),
            Payload::Binary(b) => (None, Some(base64::engine::general_purpose::STANDARD.encode(b))),
        };
        let remote = RemoteMessage {
            origin: origin.to_owned(),
            target: target.map(str::to_owned),
            topic: msg.topic().to_owned(),
            event: msg.event().to_owned(),
            payload,
            binary,
        };
        Bytes::from(serde_json::to_vec(&remote).unwrap_or_default())
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub(super) fn into_broadcast(self) -> Broadcast {
        use base64::Engine as _;
        let payload = match (self.payload, self.binary) {
            (_, Some(b)) => match base64::engine::general_purpose::STANDARD.decode(b) {
                Ok(bytes) => Payload::Binary(Bytes::from(bytes)),
                Err(_) => Payload::empty(),
            },
            (Some(v), None) => Payload::Json(v),
            (None, None) => Payload::empty(),
        };
        Broadcast::new(&self.topic, &self.event, payload, None)
    }
}
