//! `force_ssl`: HTTPS only, as Phoenix's `Plug.SSL` does it.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::StatusCode;

use super::TrustedProxies;
use crate::{Conn, Plug};

/// Redirects a request that came over plain HTTP to the same URL over HTTPS, and marks an
/// HTTPS answer `Strict-Transport-Security` (HSTS), so the browser asks over HTTPS only from
/// then on: Phoenix's `force_ssl`.
///
/// A `GET` or `HEAD` is redirected with `301`, anything else with `307` (which keeps the
/// method and the body). HSTS defaults to a year without subdomains; `localhost` is left
/// alone, so development needs no certificate. A request is HTTPS when it came over the
/// endpoint's TLS ([`Endpoint::tls`](crate::Endpoint::tls)) or, from a proxy in
/// [`trusted_proxies`](ForceSsl::trusted_proxies) that terminates TLS, says so with
/// `X-Forwarded-Proto: https`; a client's own `X-Forwarded-Proto` is not believed.
///
/// # Examples
///
/// ```
/// use fawkes::security::{force_ssl, TrustedProxies};
///
/// async fn home(conn: fawkes::Conn) -> fawkes::Conn { conn.text("home") }
///
/// fawkes::router! {
///     pub App;
///     pipeline browser {
///         plug force_ssl()
///             .trusted_proxies(TrustedProxies::parse("10.0.0.0/8").unwrap())
///             .include_subdomains();
///     }
///     scope "/" { pipe_through browser; get "/" => home; }
/// }
/// # let _ = App::new();
/// ```
pub fn force_ssl() -> ForceSsl {
    ForceSsl {
        hsts: Some(Duration::from_secs(31_536_000)),
        subdomains: false,
        preload: false,
        proxies: TrustedProxies::default(),
        exclude: vec!["localhost".to_owned()],
        host: None,
    }
}

/// The [`force_ssl`] plug.
#[derive(Debug, Clone)]
#[must_use]
pub struct ForceSsl {
    hsts: Option<Duration>,
    subdomains: bool,
    preload: bool,
    proxies: TrustedProxies,
    exclude: Vec<String>,
    host: Option<String>,
}

impl ForceSsl {
    /// How long browsers remember to use HTTPS only (default a year).
    pub fn hsts_max_age(mut self, max_age: Duration) -> Self {
        self.hsts = Some(max_age);
        self
    }

    /// No `Strict-Transport-Security` header: redirects only.
    pub fn without_hsts(mut self) -> Self {
        self.hsts = None;
        self
    }

    /// HSTS covers the subdomains too (`includeSubDomains`).
    pub fn include_subdomains(mut self) -> Self {
        self.subdomains = true;
        self
    }

    /// Asks to be on the browsers' built-in HSTS list (`preload`; with subdomains and a year
    /// or more, as the list requires).
    pub fn preload(mut self) -> Self {
        self.preload = true;
        self
    }

