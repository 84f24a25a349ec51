//! The tower service a socket is mounted as.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Request, Response, StatusCode};
use tower_service::Service;

use super::{longpoll, websocket, Channels, CheckOrigin, Socket};
use crate::{Body, Conn, RenderError};

/// Serves a [`Socket`] under its mount: `<mount>/websocket` and `<mount>/longpoll`.
///
/// # Examples
///
/// ```
/// # use fawkes::socket::{Channels, ConnectInfo, Refused, Socket};
/// # struct UserSocket;
/// # impl Socket for UserSocket {
/// #     async fn connect(&self, _: &serde_json::Map<String, serde_json::Value>, _: &ConnectInfo) -> Result<fawkes::Assigns, Refused> { Ok(Default::default()) }
/// #     fn channels(&self) -> Channels { Channels::new() }
/// # }
/// use fawkes::socket::{transport, CheckOrigin};
/// use std::time::Duration;
///
/// let t = transport(UserSocket)
///     .check_origin(CheckOrigin::list(["https://example.com"]))
///     .heartbeat_timeout(Duration::from_secs(60))
///     .max_frame_size(64 * 1024);
/// # let _ = t;
/// ```
pub struct Transport<S> {
    inner: Arc<Inner<S>>,
}

pub(crate) struct Inner<S> {
    pub(crate) socket: S,
    pub(crate) channels: Arc<Channels>,
    pub(crate) config: Config,
    pub(crate) longpoll: super::longpoll::LongPoll,
    pub(crate) budget: Arc<super::protocol::ChannelBudget>,
    pub(crate) incoming: Arc<super::websocket::Incoming>,
    pub(crate) clients: super::per_client::Clients,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) check_origin: CheckOrigin,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) max_frame_size: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) max_channels: usize,
    pub(crate) outbound_limit: usize,
    pub(crate) outbound_bytes: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) longpoll_window: Duration,
    pub(crate) max_longpoll_sessions: usize,
    pub(crate) longpoll_buffer: usize,
}

impl<S> Clone for Transport<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<S> fmt::Debug for Transport<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("channels", &self.inner.channels)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The default of [`Transport::read_buffer_size`].
pub(crate) const DEFAULT_READ_BUFFER: usize = 1024;

/// The default of [`Transport::max_channels_total`].
pub(crate) const DEFAULT_MAX_CHANNELS_TOTAL: usize = 65_536;

/// Wraps a socket in a transport with the default settings.
pub fn transport<S: Socket>(socket: S) -> Transport<S> {
    let channels = Arc::new(socket.channels());
    Transport {
        inner: Arc::new(Inner {
            socket,
            channels,
            config: Config {
                check_origin: CheckOrigin::default(),
                heartbeat_timeout: Duration::from_secs(60),
                max_frame_size: 1024 * 1024,
                read_buffer_size: DEFAULT_READ_BUFFER,
                max_channels: 100,
                outbound_limit: 1024,
                outbound_bytes: 4 * 1024 * 1024,
                write_timeout: Duration::from_secs(10),
                longpoll_window: Duration::from_secs(10),
                max_longpoll_sessions: 10_000,
                longpoll_buffer: 64 * 1024 * 1024,
            },
            longpoll: super::longpoll::LongPoll::default(),
            budget: super::protocol::ChannelBudget::new(DEFAULT_MAX_CHANNELS_TOTAL),
            incoming: super::websocket::Incoming::new(64 * 1024 * 1024),
            clients: super::per_client::Clients::default(),
        }),
    }
}

impl Config {
    pub(crate) fn link_limits(&self) -> crate::channel::outbound::Limits {
        crate::channel::outbound::Limits { frames: self.outbound_limit, bytes: self.outbound_bytes }
    }
}

