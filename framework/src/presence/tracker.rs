//! The tracker: this node's presences and the cluster's, the replicated state, and the diffs
//! it pushes to the topics' subscribers. The public API in `mod.rs` works through it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::crdt::{self, Change, Delta, Entry, Replica};
use super::{PresenceConfig, TOPIC};
use crate::serializer::{self, Frame, Vsn};
use crate::PubSub;

/// Messages from other nodes waiting for the replication worker; past this, new ones are
/// dropped (a heartbeat repairs what they carried).
pub(super) const INBOX_LIMIT: usize = 100_000;

/// One presence a local owner tracks.
#[derive(Debug)]
pub(super) struct Owned {
    pub(super) topic: String,
    pub(super) key: String,
    pub(super) counter: u64,
}

/// What the tracker knows of another replica.
#[derive(Debug)]
pub(super) struct Peer {
    pub(super) last_heard: Instant,
    /// When its whole state was last asked for, so a gap asks once per heartbeat.
    pub(super) asked: Option<Instant>,
}

/// A node's tracker state, inside its [`PubSub`].
pub(crate) struct Tracker {
    pub(super) state: Mutex<TrackerState>,
    pub(super) next_owner: AtomicU64,
    /// Messages from the other nodes' trackers, for the replication worker.
    pub(super) inbox: Arc<crate::mailbox::Mailbox<Arc<crate::pubsub::Broadcast>>>,
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker").finish_non_exhaustive()
    }
}

pub(super) struct TrackerState {
    pub(super) me: Replica,
    pub(super) clock: u64,
    pub(super) crdt: crdt::State,
    pub(super) owned: HashMap<u64, Vec<Owned>>,
    pub(super) peers: HashMap<Replica, Peer>,
    /// Replicas reported down or gone, and when; their messages are refused.
    pub(super) down: HashMap<Replica, Instant>,
    pub(super) config: PresenceConfig,
    pub(super) diffs: Diffs,
    /// `presence_state` frames of topics, by serializer version, valid until the topic's next
    /// diff is pushed.
    pub(super) snapshots: HashMap<String, [Option<Frame>; 2]>,
}

/// Diffs waiting for their topic's interval to end (see [`PresenceConfig::diff_interval`]).
#[derive(Default)]
pub(super) struct Diffs {
    pub(super) topics: HashMap<String, TopicDiffs>,
    /// Whether a task is on its way to push what waits.
    pub(super) flushing: bool,
}

pub(super) struct TopicDiffs {
    pub(super) last_push: Instant,
    pub(super) waiting: Option<JoinsAndLeaves>,
}

impl TopicDiffs {
    pub(super) fn due(&self, interval: Duration) -> Option<Instant> {
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

    pub(super) fn lock(&self) -> MutexGuard<'_, TrackerState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn next_owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed)
    }
}

impl TrackerState {
    pub(super) fn list(&self, topic: &str) -> Value {
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
    pub(super) fn snapshot(&mut self, topic: &str, vsn: Vsn) -> Frame {
        let slot = usize::from(vsn == Vsn::V2);
        if let Some(frame) = self.snapshots.get(topic).and_then(|frames| frames[slot].clone()) {
            return frame;
        }
        let json = serde_json::to_string(&self.list(topic)).unwrap_or_default();
        let frame = serializer::encode_push_json(vsn, None, topic, "presence_state", &json);
        self.snapshots.entry(topic.to_owned()).or_default()[slot] = Some(frame.clone());
        frame
    }

    pub(super) fn find(&self, owner: u64, topic: &str, key: &str) -> Option<usize> {
        self.owned.get(&owner)?.iter().position(|o| o.topic == topic && o.key == key)
    }

    /// An empty delta of this replica that takes the next counter, so that a receiver that
    /// misses it sees a gap.
    pub(super) fn tick(&mut self) -> Delta {
        self.clock += 1;
        let mut delta = Delta::new(self.me.clone());
        delta.removes.push(self.clock);
        delta
    }

    /// A delta adding `entry` under this replica's next dot.
    pub(super) fn add(&mut self, entry: Entry) -> (u64, Delta) {
        self.clock += 1;
        let mut delta = Delta::new(self.me.clone());
        delta.adds.push((self.clock, entry));
        (self.clock, delta)
    }

    /// Applies a delta of this replica here, tells local subscribers, and sends it to the
    /// other nodes. The tracker lock is held throughout, so diffs leave in the order the
    /// changes were made.
    pub(super) fn apply_local(&mut self, pubsub: &PubSub, delta: &Delta) {
        let changes = self.crdt.join(delta);
        self.push_diffs(pubsub, &changes);
        pubsub.broadcast_remote(None, TOPIC, "delta", to_json(delta));
    }

    /// This replica was reported down elsewhere: carry on as a new replica, every local
    /// presence re-added under a new dot, so the others take them back.
    pub(super) fn renew(&mut self, pubsub: &PubSub) {
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
pub(super) type JoinsAndLeaves = (Map<String, Value>, Map<String, Value>);

impl TrackerState {
    /// Pushes one `presence_diff` per topic that changed to the local subscribers: at once on
    /// a topic that has been quiet for the diff interval, else merged into the diff that waits
    /// for the interval's end. Called under the tracker lock, so a topic's diffs leave in the
    /// order its changes were made.
    pub(super) fn push_diffs(&mut self, pubsub: &PubSub, changes: &[Change]) {
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
    pub(super) fn flush_due(&mut self, pubsub: &PubSub, now: Option<Instant>) -> Option<Instant> {
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
        tokio::time::sleep_until(next).await;
    }
}

pub(super) fn push_diff(pubsub: &PubSub, topic: &str, (joins, leaves): JoinsAndLeaves) {
    pubsub.local_broadcast(topic, "presence_diff", json!({ "joins": joins, "leaves": leaves }));
}

pub(super) fn add_meta(side: &mut Map<String, Value>, change: &Change) {
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
pub(super) fn merge(waiting: &mut JoinsAndLeaves, (joins, leaves): JoinsAndLeaves) {
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

pub(super) fn meta_json(entry: &Entry, phx_ref: String) -> Value {
    let mut meta = entry.meta.clone();
    meta.insert("phx_ref".into(), Value::String(phx_ref));
    if let Some(prev) = &entry.prev {
        meta.insert("phx_ref_prev".into(), Value::String(prev.clone()));
    }
    Value::Object(meta)
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
