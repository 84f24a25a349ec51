//! The task that runs one joined channel.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tracing::Instrument as _;

use futures_util::FutureExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::outbound::{Outbound, Outgoing};
use super::{Channel, ChannelSocket, Reply, StopReason};
use crate::mailbox::Mailbox;
use crate::pubsub::{Broadcast, Deliver, PubSub};
use crate::serializer::{self, Payload, Status};

/// A message to a channel task.
pub(crate) enum ChannelMsg {
    In { event: String, payload: Payload, msg_ref: Option<String> },
    Info(Box<dyn Any + Send>),
    Out(Arc<Broadcast>),
    Leave { msg_ref: Option<String> },
    Stop(StopReason),
}

/// Everything a channel task needs to start.
pub(crate) struct Start {
    pub(crate) topic: String,
    pub(crate) join_ref: String,
    pub(crate) msg_ref: Option<String>,
    pub(crate) payload: Payload,
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) pubsub: PubSub,
    pub(crate) assigns: crate::conn::Assigns,
    pub(crate) socket_id: Option<Arc<str>>,
    pub(crate) mailbox: Arc<Mailbox<ChannelMsg>>,
    /// The route pattern that matched, for telemetry labels.
    pub(crate) pattern: Arc<str>,
}

/// Broadcasts to a channel's topic: straight to the socket unless intercepted.
struct Fastlane {
    outbound: Arc<Outbound>,
    intercepts: &'static [&'static str],
    mailbox: Arc<Mailbox<ChannelMsg>>,
}

impl Deliver for Fastlane {
    fn deliver(&self, msg: &Arc<Broadcast>) {
        if self.intercepts.contains(&msg.event()) {
            let _ = self.mailbox.push(ChannelMsg::Out(msg.clone()));
        } else if let Some(frame) = msg.frame(self.outbound.vsn) {
            self.outbound.send(frame.clone());
        }
    }
}

fn panic_reason(panic: &(dyn Any + Send)) -> String {
    crate::supervisor::panic_message(panic)
}

impl<S> ChannelSocket<S> {
    fn reply(&self, msg_ref: Option<&str>, status: Status, payload: &Payload) {
        if let Some(frame) = serializer::encode_reply(
            self.outbound.vsn,
            Some(&self.join_ref),
            msg_ref,
            &self.topic,
            status,
            payload,
        ) {
            self.outbound.telemetry.channel_push();
            self.outbound.send(frame);
        }
    }

    /// `phx_close` or `phx_error`, which carry the join ref as their ref.
    fn control(&self, event: &str, payload: &Payload) {
        let join_ref = Some(self.join_ref.as_str());
        if let Some(frame) = serializer::encode_message(
            self.outbound.vsn,
            join_ref,
            join_ref,
            &self.topic,
            event,
            payload,
        ) {
            self.outbound.send(frame);
        }
    }
}

/// Runs a channel from join to exit.
///
/// Not an `async fn`: one would keep `start` in its state next to the `ChannelSocket` built
/// from it; here the socket is built first and the task holds each piece once.
pub(crate) fn run<C: Channel<S>, S: Send + Sync + 'static>(
    start: Start,
    state: S,
    token: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send {
    let Start {
        topic,
        join_ref,
        msg_ref,
        payload,
        outbound,
        pubsub,
        assigns,
        socket_id,
        mailbox,
        pattern,
    } = start;
    let mut socket = ChannelSocket {
        topic,
        join_ref,
        outbound,
        pubsub,
        subscriber: None,
        assigns,
        socket_id,
        mailbox,
        info: || (std::any::TypeId::of::<C::Info>(), std::any::type_name::<C::Info>()),
        presences: std::sync::OnceLock::new(),
        state,
    };
    let mailbox = socket.mailbox.clone();
    async move {
        let exit = run_joined::<C, S>(
            &mut socket,
            payload,
            msg_ref.as_deref(),
            &mailbox,
            &token,
            &pattern,
        )
        .await;
        if let Some(id) = socket.subscriber.take() {
            socket.pubsub.unsubscribe(&socket.topic, id);
        }
        // Its presences leave before the client can rejoin the topic.
        drop(socket.presences.take());
        mailbox.close();
        let ChannelSocket { topic, outbound, .. } = socket;
        outbound.control(Outgoing::ChannelExit { topic, mailbox, crashed: exit });
    }
}

