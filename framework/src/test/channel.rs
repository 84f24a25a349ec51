//! `ChannelTest`: a socket and its channels in process, without TCP.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::channel::outbound::{Outbound, Outgoing};
use crate::pubsub::PubSub;
use crate::serializer::{self, Frame, Vsn};
use crate::socket::protocol::{Protocol, ProtocolConfig};
use crate::socket::{ConnectInfo, Refused, Socket};
use crate::supervisor::Supervisor;

/// How long assertions wait for a frame unless told otherwise.
const DEFAULT_WAIT: Duration = Duration::from_secs(2);

/// A connected socket in process: join topics, push events, and assert on the frames the
/// client would receive (V2 frames, decoded to JSON arrays).
///
/// # Examples
///
/// ```
/// use fawkes::channel::{Channel, ChannelSocket, Reply};
/// use fawkes::serializer::Payload;
/// use fawkes::socket::{Channels, ConnectInfo, Refused, Socket};
/// use fawkes::test::ChannelTest;
/// use serde_json::{json, Map, Value};
///
/// struct Echo;
/// impl Channel for Echo {
///     type Info = ();
///
///     async fn join(_: &str, _: Payload, _: &mut ChannelSocket) -> Result<(Self, Value), Value> {
///         Ok((Echo, json!({})))
///     }
///     async fn handle_in(&mut self, _: &str, payload: Payload, socket: &mut ChannelSocket) -> Reply {
///         socket.broadcast("echo", payload.clone());
///         Reply::Ok(payload)
///     }
/// }
///
/// struct UserSocket;
/// impl Socket for UserSocket {
///     async fn connect(&self, _: &Map<String, Value>, _: &ConnectInfo) -> Result<fawkes::Assigns, Refused> {
///         Ok(fawkes::Assigns::new())
///     }
///     fn channels(&self) -> Channels {
///         Channels::new().channel::<Echo>("echo:*")
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let mut socket = ChannelTest::connect(UserSocket, json!({})).await.unwrap();
/// socket.join("echo:1", json!({})).await.unwrap();
/// let reply_ref = socket.push("echo:1", "ping", json!({"n": 1}));
/// socket.assert_reply(&reply_ref, "ok", json!({"n": 1})).await;
/// socket.assert_broadcast("echo:1", "echo", json!({"n": 1})).await;
/// # });
/// ```
pub struct ChannelTest {
    protocol: Protocol,
    outbound: Arc<Outbound>,
    pubsub: PubSub,
    supervisor: Supervisor,
    next_ref: u64,
    joins: HashMap<String, String>,
    received: VecDeque<Value>,
    wait: Duration,
}

impl std::fmt::Debug for ChannelTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelTest").field("joins", &self.joins).finish_non_exhaustive()
    }
}

impl ChannelTest {
    /// Connects `socket` with `params` (a JSON object) on a fresh local pubsub.
    ///
    /// # Errors
    ///
    /// When the socket's `connect` refuses.
    pub async fn connect<S: Socket>(socket: S, params: Value) -> Result<Self, Refused> {
        Self::connect_with(socket, params, PubSub::new("test")).await
    }

