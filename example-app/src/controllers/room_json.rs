//! How rooms render as JSON: `{"data": ...}` around `{"id","name","inserted_at"}`.

use serde_json::{json, Value};

use crate::chat::Room;

/// `{"data":[room, ...]}`.
pub fn index(rooms: &[Room]) -> Value {
    json!({ "data": rooms.iter().map(data).collect::<Vec<_>>() })
}

/// `{"data":room}`.
pub fn show(room: &Room) -> Value {
    json!({ "data": data(room) })
}

fn data(room: &Room) -> Value {
    json!({ "id": room.id, "name": room.name, "inserted_at": super::iso8601(room.inserted_at) })
}
