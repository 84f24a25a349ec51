//! Clients that send what the protocol does not allow, or do not read what they are sent. Each
//! one is answered with the protocol's error or closed with the right code, and none of them
//! disturbs a well-behaved client on the same endpoint or the endpoint's supervisor.

mod channel_support;

use std::time::Duration;

use channel_support::{
    client_push, closing, closing_within, connect, connect_v2, eventually, heartbeat, join, next,
    recv, reply, send, send_binary, send_text, serve, stop, Incoming, Ws, DEADLINE,
};
use fawkes::channel::{Channel, ChannelSocket, Reply};
use fawkes::endpoint::RunningEndpoint;
use fawkes::serializer::Payload;
use fawkes::socket::transport;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// Knows `ping` and `crash`; refuses the rest with an error reply naming it.
struct Room;

impl Channel for Room {
    type Info = ();

    async fn join(_: &str, _: Payload, _: &mut ChannelSocket) -> Result<(Self, Value), Value> {
        Ok((Room, json!({})))
    }

    async fn handle_in(&mut self, event: &str, _: Payload, _: &mut ChannelSocket) -> Reply {
        match event {
            "ping" => Reply::ok(json!({"pong": true})),
            "crash" => panic!("asked to crash"),
            other => Reply::error(json!({"reason": "unknown event", "event": other})),
        }
    }
}

/// Everyone in, `room:*` to `Room`.
type RoomSocket = channel_support::OpenSocket<Room>;

const MAX_FRAME: usize = 1024;

/// A client joined to `room:watch` that must see every broadcast sent there, whatever the
/// other clients do.
struct Watcher {
    ws: Ws,
    sent: u64,
}

impl Watcher {
    async fn join(server: &RunningEndpoint) -> Self {
        let mut ws = connect_v2(server.local_addr()).await;
        assert_eq!(
            join(&mut ws, "1", "room:watch", json!({})).await,
            reply(Some("1"), "1", "room:watch", "ok", json!({}))
        );
        Self { ws, sent: 0 }
    }

    /// Broadcasts to the watched topic and checks the watcher gets it, and that the endpoint
    /// is still up.
    async fn still_served(&mut self, server: &RunningEndpoint, after: &str) {
        self.sent += 1;
        server.pubsub().broadcast("room:watch", "tick", json!({"n": self.sent}));
        assert_eq!(
            recv(&mut self.ws).await,
            json!([null, null, "room:watch", "tick", {"n": self.sent}]),
            "the watcher's broadcast after {after}"
        );
        assert!(server.supervisor().is_running(), "the supervisor stopped after {after}");
    }
}

/// One offending input and how the server must answer it.
struct Case {
    what: &'static str,
    query: &'static str,
    frame: Message,
    close_code: u16,
}

fn text(what: &'static str, frame: &str) -> Case {
    Case { what, query: "vsn=2.0.0", frame: Message::text(frame.to_owned()), close_code: 1007 }
}

fn binary(what: &'static str, frame: Vec<u8>) -> Case {
    Case { what, query: "vsn=2.0.0", frame: Message::binary(frame), close_code: 1007 }
}

