//! The Redis adapter with a real `redis-server`: endpoints in one process, each with its own
//! pubsub and adapter, exactly as separate replicas would be (the multi-process version, with
//! the example app and real clients, is `example-app/tests/cluster.rs`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fawkes::endpoint::RunningEndpoint;
use fawkes::presence::PresenceConfig;
use fawkes::pubsub::{PubSub, Redis, Subscription};
use fawkes::serializer::Payload;
use fawkes::Endpoint;
use serde_json::{json, Value};
use tests::{eventually, http1_client, start, within, RedisServer};

fawkes::router! {
    /// Just the readiness probe.
    pub Probe;
    get "/readyz" => fawkes::telemetry::readyz;
}

const WAIT: Duration = Duration::from_secs(10);

fn adapter(redis: &RedisServer) -> Redis {
    Redis::new(&redis.url())
        .unwrap()
        .namespace("redis-test")
        .backoff(Duration::from_millis(10), Duration::from_millis(200))
}

async fn node(name: &str, adapter: Redis) -> RunningEndpoint {
    let pubsub = PubSub::with_adapter(name, Arc::new(adapter));
    pubsub.presence().configure(fast_presence());
    start(Endpoint::new(Probe::new()).pubsub(pubsub)).await
}

fn fast_presence() -> PresenceConfig {
    let mut config = PresenceConfig::default();
    config.heartbeat_interval = Duration::from_millis(100);
    config
}

async fn connected(nodes: &[&RunningEndpoint]) {
    eventually(WAIT, "every node to connect to Redis", || {
        nodes.iter().all(|n| n.pubsub().adapter().is_connected())
    })
    .await;
}

async fn next(sub: &mut Subscription) -> (String, Payload) {
    let msg = within(WAIT, "a broadcast", sub.recv()).await.expect("subscribed");
    (msg.event().to_owned(), msg.payload().clone())
}

