//! Cookie sessions: the whole session lives in one signed or encrypted cookie.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::token;
use crate::controller::{ActionError, RenderError as _};
use crate::secret::{DerivedKey, SecretKeyBase};
use crate::{Conn, Plug};

/// The most bytes a `Set-Cookie` value may have: browsers silently drop larger cookies, so
/// such a write fails loudly instead (Plug's `CookieOverflowError` limit).
pub const MAX_COOKIE_BYTES: usize = 4096;

/// Where the session's data is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionStore {
    /// Signed: the browser can read the data (base64url JSON) but not change it.
    #[default]
    Signed,
    /// Encrypted with AES-256-GCM: the browser can neither read nor change it.
    Encrypted,
}

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Also sent on top-level navigations from other sites (following a link), not with their
    /// forms or scripts.
    #[default]
    Lax,
    /// Sent with every request; browsers then require `Secure`.
    None,
}

/// When the cookie carries the `Secure` attribute (sent back over HTTPS only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SecureCookie {
    /// When the request came over HTTPS: an `https` URI scheme, or `x-forwarded-proto` whose
    /// last value (the one the nearest proxy wrote) is `https`. A client that sends the header
    /// itself decides only its own cookie's attribute.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// What to do with the session cookie when the response is sent
/// ([`SessionExt::configure_session`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionOption {
    /// Write the cookie even if nothing changed, with a fresh signature and time: after a
    /// login, so a cookie fixed before it ages out with the old one.
    Renew,
    /// Delete the cookie: logout.
    Drop,
    /// Do not write this response's changes.
    Ignore,
}

/// How [`fetch_session`] reads and writes the session cookie.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fawkes::security::{SecretKeyBase, SessionConfig, SessionStore};
///
/// let config = SessionConfig::new(SecretKeyBase::generate())
///     .store(SessionStore::Encrypted)
///     .cookie_name("_my_app_key")
///     .salt("my app session")
///     .max_age(Duration::from_secs(14 * 86_400));
/// ```
#[derive(Clone)]
#[must_use]
pub struct SessionConfig {
    /// `None`: the endpoint's, found on the first request.
    key_base: Option<SecretKeyBase>,
    store: SessionStore,
    cookie_name: Cow<'static, str>,
    salt: Cow<'static, str>,
    max_age: Option<Duration>,
    same_site: SameSite,
    http_only: bool,
    secure: SecureCookie,
    path: Cow<'static, str>,
    domain: Option<String>,
}

impl SessionConfig {
    /// A signed session in the `_fawkes_key` cookie: `SameSite=Lax`, `HttpOnly`, `Secure` over
    /// HTTPS, path `/`, no maximum age (the cookie lasts until the browser closes).
    pub fn new(key_base: SecretKeyBase) -> Self {
        Self::with_key(Some(key_base))
    }

    /// Like [`SessionConfig::new`], with the key base of the endpoint serving the request
    /// ([`Endpoint::secret_key_base`](crate::Endpoint::secret_key_base)): the application
    /// sets the secret once, where it configures the endpoint. A request served by an
    /// endpoint without one answers 500 (and logs why), rather than run without a session.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::security::{fetch_session, SessionConfig};
    ///
    /// fawkes::router! {
    ///     pub App;
    ///     pipeline browser { plug fetch_session(SessionConfig::from_endpoint().cookie_name("_app")); }
    ///     scope "/" { pipe_through browser; get "/" => fawkes::telemetry::healthz; }
    /// }
    /// # let _ = App::new();
    /// ```
    pub fn from_endpoint() -> Self {
        Self::with_key(None)
    }

    fn with_key(key_base: Option<SecretKeyBase>) -> Self {
        Self {
            key_base,
            store: SessionStore::Signed,
            cookie_name: Cow::Borrowed("_fawkes_key"),
            salt: Cow::Borrowed("fawkes session"),
            max_age: None,
            same_site: SameSite::Lax,
            http_only: true,
            secure: SecureCookie::Auto,
            path: Cow::Borrowed("/"),
            domain: None,
        }
    }

    /// Signed or encrypted.
    pub fn store(mut self, store: SessionStore) -> Self {
        self.store = store;
        self
    }

