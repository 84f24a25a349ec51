//! A socket's state and protocol logic, shared by every transport and by `ChannelTest`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{Channels, Outbound, Outgoing};
use crate::budget::Budget;
use crate::channel::{self, ChannelMsg, StopReason};
use crate::mailbox::{Mailbox, PushError};
use crate::pubsub::{Broadcast, Deliver, PubSub, SubscriberId};
use crate::serializer::{self, Message, Payload, Status};
use crate::supervisor::Supervisor;

/// How many client messages may wait for one channel before new ones are refused.
const CHANNEL_INBOX_LIMIT: usize = 1024;

struct Joined {
    join_ref: String,
    mailbox: Arc<Mailbox<ChannelMsg>>,
}

/// The joined topics of one socket. A vector grown one slot at a time, not a hash map: a
/// socket joins a handful of topics, and an idle one should cost little (a map's smallest
/// table holds four entries).
#[derive(Default)]
struct Joins(Vec<(String, Joined)>);

impl Joins {
    fn get(&self, topic: &str) -> Option<&Joined> {
        self.0.iter().find(|(t, _)| t == topic).map(|(_, j)| j)
    }

    fn remove(&mut self, topic: &str) -> Option<Joined> {
        let i = self.0.iter().position(|(t, _)| t == topic)?;
        Some(self.0.swap_remove(i).1)
    }

    fn insert(&mut self, topic: String, joined: Joined) {
        self.remove(&topic);
        self.0.reserve_exact(1);
        self.0.push((topic, joined));
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// What a transport should do after a control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Continue,
    /// Close: `disconnect` broadcast to the socket id.
    Disconnect,
    /// Close: the client does not keep up with its outbound frames.
    Overflow,
}

/// One connected client: its joined channels and how to reach them.
pub(crate) struct Protocol {
    pub(crate) outbound: Arc<Outbound>,
    pubsub: PubSub,
    supervisor: Supervisor,
    assigns: crate::conn::Assigns,
    socket_id: Option<Arc<str>>,
    channels: Arc<Channels>,
    max_channels: usize,
    budget: Arc<ChannelBudget>,
    /// The client's place under its per-client limits, when the transport sets them.
    client: Option<super::per_client::ClientSocket>,
    joined: Joins,
    disconnect: Option<SubscriberId>,
}

/// The channels every socket of a transport runs, against their limit: each costs a task and
/// its state, a few KiB, so the sockets a replica accepts times the topics each may join is
/// more memory than it has.
#[derive(Debug)]
pub(crate) struct ChannelBudget(Budget);

impl ChannelBudget {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self(Budget::new(max)))
    }

    /// A place for one more channel, given back when the guard drops; `None` at the limit.
    fn take(self: &Arc<Self>) -> Option<ChannelSlot> {
        self.0.try_take(1).then(|| ChannelSlot(self.clone()))
    }
}

/// One running channel's place in its transport's [`ChannelBudget`].
struct ChannelSlot(Arc<ChannelBudget>);

impl Drop for ChannelSlot {
    fn drop(&mut self) {
        self.0 .0.give_back(1);
    }
}

/// Closes the socket on a `disconnect` broadcast to its id.
struct Disconnect(Arc<Outbound>);

impl Deliver for Disconnect {
    fn deliver(&self, msg: &Arc<Broadcast>) {
        if msg.event() == "disconnect" {
            self.0.control(Outgoing::Disconnect);
        }
    }
}

pub(crate) struct ProtocolConfig {
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) pubsub: PubSub,
    pub(crate) supervisor: Supervisor,
    pub(crate) assigns: crate::conn::Assigns,
    pub(crate) socket_id: Option<Arc<str>>,
    pub(crate) channels: Arc<Channels>,
    pub(crate) max_channels: usize,
    pub(crate) budget: Arc<ChannelBudget>,
    pub(crate) client: Option<super::per_client::ClientSocket>,
}

