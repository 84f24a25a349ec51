use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::json;

use super::*;

#[tokio::test]
async fn broadcast_reaches_every_subscriber_and_broadcast_from_skips_the_sender() {
    let pubsub = PubSub::new("a");
    let mut one = pubsub.subscribe("t");
    let mut two = pubsub.subscribe("t");
    let mut other = pubsub.subscribe("u");
    pubsub.broadcast("t", "e", json!({"n": 1}));
    pubsub.broadcast_from(one.id(), "t", "e", json!({"n": 2}));
    assert_eq!(one.recv().await.unwrap().payload(), &Payload::Json(json!({"n": 1})));
    assert_eq!(two.recv().await.unwrap().payload(), &Payload::Json(json!({"n": 1})));
    assert_eq!(two.recv().await.unwrap().payload(), &Payload::Json(json!({"n": 2})));
    pubsub.broadcast("u", "x", json!({}));
    assert_eq!(other.recv().await.unwrap().event(), "x");
    assert_eq!(pubsub.subscriber_count("t"), 2);
    drop(one);
    assert_eq!(pubsub.subscriber_count("t"), 1);
}

/// Two nodes joined by an in-memory adapter.
struct Wire(Mutex<Vec<PubSub>>);

impl Adapter for Arc<Wire> {
    fn publish(&self, message: Bytes) {
        for node in self.0.lock().unwrap().iter() {
            node.receive_remote(&message).unwrap();
        }
    }
    fn publish_direct(&self, _node: &str, message: Bytes) {
        self.publish(message);
    }
}

#[tokio::test]
async fn adapters_carry_broadcasts_to_other_nodes_once() {
    let wire = Arc::new(Wire(Mutex::new(Vec::new())));
    let a = PubSub::with_adapter("a", Arc::new(wire.clone()));
    let b = PubSub::with_adapter("b", Arc::new(wire.clone()));
    wire.0.lock().unwrap().extend([a.clone(), b.clone()]);
    let mut on_a = a.subscribe("t");
    let mut on_b = b.subscribe("t");
    a.broadcast("t", "hello", json!({}));
    a.local_broadcast("t", "local", json!({}));
    a.direct_broadcast("b", "t", "direct", Payload::Binary(Bytes::from_static(b"\x01")));
    b.broadcast("t", "end", json!({}));
    let mut seen_a = Vec::new();
    while let Some(m) = on_a.recv().await {
        seen_a.push(m.event().to_owned());
        if m.event() == "end" {
            break;
        }
    }
    assert_eq!(seen_a, ["hello", "local", "end"]);
    let mut seen_b = Vec::new();
    while let Some(m) = on_b.recv().await {
        seen_b.push((m.event().to_owned(), m.payload().clone()));
        if m.event() == "end" {
            break;
        }
    }
    let events: Vec<&str> = seen_b.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(events, ["hello", "direct", "end"]);
    assert_eq!(seen_b[1].1, Payload::Binary(Bytes::from_static(b"\x01")));
}

#[test]
fn a_broadcast_is_encoded_once_per_version() {
    let msg = Broadcast::new("t", "e", Payload::Json(json!({"a": 1})), None);
    let first = msg.frame(crate::serializer::Vsn::V2).unwrap().as_text().unwrap().as_ptr();
    let second = msg.frame(crate::serializer::Vsn::V2).unwrap().as_text().unwrap().as_ptr();
    assert_eq!(first, second);
    assert_eq!(
        msg.frame(crate::serializer::Vsn::V2).unwrap().as_text(),
        Some(r#"[null,null,"t","e",{"a":1}]"#)
    );
}

#[test]
fn pubsub_is_send_sync_static() {
    fn assert<T: Send + Sync + 'static>() {}
    assert::<PubSub>();
}
