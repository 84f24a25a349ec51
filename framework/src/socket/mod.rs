//! Sockets: a client's connection, multiplexing many channels.
//!
//! A [`Socket`] decides who may connect (`connect`, whose refusal is an HTTP 403 before the
//! upgrade), names the connection (`id`, so a `disconnect` broadcast can close every socket of
//! a user) and routes topics to [`Channel`]s ([`Channels`]). Declared in `router!` with
//! `socket "/socket" => UserSocket;`, it is served by a [`Transport`]: a tower service answering
//! `<mount>/websocket` with the Phoenix Channels protocol (serializers 1.0.0 and 2.0.0).
//!
//! Every socket runs as a task under the endpoint's supervisor, each joined topic as another.
//! Outbound frames go through a bounded queue: a client that does not read is closed, never
//! buffered without end. This module knows nothing about routes: the router forwards to it,
//! handing over the conn's assigns with the request.

mod client;
pub(crate) mod longpoll;
mod origin;
pub(crate) mod per_client;
pub(crate) mod protocol;
mod transport;
mod websocket;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

pub(crate) use crate::channel::outbound::{Outbound, Outgoing};
use crate::channel::{self, Channel};
pub use client::client_js;
pub(crate) use client::{etag_of, fnv1a, if_none_match, CLIENT_JS};
pub use origin::CheckOrigin;
#[cfg(feature = "graphql")]
pub(crate) use per_client::Clients;
pub use transport::{transport, IntoTransport, Transport};
#[cfg(feature = "graphql")]
pub(crate) use websocket::{has_token, switching_protocols};

/// What the server knows about a connecting client, besides its params.
///
/// # Examples
///
/// Calling a socket's `connect` in a unit test:
///
/// ```
/// let mut info = fawkes::socket::ConnectInfo::default();
/// info.auth_token = Some("token".to_owned());
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// The peer's address, when served by an endpoint.
    pub peer: Option<SocketAddr>,
    /// The upgrade request's headers.
    pub headers: http::HeaderMap,
    /// The token a client passed with `authToken`: the `base64url.bearer.phx.` subprotocol on
    /// WebSocket, the `x-phoenix-authtoken` header on LongPoll.
    pub auth_token: Option<String>,
    /// The assigns of the request at the socket's mount: the router's assigns
    /// ([`Router::assign`](crate::Router::assign)) and what the scope's plugs added.
    pub assigns: crate::conn::Assigns,
    /// The endpoint's secret key base ([`Endpoint::secret_key_base`](crate::Endpoint::secret_key_base)),
    /// to verify the tokens clients connect with.
    pub secret_key_base: Option<crate::security::SecretKeyBase>,
}

impl ConnectInfo {
    /// What a transport knows of the request that opens a socket.
    pub(crate) fn of(
        req: &http::Request<crate::Body>,
        conn_info: &crate::conn::ConnInfo,
        auth_token: Option<String>,
    ) -> Self {
        Self {
            peer: Some(conn_info.remote_addr()),
            headers: req.headers().clone(),
            auth_token,
            assigns: crate::router::ForwardedAssigns::of(req),
            secret_key_base: conn_info.secret_key_base().cloned(),
        }
    }
}

/// Calls a socket's `connect` for a transport and reports the outcome to telemetry.
pub(crate) async fn connect<S: Socket>(
    socket: &S,
    (transport, telemetry): (&'static str, &crate::instrument::Telemetry),
    info: &ConnectInfo,
    params: &Map<String, Value>,
    vsn: crate::serializer::Vsn,
) -> Result<crate::conn::Assigns, Refused> {
    let result = socket.connect(params, info).await;
    telemetry.socket_connected(transport, vsn.as_str(), result.is_ok());
    result
}

/// A refused connection: the upgrade is answered with 403.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused;

/// The server side of a client connection.
///
/// # Examples
///
/// ```
/// use fawkes::socket::{Channels, ConnectInfo, Refused, Socket};
/// use serde_json::{Map, Value};
/// # use fawkes::channel::{Channel, ChannelSocket, Reply};
/// # use fawkes::serializer::Payload;
/// # struct RoomChannel;
/// # impl Channel for RoomChannel {
/// #     type Info = ();
/// #
/// #     async fn join(_: &str, _: Payload, _: &mut ChannelSocket) -> Result<(Self, Value), Value> { Ok((RoomChannel, Value::Null)) }
/// #     async fn handle_in(&mut self, _: &str, _: Payload, _: &mut ChannelSocket) -> Reply { Reply::NoReply }
/// # }
///
/// #[derive(Clone)]
/// struct User(String);
///
/// struct UserSocket;
///
/// impl Socket for UserSocket {
///     async fn connect(&self, params: &Map<String, Value>, _info: &ConnectInfo) -> Result<fawkes::Assigns, Refused> {
///         let mut assigns = fawkes::Assigns::new();
///         let user = params.get("user").and_then(Value::as_str).unwrap_or("anonymous");
///         assigns.insert(User(user.to_owned()));
///         Ok(assigns)
///     }
///
///     fn id(&self, assigns: &fawkes::Assigns) -> Option<String> {
///         assigns.get::<User>().map(|u| format!("users_socket:{}", u.0))
///     }
///
///     fn channels(&self) -> Channels {
///         Channels::new().channel::<RoomChannel>("room:*")
///     }
/// }
/// ```
pub trait Socket: Send + Sync + 'static {
    /// Accepts or refuses a connection; the assigns become every channel's starting assigns.
    fn connect(
        &self,
        params: &Map<String, Value>,
        info: &ConnectInfo,
    ) -> impl Future<Output = Result<crate::conn::Assigns, Refused>> + Send;

    /// Names the socket; a `disconnect` broadcast on that topic closes it.
    fn id(&self, _assigns: &crate::conn::Assigns) -> Option<String> {
        None
    }

    /// The channel routes, built once.
    fn channels(&self) -> Channels;
}

