//! A chat room.

use serde::Deserialize;
use sqlx::any::AnyRow;
use sqlx::Row as _;

/// A chat room, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// Its id.
    pub id: i64,
    /// Its name, never blank.
    pub name: String,
    /// When it was created (ISO 8601, UTC).
    pub inserted_at: String,
    /// When it last changed (ISO 8601, UTC).
    pub updated_at: String,
}

impl Room {
    pub(super) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            inserted_at: row.try_get("inserted_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// What a client may set on a room; validated by the chat context.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(expecting = "an object")]
pub struct RoomAttrs {
    /// The room's name.
    #[serde(default)]
    pub name: Option<String>,
}
