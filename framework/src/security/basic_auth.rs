//! HTTP Basic authentication (Plug.BasicAuth's `basic_auth`): one user name and password,
//! for an operator's pages such as the live dashboard.

use base64::Engine as _;
use http::{header, HeaderValue, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::{Conn, Plug};

/// A plug that lets through only requests carrying `Authorization: Basic` with `username`
/// and `password`; any other gets `401` with `www-authenticate`, which makes a browser ask.
///
/// The comparison takes the same time whatever the guess, and so does the refusal. A
/// password guessed in a loop is not slowed down: put a [`rate_limit`](super::rate_limit) in
/// front of it. Send it over TLS only: the credentials cross the wire as base64.
///
/// # Examples
///
/// ```
/// fn guard() -> fawkes::security::BasicAuth {
///     let password = std::env::var("DASHBOARD_PASSWORD").unwrap_or_else(|_| "dev".to_owned());
///     fawkes::security::basic_auth("ops", &password)
/// }
///
/// fawkes::router! {
///     pub App;
///     pipeline ops {
///         plug guard();
///     }
///     scope "/dev" {
///         pipe_through ops;
///         forward "/dashboard" => fawkes::dashboard::Dashboard::new();
///     }
/// }
/// # let _ = App::new();
/// ```
///
/// # Panics
///
/// When `password` is empty: an empty password would let anyone in.
pub fn basic_auth(username: &str, password: &str) -> BasicAuth {
    assert!(!password.is_empty(), "basic_auth needs a password");
    BasicAuth { expected: digest(format!("{username}:{password}").as_bytes()) }
}

/// See [`basic_auth`].
#[derive(Clone)]
pub struct BasicAuth {
    /// The SHA-256 of `username:password`: compared in constant time, whatever the length of
    /// what a client sends.
    expected: [u8; 32],
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth").finish_non_exhaustive()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl BasicAuth {
    /// Whether `headers` carry the credentials.
    pub fn allows(&self, headers: &http::HeaderMap) -> bool {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, encoded)| {
                base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()
            })
            .unwrap_or_default();
        let given = digest(&given);
        given.iter().zip(&self.expected).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

impl Plug for BasicAuth {
    async fn call(&self, conn: Conn) -> Conn {
        if self.allows(conn.headers()) {
            return conn;
        }
        conn.put_resp_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Application\", charset=\"UTF-8\""),
        )
        .send_resp(StatusCode::UNAUTHORIZED, "Unauthorized")
        .halt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::AUTHORIZATION, authorization.parse().unwrap());
        headers
    }

    fn basic(credentials: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
    }

    #[test]
    fn only_the_right_credentials_pass() {
        let guard = basic_auth("ops", "s3cret:with:colons");
        assert!(guard.allows(&headers(&basic("ops:s3cret:with:colons"))));
        assert!(guard.allows(&headers(&basic("ops:s3cret:with:colons").replace("Basic", "basic"))));
        for wrong in ["ops:s3cret", "Ops:s3cret:with:colons", "ops:s3cret:with:colons ", ":", ""] {
            assert!(!guard.allows(&headers(&basic(wrong))), "{wrong:?}");
        }
        assert!(!guard.allows(&headers("Bearer abc")));
        assert!(!guard.allows(&headers("Basic %%%")));
        assert!(!guard.allows(&http::HeaderMap::new()));
    }

    #[tokio::test]
    async fn a_refusal_asks_for_credentials() {
        async fn ok(conn: Conn) -> Conn {
            conn.text("in")
        }
        crate::router! {
            pub Guarded;
            pipeline ops { plug basic_auth("ops", "pw"); }
            scope "/" { pipe_through ops; get "/" => ok; }
        }
        let router = crate::Router::from(Guarded::new());
        let request = |auth: Option<String>| {
            let mut req = http::Request::get("/");
            if let Some(auth) = auth {
                req = req.header(header::AUTHORIZATION, auth);
            }
            req.body(crate::Body::empty()).unwrap()
        };
        let refused = router.dispatch(request(None)).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(refused.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Basic"));
        let wrong = router.dispatch(request(Some(basic("ops:nope")))).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let right = router.dispatch(request(Some(basic("ops:pw")))).await;
        assert_eq!(right.status(), StatusCode::OK);
    }

    #[test]
    #[should_panic(expected = "needs a password")]
    fn an_empty_password_is_refused() {
        let _ = basic_auth("ops", "");
    }
}