    /// Connects on a given pubsub, to share it with other test sockets or the application.
    ///
    /// # Errors
    ///
    /// When the socket's `connect` refuses.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn connect_with<S: Socket>(
        socket: S,
        params: Value,
        pubsub: PubSub,
    ) -> Result<Self, Refused> {
        Self::connect_with_info(socket, params, &ConnectInfo::default(), pubsub).await
    }

    /// Connects with what the upgrade request would have told the socket (its headers, a
    /// cookie among them; the endpoint's secret key base).
    ///
    /// # Errors
    ///
    /// When the socket's `connect` refuses.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn connect_with_info<S: Socket>(
        socket: S,
        params: Value,
        info: &ConnectInfo,
        pubsub: PubSub,
    ) -> Result<Self, Refused> {
        let params = match params {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let assigns = socket.connect(&params, info).await?;
        let supervisor = Supervisor::builder().name("channel test").start();
        let telemetry = crate::instrument::Telemetry::for_pubsub(&pubsub);
        let outbound =
            Outbound::new(Vsn::V2, crate::channel::outbound::Limits::UNBOUNDED, telemetry, None);
        let protocol = Protocol::start(ProtocolConfig {
            outbound: outbound.clone(),
            pubsub: pubsub.clone(),
            supervisor: supervisor.clone(),
            socket_id: socket.id(&assigns).map(Into::into),
            assigns,
            channels: Arc::new(socket.channels()),
            max_channels: 100,
            budget: crate::socket::protocol::ChannelBudget::new(usize::MAX),
            client: None,
        });
        Ok(Self {
            protocol,
            outbound,
            pubsub,
            supervisor,
            next_ref: 0,
            joins: HashMap::new(),
            received: VecDeque::new(),
            wait: DEFAULT_WAIT,
        })
    }

    /// How long assertions wait (default 2 s).
    #[must_use]
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The pubsub the socket's channels use.
    pub fn pubsub(&self) -> &PubSub {
        &self.pubsub
    }

    /// The telemetry the test's channels record into, with the pubsub's included: joins,
    /// pushes, panics and open channels, exactly.
    pub fn telemetry(&self) -> &crate::instrument::Telemetry {
        &self.outbound.telemetry
    }

    fn next_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    fn send(
        &mut self,
        join_ref: Option<&str>,
        msg_ref: &str,
        topic: &str,
        event: &str,
        payload: &Value,
    ) {
        let text = json!([join_ref, msg_ref, topic, event, payload]).to_string();
        match serializer::decode_text(Vsn::V2, &text) {
            Ok(msg) => self.protocol.handle(msg),
            Err(err) => panic!("test frame does not encode: {err}"),
        }
    }

    /// Joins `topic`; `Ok(response)` or `Err(response)` as the channel replied.
    ///
    /// # Panics
    ///
    /// When no reply arrives in time.
    pub async fn join(&mut self, topic: &str, payload: Value) -> Result<Value, Value> {
        let join_ref = self.next_ref();
        self.send(Some(&join_ref), &join_ref, topic, "phx_join", &payload);
        let reply = self
            .expect(|f| f[1] == join_ref.as_str() && f[3] == "phx_reply", "the join reply")
            .await;
        let response = reply[4]["response"].clone();
        if reply[4]["status"] == "ok" {
            self.joins.insert(topic.to_owned(), join_ref);
            Ok(response)
        } else {
            Err(response)
        }
    }

    /// Pushes an event to a joined topic; returns its ref for [`ChannelTest::assert_reply`].
    pub fn push(&mut self, topic: &str, event: &str, payload: Value) -> String {
        let msg_ref = self.next_ref();
        let join_ref = self.joins.get(topic).cloned();
        self.send(join_ref.as_deref(), &msg_ref, topic, event, &payload);
        msg_ref
    }

    /// Pushes an event with a binary payload (a V2 binary frame) to a joined topic; returns
    /// its ref for [`ChannelTest::assert_reply`].
    pub fn push_binary(&mut self, topic: &str, event: &str, payload: bytes::Bytes) -> String {
        let msg_ref = self.next_ref();
        self.protocol.handle(crate::serializer::Message {
            join_ref: self.joins.get(topic).cloned(),
            msg_ref: Some(msg_ref.clone()),
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload: crate::serializer::Payload::Binary(payload),
        });
        msg_ref
    }

    /// Leaves a topic; returns the reply's response after the channel closed.
    ///
    /// # Panics
    ///
    /// When the reply or the `phx_close` does not arrive in time.
    pub async fn leave(&mut self, topic: &str) -> Value {
        let msg_ref = self.next_ref();
        let join_ref = self.joins.remove(topic);
        self.send(join_ref.as_deref(), &msg_ref, topic, "phx_leave", &json!({}));
        let reply = self
            .expect(|f| f[1] == msg_ref.as_str() && f[3] == "phx_reply", "the leave reply")
            .await;
        if let Some(join_ref) = join_ref {
            self.expect(|f| f[0] == join_ref.as_str() && f[3] == "phx_close", "phx_close").await;
        }
        reply[4]["response"].clone()
    }

    /// Asserts a `phx_reply` to `msg_ref` with `status` (`"ok"`/`"error"`) and `response`.
    ///
    /// # Panics
    ///
    /// When no such reply arrives in time.
    pub async fn assert_reply(&mut self, msg_ref: &str, status: &str, response: Value) {
        let frame = self.expect(|f| f[1] == msg_ref && f[3] == "phx_reply", "a reply").await;
        assert_eq!(frame[4], json!({"status": status, "response": response}), "reply to {msg_ref}");
    }

    /// Asserts a push to this client (`join_ref` set, `ref` null) of `event` with `payload`.
    ///
    /// # Panics
    ///
    /// When no such push arrives in time.
    pub async fn assert_push(&mut self, topic: &str, event: &str, payload: Value) {
        self.expect(
            |f| {
                !f[0].is_null()
                    && f[1].is_null()
                    && f[2] == topic
                    && f[3] == event
                    && f[4] == payload
            },
            &format!("push {event} {payload} on {topic}"),
        )
        .await;
    }

    /// Asserts a broadcast (`join_ref` and `ref` null) of `event` with `payload` on `topic`.
    ///
    /// # Panics
    ///
    /// When no such broadcast arrives in time.
    pub async fn assert_broadcast(&mut self, topic: &str, event: &str, payload: Value) {
        self.expect(
            |f| {
                f[0].is_null()
                    && f[1].is_null()
                    && f[2] == topic
                    && f[3] == event
                    && f[4] == payload
            },
            &format!("broadcast {event} {payload} on {topic}"),
        )
        .await;
    }

    /// Asserts that no frame matching `event` on `topic` arrives within `within`.
    ///
    /// # Panics
    ///
    /// When one does.
    pub async fn refute_event(&mut self, topic: &str, event: &str, within: Duration) {
        let found = self.find(|f| f[2] == topic && f[3] == event, within).await;
        assert!(found.is_none(), "unexpected {event} on {topic}: {found:?}");
    }

    /// The next frame the client would receive, waiting up to the assertion wait.
    pub async fn next_frame(&mut self) -> Option<Value> {
        self.find(|_| true, self.wait).await
    }

    async fn expect(&mut self, matches: impl Fn(&Value) -> bool, what: &str) -> Value {
        match self.find(matches, self.wait).await {
            Some(frame) => frame,
            None => panic!(
                "expected {what} within {:?}; received instead: {:?}",
                self.wait, self.received
            ),
        }
    }

    async fn find(&mut self, matches: impl Fn(&Value) -> bool, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(i) = self.received.iter().position(&matches) {
                return self.received.remove(i);
            }
            let mut batch = Vec::new();
            let got =
                tokio::time::timeout_at(deadline, self.outbound.queue.recv_all(&mut batch)).await;
            if !matches!(got, Ok(true)) {
                return None;
            }
            for out in batch {
                match out {
                    Outgoing::Frame(frame) => self.received.push_back(frame_as_value(&frame)),
                    control => {
                        self.protocol.control(control);
                    }
                }
            }
        }
    }

    /// Closes the socket: its channels stop.
    pub async fn close(mut self) {
        self.protocol.close();
        let _ = self.supervisor.shutdown().await;
    }
}

