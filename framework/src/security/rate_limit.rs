//! A rate limit per client: how many requests one client may make in a period, the rest
//! answered `429 Too Many Requests` with `retry-after`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderValue, Method, StatusCode};

use super::TrustedProxies;
use crate::controller::ActionError;
use crate::{Conn, Plug};

/// How many checks pass between two sweeps of the clients that have not been seen for a
/// period: the state of a client is a few bytes, and a sweep drops what no longer limits.
const SWEEP_EVERY: usize = 4096;

/// A plug that lets each client make `requests` requests every `per` (a burst of all of them
/// at once, then one every `per / requests`), and answers the rest `429` with `retry-after`,
/// halting the pipeline. A client is an address (an IPv6 client its /64 network); behind a
/// load balancer, [`RateLimit::trusted_proxies`] says whose `X-Forwarded-For` names it.
///
/// It counts in this process: each replica lets a client as many requests, which is what a
/// limit meant to keep one client from taking a replica needs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fawkes::security::rate_limit;
/// use http::Method;
///
/// fawkes::router! {
///     pub App;
///     pipeline api {
///         // 10 writes a second, in bursts of 10; reads are not counted.
///         plug rate_limit(10, Duration::from_secs(1)).methods([Method::POST, Method::PUT, Method::PATCH, Method::DELETE]);
///     }
/// }
/// # let _ = App::new();
/// ```
///
/// # Panics
///
/// When `requests` is 0 or `per` is zero.
#[track_caller]
pub fn rate_limit(requests: u32, per: Duration) -> RateLimit {
    let burst = NonZeroU32::new(requests).expect("a rate limit lets at least one request through");
    let quota = Quota::with_period(per / requests)
        .expect("a rate limit's period is longer than zero")
        .allow_burst(burst);
    RateLimit(Arc::new(Inner {
        limiter: Some(RateLimiter::keyed(quota)),
        proxies: TrustedProxies::default(),
        methods: None,
        checks: AtomicUsize::new(0),
    }))
}

/// See [`rate_limit`].
#[derive(Clone)]
pub struct RateLimit(Arc<Inner>);

struct Inner {
    /// `None`: [`RateLimit::unlimited`].
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    proxies: TrustedProxies,
    methods: Option<Vec<Method>>,
    checks: AtomicUsize,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("clients", &self.0.limiter.as_ref().map(DefaultKeyedRateLimiter::len))
            .field("methods", &self.0.methods)
            .finish_non_exhaustive()
    }
}

impl RateLimit {
    /// A limit that lets every request through: what a configuration switch turns a
    /// [`rate_limit`] into, without changing the pipeline.
    ///
    /// ```
    /// let open = fawkes::security::RateLimit::unlimited();
    /// assert!((0..1000).all(|_| open.check([127, 0, 0, 1].into()).is_ok()));
    /// ```
    pub fn unlimited() -> Self {
        RateLimit(Arc::new(Inner {
            limiter: None,
            proxies: TrustedProxies::default(),
            methods: None,
            checks: AtomicUsize::new(0),
        }))
    }

    fn configure(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => f(inner),
            None => unreachable!("a rate limit is configured before it is cloned"),
        }
        self
    }

    /// The proxies whose `X-Forwarded-For` names the client (default: none).
    #[must_use]
    pub fn trusted_proxies(self, proxies: TrustedProxies) -> Self {
        self.configure(|inner| inner.proxies = proxies)
    }

    /// Counts only requests with these methods (default: every request).
    #[must_use]
    pub fn methods(self, methods: impl IntoIterator<Item = Method>) -> Self {
        let methods = methods.into_iter().collect();
        self.configure(|inner| inner.methods = Some(methods))
    }

    /// Counts a request of the client at `ip` (an address resolved already): `Err` with how
    /// long until it would pass when it is over the limit. For what is not a request, such as
    /// a channel event, counted against the same limit.
    ///
    /// # Errors
    ///
    /// The wait, when the client is over its limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let inner = &self.0;
        let Some(limiter) = &inner.limiter else { return Ok(()) };
        if inner.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
        }
        let key = super::client_ip::client_key(ip);
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// The client of a request from `peer` with `headers`, as this limit tells them apart.
    pub fn client_ip(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        self.0.proxies.client_ip(peer, headers)
    }
}

impl Plug for RateLimit {
    async fn call(&self, conn: Conn) -> Conn {
        if self.0.limiter.is_none() {
            return conn;
        }
        if let Some(methods) = &self.0.methods {
            if !methods.contains(conn.method()) {
                return conn;
            }
        }
        // Without an endpoint (a test calling the router) there is no peer to count.
        let Some(peer) = conn.conn_info().map(|info| info.remote_addr().ip()) else {
            return conn;
        };
        let ip = self.client_ip(peer, conn.headers());
        let Err(wait) = self.check(ip) else { return conn };
        tracing::info!(client = %ip, path = %crate::instrument::clip(conn.path()), "rate limited");
        let mut conn = ActionError::status(StatusCode::TOO_MANY_REQUESTS)
            .with_detail("too many requests, retry later")
            .render_halted(conn);
        let secs = HeaderValue::from(retry_after_secs(wait));
        conn.resp_headers_mut().insert(http::header::RETRY_AFTER, secs);
        conn
    }
}

/// A wait as `retry-after` says it: whole seconds, rounded up, at least one (a client told
/// `0` would retry at once and be refused again). For a limit's refusal that is not an HTTP
/// answer (a channel's reply, a form's error), so it reads as the plug's header does.
///
/// ```
/// use std::time::Duration;
/// use fawkes::security::retry_after_secs;
///
/// assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
/// assert_eq!(retry_after_secs(Duration::from_millis(2_001)), 3);
/// assert_eq!(retry_after_secs(Duration::ZERO), 1);
/// ```
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}
