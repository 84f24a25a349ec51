//! The socket over a real endpoint and a raw WebSocket client.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{Channels, ConnectInfo, Refused, Socket};
use crate::channel::{Channel, ChannelSocket, Reply};
use crate::serializer::Payload;
use crate::Endpoint;

struct Room;

impl Channel for Room {
    type Info = ();

    async fn join(
        topic: &str,
        payload: Payload,
        _socket: &mut ChannelSocket,
    ) -> Result<(Self, Value), Value> {
        if payload.as_json().and_then(|p| p.get("refuse")).is_some() {
            return Err(json!({"reason": "refused"}));
        }
        Ok((Room, json!({"joined": topic})))
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
            "boom" => panic!("boom in a channel"),
            _ => Reply::error(json!({"reason": "unknown event"})),
        }
    }
}

struct TestSocket;

impl Socket for TestSocket {
    async fn connect(
        &self,
        params: &Map<String, Value>,
        _info: &ConnectInfo,
    ) -> Result<crate::conn::Assigns, Refused> {
        if params.contains_key("deny") {
            return Err(Refused);
        }
        Ok(crate::conn::Assigns::new())
    }

    fn channels(&self) -> Channels {
        Channels::new().channel::<Room>("room:*")
    }
}

crate::router! {
    pub SocketRouter;
    socket "/socket" => TestSocket;
}

async fn start() -> crate::endpoint::RunningEndpoint {
    Endpoint::new(SocketRouter::new()).bind("127.0.0.1:0").start().await.unwrap()
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn client(addr: std::net::SocketAddr) -> Client {
    let url = format!("ws://{addr}/socket/websocket?vsn=2.0.0");
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn send(ws: &mut Client, frame: Value) {
    ws.send(WsMessage::text(frame.to_string())).await.unwrap();
}

async fn recv(ws: &mut Client) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let WsMessage::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn join_push_broadcast_crash_and_leave() {
    let running = start().await;
    let addr = running.local_addr();
    let mut a = client(addr).await;
    let mut b = client(addr).await;

    send(&mut a, json!([null, "1", "phoenix", "heartbeat", {}])).await;
    assert_eq!(
        recv(&mut a).await,
        json!([null, "1", "phoenix", "phx_reply", {"status":"ok","response":{}}])
    );

    send(&mut a, json!(["1", "1", "room:1", "phx_join", {}])).await;
    assert_eq!(
        recv(&mut a).await,
        json!(["1","1","room:1","phx_reply",{"status":"ok","response":{"joined":"room:1"}}])
    );
    send(&mut b, json!(["5", "5", "room:1", "phx_join", {}])).await;
    assert_eq!(recv(&mut b).await[4]["status"], "ok");

    send(&mut a, json!(["1", "2", "room:1", "shout", {"body": "hi"}])).await;
    let mut got = [recv(&mut a).await, recv(&mut a).await];
    got.sort_by_key(|v| v[3].as_str().unwrap().to_owned());
    assert_eq!(got[0], json!(["1","2","room:1","phx_reply",{"status":"ok","response":{}}]));
    assert_eq!(got[1], json!([null,null,"room:1","shout",{"body":"hi"}]));
    assert_eq!(recv(&mut b).await, json!([null,null,"room:1","shout",{"body":"hi"}]));

    send(&mut a, json!(["9", "9", "nope:1", "phx_join", {}])).await;
    assert_eq!(
        recv(&mut a).await,
        json!([null,"9","nope:1","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}])
    );
    send(&mut a, json!(["1", "3", "other:1", "shout", {}])).await;
    assert_eq!(recv(&mut a).await[4]["response"], json!({"reason":"unmatched topic"}));

    send(&mut a, json!(["1", "4", "room:1", "boom", {}])).await;
    assert_eq!(
        recv(&mut a).await,
        json!(["1","1","room:1","phx_error",{"reason":"channel_crash"}])
    );
    // The socket lives on: a heartbeat still answers and a rejoin works.
    send(&mut a, json!([null, "10", "phoenix", "heartbeat", {}])).await;
    assert_eq!(recv(&mut a).await[3], "phx_reply");
    send(&mut a, json!(["11", "11", "room:1", "phx_join", {}])).await;
    assert_eq!(recv(&mut a).await[4]["status"], "ok");

    send(&mut b, json!(["5", "6", "room:1", "phx_leave", {}])).await;
    assert_eq!(
        recv(&mut b).await,
        json!(["5","6","room:1","phx_reply",{"status":"ok","response":{}}])
    );
    assert_eq!(recv(&mut b).await, json!(["5", "5", "room:1", "phx_close", {}]));

    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn refused_connect_is_403() {
    let running = start().await;
    let url = format!("ws://{}/socket/websocket?vsn=2.0.0&deny=1", running.local_addr());
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn longpoll_session_join_and_broadcast() {
    let running = start().await;
    let base = format!("http://{}/socket/longpoll?vsn=2.0.0", running.local_addr());
    let http = reqwest::Client::new();
    let open: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
    assert_eq!(open["status"], 410);
    let token = open["token"].as_str().unwrap().to_owned();

    let join = json!(["1", "1", "room:lp", "phx_join", {}]).to_string();
    let shout = json!(["1", "2", "room:lp", "shout", {"n": 1}]).to_string();
    let posted: Value = http
        .post(format!("{base}&token={token}"))
        .header("content-type", "application/x-ndjson")
        .body(format!("{join}\n{shout}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted, json!({"status": 200}));

    let mut frames = Vec::new();
    while frames.len() < 3 {
        let poll: Value =
            http.get(format!("{base}&token={token}")).send().await.unwrap().json().await.unwrap();
        assert_eq!(poll["status"], 200, "{poll}");
        for m in poll["messages"].as_array().unwrap() {
            frames.push(serde_json::from_str::<Value>(m.as_str().unwrap()).unwrap());
        }
    }
    assert_eq!(
        frames[0],
        json!(["1","1","room:lp","phx_reply",{"status":"ok","response":{"joined":"room:lp"}}])
    );
    assert!(frames.contains(&json!([null,null,"room:lp","shout",{"n":1}])));

    let forged: Value =
        http.get(format!("{base}&token=abc.def")).send().await.unwrap().json().await.unwrap();
    assert_eq!(forged["status"], 410, "a forged token opens a new session");
    assert_ne!(forged["token"], token);
    let gone: Value = http
        .post(format!("{base}&token=abc.def"))
        .body(join)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gone, json!({"status": 410}));

    running.shutdown();
    running.wait().await.unwrap();
}
