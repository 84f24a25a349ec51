//! Keeping the trackers of all nodes in step, over the pubsub adapter.
//!
//! Messages on the `phx_presence` topic, JSON payloads, never delivered to their sender (and,
//! on arrival, handed to the tracker's own inbox rather than to the topic's subscribers):
//! - `delta`: what one local operation changed (a [`Delta`]), sent as it happens;
//! - `state`: a replica's whole part, sent on request or after a rejoin;
//! - `heartbeat`: `{replica, clock}` every heartbeat interval; a receiver that has not seen
//!   every dot up to `clock` asks for the whole state;
//! - `request`: `{from}`, asking the receivers for their own parts (sent directly back);
//! - `leave`: `{replica}`, a graceful farewell: its presences leave at once;
//! - `down`: `{replica}`, sent directly to a replica that was reported down and still talks,
//!   so it rejoins under a new identity.

use std::convert::Infallible;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::crdt::{Delta, Replica};
use super::tracker::{to_json, Peer, TrackerState};
use super::TOPIC;
use crate::pubsub::Broadcast;
use crate::PubSub;

#[derive(Serialize, Deserialize)]
struct Heartbeat {
    replica: Replica,
    clock: u64,
}

#[derive(Serialize, Deserialize)]
struct About {
    replica: Replica,
}

/// Tombstones of replicas reported down are kept this long (their messages refused), then
/// forgotten.
const TOMBSTONE_TTL: Duration = Duration::from_secs(3600);

pub(super) async fn run(pubsub: PubSub, token: CancellationToken) -> Result<(), Infallible> {
    let inbox = pubsub.tracker().inbox.clone();
    let interval = {
        let mut state = pubsub.tracker().lock();
        // Ask every node for its part, and announce this one, so a late joiner converges
        // without waiting for heartbeats.
        let me = state.me.clone();
        pubsub.broadcast_remote(None, TOPIC, "request", to_json(&About { replica: me.clone() }));
        heartbeat(&pubsub, &mut state);
        state.config.heartbeat_interval
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => {
                let state = pubsub.tracker().lock();
                pubsub.broadcast_remote(None, TOPIC, "leave", to_json(&About { replica: state.me.clone() }));
                tracing::debug!(node = %state.me.node, "presence: left the cluster");
                return Ok(());
            }
            msg = inbox.recv() => match msg {
                Some(msg) => receive(&pubsub, &msg),
                None => return Ok(()),
            },
            _ = ticks.tick() => {
                let mut state = pubsub.tracker().lock();
                heartbeat(&pubsub, &mut state);
                check_down(&pubsub, &mut state);
            }
        }
    }
}

fn heartbeat(pubsub: &PubSub, state: &mut TrackerState) {
    let beat = Heartbeat { replica: state.me.clone(), clock: state.clock };
    pubsub.broadcast_remote(None, TOPIC, "heartbeat", to_json(&beat));
}

/// Reports down the replicas silent for the down period, and forgets old tombstones.
fn check_down(pubsub: &PubSub, state: &mut TrackerState) {
    let now = Instant::now();
    let down_period = state.config.down_period;
    let silent: Vec<Replica> = state
        .peers
        .iter()
        .filter(|(_, peer)| now.duration_since(peer.last_heard) > down_period)
        .map(|(replica, _)| replica.clone())
        .collect();
    for replica in silent {
        tracing::warn!(node = %replica.node, ?down_period, "presence: node down, its presences leave");
        state.peers.remove(&replica);
        let changes = state.crdt.drop_replica(&replica);
        state.push_diffs(pubsub, &changes);
        state.down.insert(replica, now);
    }
    let expired: Vec<Replica> = state
        .down
        .iter()
        .filter(|(_, since)| now.duration_since(**since) > TOMBSTONE_TTL.max(down_period * 10))
        .map(|(replica, _)| replica.clone())
        .collect();
    for replica in expired {
        state.down.remove(&replica);
        let changes = state.crdt.forget(&replica);
        state.push_diffs(pubsub, &changes);
    }
}

/// Handles one message from another node.
pub(super) fn receive(pubsub: &PubSub, msg: &Broadcast) {
    let Some(payload) = msg.payload().as_json() else {
        return;
    };
    let mut state = pubsub.tracker().lock();
    let result = match msg.event() {
        "delta" | "state" => parse::<Delta>(payload).map(|delta| {
            if heard(pubsub, &mut state, &delta.replica) {
                let changes = state.crdt.join(&delta);
                state.push_diffs(pubsub, &changes);
                if state.crdt.has_gap(&delta.replica) {
                    ask(pubsub, &mut state, &delta.replica);
                }
            }
        }),
        "heartbeat" => parse::<Heartbeat>(payload).map(|beat| {
            if heard(pubsub, &mut state, &beat.replica)
                && (state.crdt.seen(&beat.replica) < beat.clock
                    || state.crdt.has_gap(&beat.replica))
            {
                ask(pubsub, &mut state, &beat.replica);
            }
        }),
        "request" => parse::<About>(payload).map(|about| {
            if heard(pubsub, &mut state, &about.replica) {
                let part = state.crdt.part_of(&state.me);
                pubsub.broadcast_remote(Some(&about.replica.node), TOPIC, "state", to_json(&part));
            }
        }),
        "leave" => parse::<About>(payload).map(|about| {
            if about.replica != state.me {
                state.peers.remove(&about.replica);
                let changes = state.crdt.drop_replica(&about.replica);
                state.push_diffs(pubsub, &changes);
                state.down.insert(about.replica, Instant::now());
            }
        }),
        "down" => parse::<About>(payload).map(|about| {
            if about.replica == state.me {
                state.renew(pubsub);
            }
        }),
        _ => Ok(()),
    };
    if let Err(err) = result {
        tracing::warn!(event = msg.event(), error = %err, "presence: malformed message ignored");
    }
}

/// Records that `replica` spoke; false (after telling it so) when it was reported down.
fn heard(pubsub: &PubSub, state: &mut TrackerState, replica: &Replica) -> bool {
    if *replica == state.me {
        return false;
    }
    if state.down.contains_key(replica) {
        let about = About { replica: replica.clone() };
        pubsub.broadcast_remote(Some(&replica.node), TOPIC, "down", to_json(&about));
        return false;
    }
    state
        .peers
        .entry(replica.clone())
        .and_modify(|peer| peer.last_heard = Instant::now())
        .or_insert(Peer { last_heard: Instant::now(), asked: None });
    true
}

/// Asks `replica` for its whole part, at most once per heartbeat interval.
fn ask(pubsub: &PubSub, state: &mut TrackerState, replica: &Replica) {
    let interval = state.config.heartbeat_interval;
    let me = state.me.clone();
    let Some(peer) = state.peers.get_mut(replica) else {
        return;
    };
    if peer.asked.is_some_and(|at| at.elapsed() < interval) {
        return;
    }
    peer.asked = Some(Instant::now());
    pubsub.broadcast_remote(Some(&replica.node), TOPIC, "request", to_json(&About { replica: me }));
}

fn parse<T: serde::de::DeserializeOwned>(payload: &Value) -> Result<T, serde_json::Error> {
    T::deserialize(payload)
}
