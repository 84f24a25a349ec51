//! A socket's life around its frames: who may connect (origin, auth token), what closes it
//! (heartbeat timeout, a `disconnect` broadcast, shutdown), and what reaches a joined channel
//! from outside the client (`handle_info`, intercepted broadcasts, pubsub).

mod channel_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use channel_support::{
    base64_no_pad, closing, connect, connect_v2, heartbeat, join, open, recv, recv_n, reply,
    request, send, serve, stop, upgrade_status, within, Incoming, DEADLINE,
};
use fawkes::channel::{Channel, ChannelHandle, ChannelSocket, Reply};
use fawkes::serializer::Payload;
use fawkes::socket::{transport, Channels, CheckOrigin, ConnectInfo, Refused, Socket};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

/// The only token `connect` accepts when one is offered.
const TOKEN: &str = "user:42?>>";

/// Handles of the joined channels, by `topic/join_ref`, for tasks outside the client.
#[derive(Debug, Default)]
struct Handles(Mutex<HashMap<String, ChannelHandle<String>>>);

impl Handles {
    fn get(&self, topic: &str, join_ref: &str) -> ChannelHandle<String> {
        let handles = self.0.lock().unwrap();
        handles.get(&format!("{topic}/{join_ref}")).cloned().expect("the channel joined")
    }
}

/// The token the client offered, as `connect` saw it.
#[derive(Debug, Clone)]
struct AuthToken(Option<String>);

struct Room;

impl Channel for Room {
    type Info = String;

    async fn join(
        topic: &str,
        _: Payload,
        socket: &mut ChannelSocket,
    ) -> Result<(Self, Value), Value> {
        let handles = socket.get_assign::<Arc<Handles>>().expect("connect assigns handles");
        let key = format!("{topic}/{}", socket.join_ref());
        handles.0.lock().unwrap().insert(key, socket.handle());
        let token = socket.get_assign::<AuthToken>().and_then(|t| t.0.clone());
        Ok((Room, json!({"token": token, "socket_id": socket.socket_id()})))
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        socket: &mut ChannelSocket,
    ) -> Reply {
        match event {
            "shout" => {
                socket.broadcast("shout", payload);
                Reply::ok(json!({}))
            }
            "tell_others" => {
                socket.broadcast_from("news", payload);
                Reply::ok(json!({}))
            }
            _ => Reply::error(json!({"reason": "unknown event"})),
        }
    }

    async fn handle_info(&mut self, text: String, socket: &mut ChannelSocket) {
        socket.push("info", json!({ "text": text }));
    }

    fn intercepts() -> &'static [&'static str] {
        &["shout"]
    }

    async fn handle_out(&mut self, event: &str, payload: Payload, socket: &mut ChannelSocket) {
        let mut payload = payload.as_json().cloned().unwrap_or_default();
        payload["seen_by"] = json!(socket.join_ref());
        socket.push(event, payload);
    }
}

#[derive(Default)]
struct LifeSocket {
    handles: Arc<Handles>,
}

impl Socket for LifeSocket {
    async fn connect(
        &self,
        params: &Map<String, Value>,
        info: &ConnectInfo,
    ) -> Result<fawkes::Assigns, Refused> {
        if info.auth_token.as_deref().is_some_and(|t| t != TOKEN) {
            return Err(Refused);
        }
        let mut assigns = fawkes::Assigns::new();
        assigns.insert(self.handles.clone());
        assigns.insert(AuthToken(info.auth_token.clone()));
        if let Some(user) = params.get("user").and_then(Value::as_str) {
            assigns.insert(user.to_owned());
        }
        Ok(assigns)
    }

    fn id(&self, assigns: &fawkes::Assigns) -> Option<String> {
        assigns.get::<String>().map(|user| format!("users_socket:{user}"))
    }

    fn channels(&self) -> Channels {
        Channels::new().channel::<Room>("room:*")
    }
}

