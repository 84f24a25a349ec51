//! `/api/rooms/:room_id/messages`: a room's recent messages, and posting one.

use fawkes::Conn;
use http::StatusCode;
use serde::Deserialize;

use super::{id_param, message_json, repo, FallbackError};
use crate::channels::room_topic;
use crate::chat::{self, MessageAttrs};

/// The body of create: `{"message":{"author":"ada","body":"hello"}}`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
struct MessageParams {
    message: MessageAttrs,
}

/// `GET /api/rooms/:room_id/messages`: the last [`chat::MESSAGE_HISTORY`], oldest first.
pub async fn index(conn: Conn) -> Result<Conn, FallbackError> {
    let room_id = id_param(&conn, "room_id")?;
    let repo = repo(&conn)?;
    let room = chat::get_room(&repo, room_id).await?.ok_or(FallbackError::NotFound)?;
    let messages = chat::list_messages(&repo, room.id).await?;
    Ok(conn.json(&message_json::index(&messages)))
}

/// `POST /api/rooms/:room_id/messages`: 201 with the message, which is also broadcast as
/// `new_msg` to the room's channel, as if it had been posted there.
pub async fn create(conn: Conn) -> Result<Conn, FallbackError> {
    let room_id = id_param(&conn, "room_id")?;
    let repo = repo(&conn)?;
    // A missing room answers 404 before the body is judged, as `get_room!` would in Phoenix.
    let room = chat::get_room(&repo, room_id).await?.ok_or(FallbackError::NotFound)?;
    let MessageParams { message } = conn.params()?;
    let message = chat::create_message(&repo, room.id, message).await?;
    conn.pubsub().broadcast(&room_topic(room.id), "new_msg", message_json::new_msg(&message));
    Ok(conn.put_status(StatusCode::CREATED).json(&message_json::show(&message)))
}
