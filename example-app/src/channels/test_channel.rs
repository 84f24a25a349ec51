//! `test:*`: events that exercise what clients must survive, for compatibility tests.

use fawkes::channel::{Channel, ChannelSocket, Reply};
use fawkes::serializer::Payload;
use serde_json::{json, Value};

use super::{AuthToken, User};

/// A channel that crashes, echoes and pushes on demand. Compiled only with the
/// `test-channels` feature, which the tests' builds turn on.
///
/// The join replies `{"user", "socket_id", "auth_token"}`, so clients can see what their
/// connect params and token became.
///
/// Events:
/// - `crash`: panics; the client gets `phx_error` and rejoins.
/// - `echo`: replies ok with the payload.
/// - `push_me`: pushes `pushed` with the payload to this client only, then replies ok `{}`.
/// - `binary_echo`: replies ok with the binary payload (serializer 2.0.0 binary frames).
#[derive(Debug)]
pub struct TestChannel;

impl Channel for TestChannel {
    type Info = ();

    async fn join(
        _topic: &str,
        _payload: Payload,
        socket: &mut ChannelSocket,
    ) -> Result<(Self, Value), Value> {
        let user = socket.get_assign::<User>().map(|user| user.name.clone());
        let token = socket.get_assign::<AuthToken>().map(|token| token.0.clone());
        let reply = json!({ "user": user, "socket_id": socket.socket_id(), "auth_token": token });
        Ok((Self, reply))
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        socket: &mut ChannelSocket,
    ) -> Reply {
        match event {
            "crash" => panic!("crash requested on {}", socket.topic()),
            "echo" => Reply::Ok(payload),
            "push_me" => {
                socket.push("pushed", payload);
                Reply::ok(json!({}))
            }
            "binary_echo" => match payload {
                Payload::Binary(_) => Reply::Ok(payload),
                Payload::Json(_) => Reply::error(json!({ "reason": "expected a binary payload" })),
            },
            _ => Reply::error(json!({ "reason": "unknown event" })),
        }
    }
}
