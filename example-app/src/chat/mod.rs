//! The chat context: rooms and their messages.
//!
//! Controllers call these functions and never write SQL. Validation happens here, before a
//! query runs, the way an Ecto changeset checks attrs before the repo sees them.

mod message;
mod room;

use std::fmt;

use fawkes::FieldErrors;
use time::OffsetDateTime;

pub use message::{Message, MessageAttrs, UnsavedMessage};
pub use room::{Room, RoomAttrs};

use crate::repo::Repo;
use crate::with_pool;

/// How many messages [`list_messages`] returns: the most recent ones.
pub const MESSAGE_HISTORY: i64 = 100;

/// The longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 100;

/// The longest message, in characters: with [`MESSAGE_HISTORY`], what one request for a
/// room's messages can cost.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// The longest author name, in characters (as long as a login name).
pub const MAX_AUTHOR_CHARS: usize = crate::controllers::session_controller::MAX_NAME_CHARS;

/// The most rooms one listing returns; the next page starts `after` the last id.
pub const ROOM_PAGE: i64 = 500;

/// Why a chat operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The room (or the room a message was for) does not exist.
    NotFound,
    /// The attrs failed validation; nothing was written.
    Invalid(FieldErrors),
    /// The database failed.
    Database(sqlx::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::Invalid(errors) => write!(f, "invalid attrs: {errors}"),
            Self::Database(err) => write!(f, "database error: {err}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Database(err) => Some(err),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

/// The checks of the attrs, as Ecto's `validate_*` functions make them, gathered into
/// [`FieldErrors`] (the framework's, rendered in Phoenix's shape).
#[derive(Debug, Default)]
struct Checks(FieldErrors);

impl Checks {
    /// Adds "can't be blank" for `field` when `value` is missing or only whitespace, as Ecto's
    /// `validate_required` does.
    fn require(&mut self, field: &'static str, value: Option<&str>) {
        if value.is_none_or(|v| v.trim().is_empty()) {
            self.0.add(field, "can't be blank");
        }
    }

    /// Adds Ecto's `validate_length` message for `field` when `value` is longer than `max`
    /// characters.
    fn max_chars(&mut self, field: &'static str, value: Option<&str>, max: usize) {
        if value.is_some_and(|v| v.chars().count() > max) {
            self.0.add(field, format!("should be at most {max} character(s)"));
        }
    }

    /// Adds "contains characters that cannot be shown" for `field` when `value` holds a
    /// control character other than a line break or a tab: nothing a person types, and each
    /// costs six bytes in every JSON answer that carries it.
    fn printable(&mut self, field: &'static str, value: Option<&str>) {
        let shown = |c: char| !c.is_control() || matches!(c, '\n' | '\r' | '\t');
        if value.is_some_and(|v| !v.chars().all(shown)) {
            self.0.add(field, "contains characters that cannot be shown");
        }
    }

    fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.0))
        }
    }
}

/// Now, in UTC, to the second, as Phoenix's `:utc_datetime` keeps it.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

// ----- rooms -----

/// Up to [`ROOM_PAGE`] rooms, oldest first, from the one after the id `after`.
///
/// # Errors
///
/// When the database fails.
pub async fn list_rooms(repo: &Repo, after: i64) -> Result<Vec<Room>, Error> {
    let sql =
        "SELECT id, name, inserted_at, updated_at FROM rooms WHERE id > $1 ORDER BY id LIMIT $2";
    Ok(with_pool!(repo, pool => {
        sqlx::query_as(sql).bind(after).bind(ROOM_PAGE).fetch_all(pool).await?
    }))
}

/// The room with `id`, if any.
///
/// # Errors
///
/// When the database fails.
pub async fn get_room(repo: &Repo, id: i64) -> Result<Option<Room>, Error> {
    let sql = "SELECT id, name, inserted_at, updated_at FROM rooms WHERE id = $1";
    Ok(with_pool!(repo, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await?))
}

/// The topic where every created room is announced ([`broadcast_room_created`]).
pub const ROOMS_TOPIC: &str = "rooms";

/// Checks new room attrs without storing them (Ecto's changeset), for a form that shows its
/// errors as the user types.
///
/// # Errors
///
/// [`Error::Invalid`] with the errors by field.
pub fn change_room(attrs: &RoomAttrs) -> Result<(), Error> {
    let mut errors = Checks::default();
    errors.require("name", attrs.name.as_deref());
    errors.max_chars("name", attrs.name.as_deref(), MAX_ROOM_NAME_CHARS);
    errors.printable("name", attrs.name.as_deref());
    errors.into_result()
}

/// Tells every subscriber of [`ROOMS_TOPIC`] (the live rooms pages, on every node) that
/// `room` was created: `room_created` with `{"id", "name"}`.
pub fn broadcast_room_created(pubsub: &fawkes::PubSub, room: &Room) {
    let payload = serde_json::json!({ "id": room.id, "name": room.name });
    pubsub.broadcast(ROOMS_TOPIC, "room_created", payload);
}

/// Creates a room.
///
/// # Errors
///
/// [`Error::Invalid`] for a blank name; [`Error::Database`] when the database fails.
pub async fn create_room(repo: &Repo, attrs: RoomAttrs) -> Result<Room, Error> {
    change_room(&attrs)?;
    let (name, now) = (attrs.name.unwrap_or_default(), now());
    let sql = "INSERT INTO rooms (name, inserted_at, updated_at) VALUES ($1, $2, $3) \
               RETURNING id, name, inserted_at, updated_at";
    Ok(with_pool!(repo, pool => {
        sqlx::query_as(sql).bind(&name).bind(now).bind(now).fetch_one(pool).await?
    }))
}

