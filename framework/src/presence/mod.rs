//! Presence: who is on which topic, one answer across every node.
//!
//! A channel tracks its user on its topic with [`Presence::track`]; every node's tracker
//! replicates what its own channels track to the other nodes over the pubsub adapter, and each
//! node pushes `presence_diff` events to its local subscribers of a topic whenever the visible
//! presences change. A channel that stops or crashes is untracked; a node that shuts down
//! gracefully tells the others, whose copies of its presences leave at once; a node that falls
//! silent for the down period (30 s by default) is reported down and its presences leave.
//!
//! Payloads are Phoenix's, so the official `phoenix` JS `Presence` class renders them:
//! `presence_state` is `{"<key>":{"metas":[{…meta,"phx_ref":"…"}]}}` ([`Presence::list`]) and
//! `presence_diff` is `{"joins":{…},"leaves":{…}}`; an update is a join whose meta carries
//! `phx_ref_prev`, plus a leave of the old meta.
//!
//! The replicated state is an observed-remove set with per-replica clocks (see
//! ARCHITECTURE.md for its invariants): deltas may be lost, duplicated or reordered, and a
//! heartbeat carrying each replica's clock lets a node that missed something ask for the
//! replica's whole state.
//!
//! # Examples
//!
//! ```
//! use fawkes::channel::{Channel, ChannelSocket, Reply};
//! use fawkes::serializer::Payload;
//! use serde_json::{json, Value};
//!
//! struct AfterJoin;
//!
//! struct Room;
//!
//! impl Channel for Room {
//!     async fn join(_topic: &str, _payload: Payload, socket: &mut ChannelSocket) -> Result<(Self, Value), Value> {
//!         // Pushing from `join` would race the join reply: do it right after.
//!         let _ = socket.handle().send(AfterJoin);
//!         Ok((Room, json!({})))
//!     }
//!
//!     async fn handle_info(&mut self, message: Box<dyn std::any::Any + Send>, socket: &mut ChannelSocket) {
//!         if message.is::<AfterJoin>() {
//!             let presence = socket.presence();
//!             presence.push_state(socket);
//!             presence.track(socket, "alice", json!({"online_at": 1})).unwrap();
//!         }
//!     }
//!
//!     async fn handle_in(&mut self, _event: &str, _payload: Payload, _socket: &mut ChannelSocket) -> Reply {
//!         Reply::NoReply
//!     }
//! }
//! ```

pub(crate) mod crdt;
mod replication;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::serializer::{self, Frame, Vsn};
use crate::supervisor::ChildSpec;
use crate::PubSub;
use crdt::{Change, Delta, Entry, Replica};

/// The pubsub topic trackers talk on. Messages on it are handed to the tracker by
/// [`PubSub::receive_remote`] and never reach the topic's subscribers.
pub(crate) const TOPIC: &str = "phx_presence";

/// Messages from other nodes waiting for the replication worker; past this, new ones are
/// dropped (a heartbeat repairs what they carried).
const INBOX_LIMIT: usize = 100_000;

/// How presence replicates between nodes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let mut config = fawkes::presence::PresenceConfig::default();
/// config.down_period = Duration::from_secs(10);
/// assert_eq!(config.heartbeat_interval, Duration::from_millis(1500));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PresenceConfig {
    /// How often a node tells the others it is alive and how far its clock went (1.5 s).
    pub heartbeat_interval: Duration,
    /// How long a node may stay silent before it is reported down and its presences leave
    /// (30 s).
    pub down_period: Duration,
    /// The shortest time between two `presence_diff`s of one topic (500 ms). A change on a
    /// topic that has been quiet for this long is pushed at once; changes that follow within
    /// it are gathered into one diff, pushed when it ends. So a burst of joins costs each
    /// member a diff per interval rather than one per join.
    pub diff_interval: Duration,
    /// The largest entry one `track` or `update` may add, in bytes: its key and its metadata
    /// as JSON (4 KiB). Every member of a topic receives every entry in its `presence_state`,
    /// so an entry's size is multiplied by the members, and by the joins: a client that names
    /// itself with a 60 KB key in a busy room costs gigabytes. Larger entries are refused
    /// with [`PresenceError::TooLarge`].
    pub max_entry_bytes: usize,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(1500),
            down_period: Duration::from_secs(30),
            diff_interval: Duration::from_millis(500),
            max_entry_bytes: 4096,
        }
    }
}

