//! The Phoenix Channels wire protocol as a raw client sees it: joins, replies, pushes,
//! broadcasts, leaves, heartbeats and the error replies, in the V2 array format, the V1 object
//! format and V2 binary frames. Every frame is compared whole.

mod channel_support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use channel_support::{
    assert_same_frames, binary_broadcast, binary_reply, client_push, connect, connect_v2,
    eventually, heartbeat, join, recv, recv_binary, recv_n, reply, send, send_binary, serve, stop,
    upgrade_status, within, Incoming, DEADLINE,
};
use fawkes::channel::{Channel, ChannelSocket, Reply, StopReason};
use fawkes::serializer::{Payload, Status};
use fawkes::socket::{transport, Channels, ConnectInfo, Refused, Socket};
use serde_json::{json, Map, Value};

/// What the channels saw, for assertions the wire cannot show.
#[derive(Debug, Default)]
struct Probe {
    /// `(topic, join_ref, reason)` for every `terminate`.
    stops: Mutex<Vec<(String, String, StopReason)>>,
}

impl Probe {
    fn stops(&self) -> Vec<(String, String, StopReason)> {
        self.stops.lock().unwrap().clone()
    }
}

/// A channel for every protocol path: its behaviour is chosen by the join payload and the
/// event name.
struct Room {
    probe: Arc<Probe>,
}

impl Channel for Room {
    type Info = ();

    async fn join(
        topic: &str,
        payload: Payload,
        socket: &mut ChannelSocket,
    ) -> Result<(Self, Value), Value> {
        let params = payload.as_json().cloned().unwrap_or(Value::Null);
        if let Some(reason) = params.get("refuse") {
            return Err(json!({"reason": reason}));
        }
        if params.get("crash").is_some() {
            panic!("a join that crashes");
        }
        let probe = socket.get_assign::<Arc<Probe>>().expect("connect assigns the probe").clone();
        Ok((Room { probe }, json!({"joined": topic})))
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        socket: &mut ChannelSocket,
    ) -> Reply {
        match event {
            "echo" => Reply::Ok(payload),
            "push" => {
                socket.push("pushed", payload);
                Reply::NoReply
            }
            "shout" => {
                socket.broadcast("shout", payload);
                Reply::ok(json!({}))
            }
            "inspect" => match payload {
                Payload::Binary(bytes) => Reply::ok(json!({"binary": bytes.to_vec()})),
                Payload::Json(value) => Reply::ok(json!({"json": value})),
            },
            "stop" => Reply::Stop(StopReason::Normal, Some((Status::Ok, payload))),
            "boom" => panic!("a channel that crashes in handle_in"),
            _ => Reply::error(json!({"reason": "unknown event"})),
        }
    }

    async fn terminate(&mut self, reason: &StopReason, socket: &mut ChannelSocket) {
        let stop = (socket.topic().to_owned(), socket.join_ref().to_owned(), reason.clone());
        self.probe.stops.lock().unwrap().push(stop);
    }
}

#[derive(Default)]
struct ProtoSocket {
    probe: Arc<Probe>,
}

impl Socket for ProtoSocket {
    async fn connect(
        &self,
        _params: &Map<String, Value>,
        _info: &ConnectInfo,
    ) -> Result<fawkes::Assigns, Refused> {
        let mut assigns = fawkes::Assigns::new();
        assigns.insert(self.probe.clone());
        Ok(assigns)
    }

    fn channels(&self) -> Channels {
        Channels::new().channel::<Room>("room:*")
    }
}

fawkes::router! {
    /// The socket as an application declares it, with the default transport settings.
    pub ProtoRouter;
    socket "/socket" => ProtoSocket::default();
}

async fn start_default() -> fawkes::endpoint::RunningEndpoint {
    tests::start(fawkes::Endpoint::new(ProtoRouter::new())).await
}

fn joined(join_ref: &str, topic: &str) -> Value {
    reply(Some(join_ref), join_ref, topic, "ok", json!({"joined": topic}))
}

