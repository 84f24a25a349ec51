//! Typed payloads over a real WebSocket: a channel decodes what a client pushes with
//! `Payload::decode` / `Payload::cast`, and a payload that does not decode or breaks a rule is
//! answered with an error reply naming the fields, in the shape controllers answer 422 with.

mod channel_support;

use channel_support::{client_push, connect_v2, join, recv, reply, send, send_binary, serve, stop};
use fawkes::prelude::*;
use fawkes::socket::transport;
use serde::Deserialize;
use serde_json::{json, Value};
use validator::Validate;

#[derive(Deserialize, Validate)]
struct NewMsg {
    #[validate(length(min = 1, max = 20))]
    body: String,
    room_id: u64,
    #[serde(default)]
    author: Option<Author>,
}

#[derive(Deserialize, Validate)]
struct Author {
    name: String,
}

struct Room;

impl Room {
    /// The typed handler: `?` turns a payload error into the error reply.
    fn new_msg(&self, payload: &Payload) -> Result<Reply, Reply> {
        let msg: NewMsg = payload.cast()?;
        let author = msg.author.map(|a| a.name);
        Ok(Reply::ok(json!({ "room_id": msg.room_id, "body": msg.body, "author": author })))
    }
}

impl Channel for Room {
    type Info = ();

    async fn join(_: &str, _: Payload, _: &mut ChannelSocket) -> Result<(Self, Value), Value> {
        Ok((Room, json!({})))
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        socket: &mut ChannelSocket,
    ) -> Reply {
        match event {
            "new_msg" => self.new_msg(&payload).unwrap_or_else(|refused| refused),
            "limited" => match socket.rate_limit(&LIMITED) {
                Ok(()) => Reply::ok(json!({})),
                Err(wait) => {
                    Reply::error(json!({ "retry_after": fawkes::security::retry_after_secs(wait) }))
                }
            },
            "wrong_handle" => {
                // The channel's Info is (): a handle for other messages is a bug, caught here.
                let _ = socket.handle::<u32>();
                Reply::ok(json!({}))
            }
            "after" => {
                let handle = socket.handle();
                Reply::ok(json!({ "sent": handle.send(()).is_ok() }))
            }
            "echo_binary" => {
                // Pushed to the client and replied in binary, for ChannelTest below.
                socket.push("binary_echo", payload.clone());
                Reply::Ok(payload)
            }
            "count" => match payload.decode::<Vec<u32>>() {
                Ok(numbers) => Reply::ok(json!({ "sum": numbers.iter().sum::<u32>() })),
                Err(err) => err.into(),
            },
            _ => Reply::error(json!({ "reason": "unknown event" })),
        }
    }
}

/// What the `limited` event counts: 2 a minute a client, over all of its sockets.
static LIMITED: std::sync::LazyLock<fawkes::security::RateLimit> = std::sync::LazyLock::new(|| {
    fawkes::security::rate_limit(2, std::time::Duration::from_secs(60))
});

/// Everyone in, `room:*` to `Room`.
type RoomSocket = channel_support::OpenSocket<Room>;

