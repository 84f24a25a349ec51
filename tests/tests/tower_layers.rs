//! The router in the tower ecosystem: tower-http layers as pipeline plugs over real TCP,
//! layers around a whole endpoint, the router as a plain `tower::Service` under bare hyper and
//! inside another tower stack, the endpoint serving any tower service, and `ConnTest`
//! answering in process exactly as the endpoint answers over TCP.

mod channel_support;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use fawkes::conn::ParamsError;
use fawkes::test::ConnTest;
use fawkes::{Body, Conn, Endpoint, Router};
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tests::{http1_client, start, within, RawConn, DEADLINE};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::timeout::TimeoutLayer;

const ORIGIN: &str = "https://app.example";

fn big_text() -> String {
    "lorem ipsum dolor sit amet ".repeat(400)
}

async fn big(conn: Conn) -> Conn {
    conn.text(big_text())
}

/// The router answers 405 to a method a path has no route for before any pipeline runs, so a
/// preflight reaches a CORS layer in a pipeline only through an OPTIONS route; the layer then
/// answers it and this never runs. A layer around the endpoint needs no such route.
async fn options_fallback(conn: Conn) -> Conn {
    conn.put_resp_header("x-action", "called").text("not a preflight")
}

async fn plain(conn: Conn) -> Conn {
    conn.text("plain")
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Echo {
    word: String,
}

async fn echo(conn: Conn) -> Result<Conn, ParamsError> {
    let echo: Echo = conn.params()?;
    Ok(conn.json(&echo))
}

async fn slow(conn: Conn) -> Conn {
    tokio::time::sleep(DEADLINE).await;
    conn.text("late")
}

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin([HeaderValue::from_static(ORIGIN)])
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

fawkes::router! {
    /// An API scope behind CORS and compression, and plain routes outside it.
    pub Layered;
    pipeline api {
        plug fawkes::plug::layer(cors());
        plug fawkes::plug::layer(CompressionLayer::new());
    }
    scope "/api" {
        pipe_through api;
        get "/big" => big;
        options "/big" => options_fallback;
        post "/echo" => echo;
    }
    scope "/" {
        get "/plain" => plain;
        get "/slow" => slow;
    }
}

/// Decodes a gzip body with tower-http's own decompression, fed the response as received.
async fn gunzip(compressed: Bytes) -> String {
    let mut response = Some(
        http::Response::builder()
            .header(header::CONTENT_ENCODING, "gzip")
            .body(http_body_util::Full::new(compressed))
            .unwrap(),
    );
    let received = tower::service_fn(move |_req: http::Request<()>| {
        std::future::ready(Ok::<_, Infallible>(response.take().expect("called once")))
    });
    let decoded = tower_http::decompression::Decompression::new(received)
        .oneshot(http::Request::new(()))
        .await
        .unwrap();
    let bytes = decoded.into_body().collect().await.expect("valid gzip").to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Checks the CORS-and-gzip answers of the `/api` scope at `base`.
async fn assert_layers_work(base: &str) {
    let client = http1_client();
    let url = format!("{base}/api/big");

    let resp = client
        .get(&url)
        .header("origin", ORIGIN)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let compressed = resp.bytes().await.unwrap();
    assert_eq!(&compressed[..2], &[0x1f, 0x8b], "gzip magic");
    assert!(compressed.len() < big_text().len() / 4, "{} bytes", compressed.len());
    assert_eq!(gunzip(compressed).await, big_text());

    // Without accept-encoding the body is sent as is; another origin gets no CORS grant.
    let resp = client.get(&url).header("origin", "https://evil.example").send().await.unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert_eq!(resp.text().await.unwrap(), big_text());
}

#[tokio::test]
async fn cors_and_compression_layers_in_a_pipeline_work_over_tcp() {
    let server = start(Endpoint::new(Layered::new())).await;
    assert_layers_work(&server.url()).await;

    // Routes outside the pipeline are untouched by it.
    let resp = http1_client()
        .get(format!("{}/plain", server.url()))
        .header("origin", ORIGIN)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert!(resp.headers().get("content-encoding").is_none());
    assert_eq!(resp.text().await.unwrap(), "plain");
}

#[tokio::test]
async fn a_cors_preflight_is_answered_by_the_layer() {
    let server = start(Endpoint::new(Layered::new())).await;
    let client = http1_client();
    let url = format!("{}/api/big", server.url());

    let resp = client
        .request(Method::OPTIONS, &url)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(headers["access-control-allow-methods"], "GET,POST");
    assert_eq!(headers["access-control-allow-headers"], "content-type");
    assert_eq!(headers["access-control-max-age"], "600");
    // The layer answered; the action behind it never ran.
    assert!(headers.get("x-action").is_none());
    assert!(resp.bytes().await.unwrap().is_empty());
}

/// Serves every connection on a fresh loopback listener with bare hyper HTTP/1.1, handing
/// each request to `service`; returns the base URL.
async fn serve_with_hyper<S>(service: S) -> String
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Error: std::error::Error + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(tests::loopback()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service.clone();
            let hyper_service = hyper::service::service_fn(move |req| service.clone().oneshot(req));
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper_service),
            );
        }
    });
    base
}