/// A frame the client would receive, as the V2 JSON array `[join_ref, ref, topic, event,
/// payload]`: a binary frame's fields the same way, its bytes as `{"binary": [..]}` where the
/// payload goes, so every assertion and refutation sees it. A frame that is neither is a
/// server bug, and fails the test.
fn frame_as_value(frame: &Frame) -> Value {
    use crate::serializer::binary::{decode_server, ServerFrame};
    let text_or_null = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    match frame {
        Frame::Text(text) => match serde_json::from_str(text.as_str()) {
            Ok(value) => value,
            Err(err) => panic!("the server sent a text frame that is not JSON ({err}): {text:?}"),
        },
        Frame::Binary(bytes) => match decode_server(bytes) {
            Ok(ServerFrame::Push([join_ref, topic, event], payload)) => {
                json!([text_or_null(&join_ref), null, topic, event, { "binary": payload.to_vec() }])
            }
            Ok(ServerFrame::Reply([join_ref, msg_ref, topic, status], payload)) => json!([
                text_or_null(&join_ref),
                text_or_null(&msg_ref),
                topic,
                "phx_reply",
                { "status": status, "response": { "binary": payload.to_vec() } }
            ]),
            Ok(ServerFrame::Broadcast([topic, event], payload)) => {
                json!([null, null, topic, event, { "binary": payload.to_vec() }])
            }
            Err(err) => panic!("the server sent a binary frame that does not decode: {err}"),
        },
    }
}

impl Drop for ChannelTest {
    fn drop(&mut self) {
        self.protocol.close();
    }
}