#[tokio::test]
async fn join_reply_push_broadcast_and_leave() {
    let probe = Arc::new(Probe::default());
    let server = serve(transport(ProtoSocket { probe: probe.clone() })).await;
    let mut a = connect_v2(server.local_addr()).await;
    let mut b = connect_v2(server.local_addr()).await;

    assert_eq!(join(&mut a, "1", "room:1", json!({})).await, joined("1", "room:1"));
    assert_eq!(join(&mut b, "4", "room:1", json!({})).await, joined("4", "room:1"));

    send(&mut a, json!(["1", "2", "room:1", "echo", {"body": "hi"}])).await;
    assert_eq!(recv(&mut a).await, reply(Some("1"), "2", "room:1", "ok", json!({"body": "hi"})));

    send(&mut a, json!(["1", "3", "room:1", "push", {"n": 1}])).await;
    assert_eq!(recv(&mut a).await, json!(["1", null, "room:1", "pushed", {"n": 1}]));

    send(&mut a, json!(["1", "4", "room:1", "shout", {"body": "all"}])).await;
    let broadcast = json!([null, null, "room:1", "shout", {"body": "all"}]);
    assert_same_frames(
        recv_n(&mut a, 2).await,
        vec![broadcast.clone(), reply(Some("1"), "4", "room:1", "ok", json!({}))],
    );
    assert_eq!(recv(&mut b).await, broadcast);

    send(&mut a, json!(["1", "5", "room:1", "phx_leave", {}])).await;
    assert_eq!(recv(&mut a).await, reply(Some("1"), "5", "room:1", "ok", json!({})));
    assert_eq!(recv(&mut a).await, json!(["1", "1", "room:1", "phx_close", {}]));
    assert_eq!(probe.stops(), vec![("room:1".to_owned(), "1".to_owned(), StopReason::Left)]);

    // Once left, the topic's broadcasts reach only the client still in it.
    eventually(DEADLINE, "the left channel to unsubscribe", || {
        server.pubsub().subscriber_count("room:1") == 1
    })
    .await;
    server.pubsub().broadcast("room:1", "news", json!({"n": 2}));
    assert_eq!(recv(&mut b).await, json!([null, null, "room:1", "news", {"n": 2}]));
    heartbeat(&mut a, "6").await;

    stop(server).await;
}

#[tokio::test]
async fn a_heartbeat_is_answered_on_the_phoenix_topic() {
    let server = start_default().await;
    let mut ws = connect_v2(server.local_addr()).await;
    send(&mut ws, json!([null, "5", "phoenix", "heartbeat", {}])).await;
    assert_eq!(
        recv(&mut ws).await,
        json!([null, "5", "phoenix", "phx_reply", {"status": "ok", "response": {}}])
    );
    stop(server).await;
}

#[tokio::test]
async fn joining_an_unrouted_topic_is_an_unmatched_topic_error() {
    let server = start_default().await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(
        join(&mut ws, "3", "lobby:1", json!({})).await,
        reply(None, "3", "lobby:1", "error", json!({"reason": "unmatched topic"}))
    );
    // The socket carries on.
    assert_eq!(join(&mut ws, "4", "room:1", json!({})).await, joined("4", "room:1"));
    stop(server).await;
}

/// Phoenix answers a message for a topic the socket has not joined with `encode_ignore`, whose
/// reply has no join ref.
#[tokio::test]
async fn a_push_to_an_unjoined_topic_is_an_unmatched_topic_error() {
    let server = start_default().await;
    let mut ws = connect_v2(server.local_addr()).await;
    send(&mut ws, json!(["7", "8", "room:9", "new_msg", {}])).await;
    assert_eq!(
        recv(&mut ws).await,
        reply(None, "8", "room:9", "error", json!({"reason": "unmatched topic"}))
    );
    stop(server).await;
}

#[tokio::test]
async fn leaving_an_unjoined_topic_is_ok() {
    let server = start_default().await;
    let mut ws = connect_v2(server.local_addr()).await;
    send(&mut ws, json!(["7", "8", "room:9", "phx_leave", {}])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("7"), "8", "room:9", "ok", json!({})));
    // And nothing else: no `phx_close` for a channel that never was.
    heartbeat(&mut ws, "9").await;
    stop(server).await;
}

