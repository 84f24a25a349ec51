//! What the channel test files share: an endpoint serving one socket, a raw WebSocket client
//! that speaks the Phoenix wire format by hand, and waits that always end.
//!
//! The client is deliberately dumb (no reply matching, no rejoin) so every frame the server
//! sends is seen and compared whole.

// Each test file uses its own subset of these.
#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use std::time::Duration;

use fawkes::endpoint::RunningEndpoint;
use fawkes::socket::{Socket, Transport};
use fawkes::Endpoint;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
pub(crate) use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) use tests::{eventually, within, DEADLINE};

/// A socket that lets every client in, with no assigns, and routes `room:*` to `C`.
pub(crate) struct OpenSocket<C>(std::marker::PhantomData<fn() -> C>);

impl<C> OpenSocket<C> {
    pub(crate) fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<C: fawkes::channel::Channel> Socket for OpenSocket<C> {
    async fn connect(
        &self,
        _: &serde_json::Map<String, Value>,
        _: &fawkes::socket::ConnectInfo,
    ) -> Result<fawkes::Assigns, fawkes::socket::Refused> {
        Ok(fawkes::Assigns::new())
    }

    fn channels(&self) -> fawkes::socket::Channels {
        fawkes::socket::Channels::new().channel::<C>("room:*")
    }
}

/// A raw client connection.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Serves `transport` at `/socket` on a fresh loopback endpoint, the way `router!`'s
/// `socket "/socket" => ...;` mounts it.
pub(crate) async fn serve<S: Socket>(transport: Transport<S>) -> RunningEndpoint {
    let router =
        fawkes::router::Builder::new().forward("/socket", "/socket", Vec::new(), transport).build();
    tests::start(Endpoint::new(router)).await
}

/// Shuts `server` down and waits for it, bounded.
pub(crate) async fn stop(server: RunningEndpoint) {
    server.shutdown();
    within(DEADLINE, "the endpoint to stop", server.wait()).await.expect("the endpoint stops");
}

/// The upgrade request for `<mount>/websocket?<query>`, headers still editable.
pub(crate) fn request(addr: SocketAddr, query: &str) -> Request {
    format!("ws://{addr}/socket/websocket?{query}")
        .into_client_request()
        .expect("a valid websocket url")
}

/// Sends an upgrade request and returns whatever the handshake gave, bounded.
pub(crate) async fn open(req: Request) -> Result<(Ws, Response), WsError> {
    within(DEADLINE, "the websocket handshake", tokio_tungstenite::connect_async(req)).await
}

/// Connects with the query string `query`, which must be accepted.
pub(crate) async fn connect(addr: SocketAddr, query: &str) -> Ws {
    match open(request(addr, query)).await {
        Ok((ws, _)) => ws,
        Err(err) => panic!("connecting with `{query}` failed: {err:?}"),
    }
}

/// Connects with serializer 2.0.0.
pub(crate) async fn connect_v2(addr: SocketAddr) -> Ws {
    connect(addr, "vsn=2.0.0").await
}

/// The HTTP status of an upgrade: 101 when it succeeded (the connection is dropped), the
/// refusal's status otherwise.
pub(crate) async fn upgrade_status(req: Request) -> u16 {
    match open(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(err) => panic!("the handshake failed without an HTTP answer: {err:?}"),
    }
}

/// Sends one JSON text frame.
pub(crate) async fn send(ws: &mut Ws, frame: Value) {
    send_text(ws, &frame.to_string()).await;
}

/// Sends one text frame as is.
pub(crate) async fn send_text(ws: &mut Ws, text: &str) {
    within(DEADLINE, "sending a text frame", ws.send(Message::text(text.to_owned())))
        .await
        .expect("the text frame is sent");
}

/// Sends one binary frame.
pub(crate) async fn send_binary(ws: &mut Ws, bytes: Vec<u8>) {
    within(DEADLINE, "sending a binary frame", ws.send(Message::binary(bytes)))
        .await
        .expect("the binary frame is sent");
}

/// What the server sent next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Incoming {
    /// A text frame, parsed as JSON.
    Text(Value),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A close frame and its code (`None`: a close frame without a code).
    Close(Option<u16>),
    /// The connection ended without a close frame (EOF or an I/O error).
    Ended(String),
}