/// Why a presence operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresenceError {
    /// The same owner already tracks this key on this topic (use [`Presence::update`]).
    AlreadyTracked {
        /// The topic.
        topic: String,
        /// The key.
        key: String,
    },
    /// The owner does not track this key on this topic.
    NotTracked {
        /// The topic.
        topic: String,
        /// The key.
        key: String,
    },
    /// Metadata must be a JSON object.
    InvalidMeta,
    /// The key and metadata are larger than [`PresenceConfig::max_entry_bytes`].
    TooLarge {
        /// The entry's size: its key and its metadata as JSON.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for PresenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyTracked { topic, key } => {
                write!(f, "{key:?} is already tracked on {topic:?}")
            }
            Self::NotTracked { topic, key } => write!(f, "{key:?} is not tracked on {topic:?}"),
            Self::InvalidMeta => f.write_str("presence metadata must be a JSON object"),
            Self::TooLarge { bytes, limit } => {
                write!(f, "a presence entry of {bytes} bytes is over the limit of {limit}")
            }
        }
    }
}

impl std::error::Error for PresenceError {}

/// A node's presence tracker, reached through [`PubSub::presence`] or
/// [`ChannelSocket::presence`](crate::channel::ChannelSocket::presence). Cheap to create and
/// clone.
#[derive(Clone)]
pub struct Presence {
    pubsub: PubSub,
}

impl fmt::Debug for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presence").field("node", &self.pubsub.node()).finish()
    }
}

impl Presence {
    pub(crate) fn new(pubsub: PubSub) -> Self {
        Self { pubsub }
    }

    /// A group of presences owned by something other than a channel (a background worker):
    /// they leave when the returned value is dropped.
    pub fn tracking(&self) -> Tracking {
        Tracking { owner: self.tracker().next_owner(), pubsub: self.pubsub.clone() }
    }

    /// Every presence on `topic` across the cluster, as the `presence_state` payload.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    ///
    /// let pubsub = fawkes::PubSub::new("node-a");
    /// let presence = pubsub.presence();
    /// let worker = presence.tracking();
    /// let phx_ref = worker.track("room:lobby", "bot", json!({"kind": "bot"})).unwrap();
    /// assert_eq!(
    ///     presence.list("room:lobby"),
    ///     json!({"bot": {"metas": [{"kind": "bot", "phx_ref": phx_ref}]}})
    /// );
    /// drop(worker);
    /// assert_eq!(presence.list("room:lobby"), json!({}));
    /// ```
    pub fn list(&self, topic: &str) -> Value {
        self.tracker().lock().list(topic)
    }

    /// The `presence_state` frame of `topic` for clients speaking `vsn`, shared until the
    /// topic's next diff (see `Presence::push_state`).
    pub(crate) fn state_frame(&self, topic: &str, vsn: crate::serializer::Vsn) -> Frame {
        self.tracker().lock().snapshot(topic, vsn)
    }

    /// Sets the heartbeat interval and down period; takes effect for heartbeats from the next
    /// start of [`Presence::child_spec`]'s worker, and for down checks at once.
    pub fn configure(&self, config: PresenceConfig) {
        self.tracker().lock().config = config;
    }

    /// The nodes whose trackers this node hears from, by name.
    pub fn peers(&self) -> Vec<String> {
        let state = self.tracker().lock();
        let mut nodes: Vec<String> = state.peers.keys().map(|r| r.node.clone()).collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The worker that replicates this node's presences to the other nodes: heartbeats, state
    /// transfer, down detection, and a farewell on shutdown. An [`Endpoint`](crate::Endpoint)
    /// whose pubsub has a non-local adapter runs it under its supervisor.
    pub fn child_spec(&self) -> ChildSpec {
        let pubsub = self.pubsub.clone();
        ChildSpec::new("presence", move |token| replication::run(pubsub.clone(), token))
    }

    fn tracker(&self) -> &Tracker {
        self.pubsub.tracker()
    }
}

/// Presences that leave together when this value is dropped; a channel's own lives in its
/// [`ChannelSocket`](crate::channel::ChannelSocket).
///
/// # Examples
///
/// ```
/// use serde_json::json;
///
/// let pubsub = fawkes::PubSub::new("node-a");
/// let worker = pubsub.presence().tracking();
/// worker.track("room:1", "bot", json!({})).unwrap();
/// assert!(worker.track("room:1", "bot", json!({})).is_err());
/// worker.update("room:1", "bot", json!({"status": "away"})).unwrap();
/// worker.untrack("room:1", "bot");
/// assert_eq!(pubsub.presence().list("room:1"), json!({}));
/// ```
pub struct Tracking {
    owner: u64,
    pubsub: PubSub,
}

impl fmt::Debug for Tracking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracking").field("owner", &self.owner).finish()
    }
}

