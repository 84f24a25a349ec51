//! `/api/rooms`: list, create, show, update and delete rooms.

use fawkes::Conn;
use http::{header, StatusCode};
use serde::Deserialize;

use super::{id_param, repo, room_json, FallbackError};
use crate::chat::{self, RoomAttrs};
use crate::router::AppRouter;

/// The body of create and update: `{"room":{"name":"lobby"}}`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
struct RoomParams {
    room: RoomAttrs,
}

/// `GET /api/rooms`: every room.
pub async fn index(conn: Conn) -> Result<Conn, FallbackError> {
    let rooms = chat::list_rooms(&repo(&conn)?).await?;
    Ok(conn.json(&room_json::index(&rooms)))
}

/// `POST /api/rooms`: 201 with the room and its `location`.
pub async fn create(conn: Conn) -> Result<Conn, FallbackError> {
    let RoomParams { room } = conn.params()?;
    let room = chat::create_room(&repo(&conn)?, room).await?;
    Ok(conn
        .put_status(StatusCode::CREATED)
        .put_resp_header(header::LOCATION, AppRouter::room_show_path(room.id))
        .json(&room_json::show(&room)))
}

/// `GET /api/rooms/:id`.
pub async fn show(conn: Conn) -> Result<Conn, FallbackError> {
    let id = id_param(&conn, "id")?;
    let room = chat::get_room(&repo(&conn)?, id).await?.ok_or(FallbackError::NotFound)?;
    Ok(conn.json(&room_json::show(&room)))
}

/// `PATCH` or `PUT /api/rooms/:id`.
pub async fn update(conn: Conn) -> Result<Conn, FallbackError> {
    let id = id_param(&conn, "id")?;
    let RoomParams { room } = conn.params()?;
    let room = chat::update_room(&repo(&conn)?, id, room).await?;
    Ok(conn.json(&room_json::show(&room)))
}

/// `DELETE /api/rooms/:id`: 204 with no body.
pub async fn delete(conn: Conn) -> Result<Conn, FallbackError> {
    let id = id_param(&conn, "id")?;
    chat::delete_room(&repo(&conn)?, id).await?;
    Ok(conn.send_resp(StatusCode::NO_CONTENT, fawkes::Body::empty()))
}
