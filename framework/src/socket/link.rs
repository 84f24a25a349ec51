//! The queue between a socket task and everything that writes to its client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::channel::ChannelMsg;
use crate::mailbox::{Mailbox, PushError};
use crate::serializer::{Frame, Vsn};

/// What a socket task is asked to do.
pub(crate) enum Out {
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

/// A socket's outbound queue and serializer, shared with its channels and pubsub.
pub(crate) struct Link {
    pub(crate) vsn: Vsn,
    pub(crate) outbox: Arc<Mailbox<Out>>,
    limit: usize,
    overflowed: AtomicBool,
}

impl Link {
    pub(crate) fn new(vsn: Vsn, limit: usize) -> Arc<Self> {
        Arc::new(Self { vsn, outbox: Mailbox::new(), limit, overflowed: AtomicBool::new(false) })
    }

    /// Queues a frame; false when the socket is gone or too far behind.
    pub(crate) fn send(&self, frame: Frame) -> bool {
        match self.outbox.push_bounded(Out::Frame(frame), self.limit) {
            Ok(()) => true,
            Err(PushError::Closed(_)) => false,
            Err(PushError::Full(_)) => {
                // A client that does not read is closed rather than buffered without end.
                if !self.overflowed.swap(true, Ordering::AcqRel) {
                    let _ = self.outbox.push(Out::Overflow);
                }
                false
            }
        }
    }

    /// Queues a control message; these are never dropped while the socket lives.
    pub(crate) fn control(&self, out: Out) {
        let _ = self.outbox.push(out);
    }
}
