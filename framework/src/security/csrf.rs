//! Cross-site request forgery protection, after Plug.CSRFProtection.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::Method;
use serde_json::Value;
use subtle::ConstantTimeEq as _;

use super::session;
use crate::controller::ActionError;
use crate::{Conn, Plug};

/// The session key holding the per-session secret, and the form field carrying the token.
pub const CSRF_TOKEN_KEY: &str = "_csrf_token";

/// The request header carrying the token, for scripts.
pub const CSRF_TOKEN_HEADER: &str = "x-csrf-token";

pub(crate) const SECRET_LEN: usize = 32;

/// A plug that refuses state-changing requests (POST, PUT, PATCH, DELETE, and any method but
/// GET, HEAD and OPTIONS) that do not carry a valid CSRF token, answering 403 and halting.
///
/// Another site can make a browser send a form to this one, cookies included; it cannot read
/// this site's pages, so it cannot know the token they carry. The token comes from the
/// `_csrf_token` body or query param (forms) or the `x-csrf-token` header (scripts).
///
/// The secret lives in the session, so [`fetch_session`](super::fetch_session) must come
/// first. Tokens handed out by [`get_csrf_token`] are masked with a fresh one-time pad each
/// time, so no two responses carry the same bytes (against BREACH compression attacks), and
/// every one of them verifies for the session's lifetime.
///
/// # Panics
///
/// On a request whose session was not fetched.
///
/// # Examples
///
/// ```
/// use fawkes::security::{csrf_meta_tag, fetch_session, protect_from_forgery, SecretKeyBase, SessionConfig};
/// use fawkes::Conn;
///
/// fn session() -> SessionConfig {
///     SessionConfig::new(SecretKeyBase::generate())
/// }
///
/// async fn page(mut conn: Conn) -> Conn {
///     let meta = csrf_meta_tag(&mut conn);
///     conn.html(format!("<html><head>{meta}</head></html>"))
/// }
///
/// async fn create(conn: Conn) -> Conn {
///     conn.text("created")
/// }
///
/// fawkes::router! {
///     pub App;
///     pipeline browser {
///         plug fetch_session(session());
///         plug protect_from_forgery();
///     }
///     scope "/" { pipe_through browser; get "/" => page; post "/items" => create; }
/// }
/// # let _ = App::new();
/// ```
pub fn protect_from_forgery() -> ProtectFromForgery {
    ProtectFromForgery { _private: () }
}

/// See [`protect_from_forgery`].
#[derive(Debug, Clone)]
pub struct ProtectFromForgery {
    _private: (),
}

impl Plug for ProtectFromForgery {
    async fn call(&self, conn: Conn) -> Conn {
        if matches!(*conn.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return conn;
        }
        let sent = conn
            .param_map()
            .get(CSRF_TOKEN_KEY)
            .and_then(Value::as_str)
            .or_else(|| conn.header(CSRF_TOKEN_HEADER))
            .map(str::to_owned);
        let detail = match sent {
            None => "missing CSRF token",
            Some(token) if valid(&conn, &token) => return conn,
            Some(_) => "invalid CSRF token",
        };
        tracing::debug!(method = %conn.method(), path = conn.path(), detail, "refusing a request");
        ActionError::forbidden().with_detail(detail).render_halted(conn)
    }
}

fn secret(conn: &Conn) -> Option<Vec<u8>> {
    session_secret(&session::state(conn).map)
}

fn session_secret(session: &serde_json::Map<String, Value>) -> Option<Vec<u8>> {
    let stored = session.get(CSRF_TOKEN_KEY)?.as_str()?;
    URL_SAFE_NO_PAD.decode(stored).ok().filter(|s| s.len() == SECRET_LEN)
}

/// A short, one-way tag of the session's CSRF secret: what binds a token made for this
/// session (a live page's) to it, without carrying the secret. `None` without a secret.
pub(crate) fn session_tag(session: &serde_json::Map<String, Value>) -> Option<String> {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(session_secret(session)?);
    Some(URL_SAFE_NO_PAD.encode(&digest[..12]))
}

/// Whether `token` is a CSRF token of the session whose values are `session` (read from a
/// socket's cookie, where there is no conn).
pub(crate) fn valid_for_session(session: &serde_json::Map<String, Value>, token: &str) -> bool {
    session_secret(session).is_some_and(|secret| unmasks_to(&secret, token))
}

fn valid(conn: &Conn, token: &str) -> bool {
    secret(conn).is_some_and(|secret| unmasks_to(&secret, token))
}

/// Whether `token` (base64url of a one-time pad and the secret masked with it) carries
/// `secret`; apart from the conn so the decoding can be driven with any bytes.
pub(crate) fn unmasks_to(secret: &[u8], token: &str) -> bool {
    let Some(bytes) = URL_SAFE_NO_PAD.decode(token).ok().filter(|b| b.len() == 2 * SECRET_LEN)
    else {
        return false;
    };
    let (mask, masked) = bytes.split_at(SECRET_LEN);
    let unmasked: Vec<u8> = masked.iter().zip(mask).map(|(a, b)| a ^ b).collect();
    // Constant time: how long the comparison takes says nothing about how close a guess was.
    unmasked.ct_eq(secret).into()
}

