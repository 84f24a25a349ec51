//! A message posted in a room.

use serde::Deserialize;
use sqlx::any::AnyRow;
use sqlx::Row as _;

/// A message, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id; ids grow in posting order.
    pub id: i64,
    /// The room it was posted in.
    pub room_id: i64,
    /// Who wrote it.
    pub author: String,
    /// What it says.
    pub body: String,
    /// When it was posted (ISO 8601, UTC).
    pub inserted_at: String,
}

impl Message {
    pub(super) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            room_id: row.try_get("room_id")?,
            author: row.try_get("author")?,
            body: row.try_get("body")?,
            inserted_at: row.try_get("inserted_at")?,
        })
    }
}

/// A message that was checked but not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsavedMessage {
    /// Who wrote it.
    pub author: String,
    /// What it says.
    pub body: String,
    /// When it was posted (ISO 8601, UTC).
    pub inserted_at: String,
}

/// What a client may set on a message; validated by the chat context.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(expecting = "an object")]
pub struct MessageAttrs {
    /// Who wrote it.
    #[serde(default)]
    pub author: Option<String>,
    /// What it says.
    #[serde(default)]
    pub body: Option<String>,
}
