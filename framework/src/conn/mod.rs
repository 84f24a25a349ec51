//! `Conn`: one request and the response being built for it.
//!
//! A `Conn` carries the request (method, URI, headers, body), the params decoded from the path,
//! the query string and the body (merged the way Phoenix merges them: body, then query, then
//! path, the later winning), typed assigns that plugs hand to later plugs and actions, and the
//! response under construction. Plugs and actions take a `Conn` by value and give it back, so
//! the flow of a request reads top to bottom.
//!
//! This module knows nothing about routing, sockets or the endpoint: it is the value that flows
//! through them.

mod assigns;
mod body;
pub(crate) mod de;
mod error;
mod field_errors;
mod info;
pub(crate) mod params;
pub(crate) mod path_params;
mod tower;
pub mod validate;

use std::cell::OnceCell;
use std::fmt;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use assigns::Assigns;
pub(crate) use body::ReadWatch;
pub use body::{Body, BodyError};
pub use error::{InvalidHeader, ParamsError};
pub use field_errors::{FieldErrors, PathSegment};
pub use info::ConnInfo;
pub(crate) use info::{Shared, SharedRef};
pub use params::ParamsLimits;

type BeforeSend = Box<dyn FnOnce(Conn) -> Conn + Send>;

// Constants, so the bytes are checked once at compile time rather than on every response.
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const TEXT_HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// One request and the response being built for it.
///
/// # Examples
///
/// ```
/// use fawkes::Conn;
/// use http::StatusCode;
///
/// let conn = Conn::from_request(http::Request::get("/rooms?page=2").body(fawkes::Body::empty()).unwrap());
/// assert_eq!(conn.query_params()["page"], "2");
///
/// let conn = conn.put_status(StatusCode::CREATED).json(&serde_json::json!({"ok": true}));
/// assert_eq!(conn.status(), StatusCode::CREATED);
/// assert_eq!(conn.resp_body_bytes().unwrap(), br#"{"ok":true}"#);
/// ```
pub struct Conn(Box<Inner>);

/// A conn's state, boxed so that passing a `Conn` through plugs and futures moves one pointer.
struct Inner {
    req: http::request::Parts,
    /// The endpoint's connection info, kept out of `req.extensions` until something looks
    /// there: inserting it would cost three allocations on every request. See
    /// [`Conn::extensions`].
    conn_info: Option<ConnInfo>,
    /// `req.extensions` with `conn_info` in it, built on the first [`Conn::extensions`] call.
    extensions_view: OnceCell<http::Extensions>,
    body: Option<Body>,
    body_limit: Option<usize>,
    params_limits: ParamsLimits,
    raw_body: Option<Bytes>,
    path_params: path_params::PathParams,
    /// [`Conn::path_params`] as owned pairs, built on first use.
    path_param_pairs: OnceCell<Vec<(String, String)>>,
    /// The decoded query string, or why it did not decode within the limits.
    query_params: OnceCell<Result<Map<String, Value>, params::DecodeError>>,
    /// `None` until a body is decoded: most requests have none, and dropping even an empty
    /// map costs a walk of it.
    body_params: Option<Map<String, Value>>,
    params: OnceCell<Map<String, Value>>,
    assigns: Assigns,
    route: Option<&'static str>,
    status: Option<StatusCode>,
    resp_headers: HeaderMap,
    resp_body: Body,
    halted: bool,
    before_send: Vec<BeforeSend>,
}

impl Conn {
    /// Wraps a request; the response starts as an empty 200.
    pub fn from_request<B>(req: Request<B>) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<crate::BoxError>,
    {
        let (req, body) = req.into_parts();
        Self(Box::new(Inner {
            req,
            conn_info: None,
            extensions_view: OnceCell::new(),
            body: Some(Body::new(body)),
            body_limit: None,
            params_limits: ParamsLimits::default(),
            raw_body: None,
            path_params: path_params::PathParams::default(),
            path_param_pairs: OnceCell::new(),
            query_params: OnceCell::new(),
            body_params: None,
            params: OnceCell::new(),
            assigns: Assigns::new(),
            route: None,
            status: None,
            resp_headers: HeaderMap::new(),
            resp_body: Body::empty(),
            halted: false,
            before_send: Vec::new(),
        }))
    }

