//! Real-time chat: the socket clients connect to and the channels they join.
//!
//! [`UserSocket`] is mounted at `/socket` (WebSocket and LongPoll). It checks the user token
//! the chat page hands a logged-in visitor ([`sign_user_token`]), and routes `room:*` to
//! [`RoomChannel`], where messages are validated, stored for real rooms and broadcast to every
//! member; `dashboard:*` to [`DashboardChannel`], which carries the live metrics; and, when the
//! `FAWKES_EXAMPLE_TEST_CHANNELS` environment variable is `1`, `test:*` to [`TestChannel`],
//! whose events exercise crashes, pushes and binary payloads for the client compatibility
//! tests.

mod dashboard_channel;
mod room_channel;
mod test_channel;
mod user_socket;

pub use dashboard_channel::DashboardChannel;
pub use room_channel::{room_topic, RoomChannel};
pub use test_channel::TestChannel;
pub use user_socket::{
    sign_user_token, test_channels_enabled, verify_user_token, AuthToken, User, UserSocket,
    TEST_CHANNELS_ENV, USER_TOKEN_MAX_AGE, USER_TOKEN_SALT,
};
