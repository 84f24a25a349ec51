//! Channels: one task per joined topic, with its own mailbox.
//!
//! A client joins a topic; the socket's channel routes pick the [`Channel`] type, and a task is
//! started for it under the endpoint's supervisor. The task calls [`Channel::join`], then handles
//! the client's events ([`Channel::handle_in`]), messages from the application
//! ([`Channel::handle_info`]), intercepted broadcasts ([`Channel::handle_out`]) and finally
//! [`Channel::terminate`]. Broadcasts that are not intercepted never touch the task: pubsub
//! writes their shared bytes straight to the socket.
//!
//! A panic in a callback stops that channel only: the client gets `phx_error` for its topic and
//! rejoins, the socket and its other channels carry on.
//!
//! This module knows nothing about HTTP: it talks to its socket through a queue of frames, the
//! `Outbound` queue it owns and sockets drain.

pub(crate) mod outbound;
mod payload;
mod presence;
mod server;
mod socket;

use std::future::Future;

use serde_json::Value;

/// What clients push and channels send: JSON, or bytes on the V2 binary frame (also
/// `fawkes::serializer::Payload`).
pub use crate::serializer::Payload;
pub use payload::PayloadError;
pub(crate) use server::{run, ChannelMsg, Start};
pub use socket::{ChannelHandle, ChannelSocket};

use crate::serializer::Status;

/// What a channel answers to a client's event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// `phx_reply` with status `ok`.
    Ok(Payload),
    /// `phx_reply` with status `error`.
    Error(Payload),
    /// No reply.
    NoReply,
    /// Stop the channel after sending the reply, if any.
    Stop(StopReason, Option<(Status, Payload)>),
}

impl Reply {
    /// An `ok` reply.
    pub fn ok(payload: impl Into<Payload>) -> Self {
        Self::Ok(payload.into())
    }

    /// An `error` reply.
    pub fn error(payload: impl Into<Payload>) -> Self {
        Self::Error(payload.into())
    }
}

/// Why a channel stops; handed to [`Channel::terminate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The channel asked to stop.
    Normal,
    /// The client left the topic.
    Left,
    /// The client joined the same topic again on the same socket.
    DuplicateJoin,
    /// The socket closed.
    SocketClosed,
    /// The server is shutting down. The client is not sent `phx_close`: its socket closes
    /// (1012, service restart) and it rejoins the topic once it has reconnected.
    Shutdown,
    /// A reason of the application's.
    Other(String),
}

/// A channel: the server side of one joined topic.
///
/// # Examples
///
/// ```
/// use fawkes::channel::{Channel, ChannelSocket, Reply};
/// use fawkes::serializer::Payload;
/// use serde_json::{json, Value};
///
/// struct RoomChannel;
///
/// impl Channel for RoomChannel {
///     type Info = ();
///
///     async fn join(topic: &str, _payload: Payload, _socket: &mut ChannelSocket) -> Result<(Self, Value), Value> {
///         if topic == "room:lobby" {
///             Ok((RoomChannel, json!({})))
///         } else {
///             Err(json!({ "reason": "unauthorized" }))
///         }
///     }
///
///     async fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut ChannelSocket) -> Reply {
///         match event {
///             "new_msg" => {
///                 socket.broadcast("new_msg", payload);
///                 Reply::ok(json!({}))
///             }
///             _ => Reply::error(json!({ "reason": "unknown event" })),
///         }
///     }
/// }
/// ```
pub trait Channel<S = ()>: Sized + Send + 'static {
    /// The messages other tasks send this channel through a [`ChannelHandle`], for
    /// [`Channel::handle_info`]: `()` for a channel that gets none.
    type Info: Send + 'static;

    /// Joins `topic`: `Ok((state, reply))` or `Err(reply)` refusing the join.
    fn join(
        topic: &str,
        payload: Payload,
        socket: &mut ChannelSocket<S>,
    ) -> impl Future<Output = Result<(Self, Value), Value>> + Send;

    /// Handles an event the client pushed.
    fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        socket: &mut ChannelSocket<S>,
    ) -> impl Future<Output = Reply> + Send;

    /// Handles a message sent through a [`ChannelHandle`] (see [`ChannelSocket::handle`]).
    fn handle_info(
        &mut self,
        _message: Self::Info,
        _socket: &mut ChannelSocket<S>,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Broadcast events this channel wants to see before they are pushed (Phoenix's
    /// `intercept`); others go straight to the client.
    fn intercepts() -> &'static [&'static str] {
        &[]
    }

    /// Handles an intercepted broadcast; the default pushes it unchanged.
    fn handle_out(
        &mut self,
        event: &str,
        payload: Payload,
        socket: &mut ChannelSocket<S>,
    ) -> impl Future<Output = ()> + Send {
        socket.push(event, payload);
        async {}
    }

    /// Runs when the channel stops, unless it crashed.
    fn terminate(
        &mut self,
        _reason: &StopReason,
        _socket: &mut ChannelSocket<S>,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
}
