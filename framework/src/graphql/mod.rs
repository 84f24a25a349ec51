//! GraphQL on [`async_graphql`]: a schema served with `forward`, with subscriptions over
//! WebSocket (`graphql-transport-ws`) and over channels in Absinthe's protocol, so that
//! `@absinthe/socket` clients work unchanged.
//!
//! [`GraphQL`] wraps a schema as a tower service. Mounted with `forward`, it answers:
//!
//! - `POST` with `application/json`: one request, or a batch (an array), as every GraphQL
//!   client sends; `application/graphql`: the body is the query;
//! - `GET` with `query`, `variables` (JSON), `operationName` in the query string: queries
//!   only, so that a link or an `<img>` can never run a mutation (`405` otherwise);
//! - a WebSocket upgrade offering the `graphql-transport-ws` subprotocol (the `graphql-ws`
//!   npm client's, GraphiQL's): queries, mutations and subscriptions;
//! - `GET` from a browser with no query: GraphiQL, when [`GraphQL::graphiql`] is on.
//!
//! The pipeline in front of the mount runs first: its assigns (the signed-in user a plug
//! put) reach resolvers through [`ContextExt::assign`], and so does the endpoint's
//! [`PubSub`], for subscriptions fed by broadcasts from any node of the cluster
//! ([`Subscription::into_stream`](crate::pubsub::Subscription::into_stream)).
//!
//! Results are `200` with the GraphQL response, errors included, as the GraphQL-over-HTTP
//! spec has it for `application/json`. Requests that are not GraphQL are refused with
//! `{"errors": [{"message": …}]}` and the status that says why: `400` (not JSON, no query,
//! a batch too large, a document nested deeper than [`MAX_NESTING`]), `405`, `413` (past
//! [`GraphQL::body_limit`]), `415`.
//!
//! Limits on what a query may ask are the schema's, set when it is built:
//! `Schema::build(..).limit_depth(10).limit_complexity(200)`, and
//! `.disable_introspection()` in production (see docs/graphql.md).
//!
//! # Examples
//!
//! ```
//! use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
//!
//! struct Query;
//!
//! #[Object]
//! impl Query {
//!     async fn hello(&self) -> &str {
//!         "world"
//!     }
//! }
//!
//! type AppSchema = Schema<Query, EmptyMutation, EmptySubscription>;
//!
//! fn graphql() -> fawkes::graphql::GraphQL<AppSchema> {
//!     let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
//!         .limit_depth(10)
//!         .limit_complexity(200)
//!         .finish();
//!     fawkes::graphql::GraphQL::new(schema).graphiql(true)
//! }
//!
//! fawkes::router! {
//!     pub AppRouter;
//!     forward "/api/graphql" => graphql();
//! }
//! # let _ = AppRouter::new();
//! ```

mod absinthe;
mod guard;
mod ws;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use async_graphql::Executor;
use futures_util::future::BoxFuture;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde::Deserialize;
use tower::Service;

pub use absinthe::{AbsintheChannel, SubscriptionEvent};
pub use guard::{MAX_FRAGMENTS, MAX_NESTING, MAX_SELECTIONS};

use crate::conn::{Assigns, ConnInfo};
use crate::router::{ForwardedAssigns, ForwardedFrom};
use crate::socket::CheckOrigin;
use crate::{Body, PubSub};

/// A schema served over HTTP, WebSocket and channels: see the [module](self) docs.
///
/// Cloning is cheap and shares the schema, the settings and the WebSocket budget.
pub struct GraphQL<E> {
    executor: E,
    config: Arc<Config>,
}

impl<E: Clone> Clone for GraphQL<E> {
    fn clone(&self) -> Self {
        Self { executor: self.executor.clone(), config: Arc::clone(&self.config) }
    }
}

impl<E> std::fmt::Debug for GraphQL<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphQL")
            .field("graphiql", &self.config.graphiql)
            .field("body_limit", &self.config.body_limit)
            .field("max_batch", &self.config.max_batch)
            .field("max_operations", &self.config.max_operations)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Config {
    graphiql: bool,
    body_limit: usize,
    max_batch: usize,
    max_operations: usize,
    max_connections: usize,
    max_response_bytes: usize,
    init_timeout: Duration,
    keepalive: Duration,
    check_origin: CheckOrigin,
    /// WebSockets open now, over every clone.
    connections: Arc<AtomicUsize>,
    /// WebSockets open now by client, against their per-client limit.
    clients: Arc<crate::socket::Clients>,
    /// The operations running over WebSockets and channels, over every clone.
    running: Arc<Running>,
}