async fn readyz(node: &RunningEndpoint) -> (u16, Value) {
    let resp = http1_client().get(format!("{}/readyz", node.url())).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn broadcasts_cross_nodes_once_and_direct_broadcasts_reach_one_node() {
    let redis = RedisServer::start();
    let a = node("a", adapter(&redis)).await;
    let b = node("b", adapter(&redis)).await;
    let c = node("c", adapter(&redis)).await;
    connected(&[&a, &b, &c]).await;
    let mut subs: Vec<Subscription> =
        [&a, &b, &c].iter().map(|n| n.pubsub().subscribe("room:1")).collect();

    a.pubsub().broadcast("room:1", "hello", json!({"from": "a"}));
    a.pubsub().direct_broadcast(
        "b",
        "room:1",
        "direct",
        Payload::Binary(Bytes::from_static(b"\x00\xff")),
    );
    for (i, sub) in subs.iter_mut().enumerate() {
        assert_eq!(next(sub).await, ("hello".into(), Payload::Json(json!({"from": "a"}))));
        if i == 1 {
            let direct = next(sub).await;
            assert_eq!(direct, ("direct".into(), Payload::Binary(Bytes::from_static(b"\x00\xff"))));
        }
    }
    // Exactly once each: the next thing every node sees is c's end marker.
    c.pubsub().broadcast("room:1", "end", json!({}));
    for sub in &mut subs {
        assert_eq!(next(sub).await.0, "end");
    }
    let (status, body) = readyz(&a).await;
    assert_eq!((status, &body["pubsub"]), (200, &json!({"adapter": "redis", "connected": true})));
}

#[tokio::test]
async fn a_redis_restart_is_survived_and_nothing_published_after_the_reconnect_is_lost() {
    let mut redis = RedisServer::start();
    let a = node("a", adapter(&redis)).await;
    let b = node("b", adapter(&redis).required_for_readiness(true)).await;
    connected(&[&a, &b]).await;
    let mut on_a = a.pubsub().subscribe("room:1");
    let mut on_b = b.pubsub().subscribe("room:1");

    redis.kill();
    eventually(WAIT, "both nodes to notice Redis is gone", || {
        !a.pubsub().adapter().is_connected() && !b.pubsub().adapter().is_connected()
    })
    .await;
    // Local subscribers are still served while Redis is down.
    a.pubsub().broadcast("room:1", "during", json!({}));
    assert_eq!(next(&mut on_a).await.0, "during");
    // b requires Redis for readiness; a (the default) does not.
    assert_eq!(readyz(&b).await.0, 503);
    assert_eq!(readyz(&b).await.1["status"], "pubsub_disconnected");
    assert_eq!(
        readyz(&a).await,
        (200, json!({"status": "ok", "pubsub": {"adapter": "redis", "connected": false}}))
    );

    redis.restart();
    connected(&[&a, &b]).await;
    assert_eq!(readyz(&b).await.0, 200);
    for n in 0..200 {
        a.pubsub().broadcast("room:1", "after", json!({"n": n}));
    }
    let mut got = Vec::new();
    while got.len() < 200 {
        match next(&mut on_b).await {
            (event, Payload::Json(p)) if event == "after" => got.push(p["n"].as_i64().unwrap()),
            // What was queued while Redis was down may arrive first; it is not counted.
            _ => {}
        }
    }
    assert_eq!(got, (0..200).collect::<Vec<_>>());
}

#[tokio::test]
async fn presence_converges_across_nodes_and_a_graceful_stop_removes_a_nodes_users_at_once() {
    let redis = RedisServer::start();
    let nodes = [
        node("a", adapter(&redis)).await,
        node("b", adapter(&redis)).await,
        node("c", adapter(&redis)).await,
    ];
    connected(&nodes.iter().collect::<Vec<_>>()).await;
    let users: Vec<_> = nodes
        .iter()
        .zip(["alice", "bob", "carol"])
        .map(|(n, user)| {
            let tracking = n.pubsub().presence().tracking();
            tracking.track("room:1", user, json!({"node": n.pubsub().node()})).unwrap();
            tracking
        })
        .collect();
    let keys = |n: &RunningEndpoint| -> Vec<String> {
        n.pubsub().presence().list("room:1").as_object().unwrap().keys().cloned().collect()
    };
    eventually(WAIT, "every node to list the three users", || {
        nodes.iter().all(|n| keys(n) == ["alice", "bob", "carol"])
    })
    .await;
    let list = nodes[0].pubsub().presence().list("room:1");
    assert!(nodes.iter().all(|n| n.pubsub().presence().list("room:1") == list));

    // The default down period is 30 s: only c's farewell can remove carol this fast.
    let [a, b, c] = nodes;
    c.shutdown();
    within(WAIT, "c to stop", c.wait()).await.unwrap();
    eventually(Duration::from_secs(5), "carol to leave a and b", || {
        keys(&a) == ["alice", "bob"] && keys(&b) == ["alice", "bob"]
    })
    .await;
    drop(users);
}

#[tokio::test]
async fn an_unreachable_redis_does_not_stop_the_endpoint_and_a_bad_url_is_a_clear_error() {
    let err = Redis::new("http://127.0.0.1:1/").unwrap_err();
    assert!(err.to_string().starts_with("invalid Redis URL"), "{err}");

    // Nothing listens on this port: the node serves, reports it, and keeps retrying.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = Redis::new(&format!("redis://127.0.0.1:{port}/")).unwrap();
    let a = node("a", nowhere).await;
    let (status, body) = readyz(&a).await;
    assert_eq!(status, 200);
    assert_eq!(body["pubsub"], json!({"adapter": "redis", "connected": false}));
    let mut sub = a.pubsub().subscribe("t");
    a.pubsub().broadcast("t", "local", json!({}));
    assert_eq!(next(&mut sub).await.0, "local");
    a.shutdown();
    within(WAIT, "a to stop", a.wait()).await.unwrap();
}