#[tokio::test]
async fn the_router_is_a_tower_service_usable_with_plain_hyper() {
    let router: Router = Layered::new().into();
    let base = serve_with_hyper(router).await;
    let client = http1_client();

    let resp = client.get(format!("{base}/plain")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "plain");
    // Pipelines, body decoding and error answers come with the router, not the endpoint.
    let resp = client.post(format!("{base}/api/echo")).json(&json!({ "word": "hi" })).send();
    let resp = resp.await.unwrap();
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap(), json!({ "word": "hi" }));
    let resp = client.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({ "errors": { "detail": "Not Found" } })
    );
    assert_layers_work(&base).await;
}

#[tokio::test]
async fn the_router_works_inside_another_tower_stack() {
    let router: Router = Layered::new().into();
    let stack = ServiceBuilder::new()
        .layer(CorsLayer::permissive())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(200),
        ))
        .service(router);
    let base = serve_with_hyper(stack).await;
    let client = http1_client();

    // The outer CORS layer covers routes the router's own pipeline does not.
    let resp = client
        .get(format!("{base}/plain"))
        .header("origin", "https://anywhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(resp.text().await.unwrap(), "plain");

    // The outer timeout cuts an action that outlasts it.
    let started = tokio::time::Instant::now();
    let resp = within(DEADLINE, "the timed-out answer", client.get(format!("{base}/slow")).send())
        .await
        .unwrap();
    assert_eq!(resp.status(), 408);
    assert!(started.elapsed() < DEADLINE / 2);
}

/// One request of the comparison table.
struct Case {
    method: Method,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: Option<serde_json::Value>,
}

const fn case(method: Method, path: &'static str) -> Case {
    Case { method, path, headers: &[], body: None }
}

/// An answer reduced to what both transports must agree on.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, Option<String>)>,
    body: Bytes,
}

const COMPARED_HEADERS: [&str; 6] = [
    "content-type",
    "allow",
    "content-encoding",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "x-action",
];

fn answer(status: u16, headers: &http::HeaderMap, body: Bytes) -> Answer {
    let headers = COMPARED_HEADERS
        .iter()
        .map(|&name| (name, headers.get(name).map(|v| v.to_str().unwrap().to_owned())))
        .collect();
    Answer { status, headers, body }
}

#[tokio::test]
async fn conn_test_in_process_answers_exactly_as_the_endpoint_over_tcp() {
    let cases = [
        case(Method::GET, "/plain"),
        case(Method::GET, "/nope"),
        case(Method::DELETE, "/plain"),
        case(Method::HEAD, "/plain"),
        case(Method::OPTIONS, "/api/big"),
        Case {
            headers: &[("origin", ORIGIN), ("accept-encoding", "gzip")],
            ..case(Method::GET, "/api/big")
        },
        Case {
            headers: &[("origin", ORIGIN), ("access-control-request-method", "POST")],
            ..case(Method::OPTIONS, "/api/big")
        },
        Case { body: Some(json!({ "word": "same" })), ..case(Method::POST, "/api/echo") },
        Case { body: Some(json!({ "other": 1 })), ..case(Method::POST, "/api/echo") },
    ];
    let server = start(Endpoint::new(Layered::new())).await;
    let in_process = ConnTest::new(Layered::new());
    let client = http1_client();

    for case in &cases {
        let mut local = in_process.request(case.method.clone(), case.path);
        let mut remote =
            client.request(case.method.clone(), format!("{}{}", server.url(), case.path));
        for &(name, value) in case.headers {
            local = local.header(name, value);
            remote = remote.header(name, value);
        }
        if let Some(body) = &case.body {
            local = local.json(body);
            remote = remote.json(body);
        }
        let local = local.send().await;
        let local = answer(local.status().as_u16(), local.headers(), local.bytes().clone());
        let remote = within(DEADLINE, "the TCP answer", remote.send()).await.unwrap();
        let (status, headers) = (remote.status().as_u16(), remote.headers().clone());
        let remote = answer(status, &headers, remote.bytes().await.unwrap());
        assert_eq!(local, remote, "{} {}", case.method, case.path);
    }
}

