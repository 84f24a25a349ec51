//! What the endpoint tells a request about its connection, and the endpoint's own state that
//! every request shares: readiness, the body budget, the supervisor, the pubsub, the telemetry,
//! the secret.
//! Defined here, below the endpoint, so the conn, the router and sockets read it without
//! depending on the endpoint that fills it in.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::supervisor::Supervisor;

/// Information about the connection a request came on: [`Conn::conn_info`](crate::Conn::conn_info),
/// and in the request's extensions (for tower layers and forwarded services too).
///
/// # Examples
///
/// ```
/// async fn whoami(conn: fawkes::Conn) -> fawkes::Conn {
///     let peer = conn.conn_info().map(|i| i.remote_addr());
///     let same = conn.extensions().get::<fawkes::endpoint::ConnInfo>().map(|i| i.remote_addr());
///     assert_eq!(peer, same);
///     conn.text(format!("{peer:?}"))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub(crate) remote_addr: SocketAddr,
    pub(crate) shared: SharedRef,
}

impl ConnInfo {
    /// A conn info for in-process tests: a loopback peer, ready.
    #[cfg(feature = "test")]
    pub(crate) fn for_test(
        supervisor: Supervisor,
        pubsub: crate::PubSub,
        secret_key_base: Option<crate::secret::SecretKeyBase>,
    ) -> Self {
        let shared = Arc::new(Shared {
            ready: AtomicBool::new(true),
            buffered_bodies: crate::budget::Budget::new(usize::MAX),
            unsent_bodies: crate::budget::Budget::new(usize::MAX),
            supervisor,
            telemetry: crate::instrument::Telemetry::for_pubsub(&pubsub),
            pubsub,
            secret_key_base,
        });
        Self { remote_addr: SocketAddr::from(([127, 0, 0, 1], 0)), shared }
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// Whether the endpoint reports ready.
    pub fn is_ready(&self) -> bool {
        self.shared.is_ready()
    }

    /// The endpoint's supervisor.
    pub fn supervisor(&self) -> &Supervisor {
        &self.shared.supervisor
    }

    /// The endpoint's pubsub.
    pub fn pubsub(&self) -> &crate::PubSub {
        &self.shared.pubsub
    }

    /// The endpoint's telemetry.
    pub fn telemetry(&self) -> &crate::instrument::Telemetry {
        &self.shared.telemetry
    }

    /// The endpoint's secret key base, when it was given one.
    pub fn secret_key_base(&self) -> Option<&crate::secret::SecretKeyBase> {
        self.shared.secret_key_base.as_ref()
    }
}

/// State shared by the endpoint and every request it serves.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) ready: AtomicBool,
    /// Bytes of request bodies held until whole, against their limit.
    pub(crate) buffered_bodies: crate::budget::Budget,
    /// Bytes of large answers held until their clients have read them, against their limit.
    pub(crate) unsent_bodies: crate::budget::Budget,
    pub(crate) supervisor: Supervisor,
    pub(crate) pubsub: crate::PubSub,
    /// Includes the pubsub's.
    pub(crate) telemetry: crate::instrument::Telemetry,
    pub(crate) secret_key_base: Option<crate::secret::SecretKeyBase>,
}

impl Shared {
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

pub(crate) type SharedRef = Arc<Shared>;