fn joined(join_ref: &str, topic: &str) -> Value {
    reply(Some(join_ref), join_ref, topic, "ok", json!({"token": null, "socket_id": null}))
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_heartbeat_timeout_and_a_beating_one_stays() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let server = serve(transport(LifeSocket::default()).heartbeat_timeout(TIMEOUT)).await;
    let addr = server.local_addr();
    let connected = Instant::now();
    let mut silent = connect_v2(addr).await;
    let mut beating = connect_v2(addr).await;

    // The beating client sends a heartbeat every third of the timeout, for four timeouts.
    let beater = tokio::spawn(async move {
        let mut beats = tokio::time::interval(TIMEOUT / 3);
        for n in 0..12 {
            beats.tick().await;
            heartbeat(&mut beating, &n.to_string()).await;
        }
        beating
    });

    // The official client reconnects after any close code but 1000.
    assert_eq!(closing(&mut silent).await, Incoming::Close(Some(1001)));
    let waited = connected.elapsed();
    assert!(waited >= TIMEOUT - Duration::from_millis(50), "closed after {waited:?}");
    assert!(waited < TIMEOUT * 10, "closed only after {waited:?}");

    let mut beating = within(DEADLINE, "the heartbeats", beater).await.expect("heartbeats pass");
    assert!(connected.elapsed() > TIMEOUT * 3);
    heartbeat(&mut beating, "last").await;
    stop(server).await;
}

#[tokio::test]
async fn a_disconnect_broadcast_to_the_socket_id_closes_that_socket_with_1001() {
    let server = serve(transport(LifeSocket::default())).await;
    let addr = server.local_addr();
    let mut user_42 = connect(addr, "vsn=2.0.0&user=42").await;
    let mut user_42_again = connect(addr, "vsn=2.0.0&user=42").await;
    let mut user_7 = connect(addr, "vsn=2.0.0&user=7").await;
    for ws in [&mut user_42, &mut user_42_again, &mut user_7] {
        // Answered only once the socket runs, so it has subscribed to its id.
        heartbeat(ws, "1").await;
    }
    assert_eq!(
        join(&mut user_42, "2", "room:1", json!({})).await,
        reply(
            Some("2"),
            "2",
            "room:1",
            "ok",
            json!({"token": null, "socket_id": "users_socket:42"})
        )
    );

    server.pubsub().broadcast("users_socket:42", "disconnect", json!({}));
    assert_eq!(closing(&mut user_42).await, Incoming::Close(Some(1001)));
    assert_eq!(closing(&mut user_42_again).await, Incoming::Close(Some(1001)));
    heartbeat(&mut user_7, "3").await;

    // Other events on the id topic do not close anything.
    server.pubsub().broadcast("users_socket:7", "hello", json!({}));
    heartbeat(&mut user_7, "4").await;
    stop(server).await;
}

#[tokio::test]
async fn handle_info_from_a_background_task_is_pushed_to_the_client() {
    let socket = LifeSocket::default();
    let handles = socket.handles.clone();
    let server = serve(transport(socket)).await;
    let mut ws = connect_v2(server.local_addr()).await;
    assert_eq!(join(&mut ws, "1", "room:1", json!({})).await, joined("1", "room:1"));

    let handle = handles.get("room:1", "1");
    assert!(handle.is_alive());
    let task = tokio::spawn(async move { handle.send("from a task".to_owned()) });
    within(DEADLINE, "the sending task", task).await.unwrap().expect("the channel is running");
    assert_eq!(recv(&mut ws).await, json!(["1", null, "room:1", "info", {"text": "from a task"}]));

    // Once the channel has left, the handle says so and gives the message back.
    send(&mut ws, json!(["1", "2", "room:1", "phx_leave", {}])).await;
    assert_eq!(
        recv_n(&mut ws, 2).await,
        vec![
            reply(Some("1"), "2", "room:1", "ok", json!({})),
            json!(["1", "1", "room:1", "phx_close", {}]),
        ]
    );
    let handle = handles.get("room:1", "1");
    channel_support::eventually(DEADLINE, "the handle to report the channel gone", || {
        !handle.is_alive()
    })
    .await;
    assert_eq!(handle.send("too late".to_owned()), Err("too late".to_owned()));
    heartbeat(&mut ws, "3").await;
    stop(server).await;
}

