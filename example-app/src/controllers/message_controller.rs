//! `/api/rooms/:room_id/messages`: a room's recent messages, and posting one.

use fawkes::{Conn, State};
use http::StatusCode;

use super::{message_json, FallbackError};
use crate::channels::room_topic;
use crate::chat::{self, MessageAttrs};
use crate::router::AppState;

/// `GET /api/rooms/:room_id/messages`: the last [`chat::MESSAGE_HISTORY`], oldest first.
pub async fn index(conn: Conn, state: State<AppState>) -> Result<Conn, FallbackError> {
    let room_id: i64 = conn.param("room_id")?;
    let room = chat::get_room(&state.repo, room_id).await?.ok_or(FallbackError::NotFound)?;
    let messages = chat::list_messages(&state.repo, room.id).await?;
    Ok(conn.json(&message_json::index(&messages)))
}

/// `POST /api/rooms/:room_id/messages` with `{"message":{"author":"ada","body":"hello"}}`:
/// 201 with the message, which is also broadcast as `new_msg` to the room's channel, as if it
/// had been posted there.
pub async fn create(conn: Conn, state: State<AppState>) -> Result<Conn, FallbackError> {
    let room_id: i64 = conn.param("room_id")?;
    // A missing room answers 404 before the body is judged, as `get_room!` would in Phoenix.
    let room = chat::get_room(&state.repo, room_id).await?.ok_or(FallbackError::NotFound)?;
    let attrs: MessageAttrs = conn.params_in("message")?;
    let message = chat::create_message(&state.repo, room.id, attrs).await?;
    conn.pubsub().broadcast(&room_topic(room.id), "new_msg", message_json::new_msg(&message));
    Ok(conn.put_status(StatusCode::CREATED).json(&message_json::show(&message)))
}