#[tokio::test]
async fn payloads_decode_into_types_and_bad_ones_get_the_fields_named() {
    let server = serve(transport(RoomSocket::new())).await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(
        join(&mut ws, "1", "room:1", json!({})).await,
        reply(Some("1"), "1", "room:1", "ok", json!({}))
    );
    let cases = [
        // Decoded, a number sent as a string included.
        (
            json!({ "body": "hi", "room_id": "7", "author": { "name": "ann" } }),
            "ok",
            json!({ "room_id": 7, "body": "hi", "author": "ann" }),
        ),
        // A rule broken: the rule's message, the field's name.
        (
            json!({ "body": "", "room_id": 7 }),
            "error",
            json!({ "errors": { "body": ["should be at least 1 character(s)"] } }),
        ),
        // A field of the wrong type, and a missing one: named, nested ones by their path.
        (
            json!({ "body": "hi", "room_id": "seven" }),
            "error",
            json!({ "errors": { "room_id": ["is invalid"] } }),
        ),
        (
            json!({ "body": "hi", "room_id": 1, "author": {} }),
            "error",
            json!({ "errors": { "author": { "name": ["can't be blank"] } } }),
        ),
        // Not an object at all.
        (json!("hello"), "error", json!({ "errors": { "payload": ["is invalid"] } })),
    ];
    for (n, (payload, status, response)) in cases.into_iter().enumerate() {
        let msg_ref = (n + 2).to_string();
        send(&mut ws, json!(["1", msg_ref, "room:1", "new_msg", payload])).await;
        assert_eq!(recv(&mut ws).await, reply(Some("1"), &msg_ref, "room:1", status, response));
    }

    // A payload that is not an object decodes into what reads it.
    send(&mut ws, json!(["1", "20", "room:1", "count", [1, 2, 3]])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("1"), "20", "room:1", "ok", json!({ "sum": 6 })));

    // A handle of the channel's own Info type sends; one of another type is a crash.
    send(&mut ws, json!(["1", "30", "room:1", "after", {}])).await;
    assert_eq!(
        recv(&mut ws).await,
        reply(Some("1"), "30", "room:1", "ok", json!({ "sent": true }))
    );
    send(&mut ws, json!(["1", "31", "room:1", "wrong_handle", {}])).await;
    assert_eq!(
        recv(&mut ws).await,
        json!(["1", "1", "room:1", "phx_error", { "reason": "channel_crash" }])
    );
    assert_eq!(
        join(&mut ws, "2", "room:1", json!({})).await,
        reply(Some("2"), "2", "room:1", "ok", json!({}))
    );

    // A binary payload is not JSON.
    send_binary(&mut ws, client_push("2", "21", "room:1", "count", b"\x01\x02")).await;
    assert_eq!(
        recv(&mut ws).await,
        reply(
            Some("2"),
            "21",
            "room:1",
            "error",
            json!({ "errors": { "payload": ["must be JSON"] } })
        )
    );
    stop(server).await;
}

/// `ChannelTest` sees binary frames with their topic and event, so a refutation of an event
/// that did arrive in binary fails instead of passing unseen.
#[tokio::test]
async fn channel_test_sees_binary_frames_by_topic_and_event() {
    use fawkes::test::ChannelTest;
    use std::time::Duration;

    let mut socket = ChannelTest::connect(RoomSocket::new(), json!({})).await.unwrap();
    socket.join("room:1", json!({})).await.unwrap();
    socket.pubsub().broadcast("room:1", "blob", bytes::Bytes::from_static(b"\x00\x01"));
    socket.assert_broadcast("room:1", "blob", json!({ "binary": [0, 1] })).await;

    // A binary push from the channel: found by its event, and its reply by its ref.
    let msg_ref = socket.push_binary("room:1", "echo_binary", bytes::Bytes::from_static(b"hi"));
    socket.assert_push("room:1", "binary_echo", json!({ "binary": [104, 105] })).await;
    socket.assert_reply(&msg_ref, "ok", json!({ "binary": [104, 105] })).await;

    socket.push_binary("room:1", "echo_binary", bytes::Bytes::from_static(b"!"));
    let refuted = tokio::spawn(async move {
        socket.refute_event("room:1", "binary_echo", Duration::from_millis(300)).await;
    });
    let err = refuted.await.expect_err("a binary push of the refuted event fails the test");
    assert!(err.is_panic());
}

