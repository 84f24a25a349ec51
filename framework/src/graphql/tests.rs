//! A schema served by a real endpoint: over HTTP, over `graphql-transport-ws`, and over a
//! channel in Absinthe's protocol.

use std::time::Duration;

use async_graphql::{Context, Object, Schema, SimpleObject, Subscription};
use futures_util::{SinkExt, Stream, StreamExt};
use http::StatusCode;
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::{AbsintheChannel, ContextExt as _, GraphQL, MAX_NESTING};
use crate::socket::{Channels, ConnectInfo, Refused, Socket};
use crate::{Conn, Endpoint};

#[derive(Clone)]
struct User(String);

#[derive(SimpleObject)]
#[graphql(complex)]
struct Node {
    level: i32,
}

#[async_graphql::ComplexObject]
impl Node {
    async fn child(&self) -> Node {
        Node { level: self.level + 1 }
    }
}

struct Query;

#[Object]
impl Query {
    async fn hello(&self) -> &str {
        "world"
    }

    async fn add(&self, a: i32, b: i32) -> i32 {
        a + b
    }

    async fn me(&self, ctx: &Context<'_>) -> Option<String> {
        ctx.assign::<User>().map(|user| user.0.clone())
    }

    async fn root(&self) -> Node {
        Node { level: 0 }
    }

    async fn echo(&self, text: String, times: i32) -> String {
        text.repeat(usize::try_from(times.clamp(0, 1_000_000)).unwrap_or(0))
    }

    async fn fail(&self) -> async_graphql::Result<i32> {
        Err("no luck".into())
    }
}

struct Mutation;

#[Object]
impl Mutation {
    async fn shout(&self, ctx: &Context<'_>, text: String) -> async_graphql::Result<String> {
        ctx.pubsub()?.broadcast("shouts", "shout", json!({ "text": text }));
        Ok(text)
    }
}

struct Subscriptions;

#[Subscription]
impl Subscriptions {
    async fn shouts(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = String>> {
        let messages = ctx.pubsub()?.subscribe("shouts").into_stream();
        Ok(messages.map(|message| {
            let text = message.payload().as_json().and_then(|p| p["text"].as_str());
            text.unwrap_or_default().to_owned()
        }))
    }

    async fn count(&self, to: i32) -> impl Stream<Item = i32> {
        futures_util::stream::iter(1..=to)
    }
}

type TestSchema = Schema<Query, Mutation, Subscriptions>;

fn graphql() -> GraphQL<TestSchema> {
    let schema =
        Schema::build(Query, Mutation, Subscriptions).limit_depth(6).limit_complexity(40).finish();
    GraphQL::new(schema)
        .graphiql(true)
        .body_limit(8 * 1024)
        .max_batch(3)
        .max_operations(2)
        .max_response_bytes(64 * 1024)
        .max_connections_per_client(4)
        .init_timeout(Duration::from_millis(300))
}

/// The pipeline: a header stands in for a signed-in user.
async fn user_from_header(conn: Conn) -> Conn {
    match conn.header("x-user").map(str::to_owned) {
        Some(name) => conn.assign(User(name)),
        None => conn,
    }
}

struct GqlSocket;

impl Socket for GqlSocket {
    async fn connect(
        &self,
        params: &Map<String, Value>,
        _info: &ConnectInfo,
    ) -> Result<crate::conn::Assigns, Refused> {
        let mut assigns = crate::conn::Assigns::new();
        if let Some(name) = params.get("user").and_then(Value::as_str) {
            assigns.insert(User(name.to_owned()));
        }
        Ok(assigns)
    }