    /// The cookie's name.
    pub fn cookie_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// The salt the cookie's key is derived with (Plug's `signing_salt`/`encryption_salt`).
    pub fn salt(mut self, salt: impl Into<Cow<'static, str>>) -> Self {
        self.salt = salt.into();
        self
    }

    /// How long the cookie lives: its `Max-Age`, also checked against the signed time, so a
    /// copied cookie stops working on the server too.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The `SameSite` attribute.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The `HttpOnly` attribute, which keeps the cookie from page scripts.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// When to set the `Secure` attribute.
    pub fn secure(mut self, secure: SecureCookie) -> Self {
        self.secure = secure;
        self
    }

    /// The cookie's `Path`.
    pub fn path(mut self, path: impl Into<Cow<'static, str>>) -> Self {
        self.path = path.into();
        self
    }

    /// The cookie's `Domain`; without one, only the host that set it gets it back.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("store", &self.store)
            .field("cookie_name", &self.cookie_name)
            .field("max_age", &self.max_age)
            .field("same_site", &self.same_site)
            .field("http_only", &self.http_only)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

/// A plug that reads the session from its cookie (Plug's `fetch_session` with the cookie
/// store) and writes it back when the response goes out, if it changed.
///
/// A cookie that does not verify (altered, truncated, signed with another key, expired) is an
/// empty session, never an error. A session too large for a cookie
/// ([`MAX_COOKIE_BYTES`]) is logged and answered with a 500 rather than sent in a cookie the
/// browser would drop.
///
/// The key is derived once, here; the plug is built once with the router.
///
/// # Examples
///
/// ```
/// use fawkes::security::{fetch_session, SecretKeyBase, SessionConfig, SessionExt};
/// use fawkes::Conn;
///
/// fn session() -> SessionConfig {
///     SessionConfig::new(SecretKeyBase::new("a very long secret, at least sixty-four bytes long, from the env").unwrap())
/// }
///
/// async fn visit(conn: Conn) -> Conn {
///     let visits = conn.get_session::<u32>("visits").unwrap_or(0) + 1;
///     conn.put_session("visits", &visits).text(format!("visit {visits}"))
/// }
///
/// fawkes::router! {
///     pub App;
///     pipeline browser { plug fawkes::security::fetch_session(session()); }
///     scope "/" { pipe_through browser; get "/" => visit; }
/// }
/// # let _ = App::new();
/// ```
pub fn fetch_session(config: SessionConfig) -> FetchSession {
    let key = std::sync::OnceLock::new();
    if let Some(key_base) = &config.key_base {
        let _ = key.set(key_base.key_for(&config.salt));
    }
    FetchSession(Arc::new(Settings { config, key }))
}

/// See [`fetch_session`].
#[derive(Clone)]
pub struct FetchSession(Arc<Settings>);

struct Settings {
    config: SessionConfig,
    /// Derived once: at build time from the config's key base, or on the first request from
    /// the endpoint's.
    key: std::sync::OnceLock<DerivedKey>,
}

impl Settings {
    fn key(&self, conn: &Conn) -> Option<&DerivedKey> {
        if let Some(key) = self.key.get() {
            return Some(key);
        }
        let key_base = conn.secret_key_base()?;
        Some(self.key.get_or_init(|| key_base.key_for(&self.config.salt)))
    }
}

impl fmt::Debug for FetchSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FetchSession").field(&self.0.config).finish()
    }
}

/// The session of one request, in the conn's assigns.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionState {
    pub(crate) map: Map<String, Value>,
    changed: bool,
    option: Option<SessionOption>,
}

impl SessionState {
    pub(crate) fn insert(&mut self, key: &str, value: Value) {
        self.map.insert(key.to_owned(), value);
        self.changed = true;
    }

    pub(crate) fn mark_changed(&mut self) {
        self.changed = true;
    }
}

impl Plug for FetchSession {
    async fn call(&self, mut conn: Conn) -> Conn {
        if conn.assigns().get::<SessionState>().is_some() {
            return conn;
        }
        let Some(key) = self.0.key(&conn).cloned() else {
            tracing::error!(
                "fetch_session(SessionConfig::from_endpoint()) on an endpoint without a secret key \
                 base: set one with Endpoint::secret_key_base"
            );
            return conn
                .put_status(http::StatusCode::INTERNAL_SERVER_ERROR)
                .text("Internal Server Error")
                .halt();
        };
        let map = self.read(&conn, &key).unwrap_or_default();
        conn.assigns_mut().insert(SessionState { map, changed: false, option: None });
        let secure = match self.0.config.secure {
            SecureCookie::Always => true,
            SecureCookie::Never => false,
            SecureCookie::Auto => is_https(&conn),
        };
        let settings = self.0.clone();
        conn.register_before_send(move |conn| write(conn, &settings, &key, secure))
    }
}

