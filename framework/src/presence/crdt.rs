//! The replicated presence state: an observed-remove set with per-replica clocks.
//!
//! Every entry is created by exactly one replica (a node's tracker, for one run of the
//! process) and named by a *dot*: that replica and a counter it increments per entry. A
//! replica never reuses a dot and never changes an entry; an update is a remove of the old dot
//! and an add of a new one. Next to its entries each state keeps a *causal context*: every dot
//! it has seen, added or removed, as a contiguous prefix per replica plus a cloud of dots seen
//! out of order.
//!
//! Joining two states (Almeida et al., "Delta state replicated data types", the add-wins
//! observed-remove set) keeps an entry when both have it, or when one has it and the other
//! has not seen its dot; contexts are united. The join is commutative, associative and
//! idempotent, so deltas may arrive in any order, twice, or be replaced by a whole state, and
//! every replica converges to the same entries. The property tests in `tests.rs` check exactly
//! that.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One run of one node's tracker; a restarted process is a new replica.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Replica {
    /// The node's name, where direct messages for this replica go.
    pub(crate) node: String,
    /// Random per run.
    pub(crate) id: u64,
}

/// A tracked presence: who (`key`) is where (`topic`), with what metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) topic: String,
    pub(crate) key: String,
    pub(crate) meta: Map<String, Value>,
    /// The `phx_ref` this entry replaced, for an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) prev: Option<String>,
}

/// A change a join made to the visible entries.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) phx_ref: String,
    pub(crate) counter: u64,
    pub(crate) entry: Arc<Entry>,
    pub(crate) joined: bool,
}

/// What one replica created, as seen here.
#[derive(Debug, Clone, Default, PartialEq)]
struct Part {
    entries: BTreeMap<u64, Arc<Entry>>,
    /// Every counter up to this one has been seen.
    seen: u64,
    /// Counters seen above `seen + 1`.
    cloud: BTreeSet<u64>,
}

impl Part {
    fn has_seen(&self, counter: u64) -> bool {
        counter <= self.seen || self.cloud.contains(&counter)
    }

    fn see(&mut self, counter: u64) {
        if counter > self.seen {
            self.cloud.insert(counter);
        }
        self.compact();
    }

    fn see_upto(&mut self, upto: u64) {
        if upto > self.seen {
            self.seen = upto;
            self.cloud.retain(|&c| c > upto);
        }
        self.compact();
    }

    fn compact(&mut self) {
        // A delta may claim every counter up to `u64::MAX`: nothing follows that one.
        while let Some(next) = self.seen.checked_add(1) {
            if !self.cloud.remove(&next) {
                break;
            }
            self.seen = next;
        }
    }
}

/// A state or a delta of one replica's part, as carried between nodes.
///
/// Every operation takes a fresh counter, a removal too (a dot seen with no entry): so a
/// replica's clock counts operations, and a receiver whose context stops short of a
/// heartbeat's clock knows it missed one, whatever it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Delta {
    pub(crate) replica: Replica,
    /// Entries added, by counter.
    #[serde(default)]
    pub(crate) adds: Vec<(u64, Entry)>,
    /// Counters removed.
    #[serde(default)]
    pub(crate) removes: Vec<u64>,
    /// For a whole state: every counter up to this one is accounted for (present in `adds`
    /// or removed).
    #[serde(default)]
    pub(crate) upto: u64,
}

impl Delta {
    pub(crate) fn new(replica: Replica) -> Self {
        Self { replica, adds: Vec::new(), removes: Vec::new(), upto: 0 }
    }

    fn covers(&self, counter: u64) -> bool {
        counter <= self.upto
            || self.removes.contains(&counter)
            || self.adds.iter().any(|(c, _)| *c == counter)
    }
}

/// Every replica's entries and the dots seen of each.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct State {
    parts: BTreeMap<Replica, Part>,
    /// topic → dots of its visible entries, for `list` without a scan.
    by_topic: BTreeMap<String, BTreeSet<(Replica, u64)>>,
}