#[tokio::test]
async fn messages_with_a_stale_join_ref_are_ignored() {
    let server = start_default().await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(join(&mut ws, "1", "room:1", json!({})).await, joined("1", "room:1"));
    send(&mut ws, json!(["1", "2", "room:1", "phx_leave", {}])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("1"), "2", "room:1", "ok", json!({})));
    assert_eq!(recv(&mut ws).await, json!(["1", "1", "room:1", "phx_close", {}]));
    assert_eq!(join(&mut ws, "3", "room:1", json!({})).await, joined("3", "room:1"));

    // A push for the first join gets nothing back; the current join's push is answered, and
    // the channel's mailbox is in order, so a reply to the stale one would have come first.
    send(&mut ws, json!(["1", "4", "room:1", "echo", {"stale": true}])).await;
    send(&mut ws, json!(["3", "5", "room:1", "echo", {"stale": false}])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("3"), "5", "room:1", "ok", json!({"stale": false})));
    // A `null` join_ref is not stale (V1-style clients send none).
    send(&mut ws, json!([null, "6", "room:1", "echo", {}])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("3"), "6", "room:1", "ok", json!({})));
    stop(server).await;
}

/// Phoenix ignores a `phx_leave` whose join_ref is not the current join's ("the client has
/// raced a server close"): no reply, and the current channel stays joined.
#[tokio::test]
async fn a_leave_with_a_stale_join_ref_is_ignored() {
    let server = start_default().await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(join(&mut ws, "1", "room:1", json!({})).await, joined("1", "room:1"));
    send(&mut ws, json!(["0", "2", "room:1", "phx_leave", {}])).await;
    send(&mut ws, json!(["1", "3", "room:1", "echo", {}])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("1"), "3", "room:1", "ok", json!({})));
    stop(server).await;
}

#[tokio::test]
async fn a_duplicate_join_replaces_the_old_channel_and_closes_it_with_its_join_ref() {
    let probe = Arc::new(Probe::default());
    let server = serve(transport(ProtoSocket { probe: probe.clone() })).await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(join(&mut ws, "1", "room:1", json!({})).await, joined("1", "room:1"));

    send(&mut ws, json!(["2", "2", "room:1", "phx_join", {}])).await;
    assert_same_frames(
        recv_n(&mut ws, 2).await,
        vec![joined("2", "room:1"), json!(["1", "1", "room:1", "phx_close", {}])],
    );
    // `phx_close` is sent after `terminate` returns.
    assert_eq!(
        probe.stops(),
        vec![("room:1".to_owned(), "1".to_owned(), StopReason::DuplicateJoin)]
    );

    // Only the new join is left: it answers, and a broadcast arrives once.
    send(&mut ws, json!(["2", "3", "room:1", "echo", {}])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("2"), "3", "room:1", "ok", json!({})));
    eventually(DEADLINE, "the old channel to unsubscribe", || {
        server.pubsub().subscriber_count("room:1") == 1
    })
    .await;
    server.pubsub().broadcast("room:1", "news", json!({}));
    assert_eq!(recv(&mut ws).await, json!([null, null, "room:1", "news", {}]));
    heartbeat(&mut ws, "4").await;
    stop(server).await;
}

#[tokio::test]
async fn past_max_channels_a_join_is_refused() {
    let server = serve(transport(ProtoSocket::default()).max_channels(2)).await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(join(&mut ws, "1", "room:1", json!({})).await, joined("1", "room:1"));
    assert_eq!(join(&mut ws, "2", "room:2", json!({})).await, joined("2", "room:2"));
    assert_eq!(
        join(&mut ws, "3", "room:3", json!({})).await,
        reply(Some("3"), "3", "room:3", "error", json!({"reason": "too many channels joined"}))
    );

    // Rejoining a joined topic replaces a channel rather than adding one.
    send(&mut ws, json!(["4", "4", "room:2", "phx_join", {}])).await;
    assert_same_frames(
        recv_n(&mut ws, 2).await,
        vec![joined("4", "room:2"), json!(["2", "2", "room:2", "phx_close", {}])],
    );

    // Leaving frees a place.
    send(&mut ws, json!(["1", "5", "room:1", "phx_leave", {}])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("1"), "5", "room:1", "ok", json!({})));
    assert_eq!(recv(&mut ws).await, json!(["1", "1", "room:1", "phx_close", {}]));
    assert_eq!(join(&mut ws, "6", "room:3", json!({})).await, joined("6", "room:3"));
    stop(server).await;
}

