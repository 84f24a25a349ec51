//! The HTTP core over real TCP: both protocol versions, keep-alive, and the error answers the
//! endpoint and router give before an action ever runs.

use fawkes::conn::ParamsError;
use fawkes::{Conn, Endpoint};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tests::{chunked, http1_client, http2_client, request_bytes, start, within, RawConn, DEADLINE};

async fn hello(conn: Conn) -> Conn {
    conn.text("hello")
}

async fn list_items(conn: Conn) -> Conn {
    conn.json(&json!({ "items": [] }))
}

#[derive(Deserialize)]
struct NewItem {
    name: String,
    qty: u32,
}

async fn create_item(conn: Conn) -> Result<Conn, ParamsError> {
    let item: NewItem = conn.params()?;
    Ok(conn.put_status(StatusCode::CREATED).json(&json!({ "name": item.name, "qty": item.qty })))
}

async fn version(conn: Conn) -> Conn {
    let version = format!("{:?}", conn.version());
    conn.text(version)
}

fawkes::router! {
    /// Routes for the protocol and error-answer checks.
    pub Basics;
    scope "/" {
        get "/hello" => hello;
        get "/version" => version;
        get "/items" => list_items;
        post "/items" => create_item;
    }
}

const BODY_LIMIT: usize = 1024;

async fn basics() -> fawkes::endpoint::RunningEndpoint {
    start(Endpoint::new(Basics::new()).max_body(BODY_LIMIT)).await
}

#[tokio::test]
async fn http1_keep_alive_serves_many_requests_on_one_connection() {
    let server = basics().await;
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    for _ in 0..3 {
        let resp = conn.get("/hello").await.unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.text(), "hello");
        assert_ne!(resp.header("connection"), Some("close"));
    }
    // Pipelined: both requests written before either answer is read, answered in order.
    let mut two = request_bytes("GET", "/version", &[], b"");
    two.extend(request_bytes("GET", "/hello", &[], b""));
    conn.send(&two).await.unwrap();
    assert_eq!(conn.read_response().await.unwrap().text(), "HTTP/1.1");
    assert_eq!(conn.read_response().await.unwrap().text(), "hello");
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let server = basics().await;
    let client = http2_client();
    let url = format!("{}/version", server.url());
    // Several streams at once on the one h2c connection the client keeps.
    let responses = within(
        DEADLINE,
        "concurrent HTTP/2 requests",
        futures_util::future::join_all((0..8).map(|_| client.get(&url).send())),
    )
    .await;
    for resp in responses {
        let resp = resp.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "HTTP/2.0");
    }
}