/// Refuses an entry larger than `limit`: its key and its metadata as JSON.
fn check_size(
    key: &str,
    meta: &serde_json::Map<String, Value>,
    limit: usize,
) -> Result<(), PresenceError> {
    /// Counts what is written, and stops once past the limit.
    struct Count(usize, usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            if self.0 > self.1 {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(key.len(), limit);
    if key.len() > limit || serde_json::to_writer(&mut count, meta).is_err() {
        return Err(PresenceError::TooLarge { bytes: count.0.max(key.len()), limit });
    }
    Ok(())
}

impl Tracking {
    /// Tracks `key` on `topic` with `meta` (a JSON object); returns its `phx_ref`.
    ///
    /// # Errors
    ///
    /// [`PresenceError::AlreadyTracked`] when this owner already tracks `key` on `topic`;
    /// [`PresenceError::InvalidMeta`] when `meta` is not an object; [`PresenceError::TooLarge`]
    /// past [`PresenceConfig::max_entry_bytes`].
    pub fn track(&self, topic: &str, key: &str, meta: Value) -> Result<String, PresenceError> {
        let Value::Object(meta) = meta else {
            return Err(PresenceError::InvalidMeta);
        };
        let tracker = self.pubsub.tracker();
        let mut state = tracker.lock();
        check_size(key, &meta, state.config.max_entry_bytes)?;
        if state.find(self.owner, topic, key).is_some() {
            return Err(PresenceError::AlreadyTracked { topic: topic.into(), key: key.into() });
        }
        let entry = Entry { topic: topic.into(), key: key.into(), meta, prev: None };
        let (counter, delta) = state.add(entry);
        state.owned.entry(self.owner).or_default().push(Owned {
            topic: topic.into(),
            key: key.into(),
            counter,
        });
        state.apply_local(&self.pubsub, &delta);
        Ok(crdt::phx_ref(&state.me, counter))
    }

    /// Replaces the metadata of `key` on `topic`; returns the new `phx_ref`.
    ///
    /// # Errors
    ///
    /// [`PresenceError::NotTracked`] when this owner does not track `key` on `topic`;
    /// [`PresenceError::InvalidMeta`] when `meta` is not an object; [`PresenceError::TooLarge`]
    /// past [`PresenceConfig::max_entry_bytes`].
    pub fn update(&self, topic: &str, key: &str, meta: Value) -> Result<String, PresenceError> {
        let Value::Object(meta) = meta else {
            return Err(PresenceError::InvalidMeta);
        };
        let tracker = self.pubsub.tracker();
        let mut state = tracker.lock();
        check_size(key, &meta, state.config.max_entry_bytes)?;
        let Some(index) = state.find(self.owner, topic, key) else {
            return Err(PresenceError::NotTracked { topic: topic.into(), key: key.into() });
        };
        let old = state.owned[&self.owner][index].counter;
        let prev = Some(crdt::phx_ref(&state.me, old));
        let (counter, mut delta) =
            state.add(Entry { topic: topic.into(), key: key.into(), meta, prev });
        delta.removes.push(old);
        if let Some(owned) = state.owned.get_mut(&self.owner) {
            owned[index].counter = counter;
        }
        state.apply_local(&self.pubsub, &delta);
        Ok(crdt::phx_ref(&state.me, counter))
    }

    /// Stops tracking `key` on `topic`; a no-op when it is not tracked.
    pub fn untrack(&self, topic: &str, key: &str) {
        let tracker = self.pubsub.tracker();
        let mut state = tracker.lock();
        let Some(index) = state.find(self.owner, topic, key) else {
            return;
        };
        let Some(owned) = state.owned.get_mut(&self.owner) else {
            return;
        };
        let removed = owned.swap_remove(index);
        if owned.is_empty() {
            state.owned.remove(&self.owner);
        }
        let mut delta = state.tick();
        delta.removes.push(removed.counter);
        state.apply_local(&self.pubsub, &delta);
    }
}

impl Drop for Tracking {
    fn drop(&mut self) {
        let tracker = self.pubsub.tracker();
        let mut state = tracker.lock();
        let Some(owned) = state.owned.remove(&self.owner) else {
            return;
        };
        let mut delta = state.tick();
        delta.removes.extend(owned.into_iter().map(|o| o.counter));
        state.apply_local(&self.pubsub, &delta);
    }
}

/// One presence a local owner tracks.
#[derive(Debug)]
struct Owned {
    topic: String,
    key: String,
    counter: u64,
}

/// What the tracker knows of another replica.
#[derive(Debug)]
struct Peer {
    last_heard: Instant,
    /// When its whole state was last asked for, so a gap asks once per heartbeat.
    asked: Option<Instant>,
}

/// A node's tracker state, inside its [`PubSub`].
pub(crate) struct Tracker {
    state: Mutex<TrackerState>,
    next_owner: AtomicU64,
    /// Messages from the other nodes' trackers, for the replication worker.
    inbox: Arc<crate::mailbox::Mailbox<Arc<crate::pubsub::Broadcast>>>,
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker").finish_non_exhaustive()
    }
}

struct TrackerState {
    me: Replica,
    clock: u64,
    crdt: crdt::State,
    owned: HashMap<u64, Vec<Owned>>,
    peers: HashMap<Replica, Peer>,
    /// Replicas reported down or gone, and when; their messages are refused.
    down: HashMap<Replica, Instant>,
    config: PresenceConfig,
    diffs: Diffs,
    /// `presence_state` frames of topics, by serializer version, valid until the topic's next
    /// diff is pushed.
    snapshots: HashMap<String, [Option<Frame>; 2]>,
}

/// Diffs waiting for their topic's interval to end (see [`PresenceConfig::diff_interval`]).
#[derive(Default)]
struct Diffs {
    topics: HashMap<String, TopicDiffs>,
    /// Whether a task is on its way to push what waits.
    flushing: bool,
}

struct TopicDiffs {
    last_push: Instant,
    waiting: Option<JoinsAndLeaves>,
}

impl TopicDiffs {
    fn due(&self, interval: Duration) -> Option<Instant> {
        self.waiting.as_ref().map(|_| self.last_push + interval)
    }
}

impl crate::pubsub::NodeService for Tracker {
    fn topic(&self) -> &'static str {
        TOPIC
    }

    /// Queues a message from another node's tracker.
    fn inbox(&self, msg: Arc<crate::pubsub::Broadcast>) {
        if self.inbox.push_bounded(msg, INBOX_LIMIT).is_err() {
            tracing::warn!("presence: inbox full, message dropped");
        }
    }
}

