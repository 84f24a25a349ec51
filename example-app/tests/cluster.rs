//! Several example-app processes sharing one `redis-server`, each with its own clients, as
//! replicas behind a load balancer: messages cross nodes, the "online" list is the same
//! everywhere, a killed node's users leave after the down period, a stopped node's at once, and
//! a Redis restart loses nothing published after the reconnect.

mod app_process;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use app_process::App;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tests::RedisServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Short enough for a test, long enough for a loaded machine's heartbeats (every 100 ms).
const DOWN_PERIOD: Duration = Duration::from_millis(3000);
const WAIT: Duration = Duration::from_secs(20);

fn node(name: &str, redis: &RedisServer) -> App {
    let url = redis.url();
    let down = DOWN_PERIOD.as_millis().to_string();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("NODE_NAME", name),
        ("PRESENCE_DOWN_PERIOD_MS", down.as_str()),
        ("PRESENCE_HEARTBEAT_MS", "100"),
    ];
    App::start_with(&format!("cluster-{name}"), 0, &env, false)
}

/// A Phoenix client on one node, joined to `room:lobby`, keeping the presence list the way
/// the JS `Presence` class does (state, then diffs merged by `phx_ref`).
struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    user: String,
    presence: BTreeMap<String, Vec<Value>>,
    messages: Vec<Value>,
    next_ref: u64,
}

impl Client {
    async fn join(app: &App, user: &str) -> Self {
        let url = format!("ws://{}/socket/websocket?vsn=2.0.0&user={user}", app.addr);
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connected in time")
            .expect("the upgrade succeeds");
        let mut client = Self {
            ws,
            user: user.to_owned(),
            presence: BTreeMap::new(),
            messages: Vec::new(),
            next_ref: 1,
        };
        client.send("phx_join", json!({})).await;
        let reply = client.until("the join reply", |_, frame| frame[3] == "phx_reply").await;
        assert_eq!(reply[4]["status"], "ok", "{reply}");
        client
    }

    async fn send(&mut self, event: &str, payload: Value) {
        let msg_ref = self.next_ref.to_string();
        self.next_ref += 1;
        let frame = json!(["1", msg_ref, "room:lobby", event, payload]);
        self.ws.send(Message::text(frame.to_string())).await.expect("sent");
    }

    async fn post(&mut self, body: &str) {
        self.send("new_msg", json!({"author": self.user.clone(), "body": body})).await;
    }

    /// Reads frames, keeping presence and messages, until `done` holds for a frame; returns it.
    async fn until(&mut self, what: &str, mut done: impl FnMut(&Self, &Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await;
            let frame = match next {
                Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<Value>(&text).unwrap(),
                Ok(Some(Ok(_))) => continue,
                Ok(other) => {
                    panic!("{}: the socket ended waiting for {what}: {other:?}", self.user)
                }
                Err(_) => panic!(
                    "{}: timed out waiting for {what}; online: {:?}",
                    self.user,
                    self.online()
                ),
            };
            self.apply(&frame);
            if done(self, &frame) {
                return frame;
            }
        }
    }

    /// Waits until the online list is exactly `users`.
    async fn sees_online(&mut self, users: &[&str]) {
        if self.online() == users {
            return;
        }
        self.until(&format!("online = {users:?}"), |c, _| c.online() == users).await;
    }

    fn apply(&mut self, frame: &Value) {
        match frame[3].as_str() {
            Some("presence_state") => {
                self.presence = frame[4]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v["metas"].as_array().unwrap().clone()))
                    .collect();
            }
            Some("presence_diff") => {
                for (key, joined) in frame[4]["joins"].as_object().unwrap() {
                    let metas = self.presence.entry(key.clone()).or_default();
                    for meta in joined["metas"].as_array().unwrap() {
                        if !metas.iter().any(|m| m["phx_ref"] == meta["phx_ref"]) {
                            metas.push(meta.clone());
                        }
                    }
                }
                for (key, left) in frame[4]["leaves"].as_object().unwrap() {
                    let gone: Vec<&Value> =
                        left["metas"].as_array().unwrap().iter().map(|m| &m["phx_ref"]).collect();
                    if let Some(metas) = self.presence.get_mut(key) {
                        metas.retain(|m| !gone.contains(&&m["phx_ref"]));
                        if metas.is_empty() {
                            self.presence.remove(key);
                        }
                    }
                }
            }
            Some("new_msg") => self.messages.push(frame[4].clone()),
            _ => {}
        }
    }

    fn online(&self) -> Vec<&str> {
        self.presence.keys().map(String::as_str).collect()
    }
}

async fn pubsub_connected(app: &App) -> bool {
    let Ok(resp) = reqwest::get(format!("{}/readyz", app.url())).await else {
        return false;
    };
    let body: Value = resp.json().await.unwrap_or_default();
    body["pubsub"] == json!({"adapter": "redis", "connected": true})
}

