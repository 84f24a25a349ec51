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
    /// The origin's host must equal the request's `Host` (the default).
    #[default]
    SameHost,
    /// The origin's host must equal this host.
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
            Self::SameHost => {
                let host =
                    headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
                let host = host.rsplit_once(':').map_or(host, |(h, p)| {
                    if p.chars().all(|c| c.is_ascii_digit()) {
                        h
                    } else {
                        host
                    }
                });
                origin.host.eq_ignore_ascii_case(host)
            }
            Self::Host(host) => origin.host.eq_ignore_ascii_case(host),
            Self::List(patterns) => {
                patterns.iter().filter_map(|p| Parsed::parse(p)).any(|p| p.matches(&origin))
            }
        }
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
    }
}
