//! Endpoint configuration.

use std::net::SocketAddr;
use std::time::Duration;

/// Endpoint settings; every field has a default fit for production.
///
/// # Examples
///
/// ```
/// // Non-exhaustive, so new settings can be added: start from the defaults.
/// let mut config = fawkes::endpoint::Config::default();
/// config.max_connections = 1_000;
/// assert_eq!(config.max_body, None, "the router's own limit, 8 MiB unless it says otherwise");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen (default `127.0.0.1:4000`).
    pub bind: SocketAddr,
    /// Largest request body the router decodes, overriding the router's own
    /// ([`Router::max_body`](crate::Router::max_body)) when set. `None` (the default) leaves
    /// the router's limit, 8 MiB unless the router was given another.
    pub max_body: Option<usize>,
    /// How many bytes of request bodies still coming the endpoint holds at once, over all
    /// connections (default 64 MiB). The router reads a JSON or form body whole before it
    /// decodes it; bodies trickled in slowly on many connections or HTTP/2 streams would
    /// otherwise hold `max_body` each. Past it, a body that needs more answers 503 with
    /// `retry-after`.
    pub max_buffered_body_bytes: usize,
    /// How many bytes of large answers (over 16 KiB each, in memory) the endpoint holds at
    /// once for clients that have not read them yet, over all connections (default 128 MiB).
    /// A client that opens many connections and reads none would otherwise hold each answer
    /// for `send_timeout`. Past it, a large answer is replaced by a 503 with `retry-after`;
    /// streamed answers, which wait for the client before they make more, are not counted.
    pub max_unsent_body_bytes: usize,
    /// Largest request head, in bytes (default 64 KiB); larger answers 431.
    pub max_header_bytes: usize,
    /// Time allowed to send a request's headers (default 10 s). On HTTP/1.1 the wait for the
    /// next request on a keep-alive connection counts too (as cowboy's `request_timeout`), so
    /// an idle HTTP/1.1 connection closes after the shorter of this and `idle_timeout`. The
    /// wait starts once the answer before is sent: a streamed answer, or one waiting for a
    /// slow reader, does not count against it.
    pub header_read_timeout: Duration,
    /// Time a request body may go without sending anything (default 15 s, as Plug's
    /// `read_timeout`): past it, a body the router decodes answers 408 and the connection
    /// closes, and an action reading the body itself gets [`BodyError::TimedOut`](crate::conn::BodyError::TimedOut).
    pub body_read_timeout: Duration,
    /// Time an answer may wait for the client to read it (default 30 s): past it, the
    /// connection is closed and the answer dropped, so a client that asks for large answers
    /// and never reads them cannot hold their memory. On HTTP/2 the same time is the
    /// keep-alive: a peer that does not answer a PING within it is closed.
    pub send_timeout: Duration,
    /// Idle time allowed between requests (default 60 s): the keep-alive limit for HTTP/2,
    /// and for HTTP/1.1 when shorter than `header_read_timeout`.
    pub idle_timeout: Duration,
    /// Most connections at once, WebSockets included (default 16,384). At the limit the
    /// endpoint closes the connection that has waited longest for its client (idle, or
    /// sending a request head or body) to admit a new one, and answers 503 with
    /// `retry-after` when every connection is busy.
    ///
    /// Every connection is a file descriptor: keep the limit under the process's open-file
    /// limit (`ulimit -n`), with room for the listener, database and Redis connections.
    pub max_connections: usize,
    /// Paths of the health probes (default `/healthz` and `/readyz`). At the connection limit,
    /// with every connection busy, a `GET` of one of them is still served, on a small lane of
    /// its own (32 connections, one request each), so that an orchestrator's liveness probe
    /// does not restart a replica that is only busy.
    pub probe_paths: Vec<String>,
    /// Drain deadline on shutdown (default 25 s).
    pub shutdown_timeout: Duration,
    /// Time between readiness turning false and the listener closing (default 0).
    pub drain_delay: Duration,
    /// Restarts of the endpoint's workers tolerated within `restart_window` (default 3); one
    /// more stops the endpoint with an error.
    pub max_restarts: u32,
    /// The window `max_restarts` is counted over (default 5 s).
    pub restart_window: Duration,
    /// The secret every signing purpose of this endpoint derives its key from: sessions
    /// configured with [`SessionConfig::from_endpoint`](crate::security::SessionConfig::from_endpoint),
    /// sockets' [`ConnectInfo::secret_key_base`](crate::socket::ConnectInfo::secret_key_base),
    /// LongPoll session tokens. Without one (the default) LongPoll signs with a random key
    /// made at startup, which only that process accepts.
    pub secret_key_base: Option<crate::security::SecretKeyBase>,
    /// The certificate the endpoint serves TLS with (feature `tls`; default none: cleartext).
    #[cfg(feature = "tls")]
    pub tls: Option<super::Tls>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 4000)),
            max_body: None,
            max_buffered_body_bytes: 64 * 1024 * 1024,
            max_unsent_body_bytes: 128 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(15),
            send_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 16_384,
            probe_paths: vec!["/healthz".to_owned(), "/readyz".to_owned()],
            shutdown_timeout: Duration::from_secs(25),
            drain_delay: Duration::ZERO,
            max_restarts: 3,
            restart_window: Duration::from_secs(5),
            secret_key_base: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}
