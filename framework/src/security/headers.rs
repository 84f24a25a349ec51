//! Response headers that turn on the browser's own protections.

use http::header::{HeaderName, HeaderValue};

use crate::{Conn, Plug};

/// Phoenix's defaults, as `put_secure_browser_headers` sets them since Phoenix 1.8.
const DEFAULTS: [(&str, &str); 4] = [
    // Pages may be framed only by this origin (clickjacking), and a `<base>` tag injected into
    // a page cannot point its relative URLs elsewhere.
    ("content-security-policy", "base-uri 'self'; frame-ancestors 'self';"),
    // Other origins learn only this origin, not the full URL, of the page linking to them.
    ("referrer-policy", "strict-origin-when-cross-origin"),
    // Browsers do not guess a script or stylesheet out of a response labelled otherwise.
    ("x-content-type-options", "nosniff"),
    // Flash and PDF plugins may not load cross-domain policies from this site.
    ("x-permitted-cross-domain-policies", "none"),
];

/// A plug setting the headers that make browsers protect a page (Phoenix's
/// `put_secure_browser_headers`):
///
/// | header | value |
/// | --- | --- |
/// | `content-security-policy` | `base-uri 'self'; frame-ancestors 'self';` |
/// | `referrer-policy` | `strict-origin-when-cross-origin` |
/// | `x-content-type-options` | `nosniff` |
/// | `x-permitted-cross-domain-policies` | `none` |
///
/// A default leaves alone a header an earlier plug already set; [`SecureBrowserHeaders::with`]
/// overrides a default or adds a header, [`SecureBrowserHeaders::without`] drops one. Phoenix
/// before 1.8 also sent `x-frame-options: SAMEORIGIN` and `x-download-options: noopen`, which
/// standards have since deprecated; add them with `with` for old browsers.
///
/// # Examples
///
/// ```
/// use fawkes::security::put_secure_browser_headers;
///
/// fawkes::router! {
///     pub App;
///     pipeline browser {
///         plug put_secure_browser_headers()
///             .with("content-security-policy", "default-src 'self'; frame-ancestors 'none';")
///             .with("x-frame-options", "DENY");
///     }
///     scope "/" { pipe_through browser; get "/" => fawkes::telemetry::healthz; }
/// }
/// # let _ = App::new();
/// ```
pub fn put_secure_browser_headers() -> SecureBrowserHeaders {
    let headers = DEFAULTS
        .iter()
        .map(|(name, value)| Header {
            name: HeaderName::from_static(name),
            value: HeaderValue::from_static(value),
            overwrite: false,
        })
        .collect();
    SecureBrowserHeaders { headers }
}

/// See [`put_secure_browser_headers`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SecureBrowserHeaders {
    headers: Vec<Header>,
}

#[derive(Debug, Clone)]
struct Header {
    name: HeaderName,
    value: HeaderValue,
    /// Defaults yield to a header already on the response; headers given explicitly do not.
    overwrite: bool,
}

impl SecureBrowserHeaders {
    /// Sets `name` to `value`, replacing the default of the same name.
    ///
    /// # Panics
    ///
    /// When `name` or `value` is not a valid header, when the router is built.
    #[track_caller]
    pub fn with(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name)
            .unwrap_or_else(|_| panic!("`{name}` is not a valid header name"));
        let value = HeaderValue::try_from(value)
            .unwrap_or_else(|_| panic!("the value for `{name}` is not a valid header value"));
        self.headers.retain(|h| h.name != name);
        self.headers.push(Header { name, value, overwrite: true });
        self
    }

    /// Does not set `name`: to let other sites frame the pages, say.
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|h| !h.name.as_str().eq_ignore_ascii_case(name));
        self
    }
}

impl Plug for SecureBrowserHeaders {
    async fn call(&self, mut conn: Conn) -> Conn {
        let resp = conn.resp_headers_mut();
        for header in &self.headers {
            if header.overwrite || !resp.contains_key(&header.name) {
                resp.insert(header.name.clone(), header.value.clone());
            }
        }
        conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        Conn::from_request(http::Request::get("/").body(crate::Body::empty()).unwrap())
    }

    fn header<'a>(conn: &'a Conn, name: &str) -> Option<&'a str> {
        conn.resp_headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn sets_phoenix_defaults() {
        let conn = put_secure_browser_headers().call(conn()).await;
        for (name, value) in DEFAULTS {
            assert_eq!(header(&conn, name), Some(value), "{name}");
        }
        assert_eq!(header(&conn, "x-frame-options"), None);
    }

    #[tokio::test]
    async fn defaults_yield_to_earlier_headers_and_explicit_ones_do_not() {
        let before = conn()
            .put_resp_header("content-security-policy", "custom")
            .put_resp_header("referrer-policy", "no-referrer");
        let plug = put_secure_browser_headers()
            .with("Referrer-Policy", "same-origin")
            .with("x-frame-options", "DENY")
            .without("X-Content-Type-Options");
        let conn = plug.call(before).await;
        assert_eq!(header(&conn, "content-security-policy"), Some("custom"));
        assert_eq!(header(&conn, "referrer-policy"), Some("same-origin"));
        assert_eq!(header(&conn, "x-frame-options"), Some("DENY"));
        assert_eq!(header(&conn, "x-content-type-options"), None);
        assert_eq!(header(&conn, "x-permitted-cross-domain-policies"), Some("none"));
    }

    #[test]
    #[should_panic(expected = "not a valid header name")]
    fn invalid_headers_panic_when_built() {
        let _ = put_secure_browser_headers().with("bad header", "x");
    }
}