type StartFn = Arc<
    dyn Fn(channel::Start, tokio_util::sync::CancellationToken) -> BoxFuture<'static, ()>
        + Send
        + Sync,
>;

/// Topic patterns and the channels that serve them: `room:lobby` exactly, or `room:*` for
/// every topic starting with `room:`. The first match wins.
#[derive(Clone, Default)]
pub struct Channels {
    routes: Vec<(String, bool, StartFn, Arc<str>)>,
}

impl Channels {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes topics matching `pattern` to `C`.
    ///
    /// # Panics
    ///
    /// When `*` appears anywhere but at the end of `pattern`.
    #[must_use]
    #[track_caller]
    pub fn channel<C: Channel>(self, pattern: &str) -> Self {
        self.channel_with::<C, ()>(pattern, ())
    }

    /// Routes topics matching `pattern` to `C`, whose sockets hold a clone of `state`
    /// ([`ChannelSocket::state`](crate::channel::ChannelSocket::state)): the application's
    /// state reaches a channel as it reaches an action, with no assign to look up and no
    /// `Option` to unwrap.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::channel::{Channel, ChannelSocket, Payload, Reply};
    /// use fawkes::socket::Channels;
    /// use serde_json::{json, Value};
    ///
    /// #[derive(Clone)]
    /// struct AppState { motd: &'static str }
    ///
    /// struct Lobby;
    ///
    /// impl Channel<AppState> for Lobby {
    ///     type Info = ();
    ///
    ///     async fn join(_: &str, _: Payload, socket: &mut ChannelSocket<AppState>) -> Result<(Self, Value), Value> {
    ///         Ok((Lobby, json!({ "motd": socket.state().motd })))
    ///     }
    ///
    ///     async fn handle_in(&mut self, _: &str, _: Payload, _: &mut ChannelSocket<AppState>) -> Reply {
    ///         Reply::NoReply
    ///     }
    /// }
    ///
    /// let channels = Channels::new().channel_with::<Lobby, _>("lobby", AppState { motd: "hi" });
    /// ```
    ///
    /// # Panics
    ///
    /// When `*` appears anywhere but at the end of `pattern`.
    #[must_use]
    #[track_caller]
    pub fn channel_with<C, S>(mut self, pattern: &str, state: S) -> Self
    where
        C: Channel<S>,
        S: Clone + Send + Sync + 'static,
    {
        let (prefix, wildcard) = match pattern.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (pattern, false),
        };
        assert!(!prefix.contains('*'), "channel pattern `{pattern}`: `*` may only end a pattern");
        let start: StartFn = Arc::new(move |start, token| {
            Box::pin(channel::run::<C, S>(start, state.clone(), token))
        });
        self.routes.push((prefix.to_owned(), wildcard, start, Arc::from(pattern)));
        self
    }

    /// The channel for `topic`, and the pattern that matched it.
    pub(crate) fn find(&self, topic: &str) -> Option<(&StartFn, &Arc<str>)> {
        self.routes
            .iter()
            .find(
                |(p, wildcard, _, _)| {
                    if *wildcard {
                        topic.starts_with(p.as_str())
                    } else {
                        topic == p
                    }
                },
            )
            .map(|(_, _, start, pattern)| (start, pattern))
    }
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let patterns: Vec<String> = self
            .routes
            .iter()
            .map(|(p, w, _, _)| if *w { format!("{p}*") } else { p.clone() })
            .collect();
        f.debug_struct("Channels").field("routes", &patterns).finish()
    }
}

#[cfg(test)]
mod tests;