impl Protocol {
    pub(crate) fn start(config: ProtocolConfig) -> Self {
        let ProtocolConfig {
            outbound,
            pubsub,
            supervisor,
            assigns,
            socket_id,
            channels,
            max_channels,
            budget,
            client,
        } = config;
        let disconnect = socket_id
            .as_ref()
            .map(|id| pubsub.subscribe_sink(id, Arc::new(Disconnect(outbound.clone()))));
        Self {
            outbound,
            pubsub,
            supervisor,
            assigns,
            socket_id,
            channels,
            max_channels,
            budget,
            client,
            joined: Joins::default(),
            disconnect,
        }
    }

    /// Ends the socket: channels stop (without `phx_close`: nobody would read it).
    pub(crate) fn close(&mut self) {
        self.outbound.queue.close();
        for (_, joined) in self.joined.0.drain(..) {
            joined.mailbox.close();
        }
        if let (Some(id), Some(sub)) = (&self.socket_id, self.disconnect.take()) {
            self.pubsub.unsubscribe(id, sub);
        }
    }

    /// Applies a control message from the outbound queue.
    pub(crate) fn control(&mut self, out: Outgoing) -> Control {
        match out {
            Outgoing::Frame(_) => Control::Continue,
            Outgoing::ChannelExit { topic, mailbox, crashed } => {
                // Only the exit of the join on record removes it: a client may reuse a join
                // ref, and the exit of the join it replaced would otherwise drop the new one
                // from the record, leaving its task running after the socket closes.
                if self.joined.get(&topic).is_some_and(|j| Arc::ptr_eq(&j.mailbox, &mailbox)) {
                    self.joined.remove(&topic);
                }
                tracing::debug!(topic, crashed, "channel exited");
                Control::Continue
            }
            Outgoing::Disconnect => Control::Disconnect,
            Outgoing::Overflow => {
                tracing::warn!("closing a socket whose client does not keep up");
                Control::Overflow
            }
        }
    }

    fn reply(&self, join_ref: Option<&str>, msg: &Message, status: Status, payload: Value) {
        self.reply_to(join_ref, msg.msg_ref.as_deref(), &msg.topic, status, payload);
    }

    fn reply_to(
        &self,
        join_ref: Option<&str>,
        msg_ref: Option<&str>,
        topic: &str,
        status: Status,
        payload: Value,
    ) {
        let frame = serializer::encode_reply(
            self.outbound.vsn,
            join_ref,
            msg_ref,
            topic,
            status,
            &Payload::Json(payload),
        );
        if let Some(frame) = frame {
            self.outbound.send(frame);
        }
    }

    /// Handles one message from the client.
    pub(crate) fn handle(&mut self, msg: Message) {
        if msg.topic == "phoenix" && msg.event == "heartbeat" {
            self.reply(msg.join_ref.as_deref(), &msg, Status::Ok, json!({}));
            return;
        }
        match msg.event.as_str() {
            "phx_join" => self.join(msg),
            "phx_leave" => self.leave(&msg),
            _ => self.route(msg),
        }
    }