#[tokio::test]
async fn intercepted_events_go_through_handle_out() {
    let server = serve(transport(LifeSocket::default())).await;
    let addr = server.local_addr();
    let mut a = connect_v2(addr).await;
    let mut b = connect_v2(addr).await;
    assert_eq!(join(&mut a, "1", "room:1", json!({})).await, joined("1", "room:1"));
    assert_eq!(join(&mut b, "5", "room:1", json!({})).await, joined("5", "room:1"));

    // Each subscriber's `handle_out` pushes its own version, with its own join_ref.
    send(&mut a, json!(["1", "2", "room:1", "shout", {"body": "hi"}])).await;
    channel_support::assert_same_frames(
        recv_n(&mut a, 2).await,
        vec![
            reply(Some("1"), "2", "room:1", "ok", json!({})),
            json!(["1", null, "room:1", "shout", {"body": "hi", "seen_by": "1"}]),
        ],
    );
    assert_eq!(
        recv(&mut b).await,
        json!(["5", null, "room:1", "shout", {"body": "hi", "seen_by": "5"}])
    );

    // The same from outside the channel; events not intercepted stay plain broadcasts.
    server.pubsub().broadcast("room:1", "shout", json!({"n": 1}));
    server.pubsub().broadcast("room:1", "news", json!({"n": 2}));
    for (ws, join_ref) in [(&mut a, "1"), (&mut b, "5")] {
        channel_support::assert_same_frames(
            recv_n(ws, 2).await,
            vec![
                json!([join_ref, null, "room:1", "shout", {"n": 1, "seen_by": join_ref}]),
                json!([null, null, "room:1", "news", {"n": 2}]),
            ],
        );
    }
    stop(server).await;
}

#[tokio::test]
async fn broadcast_from_skips_the_sender() {
    let server = serve(transport(LifeSocket::default())).await;
    let addr = server.local_addr();
    let mut a = connect_v2(addr).await;
    let mut b = connect_v2(addr).await;
    assert_eq!(join(&mut a, "1", "room:1", json!({})).await, joined("1", "room:1"));
    assert_eq!(join(&mut b, "5", "room:1", json!({})).await, joined("5", "room:1"));

    send(&mut a, json!(["1", "2", "room:1", "tell_others", {"body": "psst"}])).await;
    // A broadcast to the sender would be queued before the reply, which follows `handle_in`.
    assert_eq!(recv(&mut a).await, reply(Some("1"), "2", "room:1", "ok", json!({})));
    assert_eq!(recv(&mut b).await, json!([null, null, "room:1", "news", {"body": "psst"}]));
    heartbeat(&mut a, "3").await;
    stop(server).await;
}

#[tokio::test]
async fn pubsub_broadcasts_from_outside_reach_joined_clients() {
    let server = serve(transport(LifeSocket::default())).await;
    let addr = server.local_addr();
    let mut v2 = connect_v2(addr).await;
    let mut v1 = connect(addr, "vsn=1.0.0").await;
    let mut elsewhere = connect_v2(addr).await;
    assert_eq!(join(&mut v2, "1", "room:1", json!({})).await, joined("1", "room:1"));
    send(&mut v1, json!({"topic": "room:1", "event": "phx_join", "payload": {}, "ref": "1"})).await;
    assert_eq!(recv(&mut v1).await["payload"]["status"], "ok");
    assert_eq!(join(&mut elsewhere, "1", "room:2", json!({})).await, joined("1", "room:2"));

    let pubsub = server.pubsub();
    pubsub.broadcast("room:1", "news", json!({"via": "broadcast"}));
    pubsub.local_broadcast("room:1", "news", json!({"via": "local"}));
    pubsub.direct_broadcast(pubsub.node(), "room:1", "news", json!({"via": "direct"}));
    // Addressed to another node: nobody here gets it.
    pubsub.direct_broadcast("some-other-node", "room:1", "news", json!({"via": "elsewhere"}));
    pubsub.broadcast("room:1", "news", json!({"via": "last"}));

    for via in ["broadcast", "local", "direct", "last"] {
        assert_eq!(recv(&mut v2).await, json!([null, null, "room:1", "news", {"via": via}]));
        assert_eq!(
            recv(&mut v1).await,
            json!({"topic": "room:1", "event": "news", "payload": {"via": via}, "ref": null})
        );
    }
    // The other topic's client got none of it.
    heartbeat(&mut elsewhere, "2").await;
    stop(server).await;
}

/// The upgrade status for each `Origin` (or none).
async fn origin_statuses(check: Option<CheckOrigin>, origins: &[Option<&str>]) -> Vec<u16> {
    let socket = transport(LifeSocket::default());
    let server = serve(match check {
        Some(check) => socket.check_origin(check),
        None => socket,
    })
    .await;
    let mut statuses = Vec::new();
    for origin in origins {
        let mut req = request(server.local_addr(), "vsn=2.0.0");
        if let Some(origin) = origin {
            let origin = origin.replace("{addr}", &server.local_addr().to_string());
            req.headers_mut().insert("origin", origin.parse().unwrap());
        }
        statuses.push(upgrade_status(req).await);
    }
    stop(server).await;
    statuses
}