/// The next data or close frame (pings and pongs skipped), within `limit`.
pub(crate) async fn next_within(ws: &mut Ws, limit: Duration) -> Incoming {
    within(limit, "a frame from the server", async {
        loop {
            return match ws.next().await {
                Some(Ok(Message::Text(text))) => match serde_json::from_str(text.as_str()) {
                    Ok(value) => Incoming::Text(value),
                    Err(err) => {
                        panic!("the server sent a text frame that is not JSON ({err}): {text}")
                    }
                },
                Some(Ok(Message::Binary(bytes))) => Incoming::Binary(bytes.to_vec()),
                Some(Ok(Message::Close(frame))) => {
                    Incoming::Close(frame.map(|f| u16::from(f.code)))
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => Incoming::Ended(err.to_string()),
                None => Incoming::Ended("end of stream".to_owned()),
            };
        }
    })
    .await
}

/// The next data or close frame, within the test deadline.
pub(crate) async fn next(ws: &mut Ws) -> Incoming {
    next_within(ws, DEADLINE).await
}

/// The next frame, which must be a JSON text frame.
pub(crate) async fn recv(ws: &mut Ws) -> Value {
    match next(ws).await {
        Incoming::Text(value) => value,
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next frame, which must be binary.
pub(crate) async fn recv_binary(ws: &mut Ws) -> Vec<u8> {
    match next(ws).await {
        Incoming::Binary(bytes) => bytes,
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

/// The next `n` frames, which must be JSON text, in the order the server chose; compared with
/// [`assert_same_frames`] when that order is not part of the protocol.
pub(crate) async fn recv_n(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(recv(ws).await);
    }
    got
}

/// Asserts two lists of frames are equal as multisets.
#[track_caller]
pub(crate) fn assert_same_frames(got: Vec<Value>, expected: Vec<Value>) {
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(Value::to_string);
        v
    };
    assert_eq!(sorted(got), sorted(expected));
}

/// Reads until the server closes the connection, skipping data frames, and says how it
/// ended: the close frame's code, or how the stream ended without one.
pub(crate) async fn closing(ws: &mut Ws) -> Incoming {
    closing_within(ws, DEADLINE).await
}

/// [`closing`] with its own deadline.
pub(crate) async fn closing_within(ws: &mut Ws, limit: Duration) -> Incoming {
    within(limit, "the server to close the socket", async {
        loop {
            match next_within(ws, limit).await {
                Incoming::Text(_) | Incoming::Binary(_) => {}
                ending => return ending,
            }
        }
    })
    .await
}

/// A V2 `phx_reply`.
pub(crate) fn reply(
    join_ref: Option<&str>,
    msg_ref: &str,
    topic: &str,
    status: &str,
    response: Value,
) -> Value {
    json!([join_ref, msg_ref, topic, "phx_reply", {"status": status, "response": response}])
}

/// Joins `topic` (V2, `join_ref` = `ref`) and returns the reply frame.
pub(crate) async fn join(ws: &mut Ws, join_ref: &str, topic: &str, payload: Value) -> Value {
    send(ws, json!([join_ref, join_ref, topic, "phx_join", payload])).await;
    recv(ws).await
}

/// Sends a heartbeat and asserts the very next frame is its reply: everything the server
/// queued for this socket before the heartbeat has been seen by then.
pub(crate) async fn heartbeat(ws: &mut Ws, msg_ref: &str) {
    send(ws, json!([null, msg_ref, "phoenix", "heartbeat", {}])).await;
    assert_eq!(recv(ws).await, reply(None, msg_ref, "phoenix", "ok", json!({})));
}

fn len(field: &str) -> u8 {
    u8::try_from(field.len()).expect("binary frame fields are at most 255 bytes")
}

/// A V2 binary push from the client (kind 0).
pub(crate) fn client_push(
    join_ref: &str,
    msg_ref: &str,
    topic: &str,
    event: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = vec![0, len(join_ref), len(msg_ref), len(topic), len(event)];
    for field in [join_ref, msg_ref, topic, event] {
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// A V2 binary push from the server to one client (kind 0).
pub(crate) fn server_push(join_ref: &str, topic: &str, event: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0, len(join_ref), len(topic), len(event)];
    for field in [join_ref, topic, event] {
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// A V2 binary reply (kind 1).
pub(crate) fn binary_reply(
    join_ref: &str,
    msg_ref: &str,
    topic: &str,
    status: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = vec![1, len(join_ref), len(msg_ref), len(topic), len(status)];
    for field in [join_ref, msg_ref, topic, status] {
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// A V2 binary broadcast (kind 2).
pub(crate) fn binary_broadcast(topic: &str, event: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![2, len(topic), len(event)];
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// Standard base64 without padding, as the official client encodes its `authToken`.
pub(crate) fn base64_no_pad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[test]
fn base64_matches_known_vectors() {
    assert_eq!(base64_no_pad(b""), "");
    assert_eq!(base64_no_pad(b"f"), "Zg");
    assert_eq!(base64_no_pad(b"fo"), "Zm8");
    assert_eq!(base64_no_pad(b"foo"), "Zm9v");
    assert_eq!(base64_no_pad(b"foob"), "Zm9vYg");
    assert_eq!(base64_no_pad(&[0xfb, 0xff]), "+/8");
}