/// What the operations running over WebSockets and Absinthe channels hold, server-wide: how
/// many there are, and the bytes of their documents and variables (a subscription keeps its
/// request for as long as it runs).
#[derive(Debug)]
struct Running {
    operations: crate::budget::Budget,
    bytes: crate::budget::Budget,
    /// The operations each client (an address; an IPv6 client's /64) runs, and the bytes
    /// their requests keep; a client is removed when it runs none.
    by_client: Mutex<HashMap<IpAddr, (usize, usize)>>,
    max_per_client: usize,
}

impl Running {
    fn new(operations: usize, bytes: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            operations: crate::budget::Budget::new(operations),
            bytes: crate::budget::Budget::new(bytes),
            by_client: Mutex::default(),
            max_per_client,
        })
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (usize, usize)>> {
        self.by_client.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A client's share of the bytes: its share of the operations (a tenth by default), a
    /// tenth at least.
    fn max_bytes_per_client(&self) -> usize {
        let operations = self.operations.max().max(1);
        let share = self.bytes.max() / operations * self.max_per_client.min(operations);
        share.max(self.bytes.max() / 10)
    }

    /// One more operation keeping `bytes` for `client`: the refusal's message at its limits.
    fn take_for(&self, client: IpAddr, bytes: usize) -> Result<(), String> {
        let max_bytes = self.max_bytes_per_client();
        let mut clients = self.clients();
        let (operations, held) = clients.entry(client).or_default();
        let refusal = if *operations >= self.max_per_client {
            Some(format!(
                "this client runs {} operations already: the most it may",
                self.max_per_client
            ))
        } else if held.saturating_add(bytes) > max_bytes {
            Some(format!(
                "this client's running operations would keep more than {max_bytes} bytes of \
                 documents and variables"
            ))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            if *operations == 0 {
                clients.remove(&client);
            }
            return Err(refusal);
        }
        *operations += 1;
        *held += bytes;
        Ok(())
    }

    fn give_back_for(&self, client: IpAddr, bytes: usize) {
        let mut clients = self.clients();
        if let Some((operations, held)) = clients.get_mut(&client) {
            *operations -= 1;
            *held -= bytes;
            if *operations == 0 {
                clients.remove(&client);
            }
        }
    }
}

/// A running operation's place under the server-wide and per-client limits, given back when
/// dropped (with the task that runs the operation).
#[derive(Debug)]
pub(crate) struct RunningOperation {
    running: Arc<Running>,
    bytes: usize,
    client: Option<IpAddr>,
}

impl Drop for RunningOperation {
    fn drop(&mut self) {
        self.running.operations.give_back(1);
        self.running.bytes.give_back(self.bytes);
        if let Some(client) = self.client {
            self.running.give_back_for(client, self.bytes);
        }
    }
}

/// What one selection of a parsed document takes in memory, about: the node (184 bytes) and
/// its names.
const SELECTION_BYTES: usize = 256;

/// The bytes a request keeps while its operation runs, about: its text, its parsed document
/// (`selections` of them, as the guard counted), and its variables as parsed values, each
/// far larger than its JSON (a `0,` is a 72-byte value).
pub(crate) fn request_bytes(request: &async_graphql::Request, selections: usize) -> usize {
    let variables: usize =
        request.variables.iter().map(|(name, value)| name.len() + value_bytes(value)).sum();
    request.query.len()
        + selections.saturating_mul(SELECTION_BYTES)
        + variables
        + request.operation_name.as_ref().map_or(0, String::len)
}

/// What a parsed value takes in memory, about: its own size, what it points to, and for an
/// object each entry's key and bookkeeping. (Values come from JSON, whose nesting the parser
/// bounds, so the recursion is bounded too.)
fn value_bytes(value: &async_graphql::Value) -> usize {
    use async_graphql::Value;
    let own = std::mem::size_of::<Value>();
    own + match value {
        Value::String(s) => s.len(),
        Value::Enum(name) => name.len(),
        Value::Binary(bytes) => bytes.len(),
        Value::List(items) => items.iter().map(value_bytes).sum(),
        Value::Object(entries) => {
            entries.iter().map(|(key, value)| 2 * key.len() + 48 + value_bytes(value)).sum()
        }
        Value::Null | Value::Number(_) | Value::Boolean(_) => 0,
    }
}

