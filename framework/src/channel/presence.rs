//! What presence does through a channel: tracking the channel's presences and pushing its
//! topic's state to its client. The presence layer knows nothing of channels; these methods
//! of [`Presence`] live here, on the channel's side.

use serde_json::Value;

use super::ChannelSocket;
#[cfg(doc)]
use crate::presence::PresenceConfig;
use crate::presence::{Presence, PresenceError};

impl Presence {
    /// Tracks `key` on the channel's topic with `meta` (a JSON object), for as long as the
    /// channel runs: a channel that stops or crashes is untracked. Returns the entry's
    /// `phx_ref`.
    ///
    /// # Errors
    ///
    /// [`PresenceError::AlreadyTracked`] when this channel already tracks `key`;
    /// [`PresenceError::InvalidMeta`] when `meta` is not an object; [`PresenceError::TooLarge`]
    /// past [`PresenceConfig::max_entry_bytes`].
    pub fn track<S>(
        &self,
        socket: &ChannelSocket<S>,
        key: &str,
        meta: Value,
    ) -> Result<String, PresenceError> {
        socket.presences().track(socket.topic(), key, meta)
    }

    /// Replaces the metadata of `key` on the channel's topic: clients see a join with a new
    /// `phx_ref` (and `phx_ref_prev`) and a leave of the old one.
    ///
    /// # Errors
    ///
    /// [`PresenceError::NotTracked`] when this channel does not track `key`;
    /// [`PresenceError::InvalidMeta`] when `meta` is not an object; [`PresenceError::TooLarge`]
    /// past [`PresenceConfig::max_entry_bytes`].
    pub fn update<S>(
        &self,
        socket: &ChannelSocket<S>,
        key: &str,
        meta: Value,
    ) -> Result<String, PresenceError> {
        socket.presences().update(socket.topic(), key, meta)
    }

    /// Stops tracking `key` on the channel's topic; untracking what is not tracked is a no-op.
    pub fn untrack<S>(&self, socket: &ChannelSocket<S>, key: &str) {
        socket.presences().untrack(socket.topic(), key);
    }

    /// Sends the channel topic's `presence_state` ([`Presence::list`]) to the channel's
    /// client, as Phoenix's `push(socket, "presence_state", Presence.list(socket))` does.
    ///
    /// The frame is built once and shared by every client that asks for it before the topic's
    /// next diff (which brings them what changed since), so a crowd joining a large room costs
    /// one list, not one per joiner. Being shared, it names no join (its `join_ref` is null, as
    /// a broadcast's): Phoenix clients take such a message for the topic's current join.
    ///
    /// Returns false when the socket is gone or its outbound queue is full.
    pub fn push_state<S>(&self, socket: &ChannelSocket<S>) -> bool {
        socket.send_frame(self.state_frame(socket.topic(), socket.vsn()))
    }
}