#[tokio::test]
async fn unknown_path_answers_404_json() {
    let server = basics().await;
    let resp = http1_client().get(format!("{}/nope", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({ "errors": { "detail": "Not Found" } })
    );
}

#[tokio::test]
async fn known_path_with_another_method_answers_405_with_allow() {
    let server = basics().await;
    let client = http1_client();
    let resp = client.delete(format!("{}/hello", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({ "errors": { "detail": "Method Not Allowed" } })
    );
    let resp = client.put(format!("{}/items", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST, HEAD");
}

#[tokio::test]
async fn head_on_a_get_route_sends_no_body_but_keeps_the_length() {
    let server = basics().await;
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    conn.send(&request_bytes("HEAD", "/hello", &[], b"")).await.unwrap();
    let head = conn.read_bodiless_response().await.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("5"));
    assert_eq!(head.header("content-type"), Some("text/plain; charset=utf-8"));
    // Had any body bytes followed the head, they would corrupt the next response on the
    // connection.
    let next = conn.get("/version").await.unwrap();
    assert_eq!(next.status, 200);
    assert_eq!(next.text(), "HTTP/1.1");
}

#[tokio::test]
async fn malformed_json_answers_400() {
    let server = basics().await;
    let resp = http1_client()
        .post(format!("{}/items", server.url()))
        .header("content-type", "application/json")
        .body(r#"{"name": "lamp", "qty": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    let detail = body["errors"]["detail"].as_str().unwrap();
    assert!(detail.starts_with("malformed JSON body"), "{detail}");
}

#[tokio::test]
async fn params_that_do_not_deserialise_answer_422_naming_the_field() {
    let server = basics().await;
    let client = http1_client();
    let url = format!("{}/items", server.url());
    let resp = client.post(&url).json(&json!({ "name": "lamp" })).send().await.unwrap();
    assert_eq!(resp.status(), 422);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({ "errors": { "qty": ["can't be blank"] } })
    );
    let resp =
        client.post(&url).json(&json!({ "name": "lamp", "qty": "many" })).send().await.unwrap();
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, json!({ "errors": { "qty": ["is invalid"] } }));
    // And well-formed params reach the action.
    let resp = client.post(&url).json(&json!({ "name": "lamp", "qty": 2 })).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({ "name": "lamp", "qty": 2 })
    );
}

/// A JSON object of roughly `len` bytes that `create_item` accepts.
fn item_of_size(len: usize) -> Vec<u8> {
    let name = "x".repeat(len.saturating_sub(24));
    serde_json::to_vec(&json!({ "name": name, "qty": 1 })).unwrap()
}

#[tokio::test]
async fn body_over_the_limit_with_content_length_answers_413() {
    let server = basics().await;
    let client = http1_client();
    let url = format!("{}/items", server.url());
    let big = item_of_size(BODY_LIMIT * 4);
    let resp = client
        .post(&url)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({ "errors": { "detail": format!("request body exceeds {BODY_LIMIT} bytes") } })
    );
    // Just under the limit is decoded as usual.
    let small = item_of_size(BODY_LIMIT - 8);
    assert!(small.len() <= BODY_LIMIT);
    let resp = client
        .post(&url)
        .header("content-type", "application/json")
        .body(small)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn chunked_body_over_the_limit_answers_413() {
    let server = basics().await;
    let head = "POST /items HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
                transfer-encoding: chunked\r\n\r\n";

    // Under the limit, chunked: decoded, so the limit is what refuses the larger one.
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    let mut request = head.as_bytes().to_vec();
    request.extend(chunked(&item_of_size(BODY_LIMIT / 2), 100));
    conn.send(&request).await.unwrap();
    assert_eq!(conn.read_response().await.unwrap().status, 201);

    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    let mut request = head.as_bytes().to_vec();
    request.extend(chunked(&item_of_size(BODY_LIMIT * 4), 256));
    conn.send(&request).await.unwrap();
    let resp = conn.read_response().await.unwrap();
    assert_eq!(resp.status, 413);
    assert_eq!(
        resp.json(),
        json!({ "errors": { "detail": format!("request body exceeds {BODY_LIMIT} bytes") } })
    );
}

#[tokio::test]
async fn oversized_request_headers_are_refused() {
    let mut config = fawkes::endpoint::Config::default();
    config.max_header_bytes = 16 * 1024;
    let server = start(Endpoint::new(Basics::new()).config(config)).await;
    let filler = "f".repeat(1000);

    // 8 KiB of headers fit under the 16 KiB limit.
    let fits: Vec<(String, &str)> = (0..8).map(|i| (format!("x-filler-{i}"), &*filler)).collect();
    let fits: Vec<(&str, &str)> = fits.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    conn.send(&request_bytes("GET", "/hello", &fits, b"")).await.unwrap();
    assert_eq!(conn.read_response().await.unwrap().status, 200);

    // 20 KiB (past the configured limit, far under hyper's own) and 64 KiB do not. The server
    // answers as soon as it has read past the limit, and may close before the rest is written.
    for kib in [20, 64] {
        let big: Vec<(String, &str)> =
            (0..kib).map(|i| (format!("x-filler-{i}"), &*filler)).collect();
        let big: Vec<(&str, &str)> = big.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        let request = request_bytes("GET", "/hello", &big, b"");
        let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
        let resp = conn.send_reading_early(&request).await;
        let resp = resp.expect("an answer to oversized headers before the connection closes");
        assert_eq!(resp.status, 431, "{kib} KiB: {}", resp.text());
    }
}

/// A key nested 20,000 brackets deep: about 60 KB, once enough to overflow a worker's stack and
/// abort the whole process.
fn deep_key() -> String {
    format!("a{}=1", "[b]".repeat(20_000))
}

#[tokio::test]
async fn deeply_nested_query_params_answer_400_and_the_server_stays_up() {
    let server = basics().await;
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    let path = format!("/items?{}", deep_key());
    // The action never reads its params: the request is served as usual.
    let resp = conn.get(&path).await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    // One that does gets a 400 naming the query string.
    let form = format!("name=x&qty=1&{}", deep_key());
    let resp = conn.send_reading_early(&request_bytes("POST", &path, &[], b"")).await.unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"errors": {"query": ["a key is nested deeper than 32 levels"]}})
    );
    drop(conn);
    // A form body of the same shape: 400 before the action runs.
    let server = start(Endpoint::new(Basics::new()).max_body(256 * 1024)).await;
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let resp = conn
        .send_reading_early(&request_bytes("POST", "/items", &headers, form.as_bytes()))
        .await
        .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("nested deeper than 32 levels"), "{}", resp.text());
    // Many flat params: bounded as well.
    let many = "x=1&".repeat(10_000);
    let resp = conn
        .send_reading_early(&request_bytes("POST", "/items", &headers, many.as_bytes()))
        .await
        .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("more than 4096 params"), "{}", resp.text());
    assert_eq!(conn.get("/hello").await.unwrap().text(), "hello");
}

