//! The endpoint's connection slots: how many connections it serves at once, and what a new
//! one gets when every slot is taken.
//!
//! A server that stops accepting at its limit leaves new clients hanging in the kernel's
//! backlog, health probes included, while the slots may all be held by clients that send
//! nothing. So at the limit the endpoint keeps accepting: it closes the connection that has
//! waited longest for its client (idle between requests, a request head or body that does not
//! come) and gives its slot to the newcomer. When every connection is busy in the application,
//! the newcomer is answered `503 Service Unavailable` with `retry-after` and closed, at once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use slab::Slab;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connection::Activity;

/// What a connection turned away at the limit reads.
const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 51\r\n\
\r\n\
{\"errors\":{\"detail\":\"too many connections, retry\"}}";

/// At most this many turned-away connections are answered at once; past it they are closed
/// without an answer, so a flood costs a bounded number of file descriptors and tasks.
const MAX_SHEDDING: usize = 256;

/// How long a turned-away connection is given to send its request head, and then to take its
/// answer.
const SHED_LINGER: Duration = Duration::from_millis(500);

/// How long a newcomer waits for the slot of the connection closed to make room for it.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

pub(super) struct Slots {
    permits: Arc<Semaphore>,
    /// Every connection being served, for choosing one to close at the limit.
    live: Mutex<Slab<Arc<Activity>>>,
    shedding: Arc<Semaphore>,
}

/// A connection's slot: held by the connection and, after an upgrade to a WebSocket, by the
/// socket that goes on using it, so upgraded connections count against the limit too.
pub(super) type Slot = OwnedSemaphorePermit;

/// What a new connection gets.
pub(super) enum Admission {
    /// A free slot.
    Admitted(Slot),
    /// Room is being made: the slot comes within [`Slots::wait_evicted`].
    Evicting,
    /// Every connection is busy.
    Full,
}

impl Slots {
    pub(super) fn new(max_connections: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max_connections)),
            live: Mutex::new(Slab::new()),
            shedding: Arc::new(Semaphore::new(MAX_SHEDDING)),
        })
    }

    pub(super) fn admit(&self) -> Admission {
        if let Ok(slot) = self.permits.clone().try_acquire_owned() {
            return Admission::Admitted(slot);
        }
        if self.evict_longest_waiting() {
            Admission::Evicting
        } else {
            Admission::Full
        }
    }

    /// The slot a closed connection gives back, or `None` when it did not come in time (the
    /// connection chosen was busy again before it noticed, say).
    pub(super) async fn wait_evicted(&self) -> Option<Slot> {
        let permit = self.permits.clone().acquire_owned();
        tokio::time::timeout(EVICTION_WAIT, permit).await.ok()?.ok()
    }

    /// Closes the connection that has waited longest for its client; false when none waits.
    fn evict_longest_waiting(&self) -> bool {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let victim = live
            .iter()
            .filter_map(|(_, activity)| Some((activity.waiting_since()?, activity)))
            .min_by_key(|(since, _)| *since);
        match victim {
            Some((_, activity)) => {
                activity.evict();
                crate::telemetry::connection_turned_away("evicted");
                true
            }
            None => false,
        }
    }

    /// Lists a connection as one that may be closed to make room, until the guard drops.
    pub(super) fn register(self: &Arc<Self>, activity: Arc<Activity>) -> Registered {
        let key = self.live.lock().unwrap_or_else(PoisonError::into_inner).insert(activity);
        Registered { slots: self.clone(), key }
    }

    /// Answers 503 and closes, in a short task outside the supervisor's (it ends on its own
    /// within [`SHED_LINGER`] twice). The answer waits for the request head, as clients take
    /// an answer that comes before their request for a broken connection, and the connection
    /// is kept until the client closes or the linger ends: closing with unread bytes would
    /// reset the connection, and the client could lose the answer.
    pub(super) fn shed(&self, mut stream: TcpStream) {
        crate::telemetry::connection_turned_away("full");
        let Ok(shedding) = self.shedding.clone().try_acquire_owned() else { return };
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let head = async {
                let mut seen = 0;
                let mut tail = [0u8; 4];
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    seen += n;
                    // The end of the head may straddle two reads: look at the last bytes too.
                    let mut window = tail.to_vec();
                    window.extend_from_slice(&buf[..n]);
                    if window.windows(4).any(|w| w == b"\r\n\r\n") || seen >= 64 * 1024 {
                        return Ok(());
                    }
                    let keep = window.len().min(4);
                    tail[..keep].copy_from_slice(&window[window.len() - keep..]);
                }
            };
            let _ = tokio::time::timeout(SHED_LINGER, head).await;
            let answer = async {
                stream.write_all(SHED_RESPONSE).await?;
                stream.shutdown().await?;
                while stream.read(&mut buf).await? > 0 {}
                Ok::<_, std::io::Error>(())
            };
            let _ = tokio::time::timeout(SHED_LINGER, answer).await;
            drop(shedding);
        });
    }
}

/// A connection's entry in [`Slots`]' list, removed when the connection ends.
pub(super) struct Registered {
    slots: Arc<Slots>,
    key: usize,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut live = self.slots.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.try_remove(self.key);
    }
}
