//! A message posted in a room.

use serde::Deserialize;
use time::OffsetDateTime;

/// A message, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Message {
    /// Its id; ids grow in posting order.
    pub id: i64,
    /// The room it was posted in.
    pub room_id: i64,
    /// Who wrote it.
    pub author: String,
    /// What it says.
    pub body: String,
    /// When it was posted.
    pub inserted_at: OffsetDateTime,
}

/// A message that was checked but not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsavedMessage {
    /// Who wrote it.
    pub author: String,
    /// What it says.
    pub body: String,
    /// When it was posted.
    pub inserted_at: OffsetDateTime,
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