#[tokio::test]
async fn params_limits_are_configurable_per_router() {
    use fawkes::conn::ParamsLimits;
    let router = fawkes::Router::from(Basics::new())
        .params_limits(ParamsLimits::default().max_depth(1).max_params(3));
    let server = start(Endpoint::new(router)).await;
    let client = http1_client();
    let post = |body: &'static str| {
        client
            .post(format!("{}/items", server.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // Within the limits the form decodes (its text `qty` parses into the action's `u32`).
    assert_eq!(post("name=x&qty=1").await.unwrap().status(), 201);
    assert_eq!(post("name=x&qty=1&a[b]=1").await.unwrap().status(), 400, "four params");
    assert_eq!(post("name=x&a[b][c]=1").await.unwrap().status(), 400, "two levels");
    let resp = client.post(format!("{}/items?a[b][c]=1", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn requests_without_exactly_one_valid_host_answer_400() {
    let server = basics().await;
    let cases: [(&str, &[u8]); 4] = [
        ("no host on HTTP/1.1", b"GET /hello HTTP/1.1\r\n\r\n"),
        ("two hosts", b"GET /hello HTTP/1.1\r\nhost: a.com\r\nhost: b.com\r\n\r\n"),
        ("userinfo in the host", b"GET /hello HTTP/1.1\r\nhost: me@a.com\r\n\r\n"),
        ("not a host", b"GET /hello HTTP/1.1\r\nhost: a b\r\n\r\n"),
    ];
    for (what, request) in cases {
        let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
        let resp = conn.send_reading_early(request).await.unwrap();
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
        assert_eq!(resp.header("connection"), Some("close"), "{what}");
        conn.closed_within(DEADLINE).await.expect("the connection is closed");
    }
    // HTTP/1.0 may leave the host out; a host with a port is fine.
    for request in
        [&b"GET /hello HTTP/1.0\r\n\r\n"[..], b"GET /hello HTTP/1.1\r\nhost: a.com:8080\r\n\r\n"]
    {
        let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
        let resp = conn.send_reading_early(request).await.unwrap();
        assert_eq!((resp.status, resp.text().as_str()), (200, "hello"));
    }
}

#[tokio::test]
async fn rendered_answers_tell_browsers_not_to_sniff_their_type() {
    let server = basics().await;
    let client = http1_client();
    for path in ["/items", "/hello", "/nowhere"] {
        let resp = client.get(format!("{}{path}", server.url())).send().await.unwrap();
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff", "{path}");
    }
}

#[tokio::test]
async fn the_routers_body_limit_holds_under_an_endpoint_that_sets_none() {
    let router = fawkes::Router::from(Basics::new()).max_body(BODY_LIMIT);
    let server = start(Endpoint::new(router)).await;
    let client = http1_client();
    let url = format!("{}/items", server.url());
    let big = json!({ "name": "x".repeat(BODY_LIMIT), "qty": 1 });
    assert_eq!(client.post(&url).json(&big).send().await.unwrap().status(), 413);
    let small = json!({ "name": "lamp", "qty": 1 });
    assert_eq!(client.post(&url).json(&small).send().await.unwrap().status(), 201);
    // An endpoint that sets a limit overrides the router's.
    let router = fawkes::Router::from(Basics::new()).max_body(BODY_LIMIT);
    let server = start(Endpoint::new(router).max_body(BODY_LIMIT * 4)).await;
    let url = format!("{}/items", server.url());
    assert_eq!(client.post(&url).json(&big).send().await.unwrap().status(), 201);
}

#[tokio::test]
async fn a_json_body_with_more_values_than_the_limit_is_refused_before_it_is_decoded() {
    use fawkes::conn::ParamsLimits;
    let router = fawkes::Router::from(Basics::new())
        .params_limits(ParamsLimits::default().max_json_values(50));
    let server = start(Endpoint::new(router)).await;
    let client = http1_client();
    let url = format!("{}/items", server.url());
    // 4 MB of `[0,0,…]` would be a million values; this is 200.
    let bomb = json!({ "name": "lamp", "qty": 1, "pad": vec![0; 200] });
    let resp = client.post(&url).json(&bomb).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["errors"]["detail"].as_str().unwrap().contains("more than 50 values"), "{body}");
    // Commas in strings are not values.
    let wordy = json!({ "name": "a, b, c, ".repeat(100), "qty": 1 });
    assert_eq!(client.post(&url).json(&wordy).send().await.unwrap().status(), 201);
}