impl State {
    /// Joins a delta (or a whole state) of one replica; returns what became visible or
    /// stopped being visible.
    pub(crate) fn join(&mut self, delta: &Delta) -> Vec<Change> {
        let mut changes = Vec::new();
        let part = self.parts.entry(delta.replica.clone()).or_default();
        // Entries we have that the delta has seen and no longer holds were removed there.
        let gone: Vec<u64> = part
            .entries
            .keys()
            .copied()
            .filter(|&c| delta.covers(c) && !delta.adds.iter().any(|(a, _)| *a == c))
            .collect();
        for counter in gone {
            if let Some(entry) = part.entries.remove(&counter) {
                changes.push(change(&delta.replica, counter, entry, false));
            }
        }
        // Entries the delta holds whose dots we have not seen are new here.
        for (counter, entry) in &delta.adds {
            if !part.has_seen(*counter) && !part.entries.contains_key(counter) {
                let entry = Arc::new(entry.clone());
                part.entries.insert(*counter, entry.clone());
                changes.push(change(&delta.replica, *counter, entry, true));
            }
        }
        part.see_upto(delta.upto);
        for counter in delta.adds.iter().map(|(c, _)| *c).chain(delta.removes.iter().copied()) {
            part.see(counter);
        }
        self.index(&delta.replica, &changes);
        changes
    }

    /// Drops every entry of `replica` (a node reported down) while remembering its dots, so
    /// no stale copy of them can come back through a later join.
    pub(crate) fn drop_replica(&mut self, replica: &Replica) -> Vec<Change> {
        let Some(part) = self.parts.get_mut(replica) else {
            return Vec::new();
        };
        let changes: Vec<Change> = std::mem::take(&mut part.entries)
            .into_iter()
            .map(|(counter, entry)| change(replica, counter, entry, false))
            .collect();
        self.index(replica, &changes);
        changes
    }

    /// Forgets a replica entirely, context included: for one reported down long ago, whose
    /// messages are refused anyway.
    pub(crate) fn forget(&mut self, replica: &Replica) -> Vec<Change> {
        let changes = self.drop_replica(replica);
        self.parts.remove(replica);
        changes
    }

    /// How many entries each replica holds now.
    pub(crate) fn counts(&self) -> impl Iterator<Item = (&Replica, usize)> {
        self.parts.iter().map(|(replica, part)| (replica, part.entries.len()))
    }

    /// The whole part of `replica`, as a delta another node can join.
    pub(crate) fn part_of(&self, replica: &Replica) -> Delta {
        let mut delta = Delta::new(replica.clone());
        if let Some(part) = self.parts.get(replica) {
            delta.adds = part.entries.iter().map(|(c, e)| (*c, (**e).clone())).collect();
            delta.upto = part.seen;
            // Dots seen out of order and no longer present are context too.
            delta.removes =
                part.cloud.iter().copied().filter(|c| !part.entries.contains_key(c)).collect();
        }
        delta
    }

    /// The highest counter of `replica` seen contiguously.
    pub(crate) fn seen(&self, replica: &Replica) -> u64 {
        self.parts.get(replica).map_or(0, |p| p.seen)
    }

    /// Whether dots of `replica` were seen out of order (a delta went missing).
    pub(crate) fn has_gap(&self, replica: &Replica) -> bool {
        self.parts.get(replica).is_some_and(|p| !p.cloud.is_empty())
    }

    /// The visible entries of `topic`, in dot order, with their `phx_ref`s.
    pub(crate) fn topic(&self, topic: &str) -> impl Iterator<Item = (String, &Arc<Entry>)> {
        self.by_topic.get(topic).into_iter().flatten().filter_map(|(replica, counter)| {
            let entry = self.parts.get(replica)?.entries.get(counter)?;
            Some((phx_ref(replica, *counter), entry))
        })
    }

    /// Every visible entry with its `phx_ref`, in dot order.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn entries(&self) -> Vec<(String, Entry)> {
        self.parts
            .iter()
            .flat_map(|(r, p)| p.entries.iter().map(move |(c, e)| (phx_ref(r, *c), (**e).clone())))
            .collect()
    }

    fn index(&mut self, replica: &Replica, changes: &[Change]) {
        for change in changes {
            let counter = change.counter;
            let dots = self.by_topic.entry(change.entry.topic.clone()).or_default();
            if change.joined {
                dots.insert((replica.clone(), counter));
            } else {
                dots.remove(&(replica.clone(), counter));
                if dots.is_empty() {
                    self.by_topic.remove(&change.entry.topic);
                }
            }
        }
    }
}

fn change(replica: &Replica, counter: u64, entry: Arc<Entry>, joined: bool) -> Change {
    Change { phx_ref: phx_ref(replica, counter), counter, entry, joined }
}

/// A dot as the client sees it: URL-safe base64 of the replica id and the counter, unique
/// across the cluster and stable for the entry's life.
pub(crate) fn phx_ref(replica: &Replica, counter: u64) -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&replica.id.to_be_bytes());
    bytes[8..].copy_from_slice(&counter.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