async fn all_connected(apps: &[&App]) {
    let deadline = Instant::now() + WAIT;
    for app in apps {
        while !pubsub_connected(app).await {
            assert!(Instant::now() < deadline, "{} never connected to Redis", app.addr);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Three nodes a, b, c (names ending in `tag`, unique per test) with alice, bob and carol
/// joined on one each, once every client lists all three.
async fn three_nodes(redis: &RedisServer, tag: &str) -> ([App; 3], [Client; 3]) {
    let apps = ["a", "b", "c"].map(|n| node(&format!("{n}{tag}"), redis));
    all_connected(&apps.iter().collect::<Vec<_>>()).await;
    let mut clients = Vec::new();
    for (app, user) in apps.iter().zip(["alice", "bob", "carol"]) {
        clients.push(Client::join(app, user).await);
    }
    for client in &mut clients {
        client.sees_online(&["alice", "bob", "carol"]).await;
    }
    let clients: [Client; 3] = clients.try_into().unwrap_or_else(|_| unreachable!());
    (apps, clients)
}

#[tokio::test]
async fn three_nodes_share_messages_and_one_online_list() {
    let redis = RedisServer::start();
    let (_apps, [mut alice, mut bob, mut carol]) = three_nodes(&redis, "3").await;
    // Every meta carries `online_at` and a `phx_ref`, the same on every node.
    let metas = |c: &Client| c.presence["carol"].clone();
    assert_eq!(metas(&alice), metas(&bob));
    assert!(metas(&alice)[0]["online_at"].as_u64().is_some(), "{:?}", metas(&alice));

    alice.post("hello from a").await;
    for client in [&mut bob, &mut carol, &mut alice] {
        let msg = client.until("alice's message", |_, f| f[3] == "new_msg").await;
        assert_eq!(
            (msg[4]["author"].as_str(), msg[4]["body"].as_str()),
            (Some("alice"), Some("hello from a"))
        );
    }
}

#[tokio::test]
async fn a_killed_nodes_users_leave_after_the_down_period_and_a_stopped_nodes_at_once() {
    let redis = RedisServer::start();
    let (mut apps, [mut alice, mut bob, _carol]) = three_nodes(&redis, "2").await;

    // SIGKILL: no farewell. carol stays listed until c is reported down.
    apps[2].kill();
    let killed = Instant::now();
    alice.sees_online(&["alice", "bob"]).await;
    let left_after = killed.elapsed();
    assert!(
        left_after >= DOWN_PERIOD / 2,
        "carol left {left_after:?} after the kill: too early for a down period of {DOWN_PERIOD:?}"
    );
    bob.sees_online(&["alice", "bob"]).await;

    // SIGTERM: b drains and says goodbye; bob leaves well within the down period.
    apps[1].terminate();
    let stopped = Instant::now();
    alice.sees_online(&["alice"]).await;
    let left_after = stopped.elapsed();
    assert!(
        left_after < DOWN_PERIOD,
        "bob left {left_after:?} after SIGTERM: the farewell did not arrive"
    );
    let status = apps[1].wait_exit(Duration::from_secs(15));
    assert!(status.expect("b exits").success());
}

#[tokio::test]
async fn a_redis_restart_loses_nothing_published_after_the_reconnect() {
    let mut redis = RedisServer::start();
    let apps = [node("a1", &redis), node("b1", &redis)];
    all_connected(&[&apps[0], &apps[1]]).await;
    let mut alice = Client::join(&apps[0], "alice").await;
    let mut bob = Client::join(&apps[1], "bob").await;
    bob.sees_online(&["alice", "bob"]).await;

    redis.kill();
    let deadline = Instant::now() + WAIT;
    for app in &apps {
        while pubsub_connected(app).await {
            assert!(Instant::now() < deadline, "{} did not notice Redis going away", app.addr);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    redis.restart();
    all_connected(&[&apps[0], &apps[1]]).await;
    for n in 0..20 {
        alice.post(&format!("after {n}")).await;
    }
    bob.until("the 20 messages", |c, _| {
        c.messages
            .iter()
            .filter(|m| m["body"].as_str().is_some_and(|b| b.starts_with("after ")))
            .count()
            == 20
    })
    .await;
    let bodies: Vec<&str> = bob.messages.iter().filter_map(|m| m["body"].as_str()).collect();
    let expected: Vec<String> = (0..20).map(|n| format!("after {n}")).collect();
    assert_eq!(bodies, expected);
    // The outage was shorter than the down period: nobody left, and both still agree.
    alice.sees_online(&["alice", "bob"]).await;
    bob.sees_online(&["alice", "bob"]).await;
}
