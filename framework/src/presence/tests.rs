use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::crdt::{Delta, Entry, Replica, State};
use super::*;
use crate::pubsub::{Adapter, Subscription};

// ---- the CRDT alone -------------------------------------------------------------------------

fn entry(topic: u8, key: u8) -> Entry {
    let mut meta = Map::new();
    meta.insert("n".into(), json!(key));
    Entry { topic: format!("t{topic}"), key: format!("k{key}"), meta, prev: None }
}

/// One replica authoring its own part, as a tracker does.
struct Author {
    replica: Replica,
    state: State,
    clock: u64,
    live: Vec<u64>,
}

impl Author {
    fn new(id: u64) -> Self {
        let replica = Replica { node: format!("n{id}"), id };
        Self { replica, state: State::default(), clock: 0, live: Vec::new() }
    }

    fn add(&mut self, topic: u8, key: u8) -> Delta {
        self.clock += 1;
        let mut delta = Delta::new(self.replica.clone());
        delta.adds.push((self.clock, entry(topic, key)));
        self.live.push(self.clock);
        self.state.join(&delta);
        delta
    }

    fn remove(&mut self, pick: usize) -> Option<Delta> {
        if self.live.is_empty() {
            return None;
        }
        let counter = self.live.remove(pick % self.live.len());
        self.clock += 1;
        let mut delta = Delta::new(self.replica.clone());
        delta.removes.extend([counter, self.clock]);
        self.state.join(&delta);
        Some(delta)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add { author: usize, topic: u8, key: u8 },
    Remove { author: usize, pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..3u8, 0..4u8).prop_map(|(author, topic, key)| Op::Add { author, topic, key }),
        2 => (0..3usize, any::<usize>()).prop_map(|(author, pick)| Op::Remove { author, pick }),
    ]
}

/// Runs `ops` on three authors; returns them and every delta in the order made.
fn author(ops: &[Op]) -> (Vec<Author>, Vec<Delta>) {
    let mut authors: Vec<Author> = (1..=3).map(Author::new).collect();
    let mut deltas = Vec::new();
    for op in ops {
        match *op {
            Op::Add { author, topic, key } => deltas.push(authors[author].add(topic, key)),
            Op::Remove { author, pick } => deltas.extend(authors[author].remove(pick)),
        }
    }
    (authors, deltas)
}

