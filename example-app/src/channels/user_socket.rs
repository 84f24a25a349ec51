//! The socket: who is connecting (checking their user token), and which topics lead to which
//! channel.

use std::time::Duration;

use fawkes::security::{SecretKeyBase, Token, TokenError};
use fawkes::socket::{Channels, ConnectInfo, Refused, Socket};
use serde_json::{Map, Value};

use super::RoomChannel;
use crate::controllers::session_controller::MAX_NAME_CHARS;
use crate::router::AppState;

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
/// The router builds the socket from its state, and the socket routes its channels with it:
/// they read the repo from `socket.state()`, as actions read it from
/// `State<AppState>`. What differs per connection, the [`User`], is in the assigns.
///
/// A name given with `user` must fit a login name ([`MAX_NAME_CHARS`] characters): every
/// member of a room receives every other member's name, so a long one costs every reader.
#[derive(Debug, Clone)]
pub struct UserSocket {
    state: AppState,
    #[cfg(feature = "test-channels")]
    test_channels: bool,
}

impl UserSocket {
    /// A socket whose tokens are checked against the state's key base and whose channels get
    /// the state. Built with the `test-channels` feature, it routes `test:*` to
    /// [`TestChannel`](super::TestChannel) too.
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            #[cfg(feature = "test-channels")]
            test_channels: true,
        }
    }

    /// Whether `test:*` is routed to [`TestChannel`](super::TestChannel) (on by default in a
    /// build with the `test-channels` feature; such a build is for tests only, its events
    /// crash on demand).
    #[cfg(feature = "test-channels")]
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
            let verified = verify_user_token(&self.state.key_base, token).map_err(|err| {
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
        // GraphQL mutations over the socket spend the client's write budget, as the API's do.
        let limit = self.state.writes.clone();
        let client = info.peer.map(|peer| limit.client_ip(peer.ip(), &info.headers));
        assigns.insert(crate::graphql::Writer { limit, client });
        if let Some(token) = &info.auth_token {
            assigns.insert(AuthToken(token.clone()));
        }
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
            .channel_with::<RoomChannel, _>("room:*", self.state.clone())
            // GraphQL in Absinthe's protocol, for `@absinthe/socket`.
            .channel_with::<fawkes::graphql::AbsintheChannel<crate::graphql::ChatSchema>, _>(
                "__absinthe__:control",
                self.state.graphql.clone(),
            );
        #[cfg(feature = "test-channels")]
        if self.test_channels {
            return channels.channel::<super::TestChannel>("test:*");
        }
        channels
    }
}
