//! `room:*`: chat in the lobby or in a room of the database.

use fawkes::channel::{Channel, ChannelSocket, Reply};
use fawkes::serializer::Payload;
use serde::Deserialize as _;
use serde_json::{json, Value};

use super::User;
use crate::chat::{self, MessageAttrs};
use crate::controllers::message_json;
use crate::router::AppState;

/// The topic of the room with `id`: where its `new_msg` events are broadcast.
///
/// # Examples
///
/// ```
/// assert_eq!(example_app::channels::room_topic(7), "room:7");
/// ```
pub fn room_topic(id: i64) -> String {
    format!("room:{id}")
}

/// Sent by a channel to itself from `join`, so the presence list is pushed after the join reply.
#[derive(Debug)]
pub struct AfterJoin;

/// Where a joined channel's messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    /// `room:lobby`: always open, keeps no history.
    Lobby,
    /// `room:<id>`: a room of the database; messages are stored.
    Stored(i64),
}

/// The channel of `room:lobby` and of `room:<id>` for every room in the database.
///
/// Events:
/// - `new_msg` `{"author","body"}`: replies `{}` and broadcasts `new_msg` with the message
///   (`id`, `author`, `body`, `inserted_at`; no `id` in the lobby) to every member, the sender
///   included; blank fields reply an error `{"errors":{"body":["can't be blank"]}}`. On a
///   socket opened with a user token the author is the token's name, whatever the payload
///   says, so a logged-in name cannot be borrowed. One client posts at most
///   `router::CHAT_MESSAGES` a period, past which the reply is `{"reason":"too many
///   messages","retry_after":<seconds>}`; in a stored room a message also spends one of the
///   client's writes (`router::API_WRITES`, shared with the API and GraphQL), past which it
///   is `{"reason":"too many writes",...}`. A refused message is neither sent nor stored; an
///   invalid one spends neither budget.
///
/// Presence: right after joining, a named user (from the token or the `user` param) gets the
/// topic's `presence_state` and is tracked under their name with meta `{"online_at": <unix
/// seconds>}`; everyone on the topic, on every node, gets the `presence_diff`s. The official
/// `phoenix` JS `Presence` class (and `Presence` in `/js/fawkes.js`) renders them.
#[derive(Debug)]
pub struct RoomChannel {
    room: Room,
}

impl Channel<AppState> for RoomChannel {
    type Info = AfterJoin;

    async fn join(
        topic: &str,
        _payload: Payload,
        socket: &mut ChannelSocket<AppState>,
    ) -> Result<(Self, Value), Value> {
        let not_found = || json!({ "reason": "room not found" });
        let room = match topic.strip_prefix("room:") {
            Some("lobby") => Room::Lobby,
            Some(id) => {
                // Only the canonical spelling names a room, so `room:07` cannot shadow `room:7`.
                let id: i64 = id.parse().map_err(|_| not_found())?;
                if room_topic(id) != topic {
                    return Err(not_found());
                }
                match chat::get_room(&socket.state().repo, id).await {
                    Ok(Some(room)) => Room::Stored(room.id),
                    Ok(None) => return Err(not_found()),
                    Err(err) => {
                        tracing::error!(topic, error = %err, "cannot look the room up");
                        return Err(json!({ "reason": "internal error" }));
                    }
                }
            }
            None => return Err(not_found()),
        };
        // The channel's own mailbox: the message waits until the join has been answered.
        let _ = socket.handle().send(AfterJoin);
        Ok((Self { room }, json!({})))
    }

    async fn handle_info(&mut self, AfterJoin: AfterJoin, socket: &mut ChannelSocket<AppState>) {
        track_presence(socket);
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        socket: &mut ChannelSocket<AppState>,
    ) -> Reply {
        match event {
            "new_msg" => self.new_msg(payload, socket).await,
            _ => Reply::error(json!({ "reason": "unknown event" })),
        }
    }
}

/// The error reply of a message past one of the client's budgets: `reason`, and the whole
/// seconds (at least one) until the next message passes.
fn too_many(reason: &str, wait: std::time::Duration) -> Reply {
    let retry_after = fawkes::security::retry_after_secs(wait);
    Reply::error(json!({ "reason": reason, "retry_after": retry_after }))
}

/// Pushes who is here, then adds this user to it.
fn track_presence(socket: &ChannelSocket<AppState>) {
    let presence = socket.presence();
    presence.push_state(socket);
    let Some(user) = socket.get_assign::<User>().filter(|user| !user.anonymous) else {
        return;
    };
    let online_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Err(err) = presence.track(socket, &user.name, json!({ "online_at": online_at })) {
        tracing::warn!(topic = socket.topic(), error = %err, "cannot track the user");
    }
}

impl RoomChannel {
    async fn new_msg(&self, payload: Payload, socket: &ChannelSocket<AppState>) -> Reply {
        // Only an object: serde would also take `["ada", "hi"]` for the struct.
        let Some(json) = payload.as_json().filter(|p| p.is_object()) else {
            return Reply::error(json!({ "errors": { "detail": "expected an object" } }));
        };
        let mut attrs = match MessageAttrs::deserialize(json) {
            Ok(attrs) => attrs,
            Err(err) => return Reply::error(json!({ "errors": { "detail": err.to_string() } })),
        };
        if let Some(user) = socket.get_assign::<User>().filter(|user| user.verified) {
            attrs.author = Some(user.name.clone());
        }
        // A bad message is answered before it spends anything: it is neither sent nor stored.
        if let Err(chat::Error::Invalid(errors)) = chat::change_message(&attrs) {
            return Reply::error(json!({ "errors": errors }));
        }
        // Every member pays for a message: one client posts at most `CHAT_MESSAGES` a period.
        if let Err(wait) = socket.rate_limit(&socket.state().messages) {
            return too_many("too many messages", wait);
        }
        let sent = match self.room {
            Room::Lobby => chat::unsaved_message(attrs).map(|m| message_json::new_unsaved_msg(&m)),
            Room::Stored(id) => {
                // A stored message is a write: it spends the client's budget, shared with the
                // API and GraphQL, so a socket cannot grow the database faster than they can.
                if let Err(wait) = socket.rate_limit(&socket.state().writes) {
                    return too_many("too many writes", wait);
                }
                chat::create_message(&socket.state().repo, id, attrs)
                    .await
                    .map(|m| message_json::new_msg(&m))
            }
        };
        match sent {
            Ok(message) => {
                socket.broadcast("new_msg", message);
                Reply::ok(json!({}))
            }
            Err(chat::Error::Invalid(errors)) => Reply::error(json!({ "errors": errors })),
            // Deleted after the join.
            Err(chat::Error::NotFound) => Reply::error(json!({ "reason": "room not found" })),
            Err(err) => {
                tracing::error!(topic = socket.topic(), error = %err, "cannot store the message");
                Reply::error(json!({ "errors": { "detail": "Internal Server Error" } }))
            }
        }
    }
}