#[tokio::test]
async fn layers_around_the_endpoint_see_every_request() {
    // A router alone answers a preflight for a path without an OPTIONS route with 405.
    let bare = start(Endpoint::new(Layered::new())).await;
    let preflight = |base: String| {
        http1_client()
            .request(Method::OPTIONS, format!("{base}/plain"))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "GET")
            .send()
    };
    assert_eq!(preflight(bare.url()).await.unwrap().status(), 405);

    let server =
        start(Endpoint::new(Layered::new()).layer(cors()).layer(CompressionLayer::new())).await;
    let resp = preflight(server.url()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(resp.headers()["access-control-allow-methods"], "GET,POST");

    // Routes, 404s included, are answered through both layers.
    let client = http1_client();
    for (path, status) in [("/plain", 200), ("/nope", 404)] {
        let resp = client
            .get(format!("{}{path}", server.url()))
            .header("origin", ORIGIN)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{path}");
        assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN, "{path}");
    }
    let resp = client
        .get(format!("{}/api/big", server.url()))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(gunzip(resp.bytes().await.unwrap()).await, big_text());
}

fawkes::router! {
    /// Readiness, which reads the endpoint's connection info, and a body to decode.
    pub Probes;
    get "/readyz" => fawkes::telemetry::readyz;
    post "/echo" => echo;
}

