//! In-process test helpers: requests and sockets without TCP.
//!
//! [`ConnTest`] builds a request, dispatches it through a [`Router`] in the same task and
//! returns a [`TestResponse`] to assert on, the way Phoenix's `ConnTest` does.
//! [`ChannelTest`] connects a [`Socket`](crate::socket::Socket), joins topics, pushes events and
//! asserts on replies, pushes and broadcasts, as Phoenix's `ChannelTest`. Enabled by the `test`
//! feature.

mod channel;
mod live;

pub use channel::ChannelTest;
pub use live::{LiveTestError, LiveViewTest};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use std::sync::{Arc, OnceLock};

use crate::endpoint::ConnInfo;
use crate::{Body, PubSub, Router};

/// Sends requests through a router in process.
///
/// # Examples
///
/// ```
/// use fawkes::test::ConnTest;
///
/// async fn show(conn: fawkes::Conn) -> fawkes::Conn {
///     let id = conn.path_param("id").unwrap_or_default().to_owned();
///     conn.json(&serde_json::json!({ "id": id }))
/// }
///
/// fawkes::router! {
///     pub App;
///     scope "/api" { get "/rooms/:id" => show; }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let client = ConnTest::new(App::new());
/// let resp = client.get("/api/rooms/7").send().await;
/// resp.assert_status(200);
/// assert_eq!(resp.json()["id"], "7");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct ConnTest {
    router: Router,
    context: Context,
    info: Arc<OnceLock<ConnInfo>>,
}

/// What an endpoint would provide to requests: a pubsub, and a supervisor started on first use.
#[derive(Debug, Clone)]
struct Context {
    pubsub: PubSub,
    secret_key_base: Option<crate::security::SecretKeyBase>,
}

impl Context {
    fn conn_info(&self) -> ConnInfo {
        let supervisor = crate::supervisor::Supervisor::builder().name("conn test").start();
        ConnInfo::for_test(supervisor, self.pubsub.clone(), self.secret_key_base.clone())
    }
}

impl ConnTest {
    /// A test client for `router`, with a fresh local pubsub.
    pub fn new(router: impl Into<Router>) -> Self {
        Self::with_pubsub(router, PubSub::new("test"))
    }

    /// A test client whose requests see `pubsub` (share it with a [`ChannelTest`]).
    pub fn with_pubsub(router: impl Into<Router>, pubsub: PubSub) -> Self {
        Self {
            router: router.into(),
            context: Context { pubsub, secret_key_base: None },
            info: Arc::new(OnceLock::new()),
        }
    }

    /// Gives requests the secret key base an endpoint would
    /// ([`Endpoint::secret_key_base`](crate::Endpoint::secret_key_base)): for sessions
    /// configured from the endpoint, and live pages, which sign their token with it.
    #[must_use]
    pub fn secret_key_base(mut self, key_base: crate::security::SecretKeyBase) -> Self {
        self.context.secret_key_base = Some(key_base);
        self.info = Arc::new(OnceLock::new());
        self
    }

    /// The secret key base given with [`ConnTest::secret_key_base`].
    pub fn key_base(&self) -> Option<&crate::security::SecretKeyBase> {
        self.context.secret_key_base.as_ref()
    }

    /// The pubsub requests see.
    pub fn pubsub(&self) -> &PubSub {
        &self.context.pubsub
    }

    /// Starts a request.
    pub fn request(&self, method: Method, path: &str) -> TestRequest {
        TestRequest {
            router: self.router.clone(),
            context: self.context.clone(),
            info: self.info.clone(),
            builder: Request::builder().method(method).uri(path),
            body: Body::empty(),
        }
    }

    /// Starts a GET.
    pub fn get(&self, path: &str) -> TestRequest {
        self.request(Method::GET, path)
    }

    /// Starts a POST.
    pub fn post(&self, path: &str) -> TestRequest {
        self.request(Method::POST, path)
    }

    /// Starts a PUT.
    pub fn put(&self, path: &str) -> TestRequest {
        self.request(Method::PUT, path)
    }

    /// Starts a PATCH.
    pub fn patch(&self, path: &str) -> TestRequest {
        self.request(Method::PATCH, path)
    }

    /// Starts a DELETE.
    pub fn delete(&self, path: &str) -> TestRequest {
        self.request(Method::DELETE, path)
    }
}

/// A request being built; [`TestRequest::send`] runs it.
#[derive(Debug)]
#[must_use]
pub struct TestRequest {
    router: Router,
    context: Context,
    info: Arc<OnceLock<ConnInfo>>,
    builder: http::request::Builder,
    body: Body,
}

impl TestRequest {
    /// Adds a header.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        <K as TryInto<HeaderName>>::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        <V as TryInto<HeaderValue>>::Error: Into<http::Error>,
    {
        self.builder = self.builder.header(name, value);
        self
    }

    /// A JSON body, with its content type.
    ///
    /// # Panics
    ///
    /// When `value` cannot be serialised.
    #[track_caller]
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let bytes = serde_json::to_vec(value).expect("test body serialises to JSON");
        self.header(header::CONTENT_TYPE, "application/json").body(bytes)
    }

    /// A urlencoded form body, with its content type.
    ///
    /// # Panics
    ///
    /// When `value` cannot be urlencoded.
    #[track_caller]
    pub fn form<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let text = serde_urlencoded::to_string(value).expect("test form urlencodes");
        self.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(text)
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// Runs the request through the router and reads the whole response.
    ///
    /// # Panics
    ///
    /// When the request is malformed (a bad URI or header) or the response body fails.
    pub async fn send(self) -> TestResponse {
        let mut req = self.builder.body(self.body).expect("test request is well formed");
        req.extensions_mut().insert(self.info.get_or_init(|| self.context.conn_info()).clone());
        let resp = self.router.dispatch(req).await;
        let (parts, body) = resp.into_parts();
        let body = body.collect(usize::MAX).await.expect("response body reads");
        TestResponse { status: parts.status, headers: parts.headers, body }
    }
}

/// A response read whole, with assertions.
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as a JSON value.
    ///
    /// # Panics
    ///
    /// When the body is not JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        self.json_as()
    }

    /// The body deserialised as `T`.
    ///
    /// # Panics
    ///
    /// When the body does not deserialise as `T`.
    #[track_caller]
    pub fn json_as<T: DeserializeOwned>(&self) -> T {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(err) => panic!("response body is not the expected JSON ({err}): {}", self.text()),
        }
    }

    /// Asserts the status.
    ///
    /// # Panics
    ///
    /// When the status differs; the message shows the body.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(self.status.as_u16(), expected, "unexpected status; body: {}", self.text());
        self
    }

    /// Asserts a header's value.
    ///
    /// # Panics
    ///
    /// When the header is missing or differs.
    #[track_caller]
    pub fn assert_header(&self, name: &str, expected: &str) -> &Self {
        assert_eq!(self.header(name), Some(expected), "header {name}");
        self
    }

    /// Asserts the JSON body.
    ///
    /// # Panics
    ///
    /// When the body is not JSON or differs from `expected`.
    #[track_caller]
    pub fn assert_json(&self, expected: &serde_json::Value) -> &Self {
        assert_eq!(&self.json(), expected);
        self
    }
}
