//! `/api/rooms`: list, create, show, update and delete rooms.

use fawkes::{Conn, State};
use http::{header, StatusCode};

use super::{room_json, FallbackError};
use crate::chat::{self, RoomAttrs};
use crate::router::{AppRouter, AppState};

/// `GET /api/rooms`: the first [`chat::ROOM_PAGE`] rooms; `?after=<id>` for the next page.
pub async fn index(conn: Conn, state: State<AppState>) -> Result<Conn, FallbackError> {
    let after: Option<i64> = conn.param("after")?;
    let rooms = chat::list_rooms(&state.repo, after.unwrap_or(0)).await?;
    Ok(conn.json(&room_json::index(&rooms)))
}

/// `POST /api/rooms` with `{"room":{"name":"lobby"}}`: 201 with the room and its `location`.
pub async fn create(conn: Conn, state: State<AppState>) -> Result<Conn, FallbackError> {
    let attrs: RoomAttrs = conn.params_in("room")?;
    let room = chat::create_room(&state.repo, attrs).await?;
    chat::broadcast_room_created(conn.pubsub(), &room);
    Ok(conn
        .put_status(StatusCode::CREATED)
        .put_resp_header(header::LOCATION, AppRouter::room_show_path(room.id))
        .json(&room_json::show(&room)))
}

/// `GET /api/rooms/:id`.
pub async fn show(conn: Conn, state: State<AppState>) -> Result<Conn, FallbackError> {
    let id: i64 = conn.param("id")?;
    let room = chat::get_room(&state.repo, id).await?.ok_or(FallbackError::NotFound)?;
    Ok(conn.json(&room_json::show(&room)))
}

/// `PATCH` or `PUT /api/rooms/:id` with `{"room":{...}}`.
pub async fn update(conn: Conn, state: State<AppState>) -> Result<Conn, FallbackError> {
    let id: i64 = conn.param("id")?;
    let attrs: RoomAttrs = conn.params_in("room")?;
    let room = chat::update_room(&state.repo, id, attrs).await?;
    Ok(conn.json(&room_json::show(&room)))
}

/// `DELETE /api/rooms/:id`: 204 with no body.
pub async fn delete(conn: Conn, state: State<AppState>) -> Result<Conn, FallbackError> {
    let id: i64 = conn.param("id")?;
    chat::delete_room(&state.repo, id).await?;
    Ok(conn.send_resp(StatusCode::NO_CONTENT, fawkes::Body::empty()))
}