impl<S: Socket> Transport<S> {
    fn configure(mut self, f: impl FnOnce(&mut Inner<S>)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => f(inner),
            None => unreachable!("transports are configured before they are cloned"),
        }
        self
    }

    fn config(self, f: impl FnOnce(&mut Config)) -> Self {
        self.configure(|inner| f(&mut inner.config))
    }

    /// Which browser origins may connect (default: the request's own host).
    #[must_use]
    pub fn check_origin(self, check: CheckOrigin) -> Self {
        self.config(|c| c.check_origin = check)
    }

    /// How long a socket may stay silent (no heartbeat, no message) before it is closed
    /// (default 60 s; the official client sends a heartbeat every 30 s).
    #[must_use]
    pub fn heartbeat_timeout(self, timeout: Duration) -> Self {
        self.config(|c| c.heartbeat_timeout = timeout)
    }

    /// The buffer each WebSocket reads its client's frames into (default 1 KiB, at least
    /// 14 bytes): it lives as long as the socket, so it is most of an idle socket's memory.
    /// A frame larger than it still arrives whole (the buffer grows to hold it), in reads of
    /// this size: raise it for clients that send large frames often, lower it for many idle
    /// sockets.
    #[must_use]
    pub fn read_buffer_size(self, bytes: usize) -> Self {
        self.config(|c| c.read_buffer_size = bytes.max(14))
    }

    /// The largest frame a client may send (default 1 MiB); larger ones close the socket with
    /// code 1009. A LongPoll `POST`, which carries a batch of frames, may be this large too;
    /// a larger one answers 413.
    #[must_use]
    pub fn max_frame_size(self, bytes: usize) -> Self {
        self.config(|c| c.max_frame_size = bytes)
    }

    /// How many channels all the sockets of this transport may run at once (default 65,536).
    /// A channel costs a task and its state, a few KiB (about 3 KiB for the example app's
    /// room, presence included), and without this bound the sockets a replica accepts times
    /// the topics each may join would be more memory than it has. Past it, a join is answered
    /// `{"reason": "too many channels on this server"}`.
    #[must_use]
    pub fn max_channels_total(self, max: usize) -> Self {
        self.configure(|inner| inner.budget = super::protocol::ChannelBudget::new(max))
    }

    /// How many bytes of messages still coming all the WebSockets of this transport may hold
    /// (default 64 MiB): the fragments of a message are kept until its last one arrives, up to
    /// [`Transport::max_frame_size`] a socket. Past it, a socket holding more than 16 KiB of an
    /// unfinished message is closed when it reads more.
    #[must_use]
    pub fn max_incoming_bytes(self, bytes: usize) -> Self {
        self.configure(|inner| inner.incoming = super::websocket::Incoming::new(bytes))
    }

    fn clients(self, f: impl FnOnce(&mut super::per_client::Clients)) -> Self {
        self.configure(|inner| f(&mut inner.clients))
    }

    /// How many sockets one client may hold open on this transport at once (default: no
    /// limit), WebSockets and LongPoll sessions together. Past it, a connect is answered
    /// `429` with `retry-after` (the official client retries with its backoff), before the
    /// socket's `connect` runs. Clients are told apart by address (an IPv6 client by its
    /// /64), through the proxies of [`Transport::trusted_proxies`].
    ///
    /// Without it, one client may open sockets until the endpoint's connections or the
    /// transport's channels run out for everyone.
    #[must_use]
    pub fn max_sockets_per_client(self, max: usize) -> Self {
        self.clients(|c| c.max_sockets = Some(max))
    }

    /// How many channels the sockets of one client may run together (default: no limit).
    /// Past it, a join is answered `{"reason": "too many channels for this client"}`. Set it
    /// well under [`Transport::max_channels_total`], so that one client cannot take what
    /// all share.
    #[must_use]
    pub fn max_channels_per_client(self, max: usize) -> Self {
        self.clients(|c| c.max_channels = Some(max))
    }

    /// The reverse proxies whose `X-Forwarded-For` names the client, for the per-client
    /// limits (default: none; the peer is the client). Behind a load balancer or an ingress
    /// that is not trusted, every client looks like the proxy and shares one limit.
    #[must_use]
    pub fn trusted_proxies(self, proxies: crate::security::TrustedProxies) -> Self {
        self.clients(|c| c.proxies = proxies)
    }

    /// How many topics one socket may join (default 100).
    #[must_use]
    pub fn max_channels(self, max: usize) -> Self {
        self.config(|c| c.max_channels = max)
    }

    /// How long a LongPoll request waits for messages (default 10 s); a session nobody polls
    /// for 1.5 × this ends.
    #[must_use]
    pub fn longpoll_window(self, window: Duration) -> Self {
        self.config(|c| c.longpoll_window = window)
    }

    /// How many LongPoll sessions may be open at once (default 10,000). Past it, opening one
    /// answers HTTP 503 with `retry-after`, which the official client takes as a server error
    /// and retries with its backoff. A session costs a few KiB while open, and one nobody
    /// polls ends after 1.5 × the poll window.
    #[must_use]
    pub fn max_longpoll_sessions(self, max: usize) -> Self {
        self.config(|c| c.max_longpoll_sessions = max)
    }

    /// How many bytes of frames all LongPoll sessions together may hold for their clients'
    /// next polls (default 64 MiB). A frame several sessions hold (a broadcast, a topic's
    /// `presence_state`) counts once. A session given a frame past the limit is closed, and
    /// the official client reconnects; sessions whose clients poll hold almost nothing, so
    /// the limit only binds when many clients open sessions and do not poll.
    #[must_use]
    pub fn longpoll_buffer_limit(self, bytes: usize) -> Self {
        self.config(|c| c.longpoll_buffer = bytes)
    }

    /// How many frames may wait for a slow client (default 1,024); past it the socket is closed.
    #[must_use]
    pub fn outbound_limit(self, frames: usize) -> Self {
        self.config(|c| c.outbound_limit = frames.max(1))
    }

    /// How many bytes of frames may wait for a slow client (default 4 MiB); past it the socket
    /// is closed, as past [`Transport::outbound_limit`]. A single larger frame still goes to a
    /// socket with nothing else waiting. Frames broadcast to many sockets share their bytes,
    /// so the memory a broadcast holds is less than this count suggests, never more.
    #[must_use]
    pub fn outbound_bytes_limit(self, bytes: usize) -> Self {
        self.config(|c| c.outbound_bytes = bytes.max(1))
    }
}

/// What `socket "/path" => X;` accepts: a [`Socket`] (default settings) or a configured
/// [`Transport`].
pub trait IntoTransport {
    /// The socket type.
    type Socket: Socket;
    /// Makes the transport.
    fn into_transport(self) -> Transport<Self::Socket>;
}

impl<S: Socket> IntoTransport for S {
    type Socket = S;
    fn into_transport(self) -> Transport<S> {
        transport(self)
    }
}

impl<S: Socket> IntoTransport for Transport<S> {
    type Socket = S;
    fn into_transport(self) -> Transport<S> {
        self
    }
}

impl<S: Socket> Service<Request<Body>> for Transport<S> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let resp = match req.uri().path() {
                "/websocket" => websocket::upgrade(inner, req).await,
                "/longpoll" => longpoll::handle(inner, req).await,
                _ => error(StatusCode::NOT_FOUND, "Not Found"),
            };
            Ok(resp)
        })
    }
}

/// A JSON error response in Phoenix's shape.
pub(crate) fn error(status: StatusCode, detail: &str) -> Response<Body> {
    let conn = Conn::from_request(Request::new(Body::empty()));
    crate::ActionError::status(status).with_detail(detail).render(conn).into_response()
}
