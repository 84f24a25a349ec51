//! How messages render as JSON: `{"data": ...}` around
//! `{"id","room_id","author","body","inserted_at"}` for the API, and the `new_msg` payload
//! channels broadcast.

use serde_json::{json, Value};

use crate::chat::{Message, UnsavedMessage};

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
        "inserted_at": super::iso8601(message.inserted_at),
    })
}

/// The `new_msg` payload: `{"id","author","body","inserted_at"}`; the topic already names the
/// room.
pub fn new_msg(message: &Message) -> Value {
    json!({
        "id": message.id,
        "author": message.author,
        "body": message.body,
        "inserted_at": super::iso8601(message.inserted_at),
    })
}

/// The `new_msg` payload of a message that was not stored, so it has no `id`.
pub fn new_unsaved_msg(message: &UnsavedMessage) -> Value {
    json!({
        "author": message.author,
        "body": message.body,
        "inserted_at": super::iso8601(message.inserted_at),
    })
}