/// A CSRF token for this session, for a form or a script to send back; a new masked token
/// on every call, each valid while the session lasts. Creates the session's secret on first
/// use (the session cookie then gets written).
///
/// # Panics
///
/// When the session was not fetched.
pub fn get_csrf_token(conn: &mut Conn) -> String {
    let secret = match secret(conn) {
        Some(secret) => secret,
        None => {
            let fresh: [u8; SECRET_LEN] = rand::random();
            let text = URL_SAFE_NO_PAD.encode(fresh);
            session::state_mut(conn).insert(CSRF_TOKEN_KEY, Value::String(text));
            fresh.to_vec()
        }
    };
    let mask: [u8; SECRET_LEN] = rand::random();
    let mut out = mask.to_vec();
    out.extend(secret.iter().zip(mask).map(|(s, m)| s ^ m));
    URL_SAFE_NO_PAD.encode(out)
}

/// `<meta name="csrf-token" content="…">`, for the page's `<head>`, where scripts (and
/// Phoenix's LiveView client) read the token to send in `x-csrf-token`.
///
/// # Panics
///
/// When the session was not fetched.
pub fn csrf_meta_tag(conn: &mut Conn) -> String {
    // base64url needs no HTML escaping.
    format!(r#"<meta name="csrf-token" content="{}">"#, get_csrf_token(conn))
}

/// `<input type="hidden" name="_csrf_token" value="…">`, for a form.
///
/// # Panics
///
/// When the session was not fetched.
pub fn csrf_input_tag(conn: &mut Conn) -> String {
    format!(r#"<input type="hidden" name="{CSRF_TOKEN_KEY}" value="{}">"#, get_csrf_token(conn))
}

/// Forgets the session's CSRF secret, so every token handed out so far stops verifying:
/// after login and logout, as Phoenix advises.
///
/// # Panics
///
/// When the session was not fetched.
pub fn delete_csrf_token(conn: &mut Conn) {
    let state = session::state_mut(conn);
    if state.map.contains_key(CSRF_TOKEN_KEY) {
        state.map.remove(CSRF_TOKEN_KEY);
        state.mark_changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{fetch_session, SecretKeyBase, SessionConfig};
    use http::StatusCode;

    async fn conn(method: Method, uri: &str, header: Option<&str>) -> Conn {
        let mut req = http::Request::builder().method(method).uri(uri);
        if let Some(token) = header {
            req = req.header(CSRF_TOKEN_HEADER, token);
        }
        let conn = Conn::from_request(req.body(crate::Body::empty()).unwrap());
        let base = SecretKeyBase::new(vec![3; 64]).unwrap();
        fetch_session(SessionConfig::new(base)).call(conn).await
    }

    /// Carries the session (its CSRF secret) from `from` onto `to`, as the cookie would.
    fn with_session_of(mut to: Conn, from: &Conn) -> Conn {
        let state = session::state(from).clone();
        *session::state_mut(&mut to) = state;
        to
    }

    #[tokio::test]
    async fn safe_methods_pass_without_a_token() {
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            let conn = protect_from_forgery().call(conn(method.clone(), "/", None).await).await;
            assert!(!conn.halted(), "{method}");
        }
    }

    #[tokio::test]
    async fn unsafe_methods_need_a_valid_token() {
        let mut page = conn(Method::GET, "/", None).await;
        let token = get_csrf_token(&mut page);
        let other_session_token = get_csrf_token(&mut conn(Method::GET, "/", None).await);
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let cases: [(&str, String, Option<&str>, Option<StatusCode>); 6] = [
                ("no token", "/".into(), None, Some(StatusCode::FORBIDDEN)),
                ("header", "/".into(), Some(&token), None),
                ("query", format!("/?_csrf_token={token}"), None, None),
                ("garbage", "/".into(), Some("nope"), Some(StatusCode::FORBIDDEN)),
                (
                    "other session",
                    "/".into(),
                    Some(&other_session_token),
                    Some(StatusCode::FORBIDDEN),
                ),
                ("unmasked", "/".into(), Some(&token[..43]), Some(StatusCode::FORBIDDEN)),
            ];
            for (case, uri, header, refused) in cases {
                let req = with_session_of(conn(method.clone(), &uri, header).await, &page);
                let out = protect_from_forgery().call(req).await;
                assert_eq!(out.halted(), refused.is_some(), "{method} {case}");
                if let Some(status) = refused {
                    assert_eq!(out.status(), status, "{method} {case}");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_session_without_a_secret_refuses_every_token() {
        let mut page = conn(Method::GET, "/", None).await;
        let token = get_csrf_token(&mut page);
        let out = protect_from_forgery().call(conn(Method::POST, "/", Some(&token)).await).await;
        assert!(out.halted());
        let body: Value = serde_json::from_slice(out.resp_body_bytes().unwrap()).unwrap();
        assert_eq!(body["errors"]["detail"], "invalid CSRF token");
    }

    #[tokio::test]
    async fn tokens_are_masked_differently_every_time() {
        let mut page = conn(Method::GET, "/", None).await;
        let tokens: Vec<String> = (0..5).map(|_| get_csrf_token(&mut page)).collect();
        for (i, a) in tokens.iter().enumerate() {
            assert!(valid(&page, a));
            assert!(tokens[i + 1..].iter().all(|b| a != b));
        }
        let meta = csrf_meta_tag(&mut page);
        assert!(meta.starts_with(r#"<meta name="csrf-token" content=""#));
        assert!(csrf_input_tag(&mut page).contains(r#"name="_csrf_token""#));
        delete_csrf_token(&mut page);
        assert!(tokens.iter().all(|t| !valid(&page, t)), "deleting the secret revokes tokens");
    }
}
