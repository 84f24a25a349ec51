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
//!     type Info = AfterJoin;
//!
//!     async fn join(_topic: &str, _payload: Payload, socket: &mut ChannelSocket) -> Result<(Self, Value), Value> {
//!         // Pushing from `join` would race the join reply: do it right after.
//!         let _ = socket.handle().send(AfterJoin);
//!         Ok((Room, json!({})))
//!     }
//!
//!     async fn handle_info(&mut self, AfterJoin: AfterJoin, socket: &mut ChannelSocket) {
//!         let presence = socket.presence();
//!         presence.push_state(socket);
//!         presence.track(socket, "alice", json!({"online_at": 1})).unwrap();
//!     }
//!
//!     async fn handle_in(&mut self, _event: &str, _payload: Payload, _socket: &mut ChannelSocket) -> Reply {
//!         Reply::NoReply
//!     }
//! }
//! ```

pub(crate) mod crdt;
mod replication;
mod tracker;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::serializer::Frame;
use crate::supervisor::ChildSpec;
use crate::PubSub;
use crdt::Entry;
use tracker::{Owned, Tracker};

/// The pubsub topic trackers talk on. Messages on it are handed to the tracker by
/// [`PubSub::receive_remote`] and never reach the topic's subscribers.
pub(crate) const TOPIC: &str = "phx_presence";

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

/// A node of the cluster as [`Presence::nodes`] sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct NodePresences {
    /// The node's name ([`PubSub::node`]).
    pub name: String,
    /// How many presences it tracks, over every topic.
    pub presences: usize,
    /// Whether it is this node.
    pub local: bool,
}

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
    pub fn group(&self) -> PresenceGroup {
        PresenceGroup { owner: self.tracker().next_owner(), pubsub: self.pubsub.clone() }
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
    /// let worker = presence.group();
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

    /// This node and the nodes it hears from, each with how many presences it tracks now
    /// (over every topic), sorted by name; this node's entry has `local` set.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    ///
    /// let pubsub = fawkes::PubSub::new("node-a");
    /// let worker = pubsub.presence().group();
    /// worker.track("room:1", "ada", json!({})).unwrap();
    /// worker.track("room:2", "ada", json!({})).unwrap();
    /// let nodes = pubsub.presence().nodes();
    /// assert_eq!(nodes.len(), 1);
    /// assert_eq!((nodes[0].name.as_str(), nodes[0].presences, nodes[0].local), ("node-a", 2, true));
    /// ```
    pub fn nodes(&self) -> Vec<NodePresences> {
        let state = self.tracker().lock();
        let mut nodes: std::collections::BTreeMap<&str, NodePresences> =
            std::collections::BTreeMap::new();
        let me = std::iter::once((&state.me.node, true));
        for (name, local) in me.chain(state.peers.keys().map(|r| (&r.node, false))) {
            let entry = nodes.entry(name).or_insert_with(|| NodePresences {
                name: name.clone(),
                presences: 0,
                local,
            });
            entry.local |= local;
        }
        for (replica, count) in state.crdt.counts() {
            // A replica reported down keeps its (empty) part: only live ones are listed.
            if let Some(entry) = nodes.get_mut(replica.node.as_str()) {
                entry.presences += count;
            }
        }
        nodes.into_values().collect()
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
/// let worker = pubsub.presence().group();
/// worker.track("room:1", "bot", json!({})).unwrap();
/// assert!(worker.track("room:1", "bot", json!({})).is_err());
/// worker.update("room:1", "bot", json!({"status": "away"})).unwrap();
/// worker.untrack("room:1", "bot");
/// assert_eq!(pubsub.presence().list("room:1"), json!({}));
/// ```
pub struct PresenceGroup {
    owner: u64,
    pubsub: PubSub,
}

impl fmt::Debug for PresenceGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresenceGroup").field("owner", &self.owner).finish()
    }
}

/// Refuses an entry larger than `limit`: its key and its metadata as JSON.
fn check_size(
    key: &str,
    meta: &serde_json::Map<String, Value>,
    limit: usize,
) -> Result<(), PresenceError> {
    let Some(room) = limit.checked_sub(key.len()) else {
        return Err(PresenceError::TooLarge { bytes: key.len(), limit });
    };
    match crate::serializer::json_len(meta, room) {
        Ok(_) => Ok(()),
        Err(written) => Err(PresenceError::TooLarge { bytes: key.len() + written, limit }),
    }
}

impl PresenceGroup {
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

impl Drop for PresenceGroup {
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

impl PubSub {
    /// This node's presence tracker.
    pub fn presence(&self) -> Presence {
        Presence::new(self.clone())
    }

    pub(crate) fn tracker(&self) -> &Tracker {
        self.node_service(Tracker::new)
    }
}