impl<E: Executor> GraphQL<E> {
    /// Serves `executor` (an `async_graphql::Schema`) with the defaults: GraphiQL off,
    /// bodies of 256 KiB at most, batches of 10, 100 operations at once on a WebSocket or an
    /// Absinthe channel (keeping 256 KiB of requests together), 10,000 operations running
    /// over all of them (keeping 64 MiB), 10,000 WebSockets at once, the request's own origin
    /// only.
    #[must_use]
    pub fn new(executor: E) -> Self {
        Self {
            executor,
            config: Arc::new(Config {
                graphiql: false,
                body_limit: 256 * 1024,
                max_batch: 10,
                max_operations: 100,
                max_connections: 10_000,
                max_response_bytes: 4 * 1024 * 1024,
                init_timeout: Duration::from_secs(10),
                keepalive: Duration::from_secs(30),
                check_origin: CheckOrigin::default(),
                connections: Arc::default(),
                clients: Arc::new(crate::socket::Clients::sockets(
                    32,
                    crate::security::TrustedProxies::default(),
                )),
                running: Running::new(10_000, 64 * 1024 * 1024, 1_000),
            }),
        }
    }

    /// A place for one more operation over a WebSocket or a channel, whose request keeps
    /// `bytes`, on a connection whose running operations keep `held` already: the refusal's
    /// message when the connection's share (`body_limit`) or the server's limits
    /// ([`max_running_operations`](Self::max_running_operations),
    /// [`max_running_bytes`](Self::max_running_bytes)) would be passed.
    pub(crate) fn run_operation(
        &self,
        bytes: usize,
        held: usize,
        client: Option<IpAddr>,
    ) -> Result<RunningOperation, String> {
        let config = &self.config;
        if held.saturating_add(bytes) > config.body_limit {
            return Err(format!(
                "the operations running on this connection would keep more than {} bytes of \
                 documents and variables",
                config.body_limit
            ));
        }
        let running = &config.running;
        let client = client.map(crate::security::client_ip::client_key);
        if let Some(client) = client {
            running.take_for(client, bytes)?;
        }
        let undo = || {
            if let Some(client) = client {
                running.give_back_for(client, bytes);
            }
        };
        if !running.operations.try_take(1) {
            undo();
            return Err("too many operations are running on this server: try again later".into());
        }
        if !running.bytes.try_take(bytes) {
            running.operations.give_back(1);
            undo();
            return Err("the operations running on this server keep too many bytes: try again \
                        later"
                .into());
        }
        Ok(RunningOperation { running: Arc::clone(running), bytes, client })
    }

    fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Whether a browser's `GET` with no query gets GraphiQL, the in-browser IDE (loaded
    /// from a CDN). Off by default: turn it on in development.
    #[must_use]
    pub fn graphiql(self, on: bool) -> Self {
        self.configure(|c| c.graphiql = on)
    }

    /// The largest request body read, and the largest WebSocket message (default 256 KiB):
    /// past it, `413` (or the WebSocket is closed with 1009).
    #[must_use]
    pub fn body_limit(self, bytes: usize) -> Self {
        self.configure(|c| c.body_limit = bytes)
    }

    /// The most requests in one batch (default 10); a larger batch is refused with `400`.
    #[must_use]
    pub fn max_batch(self, requests: usize) -> Self {
        self.configure(|c| c.max_batch = requests.max(1))
    }

    /// The most operations one WebSocket or one Absinthe channel runs at once (default
    /// 100): subscriptions, and queries still running. Past it, a WebSocket is closed with
    /// 4429 and a channel's `doc` is answered with an error.
    #[must_use]
    pub fn max_operations(self, operations: usize) -> Self {
        self.configure(|c| c.max_operations = operations.max(1))
    }

    /// The most operations running at once over every WebSocket and Absinthe channel of this
    /// server (default 10,000): subscriptions, and queries still running. Past it, the
    /// operation is refused with an error; the connection stays. Each running subscription
    /// holds its request and its resolver's stream (some KiB): this bounds them all.
    #[must_use]
    pub fn max_running_operations(self, operations: usize) -> Self {
        self.configure(|c| {
            c.running = Running::new(operations, c.running.bytes.max(), c.running.max_per_client);
        })
    }