impl PubSub {
    /// This node's presence tracker.
    pub fn presence(&self) -> Presence {
        Presence::new(self.clone())
    }

    pub(crate) fn tracker(&self) -> &Tracker {
        self.node_service(Tracker::new)
    }
}

impl Tracker {
    pub(crate) fn new(node: &str) -> Self {
        Self {
            state: Mutex::new(TrackerState {
                me: Replica { node: node.to_owned(), id: rand::random() },
                clock: 0,
                crdt: crdt::State::default(),
                owned: HashMap::new(),
                peers: HashMap::new(),
                down: HashMap::new(),
                config: PresenceConfig::default(),
                diffs: Diffs::default(),
                snapshots: HashMap::new(),
            }),
            next_owner: AtomicU64::new(1),
            inbox: crate::mailbox::Mailbox::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TrackerState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn next_owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed)
    }
}

impl TrackerState {
    fn list(&self, topic: &str) -> Value {
        let mut keys: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (phx_ref, entry) in self.crdt.topic(topic) {
            keys.entry(&entry.key).or_default().push(meta_json(entry, phx_ref));
        }
        Value::Object(
            keys.into_iter().map(|(k, metas)| (k.to_owned(), json!({ "metas": metas }))).collect(),
        )
    }

    /// The topic's `presence_state` frame. A snapshot serves until the topic's next diff is
    /// pushed: whoever is subscribed to the topic when it is asked for gets every change after
    /// it in that diff (changes not yet pushed wait in it), so snapshot and diffs never miss
    /// one.
    fn snapshot(&mut self, topic: &str, vsn: Vsn) -> Frame {
        let slot = usize::from(vsn == Vsn::V2);
        if let Some(frame) = self.snapshots.get(topic).and_then(|frames| frames[slot].clone()) {
            return frame;
        }
        let json = serde_json::to_string(&self.list(topic)).unwrap_or_default();
        let frame = serializer::encode_push_json(vsn, None, topic, "presence_state", &json);
        self.snapshots.entry(topic.to_owned()).or_default()[slot] = Some(frame.clone());
        frame
    }