/// Returns whether the channel crashed.
async fn run_joined<C: Channel<S>, S: Send + Sync>(
    socket: &mut ChannelSocket<S>,
    payload: Payload,
    msg_ref: Option<&str>,
    mailbox: &Arc<Mailbox<ChannelMsg>>,
    token: &CancellationToken,
    pattern: &str,
) -> bool {
    // With OpenTelemetry on, the join is a span of the trace that opened the socket, and
    // each message a span linked to it (a disabled span otherwise).
    let join_span = crate::otel::join_span(&socket.topic, pattern, &socket.outbound.trace_parent);
    let join_link = crate::otel::Link::to(&join_span);
    // `join` borrows the topic and the socket at once; the copy lives only as long as it runs.
    let joined = {
        let topic = socket.topic.clone();
        // Boxed, as every callback's future below: the task's state is the largest of the
        // futures it awaits, held for the channel's whole life, and a callback that queries a
        // database has a future of a kilobyte or more. A box lives only while its call runs.
        AssertUnwindSafe(Box::pin(C::join(&topic, payload, socket)))
            .catch_unwind()
            .instrument(join_span)
            .await
    };
    let mut channel = match joined {
        Ok(Ok((channel, reply))) => {
            socket.outbound.telemetry.channel_joined(pattern, true);
            socket.reply(msg_ref, Status::Ok, &Payload::Json(reply));
            channel
        }
        Ok(Err(reply)) => {
            socket.outbound.telemetry.channel_joined(pattern, false);
            socket.reply(msg_ref, Status::Error, &Payload::Json(reply));
            return false;
        }
        Err(panic) => {
            tracing::error!(topic = %socket.topic, reason = %panic_reason(&*panic), "channel join crashed");
            socket.outbound.telemetry.panic();
            socket.reply(msg_ref, Status::Error, &Payload::Json(json!({"reason": "join crashed"})));
            return true;
        }
    };
    let fastlane = Fastlane {
        outbound: socket.outbound.clone(),
        intercepts: C::intercepts(),
        mailbox: mailbox.clone(),
    };
    let subscriber = socket.pubsub.subscribe_sink(&socket.topic, Arc::new(fastlane));
    socket.subscriber = Some(subscriber);
    let _gauge = socket.outbound.telemetry.gauge(crate::instrument::GaugeKind::Channels);
    let handled_in = socket.outbound.telemetry.channel_handled_in(pattern);

    loop {
        let msg = tokio::select! {
            msg = mailbox.recv() => msg,
            () = token.cancelled() => Some(ChannelMsg::Stop(StopReason::Shutdown)),
        };
        let step = match msg {
            None => Step::Stop(StopReason::SocketClosed, None),
            Some(ChannelMsg::In { event, payload, msg_ref }) => {
                let start = std::time::Instant::now();
                let span = crate::otel::handle_in_span(&socket.topic, pattern, &event, &join_link);
                let result = AssertUnwindSafe(Box::pin(channel.handle_in(&event, payload, socket)))
                    .catch_unwind()
                    .instrument(span)
                    .await;
                handled_in.record_duration(start.elapsed());
                match result {
                    Ok(Reply::Ok(p)) => {
                        socket.reply(msg_ref.as_deref(), Status::Ok, &p);
                        Step::Continue
                    }
                    Ok(Reply::Error(p)) => {
                        socket.reply(msg_ref.as_deref(), Status::Error, &p);
                        Step::Continue
                    }
                    Ok(Reply::NoReply) => Step::Continue,
                    Ok(Reply::Stop(reason, reply)) => {
                        if let Some((status, p)) = reply {
                            socket.reply(msg_ref.as_deref(), status, &p);
                        }
                        Step::Stop(reason, None)
                    }
                    Err(panic) => Step::Crash(panic_reason(&*panic)),
                }
            }
            Some(ChannelMsg::Info(message)) => match message.downcast::<C::Info>() {
                Ok(message) => {
                    let fut = channel.handle_info(*message, socket);
                    match AssertUnwindSafe(Box::pin(fut)).catch_unwind().await {
                        Ok(()) => Step::Continue,
                        Err(panic) => Step::Crash(panic_reason(&*panic)),
                    }
                }
                // `ChannelSocket::handle` makes handles of the channel's own `Info` type only.
                Err(_) => Step::Continue,
            },
            Some(ChannelMsg::Out(msg)) => {
                let fut = channel.handle_out(msg.event(), msg.payload().clone(), socket);
                match AssertUnwindSafe(Box::pin(fut)).catch_unwind().await {
                    Ok(()) => Step::Continue,
                    Err(panic) => Step::Crash(panic_reason(&*panic)),
                }
            }
            Some(ChannelMsg::Leave { msg_ref }) => Step::Stop(StopReason::Left, Some(msg_ref)),
            Some(ChannelMsg::Stop(reason)) => Step::Stop(reason, None),
        };
        match step {
            Step::Continue => {}
            Step::Crash(reason) => {
                tracing::error!(topic = %socket.topic, reason = %reason, "channel crashed");
                socket.outbound.telemetry.panic();
                socket.control("phx_error", &Payload::Json(json!({"reason": "channel_crash"})));
                return true;
            }
            Step::Stop(reason, leave_ref) => {
                if let Some(msg_ref) = leave_ref {
                    socket.reply(msg_ref.as_deref(), Status::Ok, &Payload::empty());
                }
                let terminated = AssertUnwindSafe(Box::pin(channel.terminate(&reason, socket)))
                    .catch_unwind()
                    .await;
                if let Err(panic) = terminated {
                    tracing::error!(topic = %socket.topic, reason = %panic_reason(&*panic), "channel terminate crashed");
                }
                // A closed socket has nobody to tell. Once the endpoint shuts down the socket
                // closes next (1012, service restart) and the client rejoins its topics when it
                // has reconnected, to another replica: a `phx_close` would tell the official
                // client that the server ended the channel, and it would never rejoin it.
                if reason != StopReason::SocketClosed && !token.is_cancelled() {
                    socket.control("phx_close", &Payload::empty());
                }
                return false;
            }
        }
    }
}

enum Step {
    Continue,
    Crash(String),
    Stop(StopReason, Option<Option<String>>),
}
