//! A chat room.

use serde::Deserialize;
use time::OffsetDateTime;

/// A chat room, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Room {
    /// Its id.
    pub id: i64,
    /// Its name, never blank.
    pub name: String,
    /// When it was created.
    pub inserted_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// What a client may set on a room; validated by the chat context.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(expecting = "an object")]
pub struct RoomAttrs {
    /// The room's name.
    #[serde(default)]
    pub name: Option<String>,
}