    fn find(&self, owner: u64, topic: &str, key: &str) -> Option<usize> {
        self.owned.get(&owner)?.iter().position(|o| o.topic == topic && o.key == key)
    }

    /// An empty delta of this replica that takes the next counter, so that a receiver that
    /// misses it sees a gap.
    fn tick(&mut self) -> Delta {
        self.clock += 1;
        let mut delta = Delta::new(self.me.clone());
        delta.removes.push(self.clock);
        delta
    }

    /// A delta adding `entry` under this replica's next dot.
    fn add(&mut self, entry: Entry) -> (u64, Delta) {
        self.clock += 1;
        let mut delta = Delta::new(self.me.clone());
        delta.adds.push((self.clock, entry));
        (self.clock, delta)
    }

    /// Applies a delta of this replica here, tells local subscribers, and sends it to the
    /// other nodes. The tracker lock is held throughout, so diffs leave in the order the
    /// changes were made.
    fn apply_local(&mut self, pubsub: &PubSub, delta: &Delta) {
        let changes = self.crdt.join(delta);
        self.push_diffs(pubsub, &changes);
        pubsub.broadcast_remote(None, TOPIC, "delta", to_json(delta));
    }

    /// This replica was reported down elsewhere: carry on as a new replica, every local
    /// presence re-added under a new dot, so the others take them back.
    fn renew(&mut self, pubsub: &PubSub) {
        let fresh = Replica { node: self.me.node.clone(), id: rand::random() };
        let old = std::mem::replace(&mut self.me, fresh);
        tracing::warn!(node = %old.node, "presence: this node was reported down; rejoining");
        let mut changes = self.crdt.forget(&old);
        // The live entries come back from what forgetting the old part removed.
        let old_entries: HashMap<u64, Arc<Entry>> =
            changes.iter().map(|c| (c.counter, c.entry.clone())).collect();
        self.clock = 0;
        let mut delta = Delta::new(self.me.clone());
        let mut owners: Vec<_> = self.owned.iter_mut().collect();
        owners.sort_by_key(|(owner, _)| **owner);
        for owned in owners.into_iter().flat_map(|(_, owned)| owned.iter_mut()) {
            let Some(entry) = old_entries.get(&owned.counter) else { continue };
            self.clock += 1;
            owned.counter = self.clock;
            delta.adds.push((self.clock, Entry { prev: None, ..(**entry).clone() }));
        }
        delta.upto = self.clock;
        changes.extend(self.crdt.join(&delta));
        self.push_diffs(pubsub, &changes);
        pubsub.broadcast_remote(None, TOPIC, "state", to_json(&delta));
    }
}

/// A diff's joins and leaves, by key.
type JoinsAndLeaves = (Map<String, Value>, Map<String, Value>);

