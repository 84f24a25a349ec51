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
            let tracking = n.pubsub().presence().group();
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

/// What a subscriber saw from one other node, up to that node's `end` marker: `(event, n)`.
async fn from_node(sub: &mut Subscription, node: &str) -> Vec<(String, i64)> {
    let mut seen = Vec::new();
    loop {
        let (event, payload) = next(sub).await;
        let Payload::Json(p) = payload else { continue };
        if p["from"] != node {
            continue;
        }
        if event == "end" {
            return seen;
        }
        seen.push((event, p["n"].as_i64().unwrap()));
    }
}

/// How many of `expected` are missing from `seen` (whatever else went wrong).
fn lost(expected: &[(String, i64)], seen: &[(String, i64)]) -> usize {
    expected.iter().filter(|m| !seen.contains(m)).count()
}

/// The hardening case: Redis restarts and one node reconnects well before the other. What
/// either node queued during the outage, and what the early one published before the late one
/// was back, must reach the other node exactly once and in order.
#[tokio::test]
async fn after_a_redis_restart_nothing_queued_is_lost_to_a_node_that_resubscribes_later() {
    const N: i64 = 50;
    let mut redis = RedisServer::start();
    // a retries every 10 ms; b waits 2 s before retrying, so a is back, and in the old design
    // flushing its queue, long before b has resubscribed.
    let a =
        node("a", adapter(&redis).backoff(Duration::from_millis(10), Duration::from_millis(10)))
            .await;
    let b =
        node("b", adapter(&redis).backoff(Duration::from_secs(2), Duration::from_secs(2))).await;
    connected(&[&a, &b]).await;
    let mut on_a = a.pubsub().subscribe("room:1");
    let mut on_b = b.pubsub().subscribe("room:1");
    // Each node has heard the other before the outage.
    for (from, node) in [("a", &a), ("b", &b)] {
        node.pubsub().broadcast("room:1", "end", json!({"from": from}));
    }
    assert_eq!(from_node(&mut on_b, "a").await, []);
    assert_eq!(from_node(&mut on_a, "b").await, []);

    redis.kill();
    eventually(WAIT, "both nodes to notice Redis is gone", || {
        !a.pubsub().adapter().is_connected() && !b.pubsub().adapter().is_connected()
    })
    .await;
    for n in 0..N {
        a.pubsub().broadcast("room:1", "down", json!({"from": "a", "n": n}));
        b.pubsub().broadcast("room:1", "down", json!({"from": "b", "n": n}));
    }

    redis.restart();
    let restarted = std::time::Instant::now();
    connected(&[&a]).await;
    assert!(!b.pubsub().adapter().is_connected(), "b must still be away for the case to arise");
    for n in 0..N {
        a.pubsub().broadcast("room:1", "early", json!({"from": "a", "n": n}));
    }
    connected(&[&a, &b]).await;
    let b_back = std::time::Instant::now();
    for (from, node) in [("a", &a), ("b", &b)] {
        node.pubsub().broadcast("room:1", "end", json!({"from": from}));
    }
    let (seen_by_b, seen_by_a) = tokio::join!(
        within(WAIT, "a's messages on b", from_node(&mut on_b, "a")),
        within(WAIT, "b's messages on a", from_node(&mut on_a, "b")),
    );
    let (recovery, after_b) = (restarted.elapsed(), b_back.elapsed());

    let series = |events: &[&str]| -> Vec<(String, i64)> {
        events.iter().flat_map(|e| (0..N).map(move |n| ((*e).to_owned(), n))).collect()
    };
    let (from_a, from_b) = (series(&["down", "early"]), series(&["down"]));
    eprintln!(
        "RELIABILITY redis_restart recovery_ms={} after_late_node_ms={} lost_on_b={} sent_by_a={} \
         lost_on_a={} sent_by_b={}",
        recovery.as_millis(),
        after_b.as_millis(),
        lost(&from_a, &seen_by_b),
        from_a.len(),
        lost(&from_b, &seen_by_a),
        from_b.len(),
    );
    assert_eq!(seen_by_b, from_a, "a's messages on b: all, once, in order");
    assert_eq!(seen_by_a, from_b, "b's messages on a: all, once, in order");
}

/// A node that crashed during the outage holds the others' queues for the peer wait at most;
/// it is then given up, and the next outage does not wait for it again.
#[tokio::test]
async fn a_node_that_never_returns_holds_the_queue_for_the_peer_wait_only() {
    const N: i64 = 50;
    const PEER_WAIT: Duration = Duration::from_secs(2);
    let mut redis = RedisServer::start();
    let a_adapter = adapter(&redis).peer_wait(PEER_WAIT);
    let a = node("a", a_adapter.clone()).await;
    let b = node("b", adapter(&redis).peer_wait(PEER_WAIT)).await;
    // c retries an hour after losing Redis: as far as this test goes, it is gone for good.
    let c =
        node("c", adapter(&redis).backoff(Duration::from_secs(3600), Duration::from_secs(3600)))
            .await;
    connected(&[&a, &b, &c]).await;
    eventually(WAIT, "a to know b and c", || a_adapter.peers() == ["b", "c"]).await;
    // What the live dashboard shows of the adapter.
    let details = a.pubsub().adapter().details();
    assert_eq!(details["peers"], json!(["b", "c"]), "{details}");
    assert_eq!(details["dropped"], 0, "{details}");
    assert!(details["channel"].as_str().is_some_and(|c| c.starts_with("fawkes:")), "{details}");
    let mut on_b = b.pubsub().subscribe("room:1");

    for outage in 1..=2 {
        redis.kill();
        eventually(WAIT, "every node to notice Redis is gone", || {
            [&a, &b, &c].iter().all(|n| !n.pubsub().adapter().is_connected())
        })
        .await;
        for n in 0..N {
            a.pubsub().broadcast("room:1", "down", json!({"from": "a", "n": n}));
        }
        let details = a.pubsub().adapter().details();
        assert!(details["queued"].as_i64() >= Some(N), "queued while Redis is down: {details}");
        redis.restart();
        let restarted = std::time::Instant::now();
        connected(&[&a, &b]).await;
        a.pubsub().broadcast("room:1", "end", json!({"from": "a"}));
        let seen = within(WAIT, "a's messages on b", from_node(&mut on_b, "a")).await;
        let recovery = restarted.elapsed();
        let expected: Vec<(String, i64)> = (0..N).map(|n| ("down".to_owned(), n)).collect();
        eprintln!(
            "RELIABILITY redis_restart_node_gone outage={outage} recovery_ms={} peer_wait_ms={} \
             lost_on_b={} sent_by_a={N}",
            recovery.as_millis(),
            PEER_WAIT.as_millis(),
            lost(&expected, &seen),
        );
        assert_eq!(seen, expected, "a's messages on b: all, once, in order");
        if outage == 1 {
            // a's clock for the wait starts after Redis answers: this runtime is blocked
            // while the test restarts it.
            assert!(recovery >= PEER_WAIT, "a waited for c: {recovery:?}");
            assert_eq!(a_adapter.peers(), ["b"], "c is given up");
        } else {
            assert!(recovery < PEER_WAIT, "c is no longer waited for: {recovery:?}");
        }
    }
}
