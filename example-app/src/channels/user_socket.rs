//! The socket: who is connecting (checking their user token), and which topics lead to which
//! channel.

use std::time::Duration;

use fawkes::security::{SecretKeyBase, Token, TokenError};
use fawkes::socket::{Channels, ConnectInfo, Refused, Socket};
use serde_json::{Map, Value};

use super::{DashboardChannel, RoomChannel, TestChannel};
use crate::controllers::session_controller::MAX_NAME_CHARS;
use crate::repo::Repo;

/// The environment variable that, set to `1`, adds the `test:*` channel to the socket the
/// router mounts (see [`test_channels_enabled`]).
pub const TEST_CHANNELS_ENV: &str = "FAWKES_EXAMPLE_TEST_CHANNELS";

/// Whether [`TEST_CHANNELS_ENV`] is `1`.
pub fn test_channels_enabled() -> bool {
    std::env::var(TEST_CHANNELS_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Who is on the other end of a socket; every channel reads it with
/// `socket.get_assign::<User>()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name from the user token, or the name the client gave, or `anonymous`.
    pub name: String,
    /// Whether the client gave no name at all.
    pub anonymous: bool,
    /// Whether the name comes from a user token the server signed ([`sign_user_token`]) rather
    /// than from the client's word (the `user` connect param).
    pub verified: bool,
}

/// The token a client passed with the JS client's `authToken` option (kept out of URLs, and
/// so out of access logs), once it verified; handed to channels as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthToken(pub String);

/// The salt of user tokens: a token signed for another purpose never opens a socket.
pub const USER_TOKEN_SALT: &str = "user socket";

/// How long a user token opens sockets after the page that carried it was rendered: two
/// weeks, as in Phoenix's guides. A page left open longer must be reloaded.
pub const USER_TOKEN_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The token a page hands its socket for the logged-in `name`: signed with [`USER_TOKEN_SALT`]
/// (readable, unforgeable), checked by [`UserSocket`] on connect.
///
/// # Examples
///
/// ```
/// use example_app::channels::{sign_user_token, verify_user_token};
/// use fawkes::security::SecretKeyBase;
///
/// let key_base = SecretKeyBase::generate();
/// let token = sign_user_token(&key_base, "Ada");
/// assert_eq!(verify_user_token(&key_base, &token).unwrap(), "Ada");
/// assert!(verify_user_token(&SecretKeyBase::generate(), &token).is_err());
/// ```
pub fn sign_user_token(key_base: &SecretKeyBase, name: &str) -> String {
    Token::sign(key_base, USER_TOKEN_SALT, name)
}

/// The name a user token holds.
///
/// # Errors
///
/// [`TokenError::Expired`] once it is older than [`USER_TOKEN_MAX_AGE`],
/// [`TokenError::Invalid`] when it is forged, altered or signed for something else.
pub fn verify_user_token(key_base: &SecretKeyBase, token: &str) -> Result<String, TokenError> {
    Token::verify(key_base, USER_TOKEN_SALT, token, USER_TOKEN_MAX_AGE)
}

/// The socket mounted at `/socket`.
///
/// A client proves who it is with a user token ([`sign_user_token`]) that the chat page
/// renders for a logged-in visitor, sent as the `token` connect param or with the JS client's
/// `authToken` option; a token that does not verify, or has expired, refuses the connection
/// (the upgrade is answered 403). Without a token a client may still connect, naming itself
/// with the `user` param (unverified) or not at all.
///
/// Channels are started by the framework from their type alone, so the repo reaches them
/// through the connect assigns: `connect` puts a clone there next to the [`User`]. The router
/// builds the socket from its state.
///
/// A name given with `user` must fit a login name ([`MAX_NAME_CHARS`] characters): every
/// member of a room receives every other member's name, so a long one costs every reader.
#[derive(Debug, Clone)]
pub struct UserSocket {
    repo: Repo,
    key_base: SecretKeyBase,
    dashboard: crate::dashboard::Dashboard,
    test_channels: bool,
}

impl UserSocket {
    /// A socket whose channels use `repo` and whose tokens are checked against `key_base`,
    /// without the test channel (for `ChannelTest`).
    pub fn new(repo: Repo, key_base: SecretKeyBase) -> Self {
        Self {
            repo,
            key_base,
            dashboard: crate::dashboard::Dashboard::default(),
            test_channels: false,
        }
    }

    /// The dashboard history its sockets' `dashboard:*` channels reply with (default: an
    /// empty one of its own).
    #[must_use]
    pub fn with_dashboard(mut self, dashboard: crate::dashboard::Dashboard) -> Self {
        self.dashboard = dashboard;
        self
    }

    /// Routes `test:*` to [`TestChannel`] too. Off in production: its events crash on demand.
    #[must_use]
    pub fn with_test_channels(mut self, enabled: bool) -> Self {
        self.test_channels = enabled;
        self
    }

    /// The name the connection's tokens vouch for: `Ok(None)` without a token. Every token
    /// given must verify, and when both ways are used they must name the same user.
    fn verified_name(
        &self,
        params: &Map<String, Value>,
        info: &ConnectInfo,
    ) -> Result<Option<String>, Refused> {
        let from_params = match params.get("token") {
            None => None,
            // The page renders no token for an anonymous visitor; an empty one is no claim.
            Some(Value::String(token)) if token.trim().is_empty() => None,
            Some(Value::String(token)) => Some(token.as_str()),
            Some(_) => return Err(Refused),
        };
        let from_protocol = info.auth_token.as_deref().filter(|token| !token.trim().is_empty());
        let tokens = [from_params, from_protocol];
        let mut name: Option<String> = None;
        for token in tokens.into_iter().flatten() {
            let verified = verify_user_token(&self.key_base, token).map_err(|err| {
                tracing::info!(peer = ?info.peer, error = %err, "refusing a socket: bad user token");
                Refused
            })?;
            if name.as_ref().is_some_and(|known| *known != verified) {
                tracing::info!(peer = ?info.peer, "refusing a socket: its tokens disagree");
                return Err(Refused);
            }
            name = Some(verified);
        }
        Ok(name)
    }
}

impl Socket for UserSocket {
    /// Refuses a bad or expired user token (in `token` or the `authToken`); a good one sets
    /// the user. Without a token, `user`, when given, must be a string; a blank one counts as
    /// none.
    async fn connect(
        &self,
        params: &Map<String, Value>,
        info: &ConnectInfo,
    ) -> Result<fawkes::Assigns, Refused> {
        let claimed = match params.get("user") {
            None => None,
            Some(Value::String(name)) if name.trim().is_empty() => None,
            Some(Value::String(name)) if name.trim().chars().count() > MAX_NAME_CHARS => {
                tracing::info!(peer = ?info.peer, "refusing a socket: its user name is too long");
                return Err(Refused);
            }
            Some(Value::String(name)) => Some(name.trim().to_owned()),
            Some(_) => return Err(Refused),
        };
        let user = match self.verified_name(params, info)? {
            // The token's name wins over whatever `user` says.
            Some(name) => User { name, anonymous: false, verified: true },
            None => User {
                anonymous: claimed.is_none(),
                name: claimed.unwrap_or_else(|| "anonymous".to_owned()),
                verified: false,
            },
        };
        let mut assigns = fawkes::Assigns::new();
        assigns.insert(user);
        if let Some(token) = &info.auth_token {
            assigns.insert(AuthToken(token.clone()));
        }
        assigns.insert(self.repo.clone());
        assigns.insert(self.dashboard.clone());
        Ok(assigns)
    }

    /// `users_socket:<user>` for a named user, so a `disconnect` broadcast there closes all of
    /// that user's sockets.
    fn id(&self, assigns: &fawkes::Assigns) -> Option<String> {
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
