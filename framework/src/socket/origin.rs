//! `check_origin`: which browser origins may open a socket.

use http::HeaderMap;

/// Which `Origin`s may connect. Requests without an `Origin` header (non-browser clients)
/// are always allowed.
///
/// # Examples
///
/// ```
/// use fawkes::socket::CheckOrigin;
///
/// let check = CheckOrigin::list(["https://example.com", "//*.example.org", "//other.com:8080"]);
/// # let _ = check;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckOrigin {
    /// The origin must be the request's own (the default): an `http` or `https` origin whose
    /// host and port are the request's `Host`. A `Host` without a port matches the origin's
    /// default port, and when a proxy says which scheme the client used
    /// (`x-forwarded-proto`), the origin's scheme must be that one.
    #[default]
    SameHost,
    /// The origin must match this one pattern, as in [`CheckOrigin::List`]: `example.com`
    /// checks the host alone, `https://example.com:8443` the scheme and port too.
    Host(String),
    /// The origin must match one of these patterns: `scheme://host:port`, with scheme and
    /// port optional (`//host`), and `*.` matching any subdomain.
    List(Vec<String>),
    /// No check.
    Off,
}

impl CheckOrigin {
    /// A list of allowed origins.
    pub fn list<I: IntoIterator<Item = S>, S: Into<String>>(origins: I) -> Self {
        Self::List(origins.into_iter().map(Into::into).collect())
    }

    pub(crate) fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let Some(origin) = Parsed::parse(origin) else { return false };
        match self {
            Self::Off => true,
            Self::SameHost => same_origin(&origin, headers),
            Self::Host(pattern) => Parsed::parse(pattern).is_some_and(|p| p.matches(&origin)),
            Self::List(patterns) => {
                patterns.iter().filter_map(|p| Parsed::parse(p)).any(|p| p.matches(&origin))
            }
        }
    }
}

/// Whether `origin` is the request's own: same scheme (when a proxy names it), host and port.
fn same_origin(origin: &Parsed<'_>, headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
    let Some(scheme) = origin.scheme.map(str::to_ascii_lowercase) else { return false };
    let Some(default_port) = default_port(&scheme) else { return false };
    let forwarded = header("x-forwarded-proto").and_then(|p| p.split(',').next()).map(str::trim);
    if forwarded.is_some_and(|proto| !proto.eq_ignore_ascii_case(&scheme)) {
        return false;
    }
    let Some(request) = header(http::header::HOST.as_str()).and_then(Parsed::parse) else {
        return false;
    };
    let origin_port = origin.port.unwrap_or(default_port);
    let request_port = request.port.unwrap_or(default_port);
    origin.host.eq_ignore_ascii_case(request.host) && origin_port == request_port
}

fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme {
        "http" => Some("80"),
        "https" => Some("443"),
        _ => None,
    }
}

struct Parsed<'a> {
    scheme: Option<&'a str>,
    host: &'a str,
    port: Option<&'a str>,
}

impl<'a> Parsed<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let (scheme, rest) = match text.split_once("//") {
            Some((scheme, rest)) => (scheme.strip_suffix(':').filter(|s| !s.is_empty()), rest),
            None => (None, text),
        };
        let rest = rest.split('/').next().unwrap_or_default();
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
            _ => (rest, None),
        };
        (!host.is_empty()).then_some(Self { scheme, host, port })
    }

    fn matches(&self, origin: &Parsed<'_>) -> bool {
        let scheme_ok =
            self.scheme.is_none_or(|s| origin.scheme.is_some_and(|o| o.eq_ignore_ascii_case(s)));
        let port_ok = self.port.is_none_or(|p| origin.port == Some(p));
        let host_ok = match self.host.strip_prefix("*.") {
            Some(domain) => {
                let host = origin.host.to_ascii_lowercase();
                host.ends_with(&format!(".{}", domain.to_ascii_lowercase()))
            }
            None => self.host.eq_ignore_ascii_case(origin.host),
        };
        scheme_ok && port_ok && host_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", host.parse().unwrap());
        if let Some(o) = origin {
            h.insert("origin", o.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_rules() {
        let same = CheckOrigin::SameHost;
        assert!(same.allows(&headers(None, "a.com")));
        assert!(same.allows(&headers(Some("http://a.com:4000"), "a.com:4000")));
        assert!(!same.allows(&headers(Some("http://evil.com"), "a.com")));
        let list = CheckOrigin::list(["https://example.com", "//another.com:888", "//*.other.com"]);
        assert!(list.allows(&headers(Some("https://example.com"), "x")));
        assert!(!list.allows(&headers(Some("http://example.com"), "x")));
        assert!(list.allows(&headers(Some("http://another.com:888"), "x")));
        assert!(!list.allows(&headers(Some("http://another.com"), "x")));
        assert!(list.allows(&headers(Some("https://api.other.com"), "x")));
        assert!(!list.allows(&headers(Some("https://other.com"), "x")));
        assert!(CheckOrigin::Off.allows(&headers(Some("http://evil.com"), "a.com")));
        assert!(!CheckOrigin::Host("a.com".into()).allows(&headers(Some("null"), "a.com")));
        let host = CheckOrigin::Host("https://a.com".into());
        assert!(host.allows(&headers(Some("https://a.com"), "x")));
        assert!(!host.allows(&headers(Some("http://a.com"), "x")));
    }

    #[test]
    fn the_same_origin_has_the_requests_scheme_host_and_port() {
        let same =
            |origin: &str, host: &str| CheckOrigin::SameHost.allows(&headers(Some(origin), host));
        assert!(same("http://a.com", "a.com"));
        assert!(same("https://a.com", "a.com"));
        assert!(same("http://a.com:80", "a.com"));
        assert!(same("https://a.com:8443", "a.com:8443"));
        assert!(same("HTTP://A.com:4000", "a.COM:4000"));
        assert!(!same("http://a.com:4000", "a.com:9999"));
        assert!(!same("http://a.com", "a.com:4000"));
        assert!(!same("http://a.com:4000", "a.com"));
        assert!(!same("ftp://a.com", "a.com"));
        assert!(!same("//a.com", "a.com"));
        assert!(!same("null", "null"));
        let mut forwarded = headers(Some("http://a.com"), "a.com");
        forwarded.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(!CheckOrigin::SameHost.allows(&forwarded));
        forwarded.insert("origin", "https://a.com".parse().unwrap());
        assert!(CheckOrigin::SameHost.allows(&forwarded));
    }
}