    /// The proxies whose `X-Forwarded-Proto` says whether the client used HTTPS: the load
    /// balancer or ingress that terminates TLS.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// Hosts left as they are (default `localhost`).
    pub fn exclude(mut self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.exclude = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Redirects to this host (`www.example.com`, with a port if not 443) rather than the
    /// request's.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    fn is_https(&self, conn: &Conn) -> bool {
        if conn.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            return true;
        }
        let from_proxy =
            conn.conn_info().is_some_and(|info| self.proxies.trusts(info.remote_addr().ip()));
        // The proxy nearest the server writes the last value.
        from_proxy
            && conn
                .header("x-forwarded-proto")
                .and_then(|v| v.rsplit(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    }

    fn hsts_value(&self, max_age: Duration) -> Option<HeaderValue> {
        let mut value = format!("max-age={}", max_age.as_secs());
        if self.subdomains || self.preload {
            value.push_str("; includeSubDomains");
        }
        if self.preload {
            value.push_str("; preload");
        }
        HeaderValue::try_from(value).ok()
    }
}

/// The request's host, without its port: the URI's (HTTP/2, TLS) or the `Host` header's.
fn request_host(conn: &Conn) -> Option<String> {
    if let Some(host) = conn.uri().host() {
        return Some(host.to_owned());
    }
    let host = conn.header("host")?;
    let authority = http::uri::Authority::try_from(host).ok()?;
    Some(authority.host().to_owned())
}

impl Plug for ForceSsl {
    async fn call(&self, mut conn: Conn) -> Conn {
        let host = request_host(&conn);
        if host.as_deref().is_some_and(|h| self.exclude.iter().any(|e| e.eq_ignore_ascii_case(h))) {
            return conn;
        }
        if self.is_https(&conn) {
            if let Some(value) = self.hsts.and_then(|max_age| self.hsts_value(max_age)) {
                conn.resp_headers_mut().entry(header::STRICT_TRANSPORT_SECURITY).or_insert(value);
            }
            return conn;
        }
        let Some(host) = self.host.clone().or(host) else {
            return conn
                .send_resp(StatusCode::BAD_REQUEST, "no host to redirect to over HTTPS")
                .halt();
        };
        let path = conn.uri().path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
        let location = format!("https://{host}{path}");
        let status = if matches!(*conn.method(), http::Method::GET | http::Method::HEAD) {
            StatusCode::MOVED_PERMANENTLY
        } else {
            StatusCode::TEMPORARY_REDIRECT
        };
        match HeaderValue::try_from(location) {
            Ok(location) => conn
                .put_resp_header(header::LOCATION, location)
                .send_resp(status, crate::Body::empty())
                .halt(),
            Err(_) => conn.send_resp(StatusCode::BAD_REQUEST, "invalid host").halt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(method: &str, uri: &str, headers: &[(&str, &str)]) -> Conn {
        let mut req = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Conn::from_request(req.body(crate::Body::empty()).unwrap())
    }

    fn header<'a>(conn: &'a Conn, name: &str) -> Option<&'a str> {
        conn.resp_headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn plain_http_is_redirected_to_the_same_url_over_https() {
        let get =
            force_ssl().call(conn("GET", "/rooms?x=1", &[("host", "example.com:8080")])).await;
        assert!(get.halted());
        assert_eq!(get.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(header(&get, "location"), Some("https://example.com/rooms?x=1"));
        assert_eq!(header(&get, "strict-transport-security"), None);
        let post = force_ssl().call(conn("POST", "/rooms", &[("host", "example.com")])).await;
        assert_eq!(post.status(), StatusCode::TEMPORARY_REDIRECT, "keeps the method and body");
        let elsewhere = force_ssl()
            .host("www.example.com")
            .call(conn("GET", "/", &[("host", "example.com")]))
            .await;
        assert_eq!(header(&elsewhere, "location"), Some("https://www.example.com/"));
        let no_host = force_ssl().call(conn("GET", "/", &[])).await;
        assert_eq!(no_host.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn https_answers_carry_hsts() {
        let conn = force_ssl().call(conn("GET", "https://example.com/", &[])).await;
        assert!(!conn.halted());
        assert_eq!(header(&conn, "strict-transport-security"), Some("max-age=31536000"));
        let preload = force_ssl()
            .hsts_max_age(Duration::from_secs(63_072_000))
            .preload()
            .call(super::tests::conn("GET", "https://example.com/", &[]))
            .await;
        assert_eq!(
            header(&preload, "strict-transport-security"),
            Some("max-age=63072000; includeSubDomains; preload")
        );
        let off = force_ssl()
            .without_hsts()
            .call(super::tests::conn("GET", "https://example.com/", &[]))
            .await;
        assert_eq!(header(&off, "strict-transport-security"), None);
    }

    #[tokio::test]
    async fn localhost_and_a_clients_own_forwarded_proto_are_left_alone() {
        let local = force_ssl().call(conn("GET", "/", &[("host", "localhost:4000")])).await;
        assert!(!local.halted());
        // No endpoint, so no trusted peer: the header is the client's and is not believed.
        let claimed = force_ssl()
            .trusted_proxies(TrustedProxies::parse("10.0.0.0/8").unwrap())
            .call(conn("GET", "/", &[("host", "example.com"), ("x-forwarded-proto", "https")]))
            .await;
        assert!(claimed.halted());
        assert_eq!(claimed.status(), StatusCode::MOVED_PERMANENTLY);
    }
}