#[tokio::test]
async fn a_join_refused_by_the_channel_replies_its_error() {
    let server = start_default().await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(
        join(&mut ws, "1", "room:1", json!({"refuse": "unauthorized"})).await,
        reply(Some("1"), "1", "room:1", "error", json!({"reason": "unauthorized"}))
    );
    // Nothing was joined: no `phx_close` follows, and a push is unmatched.
    heartbeat(&mut ws, "2").await;
    send(&mut ws, json!([null, "3", "room:1", "echo", {}])).await;
    assert_eq!(
        recv(&mut ws).await,
        reply(None, "3", "room:1", "error", json!({"reason": "unmatched topic"}))
    );
    assert_eq!(join(&mut ws, "4", "room:1", json!({})).await, joined("4", "room:1"));
    stop(server).await;
}

#[tokio::test]
async fn a_join_that_panics_replies_join_crashed() {
    let server = start_default().await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(
        join(&mut ws, "1", "room:1", json!({"crash": true})).await,
        reply(Some("1"), "1", "room:1", "error", json!({"reason": "join crashed"}))
    );
    heartbeat(&mut ws, "2").await;
    assert_eq!(join(&mut ws, "3", "room:1", json!({})).await, joined("3", "room:1"));
    assert!(server.supervisor().is_running());
    stop(server).await;
}

#[tokio::test]
async fn a_crash_in_handle_in_errors_that_channel_only() {
    let probe = Arc::new(Probe::default());
    let server = serve(transport(ProtoSocket { probe: probe.clone() })).await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(join(&mut ws, "1", "room:1", json!({})).await, joined("1", "room:1"));
    assert_eq!(join(&mut ws, "2", "room:2", json!({})).await, joined("2", "room:2"));

    send(&mut ws, json!(["1", "3", "room:1", "boom", {}])).await;
    assert_eq!(
        recv(&mut ws).await,
        json!(["1", "1", "room:1", "phx_error", {"reason": "channel_crash"}])
    );

    // The other channel still answers and still gets broadcasts.
    send(&mut ws, json!(["2", "4", "room:2", "echo", {"still": "here"}])).await;
    assert_eq!(
        recv(&mut ws).await,
        reply(Some("2"), "4", "room:2", "ok", json!({"still": "here"}))
    );
    server.pubsub().broadcast("room:2", "news", json!({}));
    assert_eq!(recv(&mut ws).await, json!([null, null, "room:2", "news", {}]));

    // The crashed topic can be joined again, as the client does after `phx_error`.
    assert_eq!(join(&mut ws, "5", "room:1", json!({})).await, joined("5", "room:1"));
    send(&mut ws, json!(["5", "6", "room:1", "echo", {}])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("5"), "6", "room:1", "ok", json!({})));

    // A crash skips `terminate`.
    assert!(probe.stops().is_empty(), "{:?}", probe.stops());
    assert!(server.supervisor().is_running());
    stop(server).await;
}

#[tokio::test]
async fn a_channel_that_stops_replies_then_closes() {
    let probe = Arc::new(Probe::default());
    let server = serve(transport(ProtoSocket { probe: probe.clone() })).await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(join(&mut ws, "1", "room:1", json!({})).await, joined("1", "room:1"));
    send(&mut ws, json!(["1", "2", "room:1", "stop", {"bye": true}])).await;
    assert_eq!(recv(&mut ws).await, reply(Some("1"), "2", "room:1", "ok", json!({"bye": true})));
    assert_eq!(recv(&mut ws).await, json!(["1", "1", "room:1", "phx_close", {}]));
    assert_eq!(probe.stops(), vec![("room:1".to_owned(), "1".to_owned(), StopReason::Normal)]);
    // The topic is free again.
    assert_eq!(join(&mut ws, "3", "room:1", json!({})).await, joined("3", "room:1"));
    stop(server).await;
}