    /// The most operations one client (an address; an IPv6 client's /64, told apart through
    /// the transport's trusted proxies) runs at once over every WebSocket and Absinthe channel
    /// (default 1,000, a tenth of [`max_running_operations`](Self::max_running_operations)),
    /// so that no one client takes them all. A client's share of
    /// [`max_running_bytes`](Self::max_running_bytes) is the same share (a tenth at least).
    /// Past either, the operation is refused with an error.
    #[must_use]
    pub fn max_running_operations_per_client(self, operations: usize) -> Self {
        self.configure(|c| {
            c.running = Running::new(c.running.operations.max(), c.running.bytes.max(), operations);
        })
    }

    /// The most bytes of documents and variables that the operations running over every
    /// WebSocket and Absinthe channel keep together (default 64 MiB); a connection's own keep
    /// at most [`body_limit`](Self::body_limit). Past either, the operation is refused with
    /// an error; the connection stays.
    #[must_use]
    pub fn max_running_bytes(self, bytes: usize) -> Self {
        self.configure(|c| {
            c.running = Running::new(c.running.operations.max(), bytes, c.running.max_per_client);
        })
    }

    /// The most GraphQL WebSockets open at once (default 10,000): past it, an upgrade is
    /// answered `503` with `retry-after`.
    #[must_use]
    pub fn max_connections(self, connections: usize) -> Self {
        self.configure(|c| c.max_connections = connections)
    }

    /// The most GraphQL WebSockets one client (an address; an IPv6 client's /64) holds open
    /// at once (default 32): past it, an upgrade is answered `429` with `retry-after`.
    #[must_use]
    pub fn max_connections_per_client(self, connections: usize) -> Self {
        self.configure(|c| {
            c.clients =
                Arc::new(crate::socket::Clients::sockets(connections, c.clients.proxies.clone()));
        })
    }

    /// The reverse proxies whose `X-Forwarded-For` names the client, for
    /// [`max_connections_per_client`](Self::max_connections_per_client) (default: none).
    #[must_use]
    pub fn trusted_proxies(self, proxies: crate::security::TrustedProxies) -> Self {
        self.configure(|c| {
            let max = c.clients.max_sockets.unwrap_or(usize::MAX);
            c.clients = Arc::new(crate::socket::Clients::sockets(max, proxies));
        })
    }

    /// The largest response, as JSON (default 4 MiB; a batch's responses together): a
    /// larger one is replaced by a GraphQL error saying so, and is never written out whole.
    /// Over WebSocket and channels, each result is held to it.
    #[must_use]
    pub fn max_response_bytes(self, bytes: usize) -> Self {
        self.configure(|c| c.max_response_bytes = bytes)
    }

    /// Which browser origins may open a WebSocket (default: the request's own host), as for
    /// [`Transport::check_origin`](crate::socket::Transport::check_origin): the pipeline's
    /// assigns come from the browser's cookies, which another site's page would send too.
    #[must_use]
    pub fn check_origin(self, check: CheckOrigin) -> Self {
        self.configure(|c| c.check_origin = check)
    }

    /// How long a WebSocket may take to send `connection_init` (default 10 s) before it is
    /// closed with 4408.
    #[must_use]
    pub fn init_timeout(self, timeout: Duration) -> Self {
        self.configure(|c| c.init_timeout = timeout)
    }

    /// The schema.
    pub fn executor(&self) -> &E {
        &self.executor
    }

    async fn serve(self, req: Request<Body>) -> Response<Body> {
        if ws::is_upgrade(req.headers()) {
            return ws::upgrade(self, req).await;
        }
        match *req.method() {
            Method::GET | Method::HEAD => self.get(req).await,
            Method::POST => self.post(req).await,
            _ => {
                let mut resp =
                    error(StatusCode::METHOD_NOT_ALLOWED, "GraphQL is served over GET and POST");
                resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
                resp
            }
        }
    }