/// What every replica should end up showing: each author's own entries.
fn truth(authors: &[Author]) -> Vec<(String, Entry)> {
    let mut all: Vec<_> = authors.iter().flat_map(|a| a.state.entries()).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn visible(state: &State) -> Vec<(String, Entry)> {
    let mut all = state.entries();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Deltas delivered in any order, some twice, converge to the authors' state.
    #[test]
    fn deltas_in_any_order_with_duplicates_converge(
        ops in prop::collection::vec(op(), 0..40),
        seed in any::<u64>(),
    ) {
        let (authors, deltas) = author(&ops);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut observers = Vec::new();
        for _ in 0..2 {
            let mut delivery: Vec<&Delta> = deltas.iter().collect();
            let duplicates: Vec<&Delta> =
                deltas.iter().filter(|_| rng.random_bool(0.3)).collect();
            delivery.extend(duplicates);
            delivery.shuffle(&mut rng);
            let mut observer = State::default();
            for delta in delivery {
                observer.join(delta);
            }
            observers.push(observer);
        }
        prop_assert_eq!(visible(&observers[0]), truth(&authors));
        prop_assert_eq!(visible(&observers[1]), truth(&authors));
        // Same entries and same context: the states are equal, not just their views.
        for author in &authors {
            prop_assert_eq!(observers[0].seen(&author.replica), author.clock);
            prop_assert_eq!(observers[0].part_of(&author.replica), observers[1].part_of(&author.replica));
        }
    }

    /// Lost deltas are made good by a whole-state transfer, whatever arrived before or after.
    #[test]
    fn a_state_transfer_repairs_lost_deltas(
        ops in prop::collection::vec(op(), 0..40),
        seed in any::<u64>(),
    ) {
        let (authors, deltas) = author(&ops);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut observer = State::default();
        for delta in &deltas {
            if rng.random_bool(0.5) {
                observer.join(delta);
            }
        }
        for author in &authors {
            if author.clock > 0 && observer.seen(&author.replica) < author.clock {
                observer.join(&author.state.part_of(&author.replica));
            }
        }
        // Stale deltas arriving late change nothing.
        let mut late: Vec<&Delta> = deltas.iter().collect();
        late.shuffle(&mut rng);
        for delta in late.into_iter().take(5) {
            observer.join(delta);
        }
        prop_assert_eq!(visible(&observer), truth(&authors));
        for author in &authors {
            prop_assert!(!observer.has_gap(&author.replica));
        }
    }

    /// Joining whole parts is commutative, associative and idempotent.
    #[test]
    fn joining_parts_is_a_semilattice(ops in prop::collection::vec(op(), 0..30), split in 0..30usize) {
        let (_, deltas) = author(&ops);
        let split = split.min(deltas.len());
        let mut a = State::default();
        let mut b = State::default();
        for delta in &deltas[..split] {
            a.join(delta);
        }
        for delta in &deltas[split..] {
            b.join(delta);
        }
        let replicas: Vec<Replica> = (1..=3).map(|id| Replica { node: format!("n{id}"), id }).collect();
        let merge = |x: &State, y: &State| {
            let mut out = x.clone();
            for r in &replicas {
                out.join(&y.part_of(r));
            }
            out
        };
        let ab = merge(&a, &b);
        let ba = merge(&b, &a);
        prop_assert_eq!(visible(&ab), visible(&ba));
        prop_assert_eq!(visible(&merge(&ab, &ab)), visible(&ab));
        let c = State::default();
        prop_assert_eq!(visible(&merge(&merge(&a, &b), &c)), visible(&merge(&a, &merge(&b, &c))));
    }
}

#[test]
fn an_entry_seen_removed_never_comes_back() {
    let mut author = Author::new(1);
    let add = author.add(0, 0);
    let remove = author.remove(0).unwrap();
    let mut observer = State::default();
    observer.join(&remove);
    observer.join(&add);
    assert!(observer.entries().is_empty());
    // A replica reported down keeps its context: a stale copy cannot resurrect it.
    let mut other = Author::new(2);
    let stale = other.add(1, 1);
    observer.join(&stale);
    assert_eq!(observer.entries().len(), 1);
    let changes = observer.drop_replica(&other.replica);
    assert_eq!(changes.len(), 1);
    observer.join(&stale);
    observer.join(&other.state.part_of(&other.replica));
    assert!(observer.entries().is_empty());
}

// ---- one node ----------------------------------------------------------------------------------

async fn next_diff(sub: &mut Subscription) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), sub.recv())
            .await
            .expect("a presence_diff within 5 s")
            .expect("subscription open");
        if msg.event() == "presence_diff" {
            return msg.payload().as_json().cloned().unwrap();
        }
    }
}

// Diffs after the first wait for the diff interval, on tokio's paused clock.
#[tokio::test(start_paused = true)]
async fn track_update_untrack_push_phoenix_diffs_and_list_phoenix_state() {
    let pubsub = PubSub::new("a");
    let presence = pubsub.presence();
    let mut sub = pubsub.subscribe("room:1");
    let owner = presence.group();

    let r1 = owner.track("room:1", "alice", json!({"status": "here"})).unwrap();
    let diff = next_diff(&mut sub).await;
    assert_eq!(
        diff,
        json!({"joins": {"alice": {"metas": [{"status": "here", "phx_ref": r1}]}}, "leaves": {}})
    );
    assert_eq!(
        owner.track("room:1", "alice", json!({})),
        Err(PresenceError::AlreadyTracked { topic: "room:1".into(), key: "alice".into() })
    );
    assert_eq!(owner.track("room:1", "bob", json!([1])), Err(PresenceError::InvalidMeta));

    let r2 = owner.update("room:1", "alice", json!({"status": "away"})).unwrap();
    assert_ne!(r1, r2);
    let diff = next_diff(&mut sub).await;
    assert_eq!(
        diff,
        json!({
            "joins": {"alice": {"metas": [{"status": "away", "phx_ref": r2, "phx_ref_prev": r1}]}},
            "leaves": {"alice": {"metas": [{"status": "here", "phx_ref": r1}]}}
        })
    );
    assert_eq!(
        presence.list("room:1"),
        json!({"alice": {"metas": [{"status": "away", "phx_ref": r2, "phx_ref_prev": r1}]}})
    );

    // The same key from a second owner (a second tab) is a second meta.
    let tab = presence.group();
    let r3 = tab.track("room:1", "alice", json!({"status": "tab"})).unwrap();
    next_diff(&mut sub).await;
    let metas = presence.list("room:1")["alice"]["metas"].as_array().unwrap().len();
    assert_eq!(metas, 2);

    owner.untrack("room:1", "alice");
    let diff = next_diff(&mut sub).await;
    assert_eq!(diff["leaves"]["alice"]["metas"][0]["phx_ref"], json!(r2));
    assert!(matches!(
        owner.update("room:1", "alice", json!({})),
        Err(PresenceError::NotTracked { .. })
    ));
    drop(tab);
    let diff = next_diff(&mut sub).await;
    assert_eq!(diff["leaves"]["alice"]["metas"][0]["phx_ref"], json!(r3));
    assert_eq!(presence.list("room:1"), json!({}));
    assert_eq!(presence.list("room:unknown"), json!({}));
}