    // ----- request -----

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.0.req.method
    }

    /// The request URI.
    pub fn uri(&self) -> &Uri {
        &self.0.req.uri
    }

    /// The request path.
    pub fn path(&self) -> &str {
        self.0.req.uri.path()
    }

    /// The raw query string, empty when there is none.
    pub fn query_string(&self) -> &str {
        self.0.req.uri.query().unwrap_or_default()
    }

    /// The HTTP version of the request.
    pub fn version(&self) -> Version {
        self.0.req.version
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.0.req.headers
    }

    /// A request header as text, if present and visible ASCII.
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.0.req.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request's extensions (set by the endpoint and by tower layers).
    pub fn extensions(&self) -> &http::Extensions {
        match &self.0.conn_info {
            None => &self.0.req.extensions,
            // Few requests look here, so the endpoint's `ConnInfo` joins the extensions only
            // for those that do, in a copy (the values are `Clone`, mostly reference counts).
            Some(info) => self.0.extensions_view.get_or_init(|| {
                let mut extensions = self.0.req.extensions.clone();
                extensions.insert(info.clone());
                extensions
            }),
        }
    }

    /// Mutable access to the request's extensions.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        self.settle_conn_info();
        &mut self.0.req.extensions
    }

    /// Puts a pending `ConnInfo` into the request's extensions for good, before they are
    /// changed or leave the conn.
    fn settle_conn_info(&mut self) {
        if let Some(info) = self.0.conn_info.take() {
            match self.0.extensions_view.take() {
                Some(view) => self.0.req.extensions = view,
                None => {
                    self.0.req.extensions.insert(info);
                }
            }
        }
    }

    /// Gives the conn its connection's info without touching the request's extensions.
    pub(crate) fn set_conn_info(&mut self, info: ConnInfo) {
        self.settle_conn_info();
        self.0.conn_info = Some(info);
    }

    /// The connection the request came on: its peer address and the endpoint's state. `None`
    /// outside an endpoint (a router called directly) unless the request carried one.
    pub fn conn_info(&self) -> Option<&ConnInfo> {
        self.0.conn_info.as_ref().or_else(|| self.0.req.extensions.get::<ConnInfo>())
    }

    /// The secret key base of the endpoint serving this request
    /// ([`Endpoint::secret_key_base`](crate::Endpoint::secret_key_base)), if it has one.
    pub fn secret_key_base(&self) -> Option<&crate::secret::SecretKeyBase> {
        self.conn_info().and_then(ConnInfo::secret_key_base)
    }

    /// The pubsub to broadcast on from controllers: the endpoint's, under an endpoint; the
    /// test's, under `ConnTest`; otherwise the process's own ([`PubSub::process`]).
    ///
    /// [`PubSub::process`]: crate::PubSub::process
    pub fn pubsub(&self) -> &crate::PubSub {
        match self.conn_info() {
            Some(info) => info.pubsub(),
            None => crate::PubSub::process(),
        }
    }

    /// The telemetry of the endpoint serving this request; outside an endpoint, the process's
    /// own ([`Telemetry::process`](crate::telemetry::Telemetry::process)).
    pub fn telemetry(&self) -> &crate::instrument::Telemetry {
        match self.conn_info() {
            Some(info) => info.telemetry(),
            None => crate::instrument::Telemetry::process(),
        }
    }

    /// The route pattern that matched, such as `/api/rooms/:id`.
    pub fn route(&self) -> Option<&'static str> {
        self.0.route
    }

    /// Takes the raw request body, for streaming. Empty if the router already decoded it.
    ///
    /// Under a router the stream is bounded by its body limit: reading past it fails.
    pub fn take_body(&mut self) -> Body {
        let body = self.0.body.take().unwrap_or_default();
        match self.0.body_limit {
            Some(limit) => Body::new(http_body_util::Limited::new(body, limit)),
            None => body,
        }
    }

    /// Bounds what [`Conn::take_body`] may read.
    pub(crate) fn set_body_limit(&mut self, limit: usize) {
        self.0.body_limit = Some(limit);
    }

    /// The request body bytes, when the router decoded a JSON or form body.
    pub fn raw_body(&self) -> Option<&Bytes> {
        self.0.raw_body.as_ref()
    }

    // ----- params -----

    /// A path param by name, as captured from the route (`/rooms/:id` → `id`).
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.0.path_params.get(self.0.req.uri.path(), name)
    }

    /// All path params, in route order.
    pub fn path_params(&self) -> &[(String, String)] {
        self.0.path_param_pairs.get_or_init(|| {
            self.path_param_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
        })
    }

    fn path_param_iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.path_params.iter(self.0.req.uri.path())
    }

    /// The decoded query string; nested keys (`a[b]=1`) become nested objects.
    ///
    /// A query string past the router's [`ParamsLimits`] reads as empty here, and
    /// [`Conn::params`] reports it as a 400.
    pub fn query_params(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.decoded_query().as_ref().unwrap_or_else(|_| EMPTY.get_or_init(Map::new))
    }

    fn decoded_query(&self) -> &Result<Map<String, Value>, params::DecodeError> {
        self.0
            .query_params
            .get_or_init(|| params::decode(self.query_string(), self.0.params_limits))
    }

    /// The decoded body params (JSON or form). A JSON body that is not an object is under `_json`.
    pub fn body_params(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.0.body_params.as_ref().unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// Body, query and path params merged, the later winning, as Phoenix merges them.
    pub fn param_map(&self) -> &Map<String, Value> {
        self.0.params.get_or_init(|| {
            let mut merged = self.body_params().clone();
            merged.extend(self.query_params().iter().map(|(k, v)| (k.clone(), v.clone())));
            merged.extend(self.path_param_iter().map(|(k, v)| (k.to_owned(), Value::from(v))));
            merged
        })
    }

    /// Decodes the merged params (body, query and path) into `T`.
    ///
    /// Values that arrive as strings (every path, query and form value) parse into the type
    /// the field asks for, as Phoenix casts them: `id: u64` reads `"42"` from a path as it
    /// reads `42` from a JSON body. An `Option` field is `None` when missing or `null`, and,
    /// in a form or a query string (which cannot send a null), when empty.
    ///
    /// # Errors
    ///
    /// A [`ParamsError`], rendered in Phoenix's shapes: a 422
    /// `{"errors":{"<field>":["can't be blank"]}}` for a missing field (`is invalid` for one
    /// that does not parse); a 404 when the field that does not parse is a path param (an id
    /// that cannot exist); a 400 for a query string past the [`ParamsLimits`].
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Page { page: u32, per: Option<u32> }
    ///
    /// let conn = fawkes::Conn::from_request(http::Request::get("/?page=3&per=").body(fawkes::Body::empty()).unwrap());
    /// let Page { page, per } = conn.params().unwrap();
    /// assert_eq!((page, per), (3, None));
    ///
    /// let conn = fawkes::Conn::from_request(http::Request::get("/?page=x").body(fawkes::Body::empty()).unwrap());
    /// let err = conn.params::<Page>().unwrap_err();
    /// assert_eq!((err.field().as_str(), err.message(), err.status().as_u16()), ("page", "is invalid", 422));
    /// ```
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, ParamsError> {
        self.check_query()?;
        de::from_map(self.param_map(), self.blank_is_none())
            .map_err(|err| err.on_path_param(|field| self.path_param(field).is_some()))
    }

    /// A query string past the [`ParamsLimits`] is a 400 for every typed read of the params.
    fn check_query(&self) -> Result<(), ParamsError> {
        match self.decoded_query() {
            Ok(_) => Ok(()),
            Err(err) => Err(ParamsError::malformed("query", err.to_string())),
        }
    }

    /// Whether an empty string reads as `None` for an `Option` field: yes for params from
    /// forms and query strings, which have no other way to say "nothing" (an empty input),
    /// no when the body is JSON, which has `null`.
    fn blank_is_none(&self) -> bool {
        !self.header(header::CONTENT_TYPE).is_some_and(|ct| {
            let mime = ct.split(';').next().unwrap_or_default().trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        })
    }

    /// Decodes the params under one key into `T`, the way a Phoenix action matches
    /// `%{"todo" => todo_params}`: errors name the fields inside it (`title`, not
    /// `todo.title`), as validation rules on `T` do.
    ///
    /// # Errors
    ///
    /// As [`Conn::params`]; params without an object under `key` are a 400 on the field `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Todo { title: String, done: bool }
    ///
    /// let conn = fawkes::Conn::from_request(
    ///     http::Request::get("/?todo[title]=milk&todo[done]=false").body(fawkes::Body::empty()).unwrap(),
    /// );
    /// let todo: Todo = conn.params_in("todo").unwrap();
    /// assert_eq!((todo.title.as_str(), todo.done), ("milk", false));
    /// ```
    pub fn params_in<T: DeserializeOwned>(&self, key: &str) -> Result<T, ParamsError> {
        self.check_query()?;
        match self.param_map().get(key) {
            Some(Value::Object(map)) => de::from_map(map, self.blank_is_none()),
            _ => Err(ParamsError::malformed(
                key,
                format!("expected an object of params under \"{key}\""),
            )),
        }
    }

    /// Decodes the merged params into `T` and checks `T`'s validation rules, Ecto's
    /// `cast` + `validate_*` in one call. Decoding errors and rule errors come in one shape,
    /// with the same field names and Phoenix's messages (see [`crate::conn::validate`]).
    ///
    /// # Errors
    ///
    /// As [`Conn::params`], and a 422 listing every rule that failed, per field.
    ///
    /// # Examples
    ///
    /// ```
    /// use validator::Validate;
    ///
    /// #[derive(Debug, serde::Deserialize, Validate)]
    /// struct Signup {
    ///     #[validate(length(min = 3))]
    ///     name: String,
    ///     #[validate(range(min = 18))]
    ///     age: u32,
    /// }
    ///
    /// let conn = fawkes::Conn::from_request(http::Request::get("/?name=al&age=12").body(fawkes::Body::empty()).unwrap());
    /// let err = conn.cast::<Signup>().unwrap_err();
    /// assert_eq!(err.errors().to_json(), serde_json::json!({
    ///     "age": ["must be greater than or equal to 18"],
    ///     "name": ["should be at least 3 character(s)"],
    /// }));
    /// ```
    pub fn cast<T: DeserializeOwned + validator::Validate>(&self) -> Result<T, ParamsError> {
        let value: T = self.params()?;
        value.validate()?;
        Ok(value)
    }

    /// [`Conn::params_in`] and `T`'s validation rules in one call: the params under `key`,
    /// errors named from inside it.
    ///
    /// # Errors
    ///
    /// As [`Conn::params_in`] and [`Conn::cast`].
    pub fn cast_in<T: DeserializeOwned + validator::Validate>(
        &self,
        key: &str,
    ) -> Result<T, ParamsError> {
        let value: T = self.params_in(key)?;
        value.validate()?;
        Ok(value)
    }

    /// One param, typed: `let id: u64 = conn.param("id")?`.
    ///
    /// A path param of that name comes first (the later winner when params merge), then the
    /// body's and the query's. Strings parse into the type asked for, as in [`Conn::params`].
    ///
    /// # Errors
    ///
    /// A [`ParamsError`]: a 404 when a path param does not parse (`/todos/abc` names no todo
    /// when ids are numbers); a 422 `can't be blank` for a missing param, `is invalid` for one
    /// that does not parse.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::{ActionError, Conn};
    ///
    /// async fn show(conn: Conn) -> Result<Conn, ActionError> {
    ///     let id: u64 = conn.param("id")?;
    ///     Ok(conn.text(format!("todo {id}")))
    /// }
    ///
    /// let conn = fawkes::Conn::from_request(http::Request::get("/?page=2").body(fawkes::Body::empty()).unwrap());
    /// assert_eq!(conn.param::<u32>("page").unwrap(), 2);
    /// assert_eq!(conn.param::<u32>("per").unwrap_err().message(), "can't be blank");
    /// assert_eq!(conn.param::<Option<u32>>("per").unwrap(), None);
    /// ```
    pub fn param<T: DeserializeOwned>(&self, name: &str) -> Result<T, ParamsError> {
        if let Some(raw) = self.path_param(name) {
            return de::from_str(raw).map_err(|err| ParamsError::not_found(name, err.to_string()));
        }
        self.check_query()?;
        let found = self.body_params().get(name).or_else(|| self.query_params().get(name));
        match found {
            Some(value) => de::from_value(value, self.blank_is_none())
                .map_err(|err| ParamsError::on_field(name, "is invalid", err.to_string())),
            // A missing param reads as `None` for an `Option`, and as blank otherwise.
            None => de::from_value(&Value::Null, false)
                .map_err(|err| ParamsError::on_field(name, "can't be blank", err.to_string())),
        }
    }

    pub(crate) fn set_path_params(&mut self, params: path_params::PathParams, route: &'static str) {
        self.0.path_params = params;
        self.0.path_param_pairs = OnceCell::new();
        self.0.route = Some(route);
        self.0.params = OnceCell::new();
    }

    pub(crate) fn set_params_limits(&mut self, limits: ParamsLimits) {
        self.0.params_limits = limits;
    }

    pub(crate) fn set_body_params(&mut self, raw: Bytes, params: Map<String, Value>) {
        self.0.raw_body = Some(raw);
        self.0.body_params = Some(params);
        self.0.params = OnceCell::new();
    }

    // ----- assigns -----

    /// Stores a typed value for later plugs and the action (Phoenix's `assign`).
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(Clone)]
    /// struct CurrentUser(u32);
    ///
    /// let conn = fawkes::Conn::from_request(http::Request::get("/").body(fawkes::Body::empty()).unwrap())
    ///     .assign(CurrentUser(7));
    /// assert_eq!(conn.get_assign::<CurrentUser>().unwrap().0, 7);
    /// ```
    #[must_use]
    pub fn assign<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.0.assigns.insert(value);
        self
    }

    /// A typed assign, if one was stored.
    pub fn get_assign<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.assigns.get::<T>()
    }

    /// All assigns.
    pub fn assigns(&self) -> &Assigns {
        &self.0.assigns
    }

    /// Mutable access to all assigns.
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(Clone)]
    /// struct Visits(u32);
    ///
    /// let mut conn = fawkes::Conn::from_request(http::Request::get("/").body(fawkes::Body::empty()).unwrap())
    ///     .assign(Visits(1));
    /// conn.assigns_mut().get_mut::<Visits>().unwrap().0 += 1;
    /// assert_eq!(conn.assigns().get::<Visits>().unwrap().0, 2);
    /// assert!(conn.assigns_mut().remove::<Visits>().is_some());
    /// assert!(conn.assigns().is_empty());
    /// ```
    pub fn assigns_mut(&mut self) -> &mut Assigns {
        &mut self.0.assigns
    }

    // ----- response -----

    /// The response status: 200 unless set.
    pub fn status(&self) -> StatusCode {
        self.0.status.unwrap_or(StatusCode::OK)
    }

    /// Whether a response status or body has been set.
    pub fn is_resp_set(&self) -> bool {
        self.0.status.is_some()
    }

    /// Sets the response status.
    #[must_use]
    pub fn put_status(mut self, status: StatusCode) -> Self {
        self.0.status = Some(status);
        self
    }

    /// The response headers.
    pub fn resp_headers(&self) -> &HeaderMap {
        &self.0.resp_headers
    }

    /// Mutable access to the response headers.
    pub fn resp_headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.0.resp_headers
    }

    /// Sets a response header, replacing any previous value.
    ///
    /// # Panics
    ///
    /// When `name` or `value` is not a valid header; use [`Conn::try_put_resp_header`] for
    /// values that come from users.
    #[must_use]
    #[track_caller]
    pub fn put_resp_header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        match self.try_put_resp_header(name, value) {
            Ok(conn) => conn,
            Err((_, err)) => panic!("{err}"),
        }
    }

    /// Sets a response header, giving the conn back with the error when the header is invalid.
    ///
    /// # Errors
    ///
    /// [`InvalidHeader`] when the name or value is not a valid header.
    #[allow(clippy::result_large_err)] // Giving the conn back is the point of this error.
    pub fn try_put_resp_header<K, V>(
        mut self,
        name: K,
        value: V,
    ) -> Result<Self, (Self, InvalidHeader)>
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        let Ok(name) = name.try_into() else { return Err((self, InvalidHeader::Name)) };
        let Ok(value) = value.try_into() else { return Err((self, InvalidHeader::Value)) };
        self.0.resp_headers.insert(name, value);
        Ok(self)
    }

    /// Sets the status and body in one go (Plug's `send_resp`).
    #[must_use]
    pub fn send_resp(mut self, status: StatusCode, body: impl Into<Body>) -> Self {
        self.0.status = Some(status);
        self.0.resp_body = body.into();
        self
    }

    /// Sets the response body, keeping the status.
    #[must_use]
    pub fn put_resp_body(mut self, body: impl Into<Body>) -> Self {
        self.0.status.get_or_insert(StatusCode::OK);
        self.0.resp_body = body.into();
        self
    }

    /// The response body, when it is in memory.
    pub fn resp_body_bytes(&self) -> Option<&[u8]> {
        self.0.resp_body.as_bytes()
    }

    /// Renders `value` as JSON with `content-type: application/json` (and
    /// `x-content-type-options: nosniff`, as [`Conn::text`] and [`Conn::html`] do).
    ///
    /// A value that fails to serialise renders a 500.
    #[must_use]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => self.put_content_type(APPLICATION_JSON).put_resp_body(bytes),
            Err(err) => {
                tracing::error!(error = %err, "failed to serialise a JSON response");
                self.render_error_detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }

    /// Renders plain text with `content-type: text/plain; charset=utf-8`.
    #[must_use]
    pub fn text(self, text: impl Into<Body>) -> Self {
        self.put_content_type(TEXT_PLAIN).put_resp_body(text)
    }

    /// Renders HTML with `content-type: text/html; charset=utf-8`.
    #[must_use]
    pub fn html(self, html: impl Into<Body>) -> Self {
        self.put_content_type(TEXT_HTML).put_resp_body(html)
    }

    /// Redirects with 302 to `to`, a path or URL.
    ///
    /// An invalid location (control characters) renders a 500 instead.
    #[must_use]
    pub fn redirect(self, to: &str) -> Self {
        match HeaderValue::try_from(to) {
            Ok(location) => {
                let mut conn = self.send_resp(StatusCode::FOUND, Body::empty());
                conn.0.resp_headers.insert(header::LOCATION, location);
                conn
            }
            Err(_) => {
                self.render_error_detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }

    /// Renders Phoenix's error shape, `{"errors": {"detail": detail}}`, with `status`: the
    /// one place that shape is written ([`ActionError`](crate::ActionError) renders through
    /// it).
    pub(crate) fn render_error_detail(self, status: StatusCode, detail: &str) -> Self {
        let body = serde_json::json!({ "errors": { "detail": detail } }).to_string();
        self.put_status(status).put_content_type(APPLICATION_JSON).put_resp_body(body)
    }

    /// Sets the content type, and tells browsers to keep to it: a JSON answer that echoes
    /// user input must not be sniffed into a script or a page.
    fn put_content_type(mut self, value: HeaderValue) -> Self {
        self.0.resp_headers.insert(header::CONTENT_TYPE, value);
        self.0.resp_headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        self
    }

    /// Stops the pipeline: no later plug nor the action runs.
    #[must_use]
    pub fn halt(mut self) -> Self {
        self.0.halted = true;
        self
    }

    /// Whether a plug halted the pipeline.
    pub fn halted(&self) -> bool {
        self.0.halted
    }

    /// Registers a callback run just before the response is sent, last registered first
    /// (Plug's `register_before_send`).
    #[must_use]
    pub fn register_before_send(mut self, f: impl FnOnce(Conn) -> Conn + Send + 'static) -> Self {
        self.0.before_send.push(Box::new(f));
        self
    }

    /// Turns the conn into its response, running the before-send callbacks.
    pub fn into_response(mut self) -> Response<Body> {
        while let Some(callback) = self.0.before_send.pop() {
            self = callback(self);
        }
        let mut resp = Response::new(self.0.resp_body);
        *resp.status_mut() = self.0.status.unwrap_or(StatusCode::OK);
        *resp.headers_mut() = self.0.resp_headers;
        resp
    }

    /// Sets aside what an action's error renders onto: the request line, the `accept` header,
    /// the response headers so far and the before-send callbacks (which move out, and back to
    /// the action's conn when it succeeds; see [`Conn::adopt_callbacks`]).
    pub(crate) fn fallback(&mut self) -> Fallback {
        Fallback {
            method: self.0.req.method.clone(),
            uri: self.0.req.uri.clone(),
            version: self.0.req.version,
            accept: self.0.req.headers.get(header::ACCEPT).cloned(),
            route: self.0.route,
            // A few pairs on the stack rather than a copy of the map: cloning a `HeaderMap`
            // allocates its index and entries, and dropping the copy frees them, on every
            // request whose action could fail.
            resp_headers: self
                .0
                .resp_headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            // Before-send callbacks read the assigns (a session writes its cookie from them),
            // so an error response keeps them for those; without callbacks the error renders
            // on a conn with no assigns, and no request pays for cloning them.
            assigns: if self.0.before_send.is_empty() {
                None
            } else {
                Some(self.0.assigns.clone())
            },
            before_send: std::mem::take(&mut self.0.before_send),
        }
    }

    /// Takes back the callbacks [`Conn::fallback`] moved away, ahead of any the action added.
    pub(crate) fn adopt_callbacks(mut self, mut fallback: Fallback) -> Conn {
        if !fallback.before_send.is_empty() {
            fallback.before_send.append(&mut self.0.before_send);
            self.0.before_send = fallback.before_send;
        }
        self
    }
}

/// What an action's error renders onto; see [`Conn::fallback`].
pub(crate) struct Fallback {
    method: Method,
    uri: Uri,
    version: Version,
    accept: Option<HeaderValue>,
    route: Option<&'static str>,
    resp_headers: smallvec::SmallVec<[(HeaderName, HeaderValue); 4]>,
    /// Only when there are callbacks to read them.
    assigns: Option<Assigns>,
    before_send: Vec<BeforeSend>,
}

impl Fallback {
    pub(crate) fn into_conn(self) -> Conn {
        let mut req = Request::new(());
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        if let Some(accept) = self.accept {
            req.headers_mut().insert(header::ACCEPT, accept);
        }
        let mut conn = Conn::from_request(req.map(|()| Body::empty()));
        conn.0.route = self.route;
        for (name, value) in self.resp_headers {
            conn.0.resp_headers.append(name, value);
        }
        if let Some(assigns) = self.assigns {
            conn.0.assigns = assigns;
        }
        conn.0.before_send = self.before_send;
        conn
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("method", &self.0.req.method)
            .field("uri", &self.0.req.uri)
            .field("path_params", &self.path_param_iter().collect::<Vec<_>>())
            .field("status", &self.0.status)
            .field("resp_headers", &self.0.resp_headers)
            .field("halted", &self.0.halted)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