    async fn get(self, req: Request<Body>) -> Response<Body> {
        let query = req.uri().query().unwrap_or_default();
        let params: GetParams = match serde_urlencoded::from_str(query) {
            Ok(params) => params,
            Err(err) => return error(StatusCode::BAD_REQUEST, &format!("query string: {err}")),
        };
        let Some(document) = params.query else {
            let html = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"));
            if self.config.graphiql && html {
                return graphiql(ForwardedFrom::mount_path(&req));
            }
            return error(StatusCode::BAD_REQUEST, "a GET request needs a `query` parameter");
        };
        let mut request = async_graphql::Request::new(document);
        request.operation_name = params.operation_name;
        if let Some(variables) = params.variables {
            match serde_json::from_str(&variables) {
                Ok(variables) => request.variables = variables,
                Err(err) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("`variables` is not JSON: {err}"),
                    )
                }
            }
        }
        let kind = match guard::admit(&mut request) {
            Ok(admitted) => admitted.kind,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        match kind {
            Some(OperationType::Mutation | OperationType::Subscription) => {
                let mut resp = error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "mutations and subscriptions are not sent with GET",
                );
                resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
                return resp;
            }
            // Documents that do not parse are the executor's to report, as GraphQL errors.
            Some(OperationType::Query) | None => {}
        }
        let request = with_context(request, &req);
        let response = self.executor.execute(request).await;
        let cache = response.cache_control.value();
        let mut resp = json_response_within(&response, self.config.max_response_bytes);
        if let Some(value) = cache.and_then(|v| HeaderValue::from_str(&v).ok()) {
            resp.headers_mut().insert(header::CACHE_CONTROL, value);
        }
        resp
    }

    async fn post(self, req: Request<Body>) -> Response<Body> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let json = match content_type.as_deref() {
            Some("application/json" | "application/graphql-response+json") => true,
            Some("application/graphql") => false,
            // Without a type (or with one a form may send) a browser posts across sites with
            // no preflight: a page elsewhere could run a mutation with its visitor's cookies.
            other => {
                let sent = other.unwrap_or("no content-type");
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    &format!("`{sent}` is not GraphQL: send application/json"),
                );
            }
        };
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts, Body::empty());
        let bytes = match body.collect(self.config.body_limit).await {
            Ok(bytes) => bytes,
            Err(_) => {
                let limit = self.config.body_limit;
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the request body is larger than {limit} bytes"),
                );
            }
        };
        let batch = if json {
            match serde_json::from_slice::<async_graphql::BatchRequest>(&bytes) {
                Ok(batch) => batch,
                Err(err) => {
                    return error(StatusCode::BAD_REQUEST, &format!("not a GraphQL request: {err}"))
                }
            }
        } else {
            match std::str::from_utf8(&bytes) {
                Ok(query) => {
                    async_graphql::BatchRequest::Single(async_graphql::Request::new(query))
                }
                Err(_) => return error(StatusCode::BAD_REQUEST, "the query is not UTF-8"),
            }
        };
        let batch = match batch {
            async_graphql::BatchRequest::Batch(requests)
                if requests.len() > self.config.max_batch =>
            {
                let max = self.config.max_batch;
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("a batch holds {max} requests at most"),
                );
            }
            async_graphql::BatchRequest::Single(mut request) => {
                if let Err(message) = guard::admit(&mut request) {
                    return error(StatusCode::BAD_REQUEST, &message);
                }
                async_graphql::BatchRequest::Single(with_context(request, &req))
            }
            async_graphql::BatchRequest::Batch(requests) => {
                let mut checked = Vec::with_capacity(requests.len());
                for mut request in requests {
                    if let Err(message) = guard::admit(&mut request) {
                        return error(StatusCode::BAD_REQUEST, &message);
                    }
                    checked.push(with_context(request, &req));
                }
                async_graphql::BatchRequest::Batch(checked)
            }
        };
        let limit = self.config.max_response_bytes;
        match batch {
            async_graphql::BatchRequest::Single(request) => {
                json_response_within(&self.executor.execute(request).await, limit)
            }
            // One after another, each measured as it comes: past the limit, the rest are not
            // run, and no more than one result is held beyond what fits.
            async_graphql::BatchRequest::Batch(requests) => {
                let count = requests.len();
                let (mut body, mut used) = (vec![b'['], 0usize);
                for (i, request) in requests.into_iter().enumerate() {
                    let response = self.executor.execute(request).await;
                    let Some(bytes) = json_within(&response, limit.saturating_sub(used)) else {
                        let refused = serde_json::json!({
                            "data": null,
                            "errors": [{ "message": too_large(limit) }],
                        });
                        return json_response(&vec![refused; count]);
                    };
                    used += bytes.len();
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(&bytes);
                }
                body.push(b']');
                json_bytes(body)
            }
        }
    }
}

impl<E: Executor> Service<Request<Body>> for GraphQL<E> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.serve(req).await) })
    }
}

/// The query string of a `GET`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
}

