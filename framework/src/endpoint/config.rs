//! Endpoint configuration.

use std::net::SocketAddr;
use std::time::Duration;

/// Endpoint settings; every field has a default fit for production.
///
/// # Examples
///
/// ```
/// let config = fawkes::endpoint::Config { max_connections: 1_000, ..Default::default() };
/// assert_eq!(config.max_body, 8 * 1024 * 1024);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen (default `127.0.0.1:4000`).
    pub bind: SocketAddr,
    /// Largest request body decoded (default 8 MB).
    pub max_body: usize,
    /// Largest request head, in bytes (default 64 KiB); larger answers 431.
    pub max_header_bytes: usize,
    /// Time allowed to send a request's headers (default 10 s).
    pub header_read_timeout: Duration,
    /// Idle time allowed between keep-alive requests (default 60 s).
    pub idle_timeout: Duration,
    /// Most connections at once (default 16,384).
    pub max_connections: usize,
    /// Drain deadline on shutdown (default 25 s).
    pub shutdown_timeout: Duration,
    /// Time between readiness turning false and the listener closing (default 0).
    pub drain_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 4000)),
            max_body: crate::router::DEFAULT_MAX_BODY,
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 16_384,
            shutdown_timeout: Duration::from_secs(25),
            drain_delay: Duration::ZERO,
        }
    }
}