    fn channels(&self) -> Channels {
        Channels::new()
            .channel_with::<AbsintheChannel<TestSchema>, _>("__absinthe__:control", graphql())
    }
}

/// A schema with tight server-wide limits, shared by `/tight` and the `/tight_socket`
/// channel as an application shares one `GraphQL` between its mount and its socket: three
/// operations running at once over both, two a client, each connection's keeping 2 KiB of
/// requests.
fn tight() -> GraphQL<TestSchema> {
    static TIGHT: std::sync::OnceLock<GraphQL<TestSchema>> = std::sync::OnceLock::new();
    TIGHT
        .get_or_init(|| {
            let schema = Schema::build(Query, Mutation, Subscriptions).finish();
            GraphQL::new(schema)
                .body_limit(2048)
                .max_running_operations(3)
                .max_running_operations_per_client(2)
        })
        .clone()
}

struct TightSocket;

impl Socket for TightSocket {
    async fn connect(
        &self,
        _params: &Map<String, Value>,
        _info: &ConnectInfo,
    ) -> Result<crate::conn::Assigns, Refused> {
        Ok(crate::conn::Assigns::new())
    }

    fn channels(&self) -> Channels {
        Channels::new()
            .channel_with::<AbsintheChannel<TestSchema>, _>("__absinthe__:control", tight())
    }
}

crate::router! {
    pub GraphQLRouter;
    pipeline api {
        plug user_from_header;
    }
    socket "/socket" => GqlSocket;
    socket "/tight_socket" => TightSocket;
    scope "/" {
        pipe_through api;
        forward "/graphql" => graphql();
        forward "/tight" => tight();
    }
}

async fn start() -> crate::endpoint::RunningEndpoint {
    Endpoint::new(GraphQLRouter::new()).bind("127.0.0.1:0").start().await.unwrap()
}

async fn post(base: &str, body: Value) -> (StatusCode, Value) {
    let resp =
        reqwest::Client::new().post(format!("{base}/graphql")).json(&body).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn queries_mutations_and_batches_over_http() {
    let running = start().await;
    let base = running.url();

    let (status, body) = post(&base, json!({"query": "{ hello }"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"data": {"hello": "world"}})));
    let query =
        json!({"query": "query Add($a: Int!) { add(a: $a, b: 2) }", "variables": {"a": 40}});
    assert_eq!(post(&base, query).await.1, json!({"data": {"add": 42}}));
    let batch = json!([{"query": "{ hello }"}, {"query": "{ add(a: 1, b: 1) }"}]);
    let (status, body) = post(&base, batch).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([{"data": {"hello": "world"}}, {"data": {"add": 2}}]));
    let mutation = json!({"query": "mutation { shout(text: \"hey\") }"});
    assert_eq!(post(&base, mutation).await.1, json!({"data": {"shout": "hey"}}));

