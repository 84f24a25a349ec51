//! Real-time chat: the socket clients connect to and the channels they join.
//!
//! [`UserSocket`] is mounted at `/socket` (WebSocket and LongPoll). It checks the user token
//! the chat page hands a logged-in visitor ([`sign_user_token`]), and routes `room:*` to
//! [`RoomChannel`], where messages are validated, stored for real rooms and broadcast to every
//! member; and, in a build with the `test-channels` feature (the tests' build, never the production one),
//! `test:*` to `TestChannel`, whose events exercise crashes, pushes and binary payloads for
//! the client compatibility tests.

mod room_channel;
#[cfg(feature = "test-channels")]
mod test_channel;
mod user_socket;

pub use room_channel::{room_topic, RoomChannel};
#[cfg(feature = "test-channels")]
pub use test_channel::TestChannel;
pub use user_socket::{
    sign_user_token, verify_user_token, AuthToken, User, UserSocket, USER_TOKEN_MAX_AGE,
    USER_TOKEN_SALT,
};