impl TrackerState {
    /// Pushes one `presence_diff` per topic that changed to the local subscribers: at once on
    /// a topic that has been quiet for the diff interval, else merged into the diff that waits
    /// for the interval's end. Called under the tracker lock, so a topic's diffs leave in the
    /// order its changes were made.
    fn push_diffs(&mut self, pubsub: &PubSub, changes: &[Change]) {
        let mut topics: BTreeMap<&str, JoinsAndLeaves> = BTreeMap::new();
        for change in changes {
            let (joins, leaves) = topics.entry(&change.entry.topic).or_default();
            add_meta(if change.joined { joins } else { leaves }, change);
        }
        let interval = self.config.diff_interval;
        let now = Instant::now();
        let mut wait = false;
        for (topic, diff) in topics {
            let entry = match self.diffs.topics.get_mut(topic) {
                Some(entry) => entry,
                None => self.diffs.topics.entry(topic.to_owned()).or_insert(TopicDiffs {
                    last_push: now.checked_sub(interval).unwrap_or(now),
                    waiting: None,
                }),
            };
            match &mut entry.waiting {
                None if now >= entry.last_push + interval => {
                    entry.last_push = now;
                    self.snapshots.remove(topic);
                    push_diff(pubsub, topic, diff);
                }
                None => {
                    entry.waiting = Some(diff);
                    wait = true;
                }
                Some(waiting) => merge(waiting, diff),
            }
        }
        if wait && !self.diffs.flushing {
            self.diffs.flushing = true;
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(flush(pubsub.clone()))),
                // Without a runtime nothing could wait: push now.
                Err(_) => {
                    self.flush_due(pubsub, None);
                }
            }
        }
        // Topics that went quiet are forgotten, so the map holds only the busy ones.
        if self.diffs.topics.len() > 64 && !self.diffs.flushing {
            self.diffs.topics.retain(|_, t| now < t.last_push + interval);
        }
    }

    /// Pushes the diffs due by `now` (all of them when `None`) and returns when the next one
    /// is due; forgets topics quiet for a whole interval.
    fn flush_due(&mut self, pubsub: &PubSub, now: Option<Instant>) -> Option<Instant> {
        let interval = self.config.diff_interval;
        let pushed_at = Instant::now();
        for (topic, entry) in &mut self.diffs.topics {
            if entry.due(interval).is_some_and(|due| now.is_none_or(|now| due <= now)) {
                if let Some(diff) = entry.waiting.take() {
                    entry.last_push = pushed_at;
                    self.snapshots.remove(topic.as_str());
                    push_diff(pubsub, topic, diff);
                }
            }
        }
        self.diffs.topics.retain(|_, t| t.waiting.is_some() || pushed_at < t.last_push + interval);
        let next = self.diffs.topics.values().filter_map(|t| t.due(interval)).min();
        if next.is_none() {
            self.diffs.flushing = false;
        }
        next
    }
}

/// Pushes the waiting diffs as their intervals end, until none waits.
async fn flush(pubsub: PubSub) {
    loop {
        let next = pubsub.tracker().lock().flush_due(&pubsub, Some(Instant::now()));
        let Some(next) = next else { return };
        tokio::time::sleep_until(next.into()).await;
    }
}

fn push_diff(pubsub: &PubSub, topic: &str, (joins, leaves): JoinsAndLeaves) {
    pubsub.local_broadcast(topic, "presence_diff", json!({ "joins": joins, "leaves": leaves }));
}

fn add_meta(side: &mut Map<String, Value>, change: &Change) {
    let metas = side
        .entry(change.entry.key.clone())
        .or_insert_with(|| json!({ "metas": [] }))
        .get_mut("metas")
        .and_then(Value::as_array_mut);
    if let Some(metas) = metas {
        metas.push(meta_json(&change.entry, change.phx_ref.clone()));
    }
}

/// Adds a later diff of a topic to the one waiting. Clients apply a diff's joins before its
/// leaves, and every meta has its own `phx_ref`, so a presence that joined and left within
/// one interval is in both and ends up gone, as it should.
fn merge(waiting: &mut JoinsAndLeaves, (joins, leaves): JoinsAndLeaves) {
    for (into, from) in [(&mut waiting.0, joins), (&mut waiting.1, leaves)] {
        for (key, value) in from {
            let metas = match value {
                Value::Object(mut presence) => match presence.remove("metas") {
                    Some(Value::Array(metas)) => metas,
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            match into.get_mut(&key).and_then(|v| v.get_mut("metas")).and_then(Value::as_array_mut)
            {
                Some(existing) => existing.extend(metas),
                None => {
                    into.insert(key, json!({ "metas": metas }));
                }
            }
        }
    }
}

fn meta_json(entry: &Entry, phx_ref: String) -> Value {
    let mut meta = entry.meta.clone();
    meta.insert("phx_ref".into(), Value::String(phx_ref));
    if let Some(prev) = &entry.prev {
        meta.insert("phx_ref_prev".into(), Value::String(prev.clone()));
    }
    Value::Object(meta)
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