impl FetchSession {
    /// The session in the `Cookie` headers of `headers` (a socket's upgrade request), read
    /// as this plug reads a request's; `key_base` stands in for the endpoint's when the config
    /// names none. `None` without a valid cookie.
    pub(crate) fn read_headers(
        &self,
        headers: &http::HeaderMap,
        key_base: Option<&crate::secret::SecretKeyBase>,
    ) -> Option<Map<String, Value>> {
        let config = &self.0.config;
        let derived;
        let key = match self.0.key.get() {
            Some(key) => key,
            None => {
                derived = key_base?.key_for(&config.salt);
                &derived
            }
        };
        let max_age = config.max_age.unwrap_or(Duration::MAX);
        let values = headers.get_all(header::COOKIE);
        let values = values.iter().filter_map(|v| v.to_str().ok());
        read_cookie(values, &config.cookie_name, config.store, key, max_age, token::now_ms())
    }

    fn read(&self, conn: &Conn, key: &DerivedKey) -> Option<Map<String, Value>> {
        let config = &self.0.config;
        let headers = conn.headers().get_all(header::COOKIE);
        let max_age = config.max_age.unwrap_or(Duration::MAX);
        let headers = headers.iter().filter_map(|v| v.to_str().ok());
        read_cookie(headers, &config.cookie_name, config.store, key, max_age, token::now_ms())
    }
}

/// The value of the cookie `name` among the `Cookie` header values `headers`.
pub(crate) fn cookie_value<'a>(
    headers: impl Iterator<Item = &'a str>,
    name: &str,
) -> Option<String> {
    let found = headers
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)?;
    Some(found.value().to_owned())
}

/// The session in the cookie `name` of the `Cookie` header values `headers`, if that cookie is
/// there and opens with `key` (signed or encrypted as `store` says) no older than `max_age` at
/// `now` (ms). Apart from the conn, so the decoding can be driven with any bytes.
pub(crate) fn read_cookie<'a>(
    headers: impl Iterator<Item = &'a str>,
    name: &str,
    store: SessionStore,
    key: &DerivedKey,
    max_age: Duration,
    now: u64,
) -> Option<Map<String, Value>> {
    let value = cookie_value(headers, name)?;
    let read = match store {
        SessionStore::Signed => token::verify_at(key, &value, max_age, now),
        SessionStore::Encrypted => token::decrypt_at(key, &value, max_age, now),
    };
    match read {
        Ok(map) => Some(map),
        Err(err) => {
            tracing::debug!(error = %err, cookie = name, "ignoring a session cookie");
            None
        }
    }
}

fn is_https(conn: &Conn) -> bool {
    // The last value: the proxy nearest the server appends its own, after whatever the client
    // sent (a client's `http` must not take `Secure` off a cookie that travels over HTTPS).
    let forwarded = conn
        .header("x-forwarded-proto")
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    forwarded || conn.uri().scheme() == Some(&http::uri::Scheme::HTTPS)
}