/// What resolvers read of the request: the pipeline's assigns and the endpoint's pubsub (the
/// process's outside an endpoint, as [`Conn::pubsub`](crate::Conn::pubsub) has it).
fn with_context(request: async_graphql::Request, req: &Request<Body>) -> async_graphql::Request {
    let pubsub = match req.extensions().get::<ConnInfo>() {
        Some(info) => info.pubsub().clone(),
        None => PubSub::process().clone(),
    };
    request.data(ForwardedAssigns::of(req)).data(pubsub)
}

/// Whether `response` is a document refused before it ran (it does not parse, or fails
/// validation): errors, none of them at a field's path, and no data. A document that ran and
/// whose fields failed has its errors at their paths, and counts as answered.
pub(crate) fn refused(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

fn json_response(body: &impl serde::Serialize) -> Response<Body> {
    json_response_within(body, usize::MAX)
}

/// `body` as JSON, or, when it would take more than `limit` bytes, a GraphQL error saying so:
/// written into a buffer that stops at the limit, so a response too large never is.
fn json_response_within(body: &impl serde::Serialize, limit: usize) -> Response<Body> {
    let bytes = json_within(body, limit).unwrap_or_else(|| {
        serde_json::to_vec(&serde_json::json!({
            "data": null,
            "errors": [{ "message": too_large(limit) }],
        }))
        .unwrap_or_default()
    });
    json_bytes(bytes)
}

/// A JSON response of `bytes`.
fn json_bytes(bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub(crate) fn too_large(limit: usize) -> String {
    format!("the response would be larger than {limit} bytes")
}

/// Whether `value` serializes within `limit` bytes, counted without keeping them.
pub(crate) fn fits(value: &impl serde::Serialize, limit: usize) -> bool {
    crate::serializer::json_len(value, limit).is_ok()
}

/// How many bytes `s` takes as a JSON string, quotes and escapes included.
pub(crate) fn json_string_len(s: &str) -> usize {
    crate::serializer::json_len(&s, usize::MAX).unwrap_or(s.len() + 2)
}

/// `value` as JSON within `limit` bytes, serialized once ([`crate::serializer::json_within`]).
pub(crate) fn json_within(value: &impl serde::Serialize, limit: usize) -> Option<Vec<u8>> {
    crate::serializer::json_within(value, limit)
}

/// A request that is not GraphQL, refused in GraphQL's error shape.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    let mut resp = json_response(&serde_json::json!({ "errors": [{ "message": message }] }));
    *resp.status_mut() = status;
    resp
}

fn graphiql(mount: &str) -> Response<Body> {
    let endpoint = if mount.is_empty() { "/" } else { mount };
    let html = async_graphql::http::GraphiQLSource::build()
        .endpoint(endpoint)
        .subscription_endpoint(endpoint)
        .title("GraphiQL")
        .finish();
    let mut resp = Response::new(Body::from(html));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

/// What resolvers read of the request or socket they answer: the assigns of the pipeline (or
/// of the socket's `connect`) and the endpoint's pubsub.
///
/// # Examples
///
/// ```
/// use async_graphql::{Context, Object, Result};
/// use fawkes::graphql::ContextExt as _;
///
/// #[derive(Clone)]
/// struct User(String);
///
/// struct Query;
///
/// #[Object]
/// impl Query {
///     async fn me(&self, ctx: &Context<'_>) -> Result<String> {
///         let user = ctx.assign::<User>().ok_or("sign in first")?;
///         Ok(user.0.clone())
///     }
/// }
/// ```
pub trait ContextExt {
    /// The assigns: the pipeline's, for HTTP and WebSocket requests; the socket's, for
    /// Absinthe channels. Empty outside Fawkes.
    fn assigns(&self) -> &Assigns;

    /// One assign, by type.
    fn assign<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.assigns().get::<T>()
    }

    /// The endpoint's pubsub (the process's, for a request served outside an endpoint).
    ///
    /// # Errors
    ///
    /// For a schema executed directly, not through [`GraphQL`]: a GraphQL error.
    fn pubsub(&self) -> async_graphql::Result<&PubSub>;
}

impl<T> ContextExt for async_graphql::context::ContextBase<'_, T> {
    fn assigns(&self) -> &Assigns {
        static EMPTY: std::sync::OnceLock<Assigns> = std::sync::OnceLock::new();
        self.data_opt::<Assigns>().unwrap_or_else(|| EMPTY.get_or_init(Assigns::default))
    }

    fn pubsub(&self) -> async_graphql::Result<&PubSub> {
        self.data_opt::<PubSub>().ok_or_else(|| "no pubsub: not served by an endpoint".into())
    }
}
