//! The queue between a socket task and everything that writes to its client.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::ChannelMsg;
use crate::mailbox::{Mailbox, PushError};
use crate::serializer::{Frame, Vsn};

/// What a socket task is asked to do.
pub(crate) enum Outgoing {
    /// Write a frame to the client.
    Frame(Frame),
    /// A channel task ended. Its mailbox names the join: unlike the client's join ref, it is
    /// unique to one join, and the exit's clone keeps its address from being reused.
    ChannelExit { topic: String, mailbox: Arc<Mailbox<ChannelMsg>>, crashed: bool },
    /// Close the socket: a `disconnect` was broadcast to its id.
    Disconnect,
    /// The outbound queue overflowed.
    Overflow,
}

/// How far a socket may fall behind its client: frames and bytes queued for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) frames: usize,
    pub(crate) bytes: usize,
}

impl Limits {
    /// No limit worth the name: for test sockets, which are read by the test.
    #[cfg(feature = "test")]
    pub(crate) const UNBOUNDED: Self = Self { frames: usize::MAX / 2, bytes: usize::MAX / 2 };
}

impl Outgoing {
    /// The bytes of a frame; nothing for a control message.
    pub(crate) fn frame_len(&self) -> usize {
        match self {
            Self::Frame(frame) => frame.len(),
            _ => 0,
        }
    }
}

/// A socket's outbound queue and serializer, shared with its channels and pubsub.
pub(crate) struct Outbound {
    pub(crate) vsn: Vsn,
    pub(crate) queue: Arc<Mailbox<Outgoing>>,
    limits: Limits,
    /// Bytes of the frames queued and not yet handed to the client (see [`Outbound::taken`]).
    queued: AtomicUsize,
    overflowed: AtomicBool,
    /// Told once the queue overflows, for a socket task stuck writing to its client.
    overflow_notify: tokio::sync::Notify,
    /// The endpoint's: the socket's channels record their joins, messages and pushes there.
    pub(crate) telemetry: crate::instrument::Telemetry,
    /// The trace the socket's channels continue: the request that opened it (taken when
    /// the socket is made, within that request).
    pub(crate) trace_parent: crate::otel::Parent,
    /// The client's address, as the transport tells clients apart (through its trusted
    /// proxies); `None` outside an endpoint.
    pub(crate) client_ip: Option<std::net::IpAddr>,
}

impl Outbound {
    pub(crate) fn new(
        vsn: Vsn,
        limits: Limits,
        telemetry: crate::instrument::Telemetry,
        client_ip: Option<std::net::IpAddr>,
    ) -> Arc<Self> {
        Arc::new(Self {
            vsn,
            queue: Mailbox::new(),
            limits,
            queued: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
            overflow_notify: tokio::sync::Notify::new(),
            telemetry,
            trace_parent: crate::otel::Parent::current(),
            client_ip,
        })
    }

    /// Queues a frame; false when the socket is gone or too far behind: more frames than its
    /// limit, or more bytes. One frame larger than the byte limit still goes to a socket that
    /// has nothing else queued.
    pub(crate) fn send(&self, frame: Frame) -> bool {
        let len = frame.len();
        let queued = self.queued.fetch_add(len, Ordering::AcqRel);
        if queued > 0 && queued.saturating_add(len) > self.limits.bytes {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.overflow();
            return false;
        }
        match self.queue.push_bounded(Outgoing::Frame(frame), self.limits.frames) {
            Ok(()) => true,
            Err(PushError::Closed(_)) => {
                self.queued.fetch_sub(len, Ordering::AcqRel);
                false
            }
            Err(PushError::Full(_)) => {
                self.queued.fetch_sub(len, Ordering::AcqRel);
                self.overflow();
                false
            }
        }
    }

    /// A client that does not read is closed rather than buffered without end.
    fn overflow(&self) {
        if !self.overflowed.swap(true, Ordering::AcqRel) {
            let _ = self.queue.push(Outgoing::Overflow);
            self.overflow_notify.notify_one();
        }
    }

    /// Resolves once the queue has overflowed: a socket task waiting on a write to a client
    /// that does not read gives up then, rather than at its write timeout.
    pub(crate) async fn overflowed(&self) {
        if !self.overflowed.load(Ordering::Acquire) {
            self.overflow_notify.notified().await;
        }
    }

    /// Frames of `bytes` in all left the queue for the client: room for as many more.
    pub(crate) fn taken(&self, bytes: usize) {
        let _ = self.queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
            Some(queued.saturating_sub(bytes))
        });
    }

    /// Queues a control message; these are never dropped while the socket lives.
    pub(crate) fn control(&self, out: Outgoing) {
        let _ = self.queue.push(out);
    }
}