fn write(mut conn: Conn, settings: &Settings, key: &DerivedKey, secure: bool) -> Conn {
    // Absent when an action's error rendered onto a fresh conn: that response keeps the
    // session as the browser sent it.
    let Some(state) = conn.assigns_mut().remove::<SessionState>() else { return conn };
    let config = &settings.config;
    let value = match state.option {
        Some(SessionOption::Ignore) => return conn,
        Some(SessionOption::Drop) => None,
        Some(SessionOption::Renew) => Some(state.map),
        None if state.changed => Some(state.map),
        None => return conn,
    };
    let mut cookie = cookie::Cookie::new(config.cookie_name.to_string(), String::new());
    cookie.set_path(config.path.to_string());
    if let Some(domain) = &config.domain {
        cookie.set_domain(domain.clone());
    }
    cookie.set_http_only(config.http_only);
    cookie.set_secure(secure);
    cookie.set_same_site(match config.same_site {
        SameSite::Strict => cookie::SameSite::Strict,
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::None => cookie::SameSite::None,
    });
    match value {
        Some(map) => {
            let now = token::now_ms();
            cookie.set_value(match config.store {
                SessionStore::Signed => token::sign_at(key, &map, now),
                SessionStore::Encrypted => token::encrypt_at(key, &map, now),
            });
            if let Some(max_age) = config.max_age {
                let secs = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
                cookie.set_max_age(cookie::time::Duration::seconds(secs));
            }
        }
        None => cookie.make_removal(),
    }
    // Session values are base64url and need no percent-encoding.
    let text = cookie.to_string();
    if text.len() > MAX_COOKIE_BYTES {
        tracing::error!(
            cookie = %config.cookie_name,
            bytes = text.len(),
            limit = MAX_COOKIE_BYTES,
            "session cookie too large; browsers would drop it, answering 500 instead"
        );
        let detail = "session cookie exceeds 4096 bytes";
        return ActionError::internal().with_detail(detail).render(conn);
    }
    match HeaderValue::try_from(text) {
        Ok(value) => {
            conn.resp_headers_mut().append(header::SET_COOKIE, value);
            conn
        }
        Err(_) => {
            tracing::error!(cookie = %config.cookie_name, "session cookie is not a valid header");
            ActionError::internal().render(conn)
        }
    }
}

mod sealed {
    #[allow(unreachable_pub)] // Public in a private module: the trait cannot be named outside.
    pub trait Sealed {}
    impl Sealed for crate::Conn {}
}

/// The session, on a [`Conn`] that went through [`fetch_session`]: Plug's `get_session`,
/// `put_session`, `delete_session`, `clear_session` and `configure_session`.
///
/// Values are stored as JSON, so anything `Serialize` goes in and anything `Deserialize`
/// comes out.
///
/// # Panics
///
/// Every method panics when the session was not fetched: the pipeline lacks
/// [`fetch_session`], a mistake the first request shows (as a 500).
///
/// # Examples
///
/// ```
/// use fawkes::security::SessionExt;
/// use fawkes::Conn;
///
/// async fn login(conn: Conn) -> Conn {
///     conn.put_session("user_id", &7)
///         .configure_session(fawkes::security::SessionOption::Renew)
///         .redirect("/")
/// }
///
/// async fn logout(conn: Conn) -> Conn {
///     conn.clear_session().configure_session(fawkes::security::SessionOption::Drop).redirect("/")
/// }
/// ```
pub trait SessionExt: sealed::Sealed + Sized {
    /// The value under `key`, when there is one and it is a `T`.
    fn get_session<T: DeserializeOwned>(&self, key: &str) -> Option<T>;

    /// Stores `value` under `key`.
    ///
    /// A value that does not serialise as JSON (a map with non-string keys) renders a 500,
    /// as [`Conn::json`] does.
    #[must_use]
    fn put_session<T: Serialize + ?Sized>(self, key: &str, value: &T) -> Self;

    /// Removes `key`.
    #[must_use]
    fn delete_session(self, key: &str) -> Self;

    /// Removes every key.
    #[must_use]
    fn clear_session(self) -> Self;

    /// Renews, drops or ignores the session cookie when the response is sent.
    #[must_use]
    fn configure_session(self, option: SessionOption) -> Self;
}

const NOT_FETCHED: &str =
    "session not fetched: put `fawkes::security::fetch_session(..)` in the pipeline first";

#[track_caller]
/// The session's values, when a session plug fetched it for this request.
pub(crate) fn fetched(conn: &Conn) -> Option<&Map<String, Value>> {
    conn.assigns().get::<SessionState>().map(|state| &state.map)
}

pub(crate) fn state(conn: &Conn) -> &SessionState {
    conn.assigns().get::<SessionState>().expect(NOT_FETCHED)
}

#[track_caller]
pub(crate) fn state_mut(conn: &mut Conn) -> &mut SessionState {
    conn.assigns_mut().get_mut::<SessionState>().expect(NOT_FETCHED)
}