// ---- several nodes over an in-memory wire -----------------------------------------------------

/// Joins nodes like Redis would; can be cut to simulate a partition or a dead node.
#[derive(Default)]
struct Wire {
    nodes: Mutex<Vec<(PubSub, Arc<AtomicBool>)>>,
}

struct Port {
    wire: Arc<Wire>,
    up: Arc<AtomicBool>,
}

impl Adapter for Port {
    fn publish(&self, message: Bytes) {
        if !self.up.load(Ordering::SeqCst) {
            return;
        }
        let nodes: Vec<_> = self.wire.nodes.lock().unwrap().clone();
        for (node, up) in nodes {
            if up.load(Ordering::SeqCst) {
                node.receive_remote(&message).unwrap();
            }
        }
    }
    fn publish_direct(&self, _node: &str, message: Bytes) {
        self.publish(message);
    }
}

struct Node {
    pubsub: PubSub,
    up: Arc<AtomicBool>,
    token: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Node {
    fn start(wire: &Arc<Wire>, name: &str, config: PresenceConfig) -> Self {
        let up = Arc::new(AtomicBool::new(true));
        let port = Port { wire: wire.clone(), up: up.clone() };
        let pubsub = PubSub::with_adapter(name, Arc::new(port));
        pubsub.presence().configure(config);
        wire.nodes.lock().unwrap().push((pubsub.clone(), up.clone()));
        let token = CancellationToken::new();
        let task = tokio::spawn({
            let (pubsub, token) = (pubsub.clone(), token.clone());
            async move {
                let _ = replication::run(pubsub, token).await;
            }
        });
        Self { pubsub, up, token, task }
    }

    fn keys(&self, topic: &str) -> Vec<String> {
        let list = self.pubsub.presence().list(topic);
        list.as_object().unwrap().keys().cloned().collect()
    }
}

fn fast() -> PresenceConfig {
    PresenceConfig {
        heartbeat_interval: Duration::from_millis(50),
        down_period: Duration::from_secs(30),
        diff_interval: Duration::from_millis(50),
        ..PresenceConfig::default()
    }
}

async fn eventually(what: &str, check: impl FnMut() -> bool) {
    crate::testing::eventually(Duration::from_secs(10), what, check).await;
}

// Timers on tokio's paused clock: the intervals and periods below are exact, and the test
// takes no real time waiting for them.
#[tokio::test(start_paused = true)]
async fn nodes_converge_including_a_late_joiner_and_diffs_reach_local_subscribers() {
    let wire = Arc::new(Wire::default());
    let a = Node::start(&wire, "a", fast());
    let alice = a.pubsub.presence().group();
    alice.track("room:1", "alice", json!({})).unwrap();

    // b starts after alice was tracked: it learns her from a state transfer.
    let b = Node::start(&wire, "b", fast());
    let mut on_b = b.pubsub.subscribe("room:1");
    // As a channel behind a catch-all route would be: tracker traffic must not reach it.
    let mut snoop = b.pubsub.subscribe(TOPIC);
    eventually("b to see alice", || b.keys("room:1") == ["alice"]).await;
    let bob = b.pubsub.presence().group();
    bob.track("room:1", "bob", json!({})).unwrap();
    eventually("a to see bob", || a.keys("room:1") == ["alice", "bob"]).await;
    assert_eq!(b.keys("room:1"), ["alice", "bob"]);
    assert_eq!(a.pubsub.presence().list("room:1"), b.pubsub.presence().list("room:1"));
    assert_eq!(a.pubsub.presence().peers(), ["b"]);
    assert_eq!(nodes(&a), [("a".to_owned(), 1, true), ("b".to_owned(), 1, false)]);
    assert_eq!(nodes(&b), [("a".to_owned(), 1, false), ("b".to_owned(), 1, true)]);

    // Diffs from the other node reach local subscribers too.
    let mut on_a = a.pubsub.subscribe("room:1");
    drop(bob);
    let diff = next_diff(&mut on_a).await;
    assert!(diff["leaves"]["bob"].is_object(), "{diff}");
    let mut joined = Vec::new();
    while joined.len() < 2 {
        let diff = next_diff(&mut on_b).await;
        joined.extend(diff["joins"].as_object().unwrap().keys().cloned());
    }
    assert!(joined.contains(&"alice".to_owned()), "{joined:?}");
    let leaked = tokio::time::timeout(Duration::from_millis(200), snoop.recv()).await;
    assert!(leaked.is_err(), "tracker traffic reached a subscriber: {leaked:?}");
}

// Timers on tokio's paused clock: the intervals and periods below are exact, and the test
// takes no real time waiting for them.
#[tokio::test(start_paused = true)]
async fn a_graceful_stop_removes_a_nodes_presences_at_once() {
    let wire = Arc::new(Wire::default());
    let a = Node::start(&wire, "a", fast());
    let b = Node::start(&wire, "b", fast());
    let bob = b.pubsub.presence().group();
    bob.track("room:1", "bob", json!({})).unwrap();
    eventually("a to see bob", || a.keys("room:1") == ["bob"]).await;
    // The down period is 30 s: only the farewell can make bob leave this fast.
    b.token.cancel();
    b.task.await.unwrap();
    eventually("bob to leave a", || a.keys("room:1").is_empty()).await;
    eventually("b to leave a's nodes", || nodes(&a) == [("a".to_owned(), 0, true)]).await;
    drop(bob);
}

/// A node's view of the cluster, as the dashboard lists it: name, presences, whether local.
fn nodes(node: &Node) -> Vec<(String, usize, bool)> {
    let nodes = node.pubsub.presence().nodes();
    nodes.into_iter().map(|n| (n.name, n.presences, n.local)).collect()
}

// Timers on tokio's paused clock: the intervals and periods below are exact, and the test
// takes no real time waiting for them.
#[tokio::test(start_paused = true)]
async fn a_silent_node_is_reported_down_and_rejoins_when_heard_again() {
    let wire = Arc::new(Wire::default());
    let config = PresenceConfig {
        heartbeat_interval: Duration::from_millis(50),
        down_period: Duration::from_millis(400),
        diff_interval: Duration::from_millis(50),
        ..PresenceConfig::default()
    };
    let a = Node::start(&wire, "a", config.clone());
    let b = Node::start(&wire, "b", config);
    let bob = b.pubsub.presence().group();
    bob.track("room:1", "bob", json!({"v": 1})).unwrap();
    eventually("a to see bob", || a.keys("room:1") == ["bob"]).await;

    // Cut b off: no farewell, no heartbeats, as after SIGKILL or a partition.
    b.up.store(false, Ordering::SeqCst);
    let cut = tokio::time::Instant::now();
    eventually("bob to be reported down", || a.keys("room:1").is_empty()).await;
    // Reported once a heartbeat finds it silent for the down period: the last heartbeat heard
    // was at most one interval before the cut.
    let left = cut.elapsed();
    assert!(
        left >= Duration::from_millis(350) && left <= Duration::from_millis(500),
        "left after {left:?}"
    );
    assert!(a.pubsub.presence().peers().is_empty());

    // b was alive all along: once heard again it is told it was down and rejoins.
    b.up.store(true, Ordering::SeqCst);
    eventually("bob to be back", || a.keys("room:1") == ["bob"]).await;
    assert_eq!(a.pubsub.presence().list("room:1"), b.pubsub.presence().list("room:1"));
    bob.update("room:1", "bob", json!({"v": 2})).unwrap();
    eventually("the update to arrive", || {
        a.pubsub.presence().list("room:1")["bob"]["metas"][0]["v"] == json!(2)
    })
    .await;
}

// Timers on tokio's paused clock: the intervals and periods below are exact, and the test
// takes no real time waiting for them.
#[tokio::test(start_paused = true)]
async fn lost_deltas_are_recovered_from_heartbeats() {
    let wire = Arc::new(Wire::default());
    let a = Node::start(&wire, "a", fast());
    let b = Node::start(&wire, "b", fast());
    eventually("a and b to hear each other", || a.pubsub.presence().peers() == ["b"]).await;
    // a's deltas are lost while it is cut off, briefly (well under the down period).
    a.up.store(false, Ordering::SeqCst);
    let alice = a.pubsub.presence().group();
    alice.track("room:1", "alice", json!({})).unwrap();
    alice.track("room:2", "alice", json!({})).unwrap();
    alice.untrack("room:2", "alice");
    a.up.store(true, Ordering::SeqCst);
    eventually("b to catch up", || b.keys("room:1") == ["alice"]).await;
    assert!(b.keys("room:2").is_empty());
}

// Timers on tokio's paused clock: the intervals and periods below are exact, and the test
// takes no real time waiting for them.
#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_on_a_topic_is_pushed_as_one_diff_per_interval() {
    let pubsub = PubSub::new("a");
    let presence = pubsub.presence();
    presence.configure(PresenceConfig { diff_interval: Duration::from_millis(300), ..fast() });
    let mut sub = pubsub.subscribe("room:busy");
    let mut other = pubsub.subscribe("room:quiet");
    let owners: Vec<_> = (0..100).map(|_| presence.group()).collect();
    for (i, owner) in owners.iter().enumerate() {
        owner.track("room:busy", &format!("user{i}"), json!({})).unwrap();
    }
    // The first change of a quiet topic goes at once, the other 99 wait for the interval.
    let first = next_diff(&mut sub).await;
    assert_eq!(first["joins"].as_object().unwrap().len(), 1);
    // Another topic is not held back by this one's interval.
    let quiet = presence.group();
    quiet.track("room:quiet", "solo", json!({})).unwrap();
    let solo = tokio::time::timeout(Duration::from_millis(100), next_diff(&mut other)).await;
    assert_eq!(solo.expect("an immediate diff")["joins"].as_object().unwrap().len(), 1);
    // The rest, and a leave within the same interval, in one diff.
    owners[0].untrack("room:busy", "user0");
    let rest = next_diff(&mut sub).await;
    assert_eq!(rest["joins"].as_object().unwrap().len(), 99);
    assert_eq!(rest["leaves"].as_object().unwrap().keys().collect::<Vec<_>>(), ["user0"]);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), next_diff(&mut sub)).await.is_err(),
        "one diff carried the whole burst"
    );
    assert_eq!(presence.list("room:busy").as_object().unwrap().len(), 99);
}

#[tokio::test]
async fn entries_past_the_size_limit_are_refused() {
    let pubsub = PubSub::new("sizes");
    pubsub
        .presence()
        .configure(PresenceConfig { max_entry_bytes: 64, ..PresenceConfig::default() });
    let owner = pubsub.presence().group();
    let long_key = "k".repeat(65);
    assert_eq!(
        owner.track("room:1", &long_key, json!({})),
        Err(PresenceError::TooLarge { bytes: 65, limit: 64 })
    );
    let big_meta = json!({ "name": "n".repeat(60) });
    assert!(matches!(
        owner.track("room:1", "ada", big_meta.clone()),
        Err(PresenceError::TooLarge { limit: 64, .. })
    ));
    // Nothing was tracked; within the limit, tracking and updating work, and an update may
    // not grow the entry past it either.
    assert!(pubsub.presence().list("room:1").as_object().is_some_and(|m| m.is_empty()));
    owner.track("room:1", "ada", json!({ "name": "Ada" })).unwrap();
    assert!(matches!(owner.update("room:1", "ada", big_meta), Err(PresenceError::TooLarge { .. })));
    owner.update("room:1", "ada", json!({ "name": "Ada L." })).unwrap();
}
