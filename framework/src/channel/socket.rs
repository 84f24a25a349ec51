//! The channel's view of its socket.

use std::fmt;
use std::sync::Arc;

use super::outbound::Outbound;
use super::ChannelMsg;
use crate::mailbox::Mailbox;
use crate::pubsub::{PubSub, SubscriberId};
use crate::serializer::{self, Payload};

/// What a channel can do with its socket: push to its client, broadcast to its topic, read
/// and write assigns, read the state it was routed with (`S`, `()` unless the channel was
/// routed with [`Channels::channel_with`](crate::socket::Channels::channel_with)).
pub struct ChannelSocket<S = ()> {
    pub(crate) topic: String,
    pub(crate) join_ref: String,
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) pubsub: PubSub,
    pub(crate) subscriber: Option<SubscriberId>,
    pub(crate) assigns: crate::conn::Assigns,
    pub(crate) socket_id: Option<Arc<str>>,
    pub(crate) mailbox: Arc<Mailbox<ChannelMsg>>,
    /// The channel's `Info` type, which its handles send.
    pub(crate) info: fn() -> (std::any::TypeId, &'static str),
    /// The presences this channel tracks, created on first use; dropping the socket (when
    /// the channel stops, crashes or is aborted) untracks them.
    pub(crate) presences: std::sync::OnceLock<crate::presence::PresenceGroup>,
    /// The state the channel was routed with ([`Channels::channel_with`](crate::socket::Channels::channel_with)).
    pub(crate) state: S,
}

impl<S> ChannelSocket<S> {
    /// The state this channel was routed with, [`Channels::channel_with`](crate::socket::Channels::channel_with): usually the
    /// application's state, as actions get it with [`State`](crate::State). `()` for a channel
    /// routed with [`Channels::channel`].
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The joined topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The join reference of this join.
    pub fn join_ref(&self) -> &str {
        &self.join_ref
    }

    /// The socket's id, as the socket's `id` named it.
    pub fn socket_id(&self) -> Option<&str> {
        self.socket_id.as_deref()
    }

    /// The pubsub this channel broadcasts on.
    pub fn pubsub(&self) -> &PubSub {
        &self.pubsub
    }

    /// The telemetry of the endpoint serving this channel (a live dashboard reads it).
    pub fn telemetry(&self) -> &crate::instrument::Telemetry {
        &self.outbound.telemetry
    }

    /// Assigns: the socket's (from `connect`) plus what this channel added.
    pub fn assigns(&self) -> &crate::conn::Assigns {
        &self.assigns
    }

    /// Mutable assigns.
    pub fn assigns_mut(&mut self) -> &mut crate::conn::Assigns {
        &mut self.assigns
    }

