//! The socket: who is connecting, and which topics lead to which channel.

use fawkes::socket::{Channels, ConnectInfo, Refused, Socket};
use serde_json::{Map, Value};

use super::{DashboardChannel, RoomChannel, TestChannel};
use crate::repo::Repo;

/// The environment variable that, set to `1`, adds the `test:*` channel to sockets built with
/// [`UserSocket::from_env`].
pub const TEST_CHANNELS_ENV: &str = "FAWKES_EXAMPLE_TEST_CHANNELS";

/// Who is on the other end of a socket, from the `user` connect param; every channel reads it
/// with `socket.get_assign::<User>()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name the client gave, or `anonymous`.
    pub name: String,
    /// Whether the client gave no name.
    pub anonymous: bool,
}

/// The token a client passed with the JS client's `authToken` option, kept out of URLs and so
/// out of access logs. This app authenticates no one, so it only hands the token to channels;
/// a real one would verify it in `connect` and refuse a bad one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthToken(pub String);

/// The socket mounted at `/socket`.
///
/// Channels are started by the framework from their type alone, so the repo reaches them
/// through the connect assigns: `connect` puts a clone there next to the [`User`]. Mounted in
/// the router, the socket takes the repo from the router's assigns (`Router::assign`), which
/// reach `connect` as `ConnectInfo::assigns`.
#[derive(Debug, Clone)]
pub struct UserSocket {
    repo: Option<Repo>,
    test_channels: bool,
}

impl UserSocket {
    /// A socket whose channels use `repo`, without the test channel (for `ChannelTest`).
    pub fn new(repo: Repo) -> Self {
        Self { repo: Some(repo), test_channels: false }
    }

    /// The socket the router mounts: the repo comes from the router's assigns, and the test
    /// channel is on when [`TEST_CHANNELS_ENV`] is `1`.
    pub fn from_env() -> Self {
        let enabled = std::env::var(TEST_CHANNELS_ENV).is_ok_and(|v| v.trim() == "1");
        Self { repo: None, test_channels: enabled }
    }

    /// Routes `test:*` to [`TestChannel`] too. Off in production: its events crash on demand.
    #[must_use]
    pub fn with_test_channels(mut self, enabled: bool) -> Self {
        self.test_channels = enabled;
        self
    }
}

impl Socket for UserSocket {
    /// Accepts everyone; `user`, when given, must be a string. A blank one counts as none.
    async fn connect(
        &self,
        params: &Map<String, Value>,
        info: &ConnectInfo,
    ) -> Result<http::Extensions, Refused> {
        let user = match params.get("user") {
            None => None,
            Some(Value::String(name)) if name.trim().is_empty() => None,
            Some(Value::String(name)) => Some(name.trim().to_owned()),
            Some(_) => return Err(Refused),
        };
        let mut assigns = http::Extensions::new();
        assigns.insert(User {
            anonymous: user.is_none(),
            name: user.unwrap_or_else(|| "anonymous".to_owned()),
        });
        if let Some(token) = &info.auth_token {
            assigns.insert(AuthToken(token.clone()));
        }
        let Some(repo) = self.repo.clone().or_else(|| info.assigns.get::<Repo>().cloned()) else {
            tracing::error!("the socket has no repo: build the router with router::build(repo)");
            return Err(Refused);
        };
        assigns.insert(repo);
        Ok(assigns)
    }

    /// `users_socket:<user>` for a named user, so a `disconnect` broadcast there closes all of
    /// that user's sockets.
    fn id(&self, assigns: &http::Extensions) -> Option<String> {
        assigns
            .get::<User>()
            .filter(|user| !user.anonymous)
            .map(|user| format!("users_socket:{}", user.name))
    }

    fn channels(&self) -> Channels {
        let channels = Channels::new()
            .channel::<RoomChannel>("room:*")
            .channel::<DashboardChannel>("dashboard:*");
        if self.test_channels {
            channels.channel::<TestChannel>("test:*")
        } else {
            channels
        }
    }
}