#[tokio::test]
async fn by_default_only_the_requests_own_host_may_connect() {
    let statuses = origin_statuses(
        None,
        &[
            None,
            Some("http://{addr}"),
            Some("https://{addr}"),
            Some("http://127.0.0.1"),
            Some("http://127.0.0.1:1"),
            Some("ftp://{addr}"),
            Some("http://evil.example"),
            Some("http://127.0.0.1.evil.example"),
            Some("null"),
        ],
    )
    .await;
    // The same host on another port, or another scheme than the web's, is another origin.
    assert_eq!(statuses, [101, 101, 101, 403, 403, 403, 403, 403, 403]);
}

#[tokio::test]
async fn an_origin_list_allows_only_its_origins() {
    let list = CheckOrigin::list([
        "https://app.example.com",
        "//*.trusted.example",
        "//other.example:8443",
    ]);
    let statuses = origin_statuses(
        Some(list),
        &[
            Some("https://app.example.com"),
            Some("http://app.example.com"),
            Some("https://api.trusted.example"),
            Some("https://trusted.example"),
            Some("http://other.example:8443"),
            Some("http://other.example"),
            Some("http://{addr}"),
            None,
        ],
    )
    .await;
    assert_eq!(statuses, [101, 403, 101, 403, 101, 403, 403, 101]);
}

#[tokio::test]
async fn with_origin_checks_off_any_origin_may_connect() {
    let statuses =
        origin_statuses(Some(CheckOrigin::Off), &[Some("http://evil.example"), Some("null"), None])
            .await;
    assert_eq!(statuses, [101, 101, 101]);
}

fn with_auth_token(addr: std::net::SocketAddr, token: &str) -> channel_support::Request {
    let mut req = request(addr, "vsn=2.0.0");
    let protocols = format!("phoenix, base64url.bearer.phx.{}", base64_no_pad(token.as_bytes()));
    req.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    req
}

#[tokio::test]
async fn the_auth_token_subprotocol_reaches_connect() {
    let server = serve(transport(LifeSocket::default())).await;
    let addr = server.local_addr();
    // Its standard base64 has a `+` and would need padding: both must be handled.
    assert_eq!(base64_no_pad(TOKEN.as_bytes()), "dXNlcjo0Mj8+Pg");

    let (mut ws, resp) = open(with_auth_token(addr, TOKEN)).await.expect("the token is accepted");
    assert_eq!(resp.status(), 101);
    let protocols: Vec<_> = resp.headers().get_all("sec-websocket-protocol").iter().collect();
    assert_eq!(protocols, ["phoenix"]);
    assert_eq!(
        join(&mut ws, "1", "room:1", json!({})).await,
        reply(Some("1"), "1", "room:1", "ok", json!({"token": TOKEN, "socket_id": null}))
    );

    // A token `connect` refuses is a 403 before the upgrade.
    assert_eq!(upgrade_status(with_auth_token(addr, "not the token")).await, 403);

    // Without the subprotocols, no subprotocol is answered and `connect` sees no token.
    let (mut plain, resp) = open(request(addr, "vsn=2.0.0")).await.expect("no token is fine");
    assert!(resp.headers().get("sec-websocket-protocol").is_none());
    assert_eq!(join(&mut plain, "1", "room:1", json!({})).await, joined("1", "room:1"));
    stop(server).await;
}

#[tokio::test]
async fn shutdown_closes_open_sockets_with_1012() {
    let server = serve(transport(LifeSocket::default())).await;
    let addr = server.local_addr();
    let mut a = connect_v2(addr).await;
    let mut b = connect(addr, "vsn=1.0.0").await;
    let mut idle = connect_v2(addr).await;
    assert_eq!(join(&mut a, "1", "room:1", json!({})).await, joined("1", "room:1"));
    send(&mut b, json!({"topic": "room:1", "event": "phx_join", "payload": {}, "ref": "1"})).await;
    assert_eq!(recv(&mut b).await["payload"]["status"], "ok");
    heartbeat(&mut idle, "1").await;

    let started = Instant::now();
    server.shutdown();
    for ws in [&mut a, &mut b, &mut idle] {
        assert_eq!(closing(ws).await, Incoming::Close(Some(1012)));
    }
    within(DEADLINE, "the endpoint to stop", server.wait()).await.expect("a clean stop");
    assert!(started.elapsed() < Duration::from_secs(5), "stopping took {:?}", started.elapsed());
    assert!(!server.supervisor().is_running());

    // Nothing is listening any more.
    match open(request(addr, "vsn=2.0.0")).await {
        Err(_) => {}
        Ok(_) => panic!("connected after shutdown"),
    }
}
