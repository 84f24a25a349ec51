//! Carrying broadcasts between nodes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Broadcast;
use crate::serializer::Payload;

/// Carries serialised broadcasts to other nodes and hands received ones to
/// [`PubSub::receive_remote`](super::PubSub::receive_remote).
///
/// Messages are JSON carrying the origin node's name, so the receiving node skips its own.
pub trait Adapter: Send + Sync + 'static {
    /// Sends to every node.
    fn publish(&self, message: Bytes);
    /// Sends to one node.
    fn publish_direct(&self, node: &str, message: Bytes);
    /// Whether this adapter reaches no other node (broadcasts then skip encoding for it).
    fn is_local(&self) -> bool {
        false
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
