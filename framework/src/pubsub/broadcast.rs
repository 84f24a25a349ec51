//! One broadcast message and its encodings.

use std::fmt;
use std::sync::OnceLock;

use super::SubscriberId;
use crate::serializer::{self, Frame, Payload, Vsn};

/// A message broadcast to a topic. Its wire encodings are computed once, on first use.
pub struct Broadcast {
    topic: String,
    event: String,
    payload: Payload,
    from: Option<SubscriberId>,
    v1: OnceLock<Option<Frame>>,
    v2: OnceLock<Option<Frame>>,
}

impl Broadcast {
    pub(crate) fn new(
        topic: &str,
        event: &str,
        payload: Payload,
        from: Option<SubscriberId>,
    ) -> Self {
        Self {
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
            from,
            v1: OnceLock::new(),
            v2: OnceLock::new(),
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The event.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The payload.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The subscriber that sent it with `broadcast_from`, which does not receive it.
    pub fn from(&self) -> Option<SubscriberId> {
        self.from
    }

    /// The broadcast frame for serializer `vsn`, encoded once and shared.
    /// `None` when the payload cannot be carried by that version (binary over V1).
    pub fn frame(&self, vsn: Vsn) -> Option<&Frame> {
        let cell = match vsn {
            Vsn::V1 => &self.v1,
            Vsn::V2 => &self.v2,
        };
        cell.get_or_init(|| {
            serializer::encode_broadcast(vsn, &self.topic, &self.event, &self.payload)
        })
        .as_ref()
    }
}

impl fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("topic", &self.topic)
            .field("event", &self.event)
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}