/// Changes the room with `id`; attrs left out keep their value.
///
/// # Errors
///
/// [`Error::NotFound`] when there is no such room, [`Error::Invalid`] for a blank name,
/// [`Error::Database`] when the database fails.
pub async fn update_room(repo: &Repo, id: i64, attrs: RoomAttrs) -> Result<Room, Error> {
    let Some(room) = get_room(repo, id).await? else { return Err(Error::NotFound) };
    let mut errors = Checks::default();
    if attrs.name.is_some() {
        errors.require("name", attrs.name.as_deref());
        errors.max_chars("name", attrs.name.as_deref(), MAX_ROOM_NAME_CHARS);
    }
    errors.into_result()?;
    let name = attrs.name.unwrap_or(room.name);
    let sql = "UPDATE rooms SET name = $1, updated_at = $2 WHERE id = $3 \
               RETURNING id, name, inserted_at, updated_at";
    let updated: Option<Room> = with_pool!(repo, pool => {
        sqlx::query_as(sql).bind(&name).bind(now()).bind(id).fetch_optional(pool).await?
    });
    // `None`: deleted between the read and the write.
    updated.ok_or(Error::NotFound)
}

/// Deletes the room with `id` and, by cascade, its messages.
///
/// # Errors
///
/// [`Error::NotFound`] when there is no such room; [`Error::Database`] when the database fails.
pub async fn delete_room(repo: &Repo, id: i64) -> Result<(), Error> {
    let sql = "DELETE FROM rooms WHERE id = $1";
    let deleted =
        with_pool!(repo, pool => sqlx::query(sql).bind(id).execute(pool).await?.rows_affected());
    if deleted == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

// ----- messages -----

/// The [`MESSAGE_HISTORY`] most recent messages of a room, oldest first.
///
/// # Errors
///
/// When the database fails.
pub async fn list_messages(repo: &Repo, room_id: i64) -> Result<Vec<Message>, Error> {
    let sql = "SELECT id, room_id, author, body, inserted_at FROM ( \
                 SELECT id, room_id, author, body, inserted_at FROM messages \
                 WHERE room_id = $1 ORDER BY id DESC LIMIT $2 \
               ) AS recent ORDER BY id";
    Ok(with_pool!(repo, pool => {
        sqlx::query_as(sql).bind(room_id).bind(MESSAGE_HISTORY).fetch_all(pool).await?
    }))
}

/// Posts a message in the room with `room_id`.
///
/// # Errors
///
/// [`Error::Invalid`] listing every blank field, [`Error::NotFound`] when the room does not
/// exist (or is deleted meanwhile), [`Error::Database`] when the database fails.
pub async fn create_message(
    repo: &Repo,
    room_id: i64,
    attrs: MessageAttrs,
) -> Result<Message, Error> {
    change_message(&attrs)?;
    let (author, body) = (attrs.author.unwrap_or_default(), attrs.body.unwrap_or_default());
    let sql = "INSERT INTO messages (room_id, author, body, inserted_at) VALUES ($1, $2, $3, $4) \
               RETURNING id, room_id, author, body, inserted_at";
    let inserted = with_pool!(repo, pool => {
        sqlx::query_as(sql).bind(room_id).bind(&author).bind(&body).bind(now()).fetch_one(pool).await
    });
    match inserted {
        Ok(message) => Ok(message),
        Err(sqlx::Error::Database(err)) if err.is_foreign_key_violation() => Err(Error::NotFound),
        Err(err) => Err(err.into()),
    }
}

/// Checks and stamps a message that is not stored, such as one posted in the lobby, which
/// keeps no history.
///
/// # Errors
///
/// [`Error::Invalid`] listing every blank field.
pub fn unsaved_message(attrs: MessageAttrs) -> Result<UnsavedMessage, Error> {
    change_message(&attrs)?;
    Ok(UnsavedMessage {
        author: attrs.author.unwrap_or_default(),
        body: attrs.body.unwrap_or_default(),
        inserted_at: now(),
    })
}

/// Checks a message's attrs without storing or stamping it, so that a caller can refuse a
/// bad one before spending anything on it (a client's budget of messages, say).
///
/// # Errors
///
/// [`Error::Invalid`] with the errors by field.
pub fn change_message(attrs: &MessageAttrs) -> Result<(), Error> {
    let mut errors = Checks::default();
    errors.require("author", attrs.author.as_deref());
    errors.require("body", attrs.body.as_deref());
    errors.max_chars("author", attrs.author.as_deref(), MAX_AUTHOR_CHARS);
    errors.max_chars("body", attrs.body.as_deref(), MAX_MESSAGE_CHARS);
    errors.printable("author", attrs.author.as_deref());
    errors.printable("body", attrs.body.as_deref());
    errors.into_result()
}

/// Counts a room's messages, however many there are.
///
/// # Errors
///
/// When the database fails.
pub async fn count_messages(repo: &Repo, room_id: i64) -> Result<i64, Error> {
    let sql = "SELECT COUNT(*) FROM messages WHERE room_id = $1";
    Ok(with_pool!(repo, pool => sqlx::query_scalar(sql).bind(room_id).fetch_one(pool).await?))
}