/// The endpoint's telemetry counts what this socket did, exactly: its figures are its own,
/// whatever other tests in this binary do, and `/metrics` would show the same.
#[tokio::test]
async fn the_endpoint_counts_its_sockets_joins_and_pushes_exactly() {
    let server = serve(transport(RoomSocket::new())).await;
    let telemetry = server.telemetry().clone();
    let before = telemetry.snapshot();
    assert_eq!((before.sockets, before.channels, before.pushes), (0, 0, 0));

    let mut ws = connect_v2(server.local_addr()).await;
    join(&mut ws, "1", "room:1", json!({})).await;
    send(&mut ws, json!(["1", "2", "room:1", "count", [1, 2]])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("1"), "2", "room:1", "ok", json!({ "sum": 3 })));
    let now = telemetry.snapshot();
    assert_eq!((now.sockets, now.channels), (1, 1));
    assert_eq!(now.pushes, 2, "the join's reply and the push's");

    let text = telemetry.render();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
            .to_owned()
    };
    assert!(line(
        r#"fawkes_socket_connected_total{transport="websocket",vsn="2.0.0",result="ok"}"#
    )
    .ends_with(" 1"));
    assert!(line(r#"fawkes_channel_joined_total{channel="room:*",result="ok"}"#).ends_with(" 1"));
    assert!(line(r#"fawkes_channel_handled_in_duration_seconds_count{channel="room:*"}"#)
        .ends_with(" 1"));

    drop(ws);
    channel_support::eventually(
        channel_support::DEADLINE,
        "the socket and its channel to close",
        || {
            let after = telemetry.snapshot();
            after.sockets == 0 && after.channels == 0
        },
    )
    .await;
    stop(server).await;
}

/// Frames far larger than a socket's 1 KiB read buffer still arrive whole (in many reads),
/// and the socket answers the next one as usual.
#[tokio::test]
async fn frames_larger_than_the_read_buffer_arrive_whole() {
    let server = serve(transport(RoomSocket::new())).await;
    let mut ws = connect_v2(server.local_addr()).await;
    join(&mut ws, "1", "room:1", json!({})).await;
    let numbers: Vec<u32> = (0..60_000).map(|i| i % 10).collect();
    let sum: u32 = numbers.iter().sum();
    send(&mut ws, json!(["1", "2", "room:1", "count", numbers])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("1"), "2", "room:1", "ok", json!({ "sum": sum })));
    send(&mut ws, json!(["1", "3", "room:1", "count", [1, 2]])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("1"), "3", "room:1", "ok", json!({ "sum": 3 })));
    stop(server).await;
}

#[tokio::test]
async fn a_channel_counts_its_clients_events_against_a_rate_limit_shared_by_its_sockets() {
    let server = serve(transport(RoomSocket::new())).await;
    let mut first = connect_v2(server.local_addr()).await;
    let joined = join(&mut first, "1", "room:1", json!({})).await;
    assert_eq!(joined, reply(Some("1"), "1", "room:1", "ok", json!({})));
    for msg_ref in ["2", "3"] {
        send(&mut first, json!(["1", msg_ref, "room:1", "limited", {}])).await;
        assert_eq!(recv(&mut first).await, reply(Some("1"), msg_ref, "room:1", "ok", json!({})));
    }
    send(&mut first, json!(["1", "4", "room:1", "limited", {}])).await;
    let refused = recv(&mut first).await;
    assert_eq!(refused[4]["status"], "error", "{refused}");
    assert!(refused[4]["response"]["retry_after"].as_u64().is_some_and(|s| s > 0), "{refused}");
    // Another socket of the same client (the same address), in another topic: still over.
    let mut second = connect_v2(server.local_addr()).await;
    let joined = join(&mut second, "1", "room:2", json!({})).await;
    assert_eq!(joined, reply(Some("1"), "1", "room:2", "ok", json!({})));
    send(&mut second, json!(["1", "2", "room:2", "limited", {}])).await;
    assert_eq!(recv(&mut second).await[4]["status"], "error");
    // Events that do not count still pass.
    send(&mut second, json!(["1", "3", "room:2", "count", [1]])).await;
    assert_eq!(recv(&mut second).await, reply(Some("1"), "3", "room:2", "ok", json!({ "sum": 1 })));
    stop(server).await;
}