    fn join(&mut self, msg: Message) {
        let join_ref = msg.join_ref.clone().or_else(|| msg.msg_ref.clone()).unwrap_or_default();
        if let Some(old) = self.joined.remove(&msg.topic) {
            // The old channel keeps its places (this server's, its client's) until its task
            // has ended: handing them to the new join would let a rejoin loop on a topic with
            // a slow join run any number of joins at once.
            let _ = old.mailbox.push(ChannelMsg::Stop(StopReason::DuplicateJoin));
        }
        if self.joined.len() >= self.max_channels {
            let reason = json!({"reason": "too many channels joined"});
            self.reply(msg.join_ref.as_deref(), &msg, Status::Error, reason);
            return;
        }
        let Some((start_channel, pattern)) =
            self.channels.find(&msg.topic).map(|(s, p)| (s.clone(), p.clone()))
        else {
            self.reply(None, &msg, Status::Error, json!({"reason": "unmatched topic"}));
            return;
        };
        let client_slot = match &self.client {
            Some(client) => match client.take_channel() {
                Some(slot) => Some(slot),
                None => {
                    crate::instrument::limited!(
                        10,
                        info!(
                            topic = %crate::instrument::clip(&msg.topic),
                            "refusing a join: the client runs its most channels"
                        )
                    );
                    let reason = json!({"reason": "too many channels for this client"});
                    self.reply(msg.join_ref.as_deref(), &msg, Status::Error, reason);
                    return;
                }
            },
            None => None,
        };
        let Some(slot) = self.budget.take() else {
            crate::instrument::limited!(
                10,
                warn!(
                    topic = %crate::instrument::clip(&msg.topic),
                    "refusing a join: the server runs its most channels"
                )
            );
            let reason = json!({"reason": "too many channels on this server"});
            self.reply(msg.join_ref.as_deref(), &msg, Status::Error, reason);
            return;
        };
        let mailbox = Mailbox::new();
        let start = channel::Start {
            topic: msg.topic.clone(),
            join_ref: join_ref.clone(),
            msg_ref: msg.msg_ref.clone(),
            payload: msg.payload.clone(),
            outbound: self.outbound.clone(),
            pubsub: self.pubsub.clone(),
            assigns: self.assigns.clone(),
            socket_id: self.socket_id.clone(),
            mailbox: mailbox.clone(),
            pattern,
        };
        let spawned = self.supervisor.spawn_temporary_shared("channel", move |token| {
            let channel = start_channel(start, token);
            async move {
                let _slots = (slot, client_slot);
                channel.await;
            }
        });
        if spawned.is_err() {
            let reason = json!({"reason": "shutting down"});
            self.reply(msg.join_ref.as_deref(), &msg, Status::Error, reason);
            return;
        }
        self.joined.insert(msg.topic, Joined { join_ref, mailbox });
    }

    fn leave(&mut self, msg: &Message) {
        let joined = self.joined.get(&msg.topic);
        let current =
            joined.is_some_and(|j| msg.join_ref.as_deref().is_none_or(|r| r == j.join_ref));
        if joined.is_some() && !current {
            // The client raced a server close: its leave is for a join that no longer exists.
            tracing::debug!(topic = %crate::instrument::clip(&msg.topic), "ignoring a leave for a previous join");
            return;
        }
        if current {
            if let Some(joined) = self.joined.remove(&msg.topic) {
                let leave = ChannelMsg::Leave { msg_ref: msg.msg_ref.clone() };
                if joined.mailbox.push(leave).is_ok() {
                    return;
                }
            }
        }
        self.reply(msg.join_ref.as_deref(), msg, Status::Ok, json!({}));
    }

    fn route(&mut self, msg: Message) {
        let Some(joined) = self.joined.get(&msg.topic) else {
            // As Phoenix's `encode_ignore`: no join, so no join ref.
            self.reply(None, &msg, Status::Error, json!({"reason": "unmatched topic"}));
            return;
        };
        if msg.join_ref.as_deref().is_some_and(|r| r != joined.join_ref) {
            tracing::debug!(topic = %crate::instrument::clip(&msg.topic), "ignoring a message for a previous join");
            return;
        }
        let Message { join_ref, msg_ref, topic, event, payload } = msg;
        let push = ChannelMsg::In { event, payload, msg_ref: msg_ref.clone() };
        let (join_ref, reason) = match joined.mailbox.push_bounded(push, CHANNEL_INBOX_LIMIT) {
            Ok(()) => return,
            Err(PushError::Full(_)) => (join_ref.as_deref(), "channel overloaded"),
            // The channel stopped between the lookup and the push: as for any unmatched topic,
            // the reply carries no join ref.
            Err(PushError::Closed(_)) => (None, "unmatched topic"),
        };
        let reason = json!({ "reason": reason });
        self.reply_to(join_ref, msg_ref.as_deref(), &topic, Status::Error, reason);
    }
}

#[cfg(test)]
mod tests {
    /// A socket's task holds its protocol state, and each joined channel's task its socket,
    /// for as long as they live: with tens of thousands of idle sockets, every word counts
    /// (docs/benchmarks.md, "Where an idle socket's memory goes").
    #[test]
    fn a_socket_and_a_channel_keep_small_state() {
        let protocol = std::mem::size_of::<super::Protocol>();
        let channel = std::mem::size_of::<crate::channel::ChannelSocket>();
        // 200: the per-client limits' place (one pointer) joined the 192 before them.
        assert!(protocol <= 200, "{protocol}");
        assert!(channel <= 224, "{channel}");
    }
}