#[tokio::test]
async fn the_endpoint_body_limit_holds_behind_layers_whatever_the_order() {
    // Accepting for a while after shutdown begins, so readiness can be seen to turn.
    let endpoint = Endpoint::new(Probes::new()).layer(cors()).max_body(16).drain_delay(DEADLINE);
    let server = start(endpoint).await;
    let client = http1_client();
    let url = format!("{}/echo", server.url());
    let resp = client.post(&url).json(&json!({ "word": "a".repeat(64) })).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    let resp = client.post(&url).json(&json!({ "word": "ok" })).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // The router behind the layers still reads the endpoint's connection: readiness reports
    // the endpoint's pubsub, and turns to draining with the endpoint.
    let resp = client.get(format!("{}/readyz", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ready: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(ready["pubsub"]["adapter"], "local", "{ready}");
    server.shutdown();
    let resp = client.get(format!("{}/readyz", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 503);
}

/// Answers with the peer's address, fails on `/error` and panics on `/panic`.
async fn own_service(req: http::Request<Body>) -> Result<http::Response<Body>, std::io::Error> {
    match req.uri().path() {
        "/error" => Err(std::io::Error::other("the database is down")),
        "/panic" => panic!("asked to panic"),
        _ => {
            let info = req.extensions().get::<fawkes::endpoint::ConnInfo>().expect("conn info");
            Ok(http::Response::new(Body::from(info.remote_addr().ip().to_string())))
        }
    }
}

#[tokio::test]
async fn the_endpoint_serves_any_tower_service() {
    let server = start(Endpoint::service(tower::service_fn(own_service))).await;
    let mut raw = RawConn::connect(server.local_addr()).await.unwrap();
    let resp = raw.get("/").await.unwrap();
    assert_eq!((resp.status, resp.text()), (200, "127.0.0.1".to_owned()));
    // An error and a panic answer 500, and the connection goes on serving.
    for path in ["/error", "/panic"] {
        let resp = raw.get(path).await.unwrap();
        assert_eq!(resp.status, 500, "{path}");
        assert_eq!(resp.json(), json!({ "errors": { "detail": "Internal Server Error" } }));
    }
    assert_eq!(raw.get("/").await.unwrap().status, 200);

    // A router inside the application's own stack: the endpoint's layers of its own too.
    let stack = ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(200),
        ))
        .service(Router::from(Layered::new()));
    let server = start(Endpoint::service(stack).layer(CorsLayer::permissive())).await;
    let client = http1_client();
    let resp = client
        .get(format!("{}/plain", server.url()))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(resp.text().await.unwrap(), "plain");
    let resp = client.get(format!("{}/slow", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 408);
}

#[tokio::test]
async fn a_body_limit_the_endpoint_cannot_apply_stops_it_before_it_listens() {
    let endpoint = Endpoint::service(tower::service_fn(own_service)).max_body(1024);
    let err = endpoint.bind(tests::loopback()).start().await.unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(err.to_string().contains("Router::max_body"), "{err}");
}

#[tokio::test]
async fn websockets_upgrade_and_join_channels_through_endpoint_layers() {
    use fawkes::channel::{Channel, ChannelSocket, Reply};
    use fawkes::serializer::Payload;
    use fawkes::socket::transport;
    use serde_json::Value;

    struct Room;
    impl Channel for Room {
        type Info = ();

        async fn join(_: &str, _: Payload, _: &mut ChannelSocket) -> Result<(Self, Value), Value> {
            Ok((Room, json!({ "joined": true })))
        }

        async fn handle_in(&mut self, _: &str, _: Payload, _: &mut ChannelSocket) -> Reply {
            Reply::ok(json!({}))
        }
    }
    let transport = transport(channel_support::OpenSocket::<Room>::new());
    let router =
        fawkes::router::Builder::new().forward("/socket", "/socket", Vec::new(), transport).build();
    let server = start(Endpoint::new(router).layer(cors()).layer(CompressionLayer::new())).await;
    let mut ws = channel_support::connect_v2(server.local_addr()).await;
    let joined = channel_support::join(&mut ws, "1", "room:lobby", json!({})).await;
    assert_eq!(
        joined,
        channel_support::reply(Some("1"), "1", "room:lobby", "ok", json!({ "joined": true }))
    );
    // A broadcast from the endpoint's pubsub reaches the channel behind the layers.
    server.pubsub().broadcast("room:lobby", "news", json!({ "n": 1 }));
    let pushed = channel_support::recv(&mut ws).await;
    assert_eq!(pushed, json!([null, null, "room:lobby", "news", { "n": 1 }]));
}

#[tokio::test]
async fn a_layer_that_is_not_ready_holds_requests_until_it_is() {
    // One request at a time, endpoint-wide: the second waits for the first to finish.
    let (started, release) = (
        std::sync::Arc::new(tokio::sync::Notify::new()),
        std::sync::Arc::new(tokio::sync::Notify::new()),
    );
    let (start_signal, held) = (started.clone(), release.clone());
    let service = tower::service_fn(move |req: http::Request<Body>| {
        let (start_signal, held) = (start_signal.clone(), held.clone());
        async move {
            if req.uri().path() == "/hold" {
                start_signal.notify_one();
                held.notified().await;
            }
            Ok::<_, Infallible>(http::Response::new(Body::from(req.uri().path().to_owned())))
        }
    });
    let server =
        start(Endpoint::service(service).layer(tower::limit::ConcurrencyLimitLayer::new(1))).await;
    let client = http1_client();
    let first = tokio::spawn(client.get(format!("{}/hold", server.url())).send());
    // The first request holds the only permit once it is being served.
    within(DEADLINE, "the first request to be served", started.notified()).await;
    let second = tokio::spawn(http1_client().get(format!("{}/next", server.url())).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second request waits for the permit");
    release.notify_one();
    let first = within(DEADLINE, "the held request", first).await.unwrap().unwrap();
    assert_eq!(first.text().await.unwrap(), "/hold");
    let second = within(DEADLINE, "the waiting request", second).await.unwrap().unwrap();
    assert_eq!(second.text().await.unwrap(), "/next");
    // Both connections go on being served, one request at a time.
    for _ in 0..3 {
        let resp = client.get(format!("{}/again", server.url())).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "/again");
    }
}

/// Answers `/fast` at once and `/slow` after 300 ms.
async fn timed(req: http::Request<Body>) -> Result<http::Response<Body>, Infallible> {
    if req.uri().path() == "/slow" {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(http::Response::new(Body::from(req.uri().path().to_owned())))
}

#[tokio::test]
async fn a_request_that_fails_in_a_layer_gives_back_what_it_held() {
    // Under a limit of one, a layer panics on requests marked `x-bad` before calling inward:
    // the permit the limit gave that request must not stay with its idle connection.
    let panics = tower::util::MapRequestLayer::new(|req: http::Request<Body>| {
        assert!(!req.headers().contains_key("x-bad"), "asked to panic");
        req
    });
    let endpoint = Endpoint::service(tower::service_fn(timed))
        .layer(panics)
        .layer(tower::limit::ConcurrencyLimitLayer::new(1));
    let server = start(endpoint).await;
    let mut attacker = RawConn::connect(server.local_addr()).await.unwrap();
    let resp = attacker
        .send_reading_early(&tests::request_bytes("GET", "/fast", &[("x-bad", "1")], b""))
        .await
        .unwrap();
    assert_eq!(resp.status, 500);
    // The attacker keeps its connection open and sends nothing more; others are served.
    for _ in 0..3 {
        let resp = within(
            Duration::from_secs(2),
            "a request while a panicked connection idles",
            http1_client().get(format!("{}/fast", server.url())).send(),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
    }
    drop(attacker);
}

#[tokio::test]
async fn load_shedding_over_a_limit_sheds_only_while_the_limit_is_full() {
    let endpoint = Endpoint::service(tower::service_fn(timed))
        .layer(tower::limit::ConcurrencyLimitLayer::new(1))
        .layer(tower::load_shed::LoadShedLayer::new());
    let server = start(endpoint).await;
    let busy = tokio::spawn(http1_client().get(format!("{}/slow", server.url())).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Shed while the slow request holds the permit, on a connection that then idles.
    let shed_client = http1_client();
    let resp = shed_client.get(format!("{}/fast", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 500, "shed: the overload error, logged");
    assert_eq!(within(DEADLINE, "the slow request", busy).await.unwrap().unwrap().status(), 200);
    // Nothing in flight now: fresh clients are served, the idle shed connection holds nothing.
    for _ in 0..5 {
        let resp = http1_client().get(format!("{}/fast", server.url())).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    drop(shed_client);
}

#[tokio::test]
async fn a_body_limit_layer_around_the_endpoint_answers_413() {
    let endpoint =
        Endpoint::new(Probes::new()).layer(tower_http::limit::RequestBodyLimitLayer::new(32));
    let server = start(endpoint).await;
    let url = format!("{}/echo", server.url());
    let client = http1_client();
    let resp = client.post(&url).json(&json!({ "word": "ok" })).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Declared too long: the layer answers. Chunked past the limit: the router reads it and
    // answers the same 413.
    let resp = client.post(&url).json(&json!({ "word": "a".repeat(64) })).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    let body = format!(r#"{{"word":"{}"}}"#, "a".repeat(64));
    let mut raw = RawConn::connect(server.local_addr()).await.unwrap();
    let head = tests::request_bytes(
        "POST",
        "/echo",
        &[("content-type", "application/json"), ("transfer-encoding", "chunked")],
        b"",
    );
    let mut bytes = head;
    bytes.extend(tests::chunked(body.as_bytes(), 16));
    let resp = raw.send_reading_early(&bytes).await.unwrap();
    assert_eq!(resp.status, 413);
}

#[tokio::test]
async fn head_through_a_compression_layer_says_what_get_says() {
    let server = start(Endpoint::new(Layered::new()).layer(CompressionLayer::new())).await;
    let client = http1_client();
    let url = format!("{}/plain", server.url());
    let big_url = format!("{}/api/big", server.url());
    for url in [url, big_url] {
        let get = client.get(&url).header("accept-encoding", "gzip").send().await.unwrap();
        let head = client.head(&url).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(head.status(), get.status());
        for name in ["content-encoding", "vary", "content-type"] {
            assert_eq!(head.headers().get(name), get.headers().get(name), "{name} of {url}");
        }
        assert!(head.bytes().await.unwrap().is_empty());
    }
}