#[tokio::test]
async fn closing_the_socket_terminates_its_channels() {
    let probe = Arc::new(Probe::default());
    let server = serve(transport(ProtoSocket { probe: probe.clone() })).await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(join(&mut ws, "1", "room:1", json!({})).await, joined("1", "room:1"));
    assert_eq!(join(&mut ws, "2", "room:2", json!({})).await, joined("2", "room:2"));
    within(DEADLINE, "the client's close", ws.close(None)).await.expect("the close is sent");
    eventually(DEADLINE, "both channels to terminate", || probe.stops().len() == 2).await;
    let mut stops = probe.stops();
    stops.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        stops,
        vec![
            ("room:1".to_owned(), "1".to_owned(), StopReason::SocketClosed),
            ("room:2".to_owned(), "2".to_owned(), StopReason::SocketClosed),
        ]
    );
    eventually(DEADLINE, "the channels to unsubscribe", || {
        server.pubsub().subscriber_count("room:1") + server.pubsub().subscriber_count("room:2") == 0
    })
    .await;
    stop(server).await;
}

#[tokio::test]
async fn extra_trailing_elements_are_tolerated() {
    let server = start_default().await;
    let mut ws = connect_v2(server.local_addr()).await;
    send(&mut ws, json!(["1", "1", "room:1", "phx_join", {}, "extra", 42])).await;
    assert_eq!(recv(&mut ws).await, joined("1", "room:1"));
    stop(server).await;
}