    // A resolver's error is a GraphQL error in a 200, with the data that could be had.
    let (status, body) = post(&base, json!({"query": "{ hello fail }"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!({"hello": "world"}), "{body}");
    assert_eq!(body["errors"][0]["message"], "no luck", "{body}");
    // A document that does not parse, or asks for no such field.
    let (status, body) = post(&base, json!({"query": "{ hello"})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    let (_, body) = post(&base, json!({"query": "{ nothing }"})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("nothing"), "{body}");

    // The pipeline's assigns reach the resolvers.
    let resp = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .header("x-user", "ada")
        .json(&json!({"query": "{ me }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"data": {"me": "ada"}}));
    assert_eq!(post(&base, json!({"query": "{ me }"})).await.1, json!({"data": {"me": null}}));

    // `application/graphql`: the body is the query.
    let resp = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .header("content-type", "application/graphql")
        .body("{ hello }")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"data": {"hello": "world"}}));
    running.shutdown();
}

#[tokio::test]
async fn get_runs_queries_only_and_serves_graphiql_to_browsers() {
    let running = start().await;
    let base = running.url();
    let client = reqwest::Client::new();
    let get = |query: &str| client.get(format!("{base}/graphql?{query}")).send();

    let resp = get("query=%7B%20hello%20%7D").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"data": {"hello": "world"}}));
    let resp = get(
        "query=query%20A(%24a%3A%20Int!)%7Badd(a%3A%24a%2Cb%3A1)%7D&variables=%7B%22a%22%3A1%7D",
    )
    .await
    .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"data": {"add": 2}}));
    // A mutation in a link or an image would run with the visitor's cookies: refused.
    let resp = get("query=mutation%20%7B%20shout(text%3A%20%22x%22)%20%7D").await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let resp = get("query=%7Bhello%7D&variables=nope").await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = get("").await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.unwrap()["errors"][0]["message"].is_string());

    let page = client
        .get(format!("{base}/graphql"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    assert!(html.contains("graphiql") && html.contains("/graphql"), "{html}");

    let delete = client.delete(format!("{base}/graphql")).send().await.unwrap();
    assert_eq!(delete.status(), 405);
    running.shutdown();
}

#[tokio::test]
async fn limits_refuse_what_is_too_large_too_deep_or_too_complex() {
    let running = start().await;
    let base = running.url();
    let client = reqwest::Client::new();

    // The schema's depth and complexity limits: GraphQL errors.
    let deep = json!({"query": "{ root { child { child { child { child { child { child { level } } } } } } } }"});
    let (status, body) = post(&base, deep).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("nested too deep"), "{body}");
    let wide = (0..50).map(|i| format!("a{i}: hello")).collect::<Vec<_>>().join(" ");
    let (_, body) = post(&base, json!({"query": format!("{{ {wide} }}")})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("complex"), "{body}");

    // Brackets nested past what the parser could take: refused unread, and the server lives.
    for open in ["{", "(", "["] {
        let query = format!("{{ a{} }}", open.repeat(4000));
        let (status, body) = post(&base, json!({ "query": query })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("nests"), "{body}");
    }
    // Just under the limit is the parser's (and the schema's) to judge.
    let query = format!("{{ a{}", "{".repeat(MAX_NESTING - 1));
    assert_eq!(post(&base, json!({ "query": query })).await.0, StatusCode::OK);
    // Brackets count in comments and strings too: whatever hides from the count (a comment
    // ending at `\r`) could reach the parser.
    let query = format!("#\r{{ a(x: {}) }}", "[".repeat(4000));
    assert_eq!(post(&base, json!({ "query": query })).await.0, StatusCode::BAD_REQUEST);
    let hidden: String =
        (0..30).map(|_| format!("{}\"{}\"", "[".repeat(100), "]".repeat(100))).collect();
    let query = format!("{{ a(x: {hidden}) }}");
    assert_eq!(post(&base, json!({ "query": query })).await.0, StatusCode::BAD_REQUEST);
    // In a comment or a string, brackets are text.
    let query = format!("{{ hello # {}\n }}", "{".repeat(500));
    assert_eq!(post(&base, json!({ "query": query })).await.1, json!({"data": {"hello": "world"}}));
    // Fragments that spread each other into millions of fields: refused before validation.
    let mut bomb: String = (0..30)
        .map(|i| format!("fragment f{i} on Query {{ ...f{n} ...f{n} }} ", n = i + 1))
        .collect();
    bomb.push_str("fragment f30 on Query { hello }");
    let (status, body) = post(&base, json!({ "query": format!("{{ ...f0 }} {bomb}") })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A subscription with many root fields (aliases of one) would be many subscriptions.
    let many = json!({"query": "subscription { a: count(to: 1) b: count(to: 1) }"});
    assert_eq!(post(&base, many).await.0, StatusCode::BAD_REQUEST);
    // A request without a content type is not GraphQL: a browser sends one across sites
    // with no preflight.
    let untyped = client
        .post(format!("{base}/graphql"))
        .body(r#"{"query": "mutation { shout(text: \"x\") }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(untyped.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let batch = json!([{"query": "{ hello }"}, {"query": "{ hello }"}, {"query": "{ hello }"}, {"query": "{ hello }"}]);
    let (status, body) = post(&base, batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("3"), "{body}");

    let big = json!({"query": format!("{{ hello }} # {}", "x".repeat(10_000))});
    let (status, _) = post(&base, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let resp = client
        .post(format!("{base}/graphql"))
        .header("content-type", "text/plain")
        .body("{ hello }")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = client
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // A response larger than the limit is never written out: an error says so.
    let (status, body) =
        post(&base, json!({"query": "{ echo(text: \"xy\", times: 100000) }"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], Value::Null, "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("larger than 65536"), "{body}");
    let (_, body) = post(&base, json!({"query": "{ echo(text: \"xy\", times: 1000) }"})).await;
    assert_eq!(body["data"]["echo"].as_str().map(str::len), Some(2000));
    // A batch counts together: three results that fit alone but not together.
    let item = json!({"query": "{ echo(text: \"xy\", times: 15000) }"});
    let (status, body) = post(&base, json!([item, item, item])).await;
    assert_eq!(status, StatusCode::OK);
    let items = body.as_array().expect("one answer per request");
    assert_eq!(items.len(), 3);
    assert!(
        items.iter().all(|i| i["errors"][0]["message"].as_str().unwrap().contains("larger")),
        "{body}"
    );

    let (status, body) = post(&base, json!({"query": "{ hello }"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"data": {"hello": "world"}})));
    running.shutdown();
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn gql_ws(base: &str) -> Ws {
    gql_ws_at(base, "/graphql").await
}

async fn gql_ws_at(base: &str, path: &str) -> Ws {
    gql_ws_from(base, path, [127, 0, 0, 1]).await
}

/// A `graphql-transport-ws` connection to `path` from the loopback address `from`.
async fn gql_ws_from(base: &str, path: &str, from: [u8; 4]) -> Ws {
    let url = format!("{}{path}", base.replace("http", "ws"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    request.headers_mut().insert("x-user", "grace".parse().unwrap());
    let server: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    let stream = tcp.connect(server).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (ws, resp) = tokio_tungstenite::client_async(request, stream).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "graphql-transport-ws");
    ws
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// The next text message, or the close frame's code.
async fn next(ws: &mut Ws) -> Result<Value, u16> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                return Ok(serde_json::from_str(text.as_str()).unwrap())
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map_or(0, |f| u16::from(f.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(0),
        }
    }
}

async fn acked(base: &str) -> Ws {
    acked_at(base, "/graphql").await
}

async fn acked_at(base: &str, path: &str) -> Ws {
    acked_from(base, path, [127, 0, 0, 1]).await
}

async fn acked_from(base: &str, path: &str, from: [u8; 4]) -> Ws {
    let mut ws = gql_ws_from(base, path, from).await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(next(&mut ws).await, Ok(json!({"type": "connection_ack"})));
    ws
}

#[tokio::test]
async fn graphql_transport_ws_runs_subscriptions_fed_by_pubsub() {
    let running = start().await;
    let base = running.url();

    // A client that never says connection_init is closed with 4408.
    let mut idle = gql_ws(&base).await;
    assert_eq!(next(&mut idle).await, Err(4408));
    // One that subscribes before it is acknowledged, with 4401.
    let mut early = gql_ws(&base).await;
    send(&mut early, json!({"id": "1", "type": "subscribe", "payload": {"query": "{ hello }"}}))
        .await;
    assert_eq!(next(&mut early).await, Err(4401));
    // Without the subprotocol, no upgrade.
    let url = format!("{}/graphql", base.replace("http", "ws"));
    assert!(tokio_tungstenite::connect_async(url.as_str()).await.is_err());

    let mut ws = acked(&base).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await, Ok(json!({"type": "pong"})));
    // A query, with the pipeline's assigns.
    send(&mut ws, json!({"id": "q", "type": "subscribe", "payload": {"query": "{ me }"}})).await;
    assert_eq!(
        next(&mut ws).await,
        Ok(json!({"id": "q", "type": "next", "payload": {"data": {"me": "grace"}}}))
    );
    assert_eq!(next(&mut ws).await, Ok(json!({"id": "q", "type": "complete"})));
    // A subscription that ends by itself.
    send(&mut ws, json!({"id": "c", "type": "subscribe", "payload": {"query": "subscription { count(to: 2) }"}})).await;
    for n in 1..=2 {
        let data = json!({"id": "c", "type": "next", "payload": {"data": {"count": n}}});
        assert_eq!(next(&mut ws).await, Ok(data));
    }
    assert_eq!(next(&mut ws).await, Ok(json!({"id": "c", "type": "complete"})));
    // A document refused before it runs: an `error` message.
    send(
        &mut ws,
        json!({"id": "e", "type": "subscribe", "payload": {"query": "subscription { nothing }"}}),
    )
    .await;
    let refused = next(&mut ws).await.unwrap();
    assert_eq!(
        (refused["id"].as_str(), refused["type"].as_str()),
        (Some("e"), Some("error")),
        "{refused}"
    );
    let nested = format!("subscription {{ a{}", "{".repeat(MAX_NESTING + 1));
    send(&mut ws, json!({"id": "n", "type": "subscribe", "payload": {"query": nested}})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "error");

    // A subscription fed by pubsub: a mutation over HTTP reaches it.
    send(
        &mut ws,
        json!({"id": "s", "type": "subscribe", "payload": {"query": "subscription { shouts }"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    post(&base, json!({"query": "mutation { shout(text: \"over http\") }"})).await;
    let shout = json!({"id": "s", "type": "next", "payload": {"data": {"shouts": "over http"}}});
    assert_eq!(next(&mut ws).await, Ok(shout));

    // Two operations at once at most here; the same id twice is a protocol error.
    send(
        &mut ws,
        json!({"id": "t", "type": "subscribe", "payload": {"query": "subscription { shouts }"}}),
    )
    .await;
    send(
        &mut ws,
        json!({"id": "u", "type": "subscribe", "payload": {"query": "subscription { shouts }"}}),
    )
    .await;
    assert_eq!(next(&mut ws).await, Err(4429));
    let mut twice = acked(&base).await;
    send(
        &mut twice,
        json!({"id": "s", "type": "subscribe", "payload": {"query": "subscription { shouts }"}}),
    )
    .await;
    send(
        &mut twice,
        json!({"id": "s", "type": "subscribe", "payload": {"query": "subscription { shouts }"}}),
    )
    .await;
    assert_eq!(next(&mut twice).await, Err(4409));

    // A result too large for the limit is the operation's error.
    let mut big = acked(&base).await;
    let query = json!({"query": "{ echo(text: \"xy\", times: 100000) }"});
    send(&mut big, json!({"id": "b", "type": "subscribe", "payload": query})).await;
    let refused = next(&mut big).await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(
        refused["payload"][0]["message"].as_str().unwrap().contains("larger than"),
        "{refused}"
    );
    drop((big, twice));

    // A client's `complete` stops its subscription, and frees its slot.
    let mut ws = acked(&base).await;
    for round in 0..3 {
        let id = format!("r{round}");
        send(
            &mut ws,
            json!({"id": id, "type": "subscribe", "payload": {"query": "subscription { shouts }"}}),
        )
        .await;
        send(&mut ws, json!({"id": id, "type": "complete"})).await;
    }
    send(&mut ws, json!({"id": "last", "type": "subscribe", "payload": {"query": "{ hello }"}}))
        .await;
    assert_eq!(next(&mut ws).await.unwrap()["payload"], json!({"data": {"hello": "world"}}));
    running.shutdown();
}

type Phx = Ws;

async fn phx_recv(ws: &mut Phx) -> Value {
    next(ws).await.expect("a message")
}

/// A reply of the Absinthe channel: its status and response.
async fn reply(ws: &mut Phx, reference: &str) -> (String, Value) {
    loop {
        let message = phx_recv(ws).await;
        if message[3] == "phx_reply" && message[1] == reference {
            let payload = &message[4];
            return (payload["status"].as_str().unwrap().to_owned(), payload["response"].clone());
        }
    }
}

#[tokio::test]
async fn absinthe_over_a_channel_answers_docs_and_pushes_subscription_data() {
    let running = start().await;
    let base = running.url();
    let url = format!("{}/socket/websocket?vsn=2.0.0&user=ada", base.replace("http", "ws"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
    let push = |reference: &str, event: &str, payload: Value| {
        Message::text(json!(["1", reference, "__absinthe__:control", event, payload]).to_string())
    };
    ws.send(push("1", "phx_join", json!({}))).await.unwrap();
    assert_eq!(reply(&mut ws, "1").await, ("ok".to_owned(), json!({})));

    // Queries and mutations are answered with their result; the socket's assigns reach them.
    ws.send(push("2", "doc", json!({"query": "{ hello me }"}))).await.unwrap();
    assert_eq!(
        reply(&mut ws, "2").await,
        ("ok".to_owned(), json!({"data": {"hello": "world", "me": "ada"}}))
    );
    let doc = json!({"query": "query A($a: Int!) { add(a: $a, b: 1) }", "variables": {"a": 1}});
    ws.send(push("3", "doc", doc)).await.unwrap();
    assert_eq!(reply(&mut ws, "3").await.1, json!({"data": {"add": 2}}));
    // A field that fails: `ok`, with the error at its path.
    ws.send(push("13", "doc", json!({"query": "{ fail }"}))).await.unwrap();
    let (status, response) = reply(&mut ws, "13").await;
    assert_eq!(status, "ok", "{response}");
    assert_eq!(response["errors"][0]["path"], json!(["fail"]), "{response}");
    // A document refused before it runs: an error reply with the errors.
    ws.send(push("4", "doc", json!({"query": "{ nothing }"}))).await.unwrap();
    let (status, response) = reply(&mut ws, "4").await;
    assert_eq!(status, "error");
    assert!(response["errors"][0]["message"].is_string(), "{response}");
    ws.send(push("5", "doc", json!({"query": "{ hello }", "variables": "x"}))).await.unwrap();
    assert_eq!(
        reply(&mut ws, "5").await,
        ("error".to_owned(), json!({"error": "Could not parse variables"}))
    );

    // A subscription: its id, then its data on the id's topic, with no join ref.
    ws.send(push("6", "doc", json!({"query": "subscription { shouts }"}))).await.unwrap();
    let (status, response) = reply(&mut ws, "6").await;
    assert_eq!(status, "ok");
    let id = response["subscriptionId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("__absinthe__:doc:"), "{id}");
    post(&base, json!({"query": "mutation { shout(text: \"hi\") }"})).await;
    let data = phx_recv(&mut ws).await;
    let expected = json!([null, null, id, "subscription:data", {"result": {"data": {"shouts": "hi"}}, "subscriptionId": id}]);
    assert_eq!(data, expected);

    // A refused subscription document is an error reply, not a subscription.
    ws.send(push("7", "doc", json!({"query": "subscription { nothing }"}))).await.unwrap();
    let (status, response) = reply(&mut ws, "7").await;
    assert_eq!(status, "error", "{response}");
    assert!(response["errors"][0]["message"].is_string(), "{response}");
    // Two at once here: a third is refused until one stops.
    ws.send(push("8", "doc", json!({"query": "subscription { shouts }"}))).await.unwrap();
    assert_eq!(reply(&mut ws, "8").await.0, "ok");
    ws.send(push("9", "doc", json!({"query": "subscription { shouts }"}))).await.unwrap();
    assert_eq!(reply(&mut ws, "9").await.0, "error");

    ws.send(push("10", "unsubscribe", json!({"subscriptionId": id}))).await.unwrap();
    assert_eq!(reply(&mut ws, "10").await, ("ok".to_owned(), json!({"subscriptionId": id})));
    ws.send(push("11", "doc", json!({"query": "subscription { shouts }"}))).await.unwrap();
    assert_eq!(reply(&mut ws, "11").await.0, "ok");
    ws.send(push("12", "unsubscribe", json!({"subscriptionId": id}))).await.unwrap();
    assert_eq!(reply(&mut ws, "12").await.0, "error");
    running.shutdown();
}

#[tokio::test]
async fn one_client_holds_a_bounded_number_of_graphql_websockets() {
    let running = start().await;
    let base = running.url();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(acked(&base).await);
    }
    let url = format!("{}/graphql", base.replace("http", "ws"));
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("a fifth websocket of one client: {other:?}"),
    }
    // One closed, one more may open.
    let mut first = held.remove(0);
    first.close(None).await.unwrap();
    let _ = next(&mut first).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    held.push(acked(&base).await);
    running.shutdown();
}

/// A subscription whose text is padded by `pad` bytes of comment, which it keeps while it
/// runs (variables it does not declare are dropped, so they cannot pad it).
fn padded_shouts(id: &str, pad: usize) -> Value {
    let query = format!("subscription {{ shouts }} #{}", "x".repeat(pad));
    json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": {"pad": "x".repeat(400)}}})
}

/// A request counts its parsed document and values, not their JSON: a list of zeros is 72
/// bytes a value.
#[test]
fn requests_count_what_they_keep_parsed() {
    let zeros = serde_json::json!({"l": vec![0; 1000]});
    let request =
        async_graphql::Request::new("{ a }").variables(async_graphql::Variables::from_json(zeros));
    let bytes = super::request_bytes(&request, 1);
    assert!(bytes >= 1000 * 72 + 256, "{bytes}");
    assert!(bytes < 1000 * 72 + 1024, "{bytes}");
}

/// What subscriptions keep is bounded per connection and server-wide, over both transports;
/// a refusal is the operation's error and the connection stays; a finished operation gives
/// its place back.
#[tokio::test]
async fn running_operations_are_bounded_per_connection_and_over_the_server() {
    let running = start().await;
    let base = running.url();

    // An id longer than 128 bytes closes the connection with 4400.
    let mut long = acked_at(&base, "/tight").await;
    send(
        &mut long,
        json!({"id": "i".repeat(129), "type": "subscribe", "payload": {"query": "{ hello }"}}),
    )
    .await;
    assert_eq!(next(&mut long).await, Err(4400));

    // A connection's running operations keep 2 KiB of requests at most here.
    let mut a = acked_at(&base, "/tight").await;
    send(&mut a, padded_shouts("a1", 1200)).await;
    send(&mut a, padded_shouts("a2", 1200)).await;
    let refused = next(&mut a).await.unwrap();
    assert_eq!(
        (refused["id"].as_str(), refused["type"].as_str()),
        (Some("a2"), Some("error")),
        "{refused}"
    );
    let message = refused["payload"][0]["message"].as_str().unwrap();
    assert!(message.contains("more than 2048 bytes"), "{message}");
    send(&mut a, json!({"type": "ping"})).await;
    assert_eq!(next(&mut a).await, Ok(json!({"type": "pong"})), "the connection stays");

    // A client runs two operations here: a1 and b1. b2 is refused.
    let mut b = acked_at(&base, "/tight").await;
    send(&mut b, padded_shouts("b1", 10)).await;
    send(&mut b, padded_shouts("b2", 10)).await;
    let refused = next(&mut b).await.unwrap();
    assert_eq!(refused["id"], "b2", "{refused}");
    let message = refused["payload"][0]["message"].as_str().unwrap();
    assert!(message.contains("this client runs 2"), "{message}");
    // Another client runs one more; then the server runs its three.
    let mut c = acked_from(&base, "/tight", [127, 0, 0, 2]).await;
    send(&mut c, padded_shouts("c1", 10)).await;
    send(&mut c, padded_shouts("c2", 10)).await;
    let refused = next(&mut c).await.unwrap();
    assert_eq!(refused["id"], "c2", "{refused}");
    let message = refused["payload"][0]["message"].as_str().unwrap();
    assert!(message.contains("too many operations"), "{message}");
    // The Absinthe channel shares the limits: this client's are used up.
    let url = format!("{}/tight_socket/websocket?vsn=2.0.0", base.replace("http", "ws"));
    let (mut phx, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
    let push = |reference: &str, event: &str, payload: Value| {
        Message::text(json!(["1", reference, "__absinthe__:control", event, payload]).to_string())
    };
    phx.send(push("1", "phx_join", json!({}))).await.unwrap();
    assert_eq!(reply(&mut phx, "1").await.0, "ok");
    let doc = json!({"query": "subscription { shouts }"});
    phx.send(push("2", "doc", doc.clone())).await.unwrap();
    let (status, response) = reply(&mut phx, "2").await;
    assert_eq!(status, "error", "{response}");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("this client runs 2"), "{message}");

    // a1 completes: its place goes back, and the channel's subscription runs.
    send(&mut a, json!({"id": "a1", "type": "complete"})).await;
    let subscribed = async {
        loop {
            phx.send(push("3", "doc", doc.clone())).await.unwrap();
            let (status, response) = reply(&mut phx, "3").await;
            if status == "ok" {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let response =
        tokio::time::timeout(Duration::from_secs(5), subscribed).await.expect("a place frees up");
    assert!(response["subscriptionId"].is_string(), "{response}");
    // The channel keeps 2 KiB of requests at most too; unsubscribing gives its share back.
    let id = response["subscriptionId"].as_str().unwrap().to_owned();
    drop(b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let big = json!({"query": format!("subscription {{ shouts }} #{}", "x".repeat(2000))});
    phx.send(push("4", "doc", big.clone())).await.unwrap();
    let (status, response) = reply(&mut phx, "4").await;
    assert_eq!(status, "error", "{response}");
    assert!(
        response["errors"][0]["message"].as_str().unwrap().contains("more than 2048 bytes"),
        "{response}"
    );
    phx.send(push("5", "unsubscribe", json!({"subscriptionId": id}))).await.unwrap();
    assert_eq!(reply(&mut phx, "5").await.0, "ok");
    let fits = json!({"query": format!("subscription {{ shouts }} #{}", "x".repeat(1500))});
    phx.send(push("6", "doc", fits)).await.unwrap();
    let (status, response) = reply(&mut phx, "6").await;
    assert_eq!(status, "ok", "{response}");
    running.shutdown();
}

/// A client's count goes when it runs nothing, so the map holds running clients only; a
/// client's bytes are held to its share.
#[test]
fn per_client_counts_are_kept_for_running_clients_only() {
    let running = super::Running::new(10, 1000, 2);
    let (a, b): (std::net::IpAddr, std::net::IpAddr) =
        ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    assert!(running.take_for(a, 10).is_ok() && running.take_for(a, 10).is_ok());
    assert!(running.take_for(a, 10).unwrap_err().contains("runs 2 operations"), "two at most");
    // A client's share of the bytes is its share of the operations: 2 of 10, 200 of 1000.
    assert!(running.take_for(b, 201).unwrap_err().contains("more than 200 bytes"));
    assert!(running.take_for(b, 200).is_ok());
    running.give_back_for(a, 10);
    running.give_back_for(b, 200);
    assert_eq!(running.clients().len(), 1);
    running.give_back_for(a, 10);
    assert!(running.clients().is_empty());
    let none = super::Running::new(10, 100, 0);
    assert!(none.take_for(a, 1).is_err());
    assert!(none.clients().is_empty(), "a refused client leaves no entry");
}