impl SessionExt for Conn {
    #[track_caller]
    fn get_session<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let value = state(self).map.get(key)?;
        T::deserialize(value).ok()
    }

    #[track_caller]
    fn put_session<T: Serialize + ?Sized>(mut self, key: &str, value: &T) -> Self {
        let state = state_mut(&mut self);
        match serde_json::to_value(value) {
            Ok(value) => {
                state.insert(key, value);
                self
            }
            Err(err) => {
                tracing::error!(error = %err, key, "failed to serialise a session value");
                ActionError::internal().render(self)
            }
        }
    }

    #[track_caller]
    fn delete_session(mut self, key: &str) -> Self {
        let state = state_mut(&mut self);
        if state.map.remove(key).is_some() {
            state.changed = true;
        }
        self
    }

    #[track_caller]
    fn clear_session(mut self) -> Self {
        let state = state_mut(&mut self);
        state.map.clear();
        state.changed = true;
        self
    }

    #[track_caller]
    fn configure_session(mut self, option: SessionOption) -> Self {
        state_mut(&mut self).option = Some(option);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SecretKeyBase {
        SecretKeyBase::new(vec![9; 64]).unwrap()
    }

    fn request(cookie: Option<&str>) -> Conn {
        let mut req = http::Request::get("http://example.test/");
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, cookie);
        }
        Conn::from_request(req.body(crate::Body::empty()).unwrap())
    }

    fn set_cookies(resp: &http::Response<crate::Body>) -> Vec<String> {
        resp.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `name=value` pair of a `Set-Cookie` header, ready to send back.
    fn pair(set_cookie: &str) -> &str {
        set_cookie.split(';').next().unwrap()
    }

    /// One request through the plug and `f`: the response status and its `Set-Cookie`s.
    async fn run(
        plug: &FetchSession,
        cookie: Option<&str>,
        f: impl FnOnce(Conn) -> Conn,
    ) -> (http::StatusCode, Vec<String>) {
        let resp = f(plug.call(request(cookie)).await).into_response();
        (resp.status(), set_cookies(&resp))
    }

    #[tokio::test]
    async fn round_trips_in_both_stores() {
        for store in [SessionStore::Signed, SessionStore::Encrypted] {
            let plug = fetch_session(SessionConfig::new(base()).store(store));
            let (_, cookies) = run(&plug, None, |c| c.put_session("k", &"v")).await;
            assert_eq!(cookies.len(), 1, "{store:?}");
            let conn = plug.call(request(Some(pair(&cookies[0])))).await;
            assert_eq!(conn.get_session::<String>("k").as_deref(), Some("v"), "{store:?}");
            let visible = cookies[0].contains(&base64_of(r#""k":"v""#));
            assert_eq!(visible, store == SessionStore::Signed, "{store:?}");
        }
    }

    /// How `{"data":{<text>` looks inside a signed cookie: its first 15 bytes encode to 20
    /// base64 characters whatever follows.
    fn base64_of(text: &str) -> String {
        use base64::Engine as _;
        let full = format!(r#"{{"data":{{{text}"#);
        assert!(full.len() >= 15);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&full.as_bytes()[..15])
    }

    #[tokio::test]
    async fn unchanged_sessions_write_no_cookie() {
        let plug = fetch_session(SessionConfig::new(base()));
        let (_, cookies) = run(&plug, None, |c| c).await;
        assert!(cookies.is_empty());
        let (_, cookies) = run(&plug, None, |c| c.put_session("k", &1)).await;
        let (_, again) = run(&plug, Some(pair(&cookies[0])), |c| c.delete_session("absent")).await;
        assert!(again.is_empty(), "deleting an absent key changes nothing");
        let (_, renewed) =
            run(&plug, Some(pair(&cookies[0])), |c| c.configure_session(SessionOption::Renew))
                .await;
        assert_eq!(renewed.len(), 1);
        let (_, ignored) =
            run(&plug, None, |c| c.put_session("k", &1).configure_session(SessionOption::Ignore))
                .await;
        assert!(ignored.is_empty());
    }

    #[tokio::test]
    async fn drop_removes_the_cookie() {
        let plug = fetch_session(SessionConfig::new(base()));
        let (_, cookies) =
            run(&plug, None, |c| c.put_session("k", &1).configure_session(SessionOption::Drop))
                .await;
        assert_eq!(cookies.len(), 1);
        assert!(cookies[0].starts_with("_fawkes_key=;"), "{}", cookies[0]);
        assert!(cookies[0].contains("Max-Age=0"), "{}", cookies[0]);
    }

    #[tokio::test]
    async fn bad_cookies_are_empty_sessions() {
        let plug = fetch_session(SessionConfig::new(base()));
        let foreign = fetch_session(SessionConfig::new(SecretKeyBase::new(vec![1; 64]).unwrap()));
        let (_, good) = run(&plug, None, |c| c.put_session("k", &1)).await;
        let (_, other) = run(&foreign, None, |c| c.put_session("k", &1)).await;
        let good = pair(&good[0]).to_owned();
        let cases = [
            ("truncated", good[..good.len() - 5].to_owned()),
            ("tampered", good.replacen(".", ".x", 1)),
            ("foreign key", pair(&other[0]).to_owned()),
            ("garbage", "_fawkes_key=%%%;;==".to_owned()),
            ("empty", "_fawkes_key=".to_owned()),
        ];
        for (case, cookie) in cases {
            let conn = plug.call(request(Some(&cookie))).await;
            assert_eq!(conn.get_session::<Value>("k"), None, "{case}");
            assert!(state(&conn).map.is_empty(), "{case}");
        }
    }

    #[tokio::test]
    async fn cookie_attributes_follow_the_config() {
        let config = SessionConfig::new(base())
            .cookie_name("sid")
            .same_site(SameSite::Strict)
            .max_age(Duration::from_secs(60))
            .domain("example.test");
        let plug = fetch_session(config);
        let (_, cookies) = run(&plug, None, |c| c.put_session("k", &1)).await;
        let cookie = &cookies[0];
        for attr in ["sid=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=60", "Domain="] {
            assert!(cookie.contains(attr), "{attr} missing from {cookie}");
        }
        assert!(!cookie.contains("Secure"), "plain http is not secure: {cookie}");
        let conn = request(None);
        let mut req = http::Request::get("/").header("x-forwarded-proto", "https");
        req = req.header(header::HOST, "example.test");
        let https = Conn::from_request(req.body(crate::Body::empty()).unwrap());
        assert!(is_https(&https));
        assert!(!is_https(&conn));
        let appended = |value: &str| {
            let req = http::Request::get("/").header("x-forwarded-proto", value);
            Conn::from_request(req.body(crate::Body::empty()).unwrap())
        };
        assert!(is_https(&appended("http, https")), "the proxy's value is the last");
        assert!(!is_https(&appended("https, http")));
        let never = fetch_session(SessionConfig::new(base()).secure(SecureCookie::Never));
        let conn = never.call(https).await.put_session("k", &1);
        let resp = conn.into_response();
        assert!(!set_cookies(&resp)[0].contains("Secure"));
        let always = fetch_session(SessionConfig::new(base()).secure(SecureCookie::Always));
        let (_, cookies) = run(&always, None, |c| c.put_session("k", &1)).await;
        assert!(cookies[0].contains("Secure"));
    }

    #[tokio::test]
    async fn expired_cookies_are_empty_sessions() {
        let plug = fetch_session(SessionConfig::new(base()).max_age(Duration::from_secs(60)));
        let key = plug.0.key.get().unwrap();
        let old = token::sign_at(key, &serde_json::json!({"k": 1}), 1_000);
        let conn = plug.call(request(Some(&format!("_fawkes_key={old}")))).await;
        assert_eq!(conn.get_session::<u32>("k"), None);
        let fresh = token::sign_at(key, &serde_json::json!({"k": 1}), token::now_ms());
        let conn = plug.call(request(Some(&format!("other=1; _fawkes_key={fresh}")))).await;
        assert_eq!(conn.get_session::<u32>("k"), Some(1));
    }

    #[tokio::test]
    async fn oversized_sessions_answer_500_without_a_cookie() {
        let plug = fetch_session(SessionConfig::new(base()));
        let (status, cookies) = run(&plug, None, |c| c.put_session("k", &"x".repeat(4000))).await;
        assert!(cookies.is_empty());
        assert_eq!(status, http::StatusCode::INTERNAL_SERVER_ERROR);
        // Just under the limit still goes out.
        let (status, cookies) = run(&plug, None, |c| c.put_session("k", &"x".repeat(2500))).await;
        assert_eq!(cookies.len(), 1);
        assert_eq!(status, http::StatusCode::OK);
    }

    #[test]
    #[should_panic(expected = "session not fetched")]
    fn using_an_unfetched_session_panics_clearly() {
        let _ = request(None).get_session::<u32>("k");
    }
}