#[tokio::test]
async fn the_v1_serializer_speaks_json_objects() {
    let server = start_default().await;
    let addr = server.local_addr();
    // `vsn` absent means 1.0.0.
    for query in ["vsn=1.0.0", ""] {
        let mut ws = connect(addr, query).await;
        let mut v2 = connect_v2(addr).await;
        assert_eq!(join(&mut v2, "9", "room:1", json!({})).await, joined("9", "room:1"));

        send(&mut ws, json!({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}))
            .await;
        assert_eq!(
            recv(&mut ws).await,
            json!({"topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": "1"}),
            "{query}"
        );
        send(&mut ws, json!({"topic": "room:1", "event": "phx_join", "payload": {}, "ref": "2"}))
            .await;
        assert_eq!(
            recv(&mut ws).await,
            json!({"topic": "room:1", "event": "phx_reply", "payload": {"status": "ok", "response": {"joined": "room:1"}}, "ref": "2"})
        );
        send(&mut ws, json!({"topic": "room:1", "event": "echo", "payload": {"a": 1}, "ref": "3"}))
            .await;
        assert_eq!(
            recv(&mut ws).await,
            json!({"topic": "room:1", "event": "phx_reply", "payload": {"status": "ok", "response": {"a": 1}}, "ref": "3"})
        );
        send(&mut ws, json!({"topic": "room:1", "event": "push", "payload": {"b": 2}, "ref": "4"}))
            .await;
        assert_eq!(
            recv(&mut ws).await,
            json!({"topic": "room:1", "event": "pushed", "payload": {"b": 2}, "ref": null})
        );

        // One broadcast, each client in its own format.
        server.pubsub().broadcast("room:1", "news", json!({"c": 3}));
        assert_eq!(
            recv(&mut ws).await,
            json!({"topic": "room:1", "event": "news", "payload": {"c": 3}, "ref": null})
        );
        assert_eq!(recv(&mut v2).await, json!([null, null, "room:1", "news", {"c": 3}]));

        send(&mut ws, json!({"topic": "room:1", "event": "phx_leave", "payload": {}, "ref": "5"}))
            .await;
        assert_eq!(
            recv(&mut ws).await,
            json!({"topic": "room:1", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": "5"})
        );
        assert_eq!(
            recv(&mut ws).await,
            json!({"topic": "room:1", "event": "phx_close", "payload": {}, "ref": "2"})
        );
        send(&mut ws, json!({"topic": "lobby", "event": "phx_join", "payload": {}, "ref": "6"}))
            .await;
        assert_eq!(
            recv(&mut ws).await,
            json!({"topic": "lobby", "event": "phx_reply", "payload": {"status": "error", "response": {"reason": "unmatched topic"}}, "ref": "6"})
        );
    }
    stop(server).await;
}

#[tokio::test]
async fn an_unknown_serializer_version_is_refused_with_400() {
    let server = start_default().await;
    let addr = server.local_addr();
    let status = upgrade_status(channel_support::request(addr, "vsn=3.0.0")).await;
    assert_eq!(status, 400);
    // The same socket accepts the versions it knows.
    assert_eq!(upgrade_status(channel_support::request(addr, "vsn=2.0.0")).await, 101);
    stop(server).await;
}

#[tokio::test]
async fn binary_frames_round_trip_with_the_v2_byte_layout() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut a = connect_v2(addr).await;
    let mut b = connect_v2(addr).await;
    // A multi-byte topic: lengths in binary frames count UTF-8 bytes.
    let topic = "room:ü";
    assert_eq!(join(&mut a, "1", topic, json!({})).await, joined("1", topic));
    assert_eq!(join(&mut b, "7", topic, json!({})).await, joined("7", topic));
    let bytes: &[u8] = &[0, 1, 2, 0xfe, 0xff, b'{'];

    // A kind 0 push reaches `handle_in` as raw bytes.
    send_binary(&mut a, client_push("1", "2", topic, "inspect", bytes)).await;
    assert_eq!(recv(&mut a).await, reply(Some("1"), "2", topic, "ok", json!({"binary": bytes})));

    // A binary reply is a kind 1 frame.
    send_binary(&mut a, client_push("1", "3", topic, "echo", bytes)).await;
    assert_eq!(recv_binary(&mut a).await, binary_reply("1", "3", topic, "ok", bytes));

    // A binary push to one client is a kind 0 frame without a ref.
    send_binary(&mut a, client_push("1", "4", topic, "push", bytes)).await;
    assert_eq!(
        recv_binary(&mut a).await,
        channel_support::server_push("1", topic, "pushed", bytes)
    );

    // A binary broadcast is a kind 2 frame, the same bytes for everyone.
    send_binary(&mut a, client_push("1", "5", topic, "shout", bytes)).await;
    let broadcast = binary_broadcast(topic, "shout", bytes);
    let frames = [channel_support::next(&mut a).await, channel_support::next(&mut a).await];
    let expected = [
        Incoming::Binary(broadcast.clone()),
        Incoming::Text(reply(Some("1"), "5", topic, "ok", json!({}))),
    ];
    assert!(
        frames == expected || frames == [expected[1].clone(), expected[0].clone()],
        "{frames:?}"
    );
    assert_eq!(recv_binary(&mut b).await, broadcast);

    // An external binary broadcast too.
    server.pubsub().broadcast(topic, "raw", Bytes::from_static(b"\x00\x01"));
    assert_eq!(recv_binary(&mut b).await, binary_broadcast(topic, "raw", b"\x00\x01"));
    stop(server).await;
}

/// Large frames leave in fragments (so the socket's write buffer stays small); clients see one
/// whole message, text or binary, with nothing else in the middle.
#[tokio::test]
async fn large_frames_arrive_whole() {
    let server = start_default().await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(join(&mut ws, "1", "room:big", json!({})).await, joined("1", "room:big"));
    let text = "x".repeat(300 * 1024);
    let bytes: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    server.pubsub().broadcast("room:big", "big", json!({"text": text}));
    server.pubsub().broadcast("room:big", "small", json!({}));
    server.pubsub().broadcast("room:big", "raw", Bytes::from(bytes.clone()));
    assert_eq!(recv(&mut ws).await, json!([null, null, "room:big", "big", {"text": text}]));
    assert_eq!(recv(&mut ws).await, json!([null, null, "room:big", "small", {}]));
    assert_eq!(recv_binary(&mut ws).await, binary_broadcast("room:big", "raw", &bytes));
    stop(server).await;
}
