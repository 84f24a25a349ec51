//! How messages render as JSON: `{"data": ...}` around
//! `{"id","room_id","author","body","inserted_at"}`.

use serde_json::{json, Value};

use crate::chat::Message;

/// `{"data":[message, ...]}`.
pub fn index(messages: &[Message]) -> Value {
    json!({ "data": messages.iter().map(data).collect::<Vec<_>>() })
}

/// `{"data":message}`.
pub fn show(message: &Message) -> Value {
    json!({ "data": data(message) })
}

fn data(message: &Message) -> Value {
    json!({
        "id": message.id,
        "room_id": message.room_id,
        "author": message.author,
        "body": message.body,
        "inserted_at": message.inserted_at,
    })
}
