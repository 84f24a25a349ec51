//! The endpoint's connection slots: how many connections it serves at once, and what a new
//! one gets when every slot is taken.
//!
//! A server that stops accepting at its limit leaves new clients hanging in the kernel's
//! backlog, health probes included, while the slots may all be held by clients that send
//! nothing. So at the limit the endpoint keeps accepting: it closes the connection that has
//! waited longest for its client (idle between requests, a request head or body that does not
//! come), if it has waited a second at least, and gives its slot to the newcomer. When every connection is busy in the application,
//! the newcomer is answered `503 Service Unavailable` with `retry-after` and closed, at once;
//! unless it is a health probe (`GET` of one of [`Config::probe_paths`](super::Config)), which
//! is served on a small lane of its own beyond the limit, one request a connection, so that an
//! orchestrator does not restart a replica that is only busy.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use slab::Slab;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::activity::Activity;

/// The body of [`SHED_RESPONSE`], for the 503 answered inside TLS.
pub(super) const SHED_BODY: &str = "{\"errors\":{\"detail\":\"too many connections, retry\"}}";

/// What a connection turned away at the limit reads.
const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 51\r\n\
\r\n\
{\"errors\":{\"detail\":\"too many connections, retry\"}}";

/// At most this many turned-away connections are answered at once, so a flood costs a bounded
/// number of file descriptors and tasks; past it the endpoint accepts no more until one ends
/// (the kernel's listen backlog holds them meanwhile), and drops a connection only after
/// waiting [`SHED_WAIT`] for room.
const MAX_SHEDDING: usize = 1024;

/// The longest the acceptor waits for room to turn a connection away: each turned-away
/// connection ends within two [`SHED_LINGER`]s.
const SHED_WAIT: Duration = Duration::from_secs(2);

/// How long a turned-away connection is given to send its request head, and then to take its
/// answer.
const SHED_LINGER: Duration = Duration::from_millis(500);

/// How long a newcomer waits for the slot of the connection closed to make room for it.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// How long a connection must have waited for its client before it may be closed to make
/// room: one that went quiet a moment ago is most likely a client about to send its next
/// request, and turning the newcomer away is the lesser harm.
const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// Health probes served at once beyond the limit.
const PROBE_LANE: usize = 32;

pub(super) struct Slots {
    permits: Arc<Semaphore>,
    /// Every connection being served, for choosing one to close at the limit.
    live: Mutex<Slab<Arc<Activity>>>,
    shedding: Arc<Semaphore>,
    probes: Arc<Semaphore>,
    probe_paths: Arc<[String]>,
    telemetry: crate::instrument::Telemetry,
}

/// A connection's slot: held by the connection and, after an upgrade to a WebSocket, by the
/// socket that goes on using it, so upgraded connections count against the limit too.
pub(super) struct Slot {
    _permit: OwnedSemaphorePermit,
    /// A slot of the probe lane: one request, and never closed to make room.
    pub(super) probe: bool,
}

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
    pub(super) fn new(
        max_connections: usize,
        probe_paths: &[String],
        telemetry: crate::instrument::Telemetry,
    ) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max_connections)),
            live: Mutex::new(Slab::new()),
            shedding: Arc::new(Semaphore::new(MAX_SHEDDING)),
            probes: Arc::new(Semaphore::new(PROBE_LANE)),
            probe_paths: probe_paths.into(),
            telemetry,
        })
    }

    pub(super) fn admit(&self) -> Admission {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Admission::Admitted(Slot { _permit: permit, probe: false });
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
        let permit = tokio::time::timeout(EVICTION_WAIT, permit).await.ok()?.ok()?;
        Some(Slot { _permit: permit, probe: false })
    }

    /// Closes the connection that has waited longest for its client; false when none waits.
    fn evict_longest_waiting(&self) -> bool {
        let Some(quiet_since) = Instant::now().checked_sub(EVICTABLE_AFTER) else { return false };
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let victim = live
            .iter()
            .filter_map(|(_, activity)| Some((activity.waiting_since()?, activity)))
            .filter(|(since, _)| *since <= quiet_since)
            .min_by_key(|(since, _)| *since);
        match victim {
            Some((_, activity)) => {
                activity.evict();
                self.telemetry.connection_turned_away("evicted");
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

    /// Turns a connection away, in a short task outside the supervisor's (it ends on its own
    /// within [`SHED_LINGER`] twice): a health probe is handed to `probe` with a slot of the
    /// probe lane, anything else is answered 503 and closed.
    ///
    /// The answer waits for the request head, as clients take an answer that comes before
    /// their request for a broken connection; the head is looked at without being read, so a
    /// probe reaches hyper whole. The connection is kept until the client closes or the linger
    /// ends: closing with unread bytes would reset it, and the client could lose the answer.
    ///
    /// Over TLS (`tls`) the request cannot be looked at before the handshake: the connection
    /// goes to the probe lane as it is, and its one request is answered there, the probe
    /// normally and anything else with the same 503 (see `ConnService`). When the lane is full
    /// it is closed without an answer, which a client can only read as a failed handshake.
    pub(super) async fn shed(
        self: &Arc<Self>,
        mut stream: TcpStream,
        tls: bool,
        probe: impl FnOnce(TcpStream, Slot) + Send + 'static,
    ) {
        let shedding = match self.shedding.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let waited =
                    tokio::time::timeout(SHED_WAIT, self.shedding.clone().acquire_owned()).await;
                match waited {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        self.telemetry.connection_turned_away("full");
                        return;
                    }
                }
            }
        };
        if tls {
            if let Ok(permit) = self.probes.clone().try_acquire_owned() {
                drop(shedding);
                return probe(stream, Slot { _permit: permit, probe: true });
            }
            self.telemetry.connection_turned_away("full");
            return;
        }
        let slots = self.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let head = tokio::time::timeout(SHED_LINGER, peek_head(&stream, &mut buf)).await;
            let head = head.ok().flatten().unwrap_or_default();
            if slots.is_probe(&buf[..head]) {
                if let Ok(permit) = slots.probes.clone().try_acquire_owned() {
                    drop(shedding);
                    return probe(stream, Slot { _permit: permit, probe: true });
                }
            }
            slots.telemetry.connection_turned_away("full");
            let answer = async {
                // The head was only looked at: read it off, with whatever else is there.
                let _ = stream.try_read(&mut buf);
                stream.write_all(SHED_RESPONSE).await?;
                stream.shutdown().await?;
                while stream.read(&mut buf).await? > 0 {}
                Ok::<_, std::io::Error>(())
            };
            let _ = tokio::time::timeout(SHED_LINGER, answer).await;
            drop(shedding);
        });
    }

    /// Whether a request is a `GET` or `HEAD` of one of `probe_paths`.
    pub(super) fn is_probe_request(
        probe_paths: &[String],
        method: &http::Method,
        path: &str,
    ) -> bool {
        matches!(*method, http::Method::GET | http::Method::HEAD)
            && probe_paths.iter().any(|p| p == path)
    }

    /// Whether a request head is a `GET` or `HEAD` of one of the probe paths.
    fn is_probe(&self, head: &[u8]) -> bool {
        let Some(line) = head.split(|&b| b == b'\r').next() else { return false };
        let mut parts = line.split(|&b| b == b' ');
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else { return false };
        let path = target.split(|&b| b == b'?').next().unwrap_or_default();
        matches!(method, b"GET" | b"HEAD") && self.probe_paths.iter().any(|p| p.as_bytes() == path)
    }
}

/// Looks at the first line of a request without reading it, waiting for it in short steps
/// (a peek returns at once whenever anything is there, so it cannot wait for more); returns
/// how many bytes were seen, or `None` when the client closed.
async fn peek_head(stream: &TcpStream, buf: &mut [u8]) -> Option<usize> {
    loop {
        stream.readable().await.ok()?;
        let n = stream.peek(buf).await.ok()?;
        if n == 0 {
            return None;
        }
        if n == buf.len() || buf[..n].contains(&b'\n') {
            return Some(n);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
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