async fn check_cases(cases: Vec<Case>) {
    let server = serve(transport(RoomSocket::new()).max_frame_size(MAX_FRAME)).await;
    let mut watcher = Watcher::join(&server).await;
    let mut failures = Vec::new();
    for case in cases {
        let mut ws = connect(server.local_addr(), case.query).await;
        // A joined socket, so a close cannot be mistaken for a refusal to start.
        if case.query.contains("vsn=1") {
            send(
                &mut ws,
                json!({"topic": "room:1", "event": "phx_join", "payload": {}, "ref": "1"}),
            )
            .await;
            assert_eq!(
                recv(&mut ws).await,
                json!({"topic": "room:1", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": "1"})
            );
        } else {
            let joined = join(&mut ws, "1", "room:1", json!({})).await;
            assert_eq!(joined, reply(Some("1"), "1", "room:1", "ok", json!({})));
        }
        ws.send(case.frame).await.expect("the offending frame is sent");
        let ending = closing(&mut ws).await;
        if ending != Incoming::Close(Some(case.close_code)) {
            failures.push(format!(
                "{}: expected close code {}, got {ending:?}",
                case.what, case.close_code
            ));
        }
        watcher.still_served(&server, case.what).await;
    }
    stop(server).await;
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn malformed_text_frames_close_the_socket_with_1007() {
    check_cases(vec![
        text("text that is not JSON", "not json"),
        text("a JSON object on V2", r#"{"topic":"room:1","event":"ping","payload":{},"ref":"2"}"#),
        text("a JSON number", "42"),
        text("an array of four", r#"["1","2","room:1","ping"]"#),
        text("an empty array", "[]"),
        text("a topic that is a number", r#"["1","2",7,"ping",{}]"#),
        text("an event that is null", r#"["1","2","room:1",null,{}]"#),
        text("a join_ref that is an object", r#"[{},"2","room:1","ping",{}]"#),
        Case {
            what: "a JSON array on V1",
            query: "vsn=1.0.0",
            frame: Message::text(r#"["1","2","room:1","ping",{}]"#),
            close_code: 1007,
        },
        Case {
            what: "a V1 object without a topic",
            query: "vsn=1.0.0",
            frame: Message::text(r#"{"event":"ping","payload":{},"ref":"2"}"#),
            close_code: 1007,
        },
    ])
    .await;
}

#[tokio::test]
async fn malformed_binary_frames_close_the_socket_with_1007() {
    let mut past_the_end = client_push("1", "2", "room:1", "ping", b"");
    past_the_end[4] = 200;
    let mut not_utf8 = client_push("1", "2", "room:1", "ping", b"");
    not_utf8[5 + 2] = 0xff;
    check_cases(vec![
        binary("a frame shorter than its header", vec![0, 1]),
        binary("an empty frame", vec![]),
        binary("field lengths past the end", past_the_end),
        binary("a reply (kind 1) from the client", {
            let mut frame = client_push("1", "2", "room:1", "ping", b"");
            frame[0] = 1;
            frame
        }),
        binary("an unknown kind", {
            let mut frame = client_push("1", "2", "room:1", "ping", b"");
            frame[0] = 9;
            frame
        }),
        binary("a topic that is not UTF-8", not_utf8),
        Case {
            what: "a binary frame on V1",
            query: "vsn=1.0.0",
            frame: Message::binary(client_push("1", "2", "room:1", "ping", b"")),
            close_code: 1007,
        },
    ])
    .await;
}

/// RFC 6455 §7.4.1: 1007 is for "data within a message that was not consistent with the type
/// of the message (e.g., non-UTF-8 data within a text message)".
#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_the_socket_with_1007() {
    let invalid = Frame::message(vec![b'[', 0xff, 0xfe, b']'], OpCode::Data(Data::Text), true);
    check_cases(vec![Case {
        what: "a text frame that is not UTF-8",
        query: "vsn=2.0.0",
        frame: Message::Frame(invalid),
        close_code: 1007,
    }])
    .await;
}

/// A client that starts a message and never finishes it, pinging to look alive, holds the
/// fragments it sent: pings do not count as the heartbeat.
#[tokio::test]
async fn pings_between_the_fragments_of_an_unfinished_message_do_not_keep_a_socket_open() {
    let timeout = Duration::from_millis(600);
    let server = serve(transport(RoomSocket::new()).heartbeat_timeout(timeout)).await;
    let mut ws = connect_v2(server.local_addr()).await;
    let first =
        Frame::message(b"[\"1\",\"1\",\"room:1\",".to_vec(), OpCode::Data(Data::Text), false);
    ws.send(Message::Frame(first)).await.unwrap();
    let started = tokio::time::Instant::now();
    let closed = loop {
        if ws.send(Message::Ping(vec![1].into())).await.is_err() {
            break true;
        }
        if started.elapsed() > timeout * 6 {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(closed, "the socket was still open after {:?}", started.elapsed());
    assert!(started.elapsed() >= timeout - Duration::from_millis(50));
    stop(server).await;
}

/// Unfinished messages are held against the transport's budget: past it, the socket whose
/// read goes over is closed, and the others finish theirs.
#[tokio::test]
async fn unfinished_messages_hold_no_more_than_the_incoming_budget() {
    let server = serve(transport(RoomSocket::new()).max_incoming_bytes(64 * 1024)).await;
    let message =
        json!(["1", "1", "phoenix", "heartbeat", {"pad": "x".repeat(40_000)}]).to_string();
    let (start, end) = message.split_at(message.len() - 2);
    let first = || Frame::message(start.as_bytes().to_vec(), OpCode::Data(Data::Text), false);
    let mut holding = connect_v2(server.local_addr()).await;
    holding.send(Message::Frame(first())).await.unwrap();
    // Give the server time to read it before the second one comes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = connect_v2(server.local_addr()).await;
    over.send(Message::Frame(first())).await.unwrap();
    let ending = closing_within(&mut over, DEADLINE).await;
    assert!(matches!(ending, Incoming::Close(_) | Incoming::Ended(_)), "{ending:?}");
    // The first socket finishes its message and is answered.
    let last = Frame::message(end.as_bytes().to_vec(), OpCode::Data(Data::Continue), true);
    holding.send(Message::Frame(last)).await.unwrap();
    assert_eq!(recv(&mut holding).await, reply(Some("1"), "1", "phoenix", "ok", json!({})));
    stop(server).await;
}

/// RFC 6455 §7.4.1: 1002 is for "a protocol error".
#[tokio::test]
async fn a_frame_that_breaks_the_protocol_closes_the_socket_with_1002() {
    let mut reserved_bits = Frame::message(b"[]".to_vec(), OpCode::Data(Data::Text), true);
    reserved_bits.header_mut().rsv2 = true;
    let unknown_opcode = Frame::message(b"[]".to_vec(), OpCode::Data(Data::Reserved(3)), true);
    let continuation = Frame::message(b"[]".to_vec(), OpCode::Data(Data::Continue), true);
    let case = |what, frame| Case {
        what,
        query: "vsn=2.0.0",
        frame: Message::Frame(frame),
        close_code: 1002,
    };
    check_cases(vec![
        case("reserved bits set", reserved_bits),
        case("a reserved opcode", unknown_opcode),
        case("a continuation with nothing to continue", continuation),
    ])
    .await;
}

#[tokio::test]
async fn an_oversized_frame_closes_the_socket_with_1009() {
    let big = json!(["1", "2", "room:1", "ping", {"pad": "x".repeat(4 * 1024)}]).to_string();
    check_cases(
        vec![text("a 4 KiB frame over a 1 KiB limit", &big)]
            .into_iter()
            .map(|c| Case { close_code: 1009, ..c })
            .collect(),
    )
    .await;
}

#[tokio::test]
async fn a_frame_just_under_the_limit_is_served() {
    let server = serve(transport(RoomSocket::new()).max_frame_size(MAX_FRAME)).await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(
        join(&mut ws, "1", "room:1", json!({})).await,
        reply(Some("1"), "1", "room:1", "ok", json!({}))
    );
    let skeleton = json!(["1", "2", "room:1", "ping", {"pad": ""}]).to_string();
    let frame =
        json!(["1", "2", "room:1", "ping", {"pad": "x".repeat(MAX_FRAME - skeleton.len())}]);
    assert_eq!(frame.to_string().len(), MAX_FRAME);
    send(&mut ws, frame).await;
    assert_eq!(recv(&mut ws).await, reply(Some("1"), "2", "room:1", "ok", json!({"pong": true})));
    stop(server).await;
}

#[tokio::test]
async fn an_unknown_event_is_answered_by_the_channel() {
    let server = serve(transport(RoomSocket::new())).await;
    let mut watcher = Watcher::join(&server).await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(
        join(&mut ws, "1", "room:1", json!({})).await,
        reply(Some("1"), "1", "room:1", "ok", json!({}))
    );
    send(&mut ws, json!(["1", "2", "room:1", "no_such_event", {}])).await;
    assert_eq!(
        recv(&mut ws).await,
        reply(
            Some("1"),
            "2",
            "room:1",
            "error",
            json!({"reason": "unknown event", "event": "no_such_event"})
        )
    );
    // Neither the socket nor the channel is harmed.
    heartbeat(&mut ws, "3").await;
    send(&mut ws, json!(["1", "4", "room:1", "ping", {}])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("1"), "4", "room:1", "ok", json!({"pong": true})));
    watcher.still_served(&server, "an unknown event").await;
    stop(server).await;
}

/// How many broadcasts, and how big: together far more than the kernel buffers between a
/// client that does not read and the server.
const FIREHOSE_MESSAGES: u64 = 300;
const FIREHOSE_BYTES: usize = 64 * 1024;

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_while_a_reader_gets_everything() {
    let server = serve(transport(RoomSocket::new()).outbound_limit(16)).await;
    let addr = server.local_addr();
    let mut reader = connect_v2(addr).await;
    let mut stalled = connect_v2(addr).await;
    for ws in [&mut reader, &mut stalled] {
        assert_eq!(
            join(ws, "1", "room:firehose", json!({})).await,
            reply(Some("1"), "1", "room:firehose", "ok", json!({}))
        );
    }
    assert_eq!(server.pubsub().subscriber_count("room:firehose"), 2);

    // In step with the reader, so only the stalled client falls behind.
    let pad = "x".repeat(FIREHOSE_BYTES);
    for n in 0..FIREHOSE_MESSAGES {
        server.pubsub().broadcast("room:firehose", "data", json!({"n": n, "pad": pad}));
        let got = recv(&mut reader).await;
        assert_eq!(got[4]["n"], n, "the reader's broadcast {n}");
        assert_eq!(got, json!([null, null, "room:firehose", "data", {"n": n, "pad": pad}]));
    }

    // The stalled socket goes (its channel with it), without the test reading a byte of it;
    // what reached it before is still readable, then the connection ends.
    assert_closed_for_not_reading(&server, &mut stalled, "room:firehose", 1, DEADLINE * 2).await;

    // The reader carries on.
    heartbeat(&mut reader, "2").await;
    server.pubsub().broadcast("room:firehose", "after", json!({}));
    assert_eq!(recv(&mut reader).await, json!([null, null, "room:firehose", "after", {}]));
    assert!(server.supervisor().is_running());
    let started = tokio::time::Instant::now();
    stop(server).await;
    assert!(started.elapsed() < Duration::from_secs(5), "stopping took {:?}", started.elapsed());
}

/// Waits up to `within` for the stalled client's socket to leave `topic` (`left` subscribers
/// staying), then checks that its connection ends as a slow consumer's does.
async fn assert_closed_for_not_reading(
    server: &RunningEndpoint,
    stalled: &mut Ws,
    topic: &str,
    left: usize,
    within: Duration,
) {
    eventually(within, "the stalled socket to be closed", || {
        server.pubsub().subscriber_count(topic) == left
    })
    .await;
    let ending = closing_within(stalled, DEADLINE * 2).await;
    assert!(
        matches!(ending, Incoming::Close(Some(1008)) | Incoming::Ended(_)),
        "the stalled client ended with {ending:?}"
    );
}

/// Few frames but large ones: the byte limit closes a client the frame limit would keep.
#[tokio::test]
async fn a_client_that_does_not_read_is_closed_at_the_byte_limit_too() {
    let server = serve(transport(RoomSocket::new()).outbound_bytes_limit(1024 * 1024)).await;
    let addr = server.local_addr();
    let mut reader = connect_v2(addr).await;
    let mut stalled = connect_v2(addr).await;
    for ws in [&mut reader, &mut stalled] {
        assert_eq!(
            join(ws, "1", "room:big", json!({})).await,
            reply(Some("1"), "1", "room:big", "ok", json!({}))
        );
    }
    // 300 frames, far under the frame limit (1,024), but 19 MiB in all.
    let pad = "x".repeat(FIREHOSE_BYTES);
    for n in 0..FIREHOSE_MESSAGES {
        server.pubsub().broadcast("room:big", "data", json!({"n": n, "pad": pad}));
        assert_eq!(recv(&mut reader).await[4]["n"], n, "the reader's broadcast {n}");
    }
    // Closed for what it holds, well before the write timeout (10 s) would close it for
    // not reading.
    let within = Duration::from_secs(3);
    assert_closed_for_not_reading(&server, &mut stalled, "room:big", 1, within).await;
    heartbeat(&mut reader, "2").await;
    stop(server).await;
}

/// A burst queues many frames at once, so the socket writes several in a row to a client
/// whose buffers are already full.
#[tokio::test]
async fn a_burst_past_the_outbound_limit_closes_a_client_that_does_not_read() {
    let server = serve(transport(RoomSocket::new()).outbound_limit(16)).await;
    let mut watcher = Watcher::join(&server).await;
    let mut stalled = connect_v2(server.local_addr()).await;
    assert_eq!(
        join(&mut stalled, "1", "room:burst", json!({})).await,
        reply(Some("1"), "1", "room:burst", "ok", json!({}))
    );

    // No await between broadcasts: the socket task sees them as one batch.
    let pad = "x".repeat(1024 * 1024);
    for n in 0..64 {
        server.pubsub().broadcast("room:burst", "data", json!({"n": n, "pad": pad}));
    }
    eventually(DEADLINE * 2, "the stalled socket to be closed", || {
        server.pubsub().subscriber_count("room:burst") == 0
    })
    .await;
    let ending = closing_within(&mut stalled, DEADLINE * 2).await;
    assert!(
        matches!(ending, Incoming::Close(Some(1008)) | Incoming::Ended(_)),
        "the stalled client ended with {ending:?}"
    );
    watcher.still_served(&server, "a stalled client").await;
    stop(server).await;
}

/// The next connection joins the same topic as if nothing had happened.
#[tokio::test]
async fn a_socket_closed_for_bad_input_leaves_nothing_behind() {
    let server = serve(transport(RoomSocket::new())).await;
    let mut bad = connect_v2(server.local_addr()).await;
    assert_eq!(
        join(&mut bad, "1", "room:1", json!({})).await,
        reply(Some("1"), "1", "room:1", "ok", json!({}))
    );
    send_text(&mut bad, "garbage").await;
    assert_eq!(closing(&mut bad).await, Incoming::Close(Some(1007)));
    eventually(DEADLINE, "the closed socket's channel to unsubscribe", || {
        server.pubsub().subscriber_count("room:1") == 0
    })
    .await;
    let mut good = connect_v2(server.local_addr()).await;
    assert_eq!(
        join(&mut good, "1", "room:1", json!({})).await,
        reply(Some("1"), "1", "room:1", "ok", json!({}))
    );
    send_binary(&mut good, client_push("1", "2", "room:1", "ping", b"")).await;
    assert_eq!(
        next(&mut good).await,
        Incoming::Text(reply(Some("1"), "2", "room:1", "ok", json!({"pong": true})))
    );
    stop(server).await;
}

/// Joins `topic` again and again (refs from 3 on) until it is accepted: room is made when
/// channels that went have stopped.
async fn join_once_room_is_made(ws: &mut Ws, topic: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    for attempt in 3.. {
        let join_ref = attempt.to_string();
        let got = join(ws, &join_ref, topic, json!({})).await;
        if got == reply(Some(&join_ref), &join_ref, topic, "ok", json!({})) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no room was made: {got}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_channels_of_all_sockets_together_are_bounded() {
    let server = serve(transport(RoomSocket::new()).max_channels_total(3)).await;
    let mut first = connect_v2(server.local_addr()).await;
    let mut second = connect_v2(server.local_addr()).await;
    for topic in ["room:1", "room:2"] {
        assert_eq!(
            join(&mut first, "1", topic, json!({})).await,
            reply(Some("1"), "1", topic, "ok", json!({}))
        );
    }
    assert_eq!(
        join(&mut second, "1", "room:3", json!({})).await,
        reply(Some("1"), "1", "room:3", "ok", json!({}))
    );
    // Each socket is far under its own limit (100); the server is at its total.
    assert_eq!(
        join(&mut second, "2", "room:4", json!({})).await,
        reply(
            Some("2"),
            "2",
            "room:4",
            "error",
            json!({"reason": "too many channels on this server"})
        )
    );
    // A socket that goes makes room, once its channels have stopped.
    drop(first);
    join_once_room_is_made(&mut second, "room:4").await;
    stop(server).await;
}

#[tokio::test]
async fn a_deeply_nested_connect_query_is_refused_on_both_transports() {
    let server = serve(transport(RoomSocket::new())).await;
    let mut watcher = Watcher::join(&server).await;
    let deep = format!("vsn=2.0.0&a{}=1", "[b]".repeat(20_000));
    let status =
        channel_support::upgrade_status(channel_support::request(server.local_addr(), &deep)).await;
    assert_eq!(status, 400, "websocket");
    watcher.still_served(&server, "a deep websocket query").await;
    let resp = tests::http1_client()
        .get(format!("{}/socket/longpoll?{deep}", server.url()))
        .send()
        .await
        .unwrap();
    // LongPoll answers in its body, as Phoenix's does.
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], 400, "longpoll");
    watcher.still_served(&server, "a deep longpoll query").await;
    stop(server).await;
}

#[tokio::test]
async fn reused_join_refs_and_crash_rejoin_storms_leave_no_channel_behind() {
    let server = serve(transport(RoomSocket::new())).await;
    let mut ws = connect_v2(server.local_addr()).await;
    let topic = "room:dup";
    assert_eq!(
        join(&mut ws, "1", topic, json!({})).await,
        reply(Some("1"), "1", topic, "ok", json!({}))
    );
    // The same join ref again: the first join is closed, the second one replaces it.
    send(&mut ws, json!(["1", "2", topic, "phx_join", {}])).await;
    let mut frames = vec![recv(&mut ws).await, recv(&mut ws).await];
    frames.sort_by_key(ToString::to_string);
    assert_eq!(
        frames,
        vec![
            json!(["1", "1", topic, "phx_close", {}]),
            reply(Some("1"), "2", topic, "ok", json!({}))
        ]
    );
    // Crash and rejoin at once, with the same ref, many times over.
    for i in 0..50 {
        send(&mut ws, json!(["1", format!("c{i}"), topic, "crash", {}])).await;
        send(&mut ws, json!(["1", format!("j{i}"), topic, "phx_join", {}])).await;
    }
    // The socket still answers on the topic, through exactly one channel.
    send(&mut ws, json!(["1", "last", topic, "ping", {}])).await;
    tests::within(DEADLINE, "the last ping's reply", async {
        while recv(&mut ws).await != reply(Some("1"), "last", topic, "ok", json!({"pong": true})) {}
    })
    .await;
    assert_eq!(server.pubsub().subscriber_count(topic), 1);
    ws.close(None).await.unwrap();
    drop(ws);
    eventually(DEADLINE, "every channel of the closed socket to stop", || {
        server.pubsub().subscriber_count(topic) == 0
            && server.supervisor().stats().temporary_children == 0
    })
    .await;
    stop(server).await;
}

#[tokio::test]
async fn websockets_count_against_the_connection_limit() {
    let router = fawkes::router::Builder::new()
        .forward("/socket", "/socket", Vec::new(), transport(RoomSocket::new()))
        .build();
    let server = tests::start(fawkes::Endpoint::new(router).max_connections(2)).await;
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let mut ws = connect_v2(server.local_addr()).await;
        assert_eq!(
            join(&mut ws, "1", "room:1", json!({})).await,
            reply(Some("1"), "1", "room:1", "ok", json!({}))
        );
        sockets.push(ws);
    }
    // Both slots are held by live sockets, which are never closed to make room.
    let resp = tests::http1_client().get(format!("{}/socket/nope", server.url())).send().await;
    assert_eq!(resp.unwrap().status(), 503);
    for ws in &mut sockets {
        send_binary(ws, client_push("1", "2", "room:1", "ping", b"")).await;
        assert_eq!(
            next(ws).await,
            Incoming::Text(reply(Some("1"), "2", "room:1", "ok", json!({"pong": true})))
        );
    }
    // A closed socket gives its slot back.
    let mut ws = sockets.pop().unwrap();
    ws.close(None).await.unwrap();
    drop(ws);
    tests::eventually_async(DEADLINE, "a slot to free up", || async {
        let resp = tests::http1_client().get(format!("{}/socket/nope", server.url())).send().await;
        resp.is_ok_and(|r| r.status() == 404)
    })
    .await;
    stop(server).await;
}

#[tokio::test]
async fn longpoll_posts_are_bounded_like_frames_and_sessions_are_capped() {
    let server = serve(
        transport(RoomSocket::new())
            .max_frame_size(MAX_FRAME)
            .max_longpoll_sessions(2)
            .longpoll_window(Duration::from_millis(300)),
    )
    .await;
    let http = tests::http1_client();
    let base = format!("{}/socket/longpoll?vsn=2.0.0", server.url());
    let open = || async { http.get(&base).send().await.unwrap() };
    let first: Value = open().await.json().await.unwrap();
    assert_eq!(first["status"], 410);
    let token = first["token"].as_str().unwrap().to_owned();

    // A batch of well-formed messages, larger than one frame may be: refused whole.
    let line = json!(["1", "1", "room:1", "ping", {"pad": "x".repeat(MAX_FRAME / 2)}]).to_string();
    let batch = vec![line.as_str(); 20].join("\n");
    let posted: Value = http
        .post(format!("{base}&token={token}"))
        .body(batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["status"], 413);

    // Two sessions fit; a third is turned away in a way the official client retries.
    let second: Value = open().await.json().await.unwrap();
    assert_eq!(second["status"], 410);
    let refused = open().await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.json::<Value>().await.unwrap()["status"], 500);
    // Sessions nobody polls end, and make room.
    tests::eventually_async(DEADLINE, "an unpolled session to end", || async {
        open().await.status() == 200
    })
    .await;
    stop(server).await;
}

/// A LongPoll client's requests to a server's `/socket/longpoll`, answers as JSON.
struct LongPoll {
    http: reqwest::Client,
    base: String,
}

impl LongPoll {
    fn at(server: &RunningEndpoint) -> Self {
        let base = format!("{}/socket/longpoll?vsn=2.0.0", server.url());
        Self { http: tests::http1_client(), base }
    }

    /// Polls the session of `token`, or opens one.
    async fn get(&self, token: Option<&str>) -> Value {
        let url = match token {
            Some(token) => format!("{}&token={token}", self.base),
            None => self.base.clone(),
        };
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// Opens a session and joins `topic` on it; returns its token.
    async fn join(&self, topic: &str) -> String {
        let opened = self.get(None).await;
        let token = opened["token"].as_str().unwrap().to_owned();
        let join = json!(["1", "1", topic, "phx_join", {}]).to_string();
        let url = format!("{}&token={token}", self.base);
        let posted: Value =
            self.http.post(url).body(join).send().await.unwrap().json().await.unwrap();
        assert_eq!(posted["status"], 200);
        token
    }
}

/// Sessions nobody polls hold what is sent to them: together they may hold the buffer limit,
/// each frame counted once however many hold it, and past it the sessions a new frame cannot
/// go to are closed.
#[tokio::test]
async fn longpoll_sessions_that_are_not_polled_hold_no_more_than_the_buffer_limit() {
    const PAD: usize = 90_000;
    let server = serve(transport(RoomSocket::new()).longpoll_buffer_limit(2 * PAD + PAD / 2)).await;
    let lp = LongPoll::at(&server);
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(lp.join("room:lp").await);
    }
    eventually(DEADLINE, "three sessions in the room", || {
        server.pubsub().subscriber_count("room:lp") == 3
    })
    .await;
    // Five distinct frames of 90 KB to three sessions: 1.35 MB if each session kept its own
    // copies, 450 KB counted once; the budget takes two, and the third closes all three.
    let pad = "x".repeat(PAD);
    for n in 0..5 {
        server.pubsub().broadcast("room:lp", "data", json!({"n": n, "pad": pad}));
    }
    eventually(DEADLINE, "the sessions to be closed", || {
        server.pubsub().subscriber_count("room:lp") == 0
    })
    .await;
    for token in &tokens {
        // Closed sessions are gone, with what they held: the official client reconnects and
        // joins again.
        assert_eq!(lp.get(Some(token)).await["status"], 410);
    }
    // The budget is free again: a new session gets what is sent.
    let token = lp.join("room:lp").await;
    eventually(DEADLINE, "the new session in the room", || {
        server.pubsub().subscriber_count("room:lp") == 1
    })
    .await;
    server.pubsub().broadcast("room:lp", "data", json!({"n": 9, "pad": pad}));
    let texts = lp.get(Some(&token)).await["messages"].to_string();
    assert!(texts.contains(r#"\"n\":9"#), "{}", &texts[..200.min(texts.len())]);
    stop(server).await;
}

#[tokio::test]
async fn a_longpoll_preflight_names_only_allowed_origins_and_the_clients_headers() {
    let server = serve(transport(RoomSocket::new())).await;
    let http = tests::http1_client();
    let url = format!("{}/socket/longpoll?vsn=2.0.0", server.url());
    let preflight = |origin: String| {
        http.request(http::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, x-anything-at-all")
            .send()
    };
    let own = format!("http://{}", server.local_addr());
    let resp = preflight(own.clone()).await.unwrap();
    let headers = resp.headers();
    assert_eq!(headers["access-control-allow-origin"], own.as_str());
    assert_eq!(
        headers["access-control-allow-headers"],
        "accept, content-type, x-phoenix-authtoken"
    );
    let resp = preflight("http://evil.example".to_owned()).await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], 403);
    stop(server).await;
}

#[tokio::test]
async fn one_client_holds_no_more_than_its_sockets_and_channels() {
    // Loopback plays the proxy: the client is the address `X-Forwarded-For` ends with.
    let proxies = fawkes::security::TrustedProxies::parse("127.0.0.1").unwrap();
    let socket = transport(RoomSocket::new())
        .max_sockets_per_client(2)
        .max_channels_per_client(3)
        .trusted_proxies(proxies);
    let server = serve(socket).await;
    let addr = server.local_addr();
    let as_client = |forwarded: &str| {
        let mut req = channel_support::request(addr, "vsn=2.0.0");
        req.headers_mut().insert("x-forwarded-for", forwarded.parse().unwrap());
        req
    };
    let (mut a1, _) = channel_support::open(as_client("203.0.113.1")).await.unwrap();
    let (mut a2, _) = channel_support::open(as_client("203.0.113.1")).await.unwrap();
    assert_eq!(channel_support::upgrade_status(as_client("203.0.113.1")).await, 429);
    // What the client writes itself is left of what the proxy appends: it changes nothing.
    assert_eq!(channel_support::upgrade_status(as_client("198.51.100.7, 203.0.113.1")).await, 429);
    // LongPoll sessions count with WebSockets; the official client retries on the body's 500.
    let resp = tests::http1_client()
        .get(format!("{}/socket/longpoll?vsn=2.0.0", server.url()))
        .header("x-forwarded-for", "203.0.113.1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], 500);
    // Another client is counted apart.
    let (mut b, _) = channel_support::open(as_client("203.0.113.2")).await.unwrap();

    // Channels count over all of a client's sockets.
    for (first, topic) in [(true, "room:1"), (true, "room:2"), (false, "room:3")] {
        let ws = if first { &mut a1 } else { &mut a2 };
        assert_eq!(
            join(ws, "1", topic, json!({})).await,
            reply(Some("1"), "1", topic, "ok", json!({}))
        );
    }
    assert_eq!(
        join(&mut a2, "2", "room:4", json!({})).await,
        reply(
            Some("2"),
            "2",
            "room:4",
            "error",
            json!({"reason": "too many channels for this client"})
        )
    );
    assert_eq!(
        join(&mut b, "1", "room:4", json!({})).await,
        reply(Some("1"), "1", "room:4", "ok", json!({}))
    );
    // A channel that leaves makes room for the client's next join.
    send(&mut a1, json!(["1", "3", "room:1", "phx_leave", {}])).await;
    join_once_room_is_made(&mut a2, "room:5").await;
    // A socket that ends gives its place back.
    drop(a2);
    tests::eventually_async(DEADLINE, "the closed socket's place to come back", || async {
        channel_support::upgrade_status(as_client("203.0.113.1")).await == 101
    })
    .await;
    stop(server).await;
}

/// One session waits with one poll at a time: a newer poll answers the older one at once, so
/// a client cannot hold many of the endpoint's connections waiting on one session.
#[tokio::test]
async fn a_newer_longpoll_poll_answers_the_older_one() {
    let server = serve(transport(RoomSocket::new()).longpoll_window(Duration::from_secs(30))).await;
    let lp = LongPoll::at(&server);
    let token = lp.join("room:1").await;
    // The join's reply is waiting: take it, so the next polls find nothing.
    let joined = lp.get(Some(&token)).await;
    assert_eq!(joined["status"], 200, "{joined}");
    let older = tokio::spawn({
        let (http, url) = (lp.http.clone(), format!("{}&token={token}", lp.base));
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!older.is_finished(), "a poll with nothing to take waits");
    let newer = tokio::spawn({
        let (http, url) = (lp.http.clone(), format!("{}&token={token}", lp.base));
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    });
    let answered = tests::within(DEADLINE, "the older poll", older).await.unwrap();
    assert_eq!(answered["status"], 204, "{answered}");
    // The newer one waits, and gets what comes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!newer.is_finished());
    let ping = json!(["1", "2", "room:1", "ping", {}]).to_string();
    let url = format!("{}&token={token}", lp.base);
    let posted: Value = lp.http.post(url).body(ping).send().await.unwrap().json().await.unwrap();
    assert_eq!(posted["status"], 200);
    let got = tests::within(DEADLINE, "the newer poll", newer).await.unwrap();
    assert_eq!(got["status"], 200, "{got}");
    assert!(got["messages"].to_string().contains("pong"), "{got}");
    stop(server).await;
}