    /// Stores a typed assign.
    pub fn assign<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.assigns.insert(value);
    }

    /// A typed assign.
    pub fn get_assign<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.assigns.get::<T>()
    }

    /// Pushes an event to this channel's client only.
    ///
    /// Returns false when the socket is gone or its outbound queue is full (the socket is then
    /// closed as a slow consumer).
    pub fn push(&self, event: &str, payload: impl Into<Payload>) -> bool {
        let payload = payload.into();
        match serializer::encode_push(
            self.outbound.vsn,
            Some(&self.join_ref),
            &self.topic,
            event,
            &payload,
        ) {
            Some(frame) => {
                self.outbound.telemetry.channel_push();
                self.outbound.send(frame)
            }
            None => {
                tracing::warn!(topic = %self.topic, event, "binary payloads need serializer 2.0.0");
                false
            }
        }
    }

    /// Pushes an event to this channel's client on another topic, with no join ref: what
    /// Phoenix's "fastlane" sends a socket subscribed to a topic it never joined. Absinthe's
    /// subscriptions arrive this way, each on its `__absinthe__:doc:…` topic.
    ///
    /// Returns false when the socket is gone or its outbound queue is full, as
    /// [`push`](Self::push) does.
    pub fn push_to(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> bool {
        let payload = payload.into();
        match serializer::encode_push(self.outbound.vsn, None, topic, event, &payload) {
            Some(frame) => self.send_frame(frame),
            None => {
                tracing::warn!(topic, event, "binary payloads need serializer 2.0.0");
                false
            }
        }
    }

    /// The client's address: the peer's, or the one the transport's trusted proxies name
    /// in `X-Forwarded-For` ([`Transport::trusted_proxies`](crate::socket::Transport::trusted_proxies)),
    /// as per-client limits tell clients apart. `None` for a channel run without an endpoint
    /// (in a test).
    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.outbound.client_ip
    }

    /// Counts one event of this socket's client ([`client_ip`](Self::client_ip)) against
    /// `limit`, a [`rate_limit`](crate::security::rate_limit) that may be shared with HTTP
    /// routes and other channels: for events that write, or that every member of a topic
    /// pays for (a broadcast). `Ok` for a channel run without an endpoint (in a test).
    ///
    /// ```
    /// use std::time::Duration;
    /// use fawkes::channel::{Channel, ChannelSocket, Reply};
    /// use fawkes::security::RateLimit;
    /// use fawkes::serializer::Payload;
    /// use serde_json::{json, Value};
    ///
    /// struct Chat;
    ///
    /// impl Channel<RateLimit> for Chat {
    ///     type Info = ();
    ///
    ///     async fn join(
    ///         _: &str,
    ///         _: Payload,
    ///         _: &mut ChannelSocket<RateLimit>,
    ///     ) -> Result<(Self, Value), Value> {
    ///         Ok((Chat, json!({})))
    ///     }
    ///
    ///     async fn handle_in(
    ///         &mut self,
    ///         _event: &str,
    ///         payload: Payload,
    ///         socket: &mut ChannelSocket<RateLimit>,
    ///     ) -> Reply {
    ///         if let Err(wait) = socket.rate_limit(socket.state()) {
    ///             let retry_after = fawkes::security::retry_after_secs(wait);
    ///             return Reply::error(json!({ "retry_after": retry_after }));
    ///         }
    ///         socket.broadcast("shout", payload);
    ///         Reply::ok(json!({}))
    ///     }
    /// }
    ///
    /// // Routed with its limit: 10 shouts every 10 s a client.
    /// let channels = fawkes::socket::Channels::new()
    ///     .channel_with::<Chat, _>("chat:*", fawkes::security::rate_limit(10, Duration::from_secs(10)));
    /// # let _ = channels;
    /// ```
    ///
    /// # Errors
    ///
    /// How long until the client may again, when it is over the limit.
    pub fn rate_limit(
        &self,
        limit: &crate::security::RateLimit,
    ) -> Result<(), std::time::Duration> {
        self.client_ip().map_or(Ok(()), |ip| limit.check(ip))
    }

    /// The serializer version the client speaks.
    pub(crate) fn vsn(&self) -> serializer::Vsn {
        self.outbound.vsn
    }

    /// Sends a frame encoded already (and maybe shared with other sockets).
    pub(crate) fn send_frame(&self, frame: serializer::Frame) -> bool {
        self.outbound.telemetry.channel_push();
        self.outbound.send(frame)
    }

    /// Broadcasts an event to every subscriber of this topic, this client included.
    pub fn broadcast(&self, event: &str, payload: impl Into<Payload>) {
        self.pubsub.broadcast(&self.topic, event, payload);
    }

    /// Broadcasts an event to every subscriber of this topic but this client.
    pub fn broadcast_from(&self, event: &str, payload: impl Into<Payload>) {
        match self.subscriber {
            Some(id) => self.pubsub.broadcast_from(id, &self.topic, event, payload),
            None => self.pubsub.broadcast(&self.topic, event, payload),
        }
    }

    /// This node's presence tracker; see [`Presence::track`](crate::presence::Presence::track).
    pub fn presence(&self) -> crate::presence::Presence {
        self.pubsub.presence()
    }

    pub(crate) fn presences(&self) -> &crate::presence::PresenceGroup {
        self.presences.get_or_init(|| self.pubsub.presence().group())
    }

    /// A handle other tasks use to send this channel messages for
    /// [`Channel::handle_info`](super::Channel::handle_info): `M` is the channel's
    /// [`Info`](super::Channel::Info) type, usually inferred from what is sent.
    ///
    /// # Panics
    ///
    /// When `M` is not the channel's `Info` type: a handle could only send messages the
    /// channel would not read.
    pub fn handle<M: Send + 'static>(&self) -> ChannelHandle<M> {
        let (info, name) = (self.info)();
        assert!(
            std::any::TypeId::of::<M>() == info,
            "a handle sending {} to a channel whose Info is {name}",
            std::any::type_name::<M>()
        );
        ChannelHandle { mailbox: self.mailbox.clone(), message: std::marker::PhantomData }
    }
}

impl<S> fmt::Debug for ChannelSocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSocket")
            .field("topic", &self.topic)
            .field("join_ref", &self.join_ref)
            .finish_non_exhaustive()
    }
}

/// Sends messages of type `M` (the channel's [`Info`](super::Channel::Info)) to a running
/// channel's [`handle_info`](super::Channel::handle_info); made by [`ChannelSocket::handle`].
pub struct ChannelHandle<M> {
    mailbox: Arc<Mailbox<ChannelMsg>>,
    message: std::marker::PhantomData<fn(M)>,
}

impl<M> Clone for ChannelHandle<M> {
    fn clone(&self) -> Self {
        Self { mailbox: self.mailbox.clone(), message: std::marker::PhantomData }
    }
}

impl<M: Send + 'static> ChannelHandle<M> {
    /// Sends a message to the channel's `handle_info`.
    ///
    /// # Errors
    ///
    /// The message comes back when the channel has stopped.
    pub fn send(&self, message: M) -> Result<(), M> {
        match self.mailbox.push(ChannelMsg::Info(Box::new(message))) {
            Ok(()) => Ok(()),
            Err(
                crate::mailbox::PushError::Full(ChannelMsg::Info(m))
                | crate::mailbox::PushError::Closed(ChannelMsg::Info(m)),
            ) => Err(*m.downcast::<M>().unwrap_or_else(|_| unreachable!("boxed as M above"))),
            Err(_) => unreachable!("pushed an Info message"),
        }
    }
}

impl<M> ChannelHandle<M> {
    /// Whether the channel is still running.
    pub fn is_alive(&self) -> bool {
        !self.mailbox.is_closed()
    }
}

impl<M> fmt::Debug for ChannelHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelHandle").field("alive", &self.is_alive()).finish()
    }
}
