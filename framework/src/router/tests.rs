use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::{ActionError, Body, Conn};

#[derive(Clone)]
struct Trail(Vec<&'static str>);

fn step(name: &'static str) -> impl Fn(Conn) -> std::future::Ready<Conn> + Send + Sync + 'static {
    move |conn: Conn| {
        let mut trail = conn.get_assign::<Trail>().cloned().unwrap_or(Trail(Vec::new()));
        trail.0.push(name);
        std::future::ready(conn.assign(trail))
    }
}

async fn halt_if_asked(conn: Conn) -> Conn {
    if conn.header("x-halt").is_some() {
        conn.send_resp(StatusCode::UNAUTHORIZED, "halted").halt()
    } else {
        conn
    }
}

async fn trail(conn: Conn) -> Conn {
    let trail = conn.get_assign::<Trail>().map(|t| t.0.join(",")).unwrap_or_default();
    conn.text(trail)
}

async fn echo_params(conn: Conn) -> Conn {
    let body = json!({ "params": Value::Object(conn.param_map().clone()), "route": conn.route() });
    conn.json(&body)
}

async fn boom(_conn: Conn) -> Conn {
    panic!("boom in an action")
}

async fn fails(_conn: Conn) -> Result<Conn, ActionError> {
    Err(ActionError::validation("name", "can't be blank"))
}

#[allow(clippy::unused_async)]
mod room_controller {
    use super::*;
    pub(super) async fn index(conn: Conn) -> Conn {
        conn.text("index")
    }
    pub(super) async fn show(conn: Conn) -> Conn {
        let id = conn.path_param("id").unwrap_or_default().to_owned();
        conn.text(format!("show {id}"))
    }
    pub(super) async fn create(conn: Conn) -> Conn {
        conn.put_status(StatusCode::CREATED).text("create")
    }
    pub(super) async fn update(conn: Conn) -> Conn {
        let text = format!("update via {}", conn.method());
        conn.text(text)
    }
    pub(super) async fn delete(conn: Conn) -> Conn {
        conn.send_resp(StatusCode::NO_CONTENT, Body::empty())
    }
}

#[allow(clippy::unused_async)]
mod message_controller {
    use super::*;
    pub(super) async fn index(conn: Conn) -> Conn {
        let room = conn.path_param("room_id").unwrap_or_default().to_owned();
        conn.text(format!("messages of {room}"))
    }
    pub(super) async fn show(conn: Conn) -> Conn {
        let (room, id) = (conn.path_param("room_id").unwrap(), conn.path_param("id").unwrap());
        let text = format!("message {id} of {room}");
        conn.text(text)
    }
}

fn legacy() -> impl tower_service::Service<
    Request<Body>,
    Response = http::Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + Sync {
    tower::service_fn(|req: Request<Body>| async move {
        let text = format!("legacy saw {}", req.uri());
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(text)))
    })
}

crate::router! {
    /// The router under test.
    pub TestRouter;

    pipeline first { plug step("first-a"); plug step("first-b"); }
    pipeline second { plug step("second"); plug halt_if_asked; }

    get "/trail/none" => trail;

    scope "/" {
        pipe_through first;
        get "/trail/one" => trail;
        scope "/nested" {
            pipe_through second;
            get "/trail" => trail, as: nested_trail;
        }
        get "/trail/after" => trail, as: after_trail;
    }

    scope "/api" {
        pipe_through [first, second];
        resources "/rooms" => room_controller, except: [new, edit] {
            resources "/messages" => message_controller, only: [index, show];
        }
        post "/echo/:id" => echo_params;
        get "/files/*path" => echo_params;
        get "/boom" => boom;
        post "/fails" => fails;
        match "/any" => trail;
        forward "/legacy" => legacy();
    }
}

async fn send(req: Request<Body>) -> (StatusCode, http::HeaderMap, Bytes) {
    let resp = TestRouter::new().router().dispatch(req).await;
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, body.collect(usize::MAX).await.unwrap())
}

async fn get(path: &str) -> (StatusCode, String) {
    let (status, _, body) = send(Request::get(path).body(Body::empty()).unwrap()).await;
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn pipelines_run_in_declared_order_and_scopes_nest() {
    assert_eq!(get("/trail/none").await, (StatusCode::OK, String::new()));
    assert_eq!(get("/trail/one").await.1, "first-a,first-b");
    assert_eq!(get("/nested/trail").await.1, "first-a,first-b,second");
    // pipe_through in a nested scope does not leak out of it.
    assert_eq!(get("/trail/after").await.1, "first-a,first-b");
}

#[tokio::test]
async fn a_halting_plug_stops_the_pipeline() {
    let req = Request::get("/nested/trail").header("x-halt", "1").body(Body::empty()).unwrap();
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, "halted");
}

#[tokio::test]
async fn resources_and_nested_resources() {
    assert_eq!(get("/api/rooms").await.1, "index");
    assert_eq!(get("/api/rooms/42").await.1, "show 42");
    assert_eq!(get("/api/rooms/42/").await.1, "show 42");
    assert_eq!(get("/api/rooms/4%202").await.1, "show 4 2");
    assert_eq!(get("/api/rooms/7/messages").await.1, "messages of 7");
    assert_eq!(get("/api/rooms/7/messages/9").await.1, "message 9 of 7");
    for method in [Method::PATCH, Method::PUT] {
        let req = Request::builder()
            .method(method.clone())
            .uri("/api/rooms/1")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(req).await.2, format!("update via {method}"));
    }
    let req = Request::post("/api/rooms").body(Body::empty()).unwrap();
    assert_eq!(send(req).await.0, StatusCode::CREATED);
    let req = Request::delete("/api/rooms/1").body(Body::empty()).unwrap();
    let (status, _, body) = send(req).await;
    assert_eq!((status, body.len()), (StatusCode::NO_CONTENT, 0));
    // `except: [new, edit]`: /rooms/new is a show of id "new", edit is not routed.
    assert_eq!(get("/api/rooms/new").await.1, "show new");
    assert_eq!(get("/api/rooms/1/edit").await.0, StatusCode::NOT_FOUND);
}

#[test]
fn path_helpers_build_encoded_paths() {
    assert_eq!(TestRouter::room_index_path(), "/api/rooms");
    assert_eq!(TestRouter::room_show_path(5), "/api/rooms/5");
    assert_eq!(TestRouter::room_message_show_path("a b", 3), "/api/rooms/a%20b/messages/3");
    assert_eq!(TestRouter::nested_trail_path(), "/nested/trail");
    assert_eq!(TestRouter::echo_params_path("x/y"), "/api/echo/x%2Fy");
    assert!(TestRouter::ROUTES.contains(&("PATCH", "/api/rooms/:id")));
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let (status, body) = get("/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"errors":{"detail":"Not Found"}})
    );
    let req = Request::post("/api/rooms/1").body(Body::empty()).unwrap();
    let (status, headers, _) = send(req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "GET, PUT, PATCH, DELETE, HEAD");
}

#[tokio::test]
async fn head_is_served_by_get_without_a_body() {
    let req = Request::head("/api/rooms/42").body(Body::empty()).unwrap();
    let (status, headers, body) = send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-length"], "7");
    assert!(body.is_empty());
}

#[tokio::test]
async fn params_merge_path_query_and_json_or_form_bodies() {
    let req = Request::post("/api/echo/9?q=1&id=query")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"id":"body","room":{"name":"x"}}"#))
        .unwrap();
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["params"], json!({"id":"9","q":"1","room":{"name":"x"}}));
    assert_eq!(body["route"], "/api/echo/:id");

    let req = Request::post("/api/echo/1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("room[name]=a+b&tags[]=x"))
        .unwrap();
    let body: Value = serde_json::from_slice(&send(req).await.2).unwrap();
    assert_eq!(body["params"], json!({"id":"1","room":{"name":"a b"},"tags":["x"]}));

    let (_, body) = get("/api/files/a/b%20c.txt").await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["params"]["path"], "a/b c.txt");
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_rejected() {
    let req = Request::post("/api/echo/1")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["errors"]["detail"].as_str().unwrap().starts_with("malformed JSON body"));

    let router = TestRouter::new().router().clone().max_body(16);
    let req = Request::post("/api/echo/1")
        .header("content-type", "application/json")
        .body(Body::from(format!("{{\"a\":\"{}\"}}", "x".repeat(64))))
        .unwrap();
    assert_eq!(router.dispatch(req).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_panicking_action_answers_500_and_the_router_keeps_serving() {
    let before = crate::instrument::Telemetry::process().snapshot().panics;
    let (status, body) = get("/api/boom").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"errors":{"detail":"Internal Server Error"}})
    );
    // Other tests dispatch outside an endpoint too, into the same process-wide telemetry.
    assert!(crate::instrument::Telemetry::process().snapshot().panics > before);
    assert_eq!(get("/api/rooms").await.1, "index");
}

#[tokio::test]
async fn action_errors_render_their_response() {
    let req = Request::post("/api/fails").body(Body::empty()).unwrap();
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"errors":{"name":["can't be blank"]}})
    );
}

#[tokio::test]
async fn match_answers_any_method_and_forward_strips_its_prefix() {
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let req = Request::builder().method(method).uri("/api/any").body(Body::empty()).unwrap();
        assert_eq!(send(req).await.0, StatusCode::OK);
    }
    assert_eq!(get("/api/legacy/a/b?x=1").await.1, "legacy saw /a/b?x=1");
    assert_eq!(get("/api/legacy").await.1, "legacy saw /");
}

#[test]
fn router_is_send_sync_static() {
    fn assert<T: Send + Sync + 'static>() {}
    assert::<crate::Router>();
    assert::<TestRouter>();
}

#[derive(Clone)]
struct Greeting(&'static str);

async fn greet(conn: Conn) -> Conn {
    let text = conn.get_assign::<Greeting>().map_or("none", |g| g.0);
    conn.text(text)
}

crate::router! {
    pub StateRouter;
    get "/greet" => greet;
}

#[tokio::test]
async fn router_assigns_reach_every_request() {
    let plain = crate::Router::from(StateRouter::new());
    let with_state = plain.clone().assign(Greeting("hello"));
    let req = || Request::get("/greet").body(Body::empty()).unwrap();
    let body = |r: http::Response<Body>| async move { r.into_body().collect(64).await.unwrap() };
    assert_eq!(body(with_state.dispatch(req()).await).await, "hello");
    assert_eq!(body(plain.dispatch(req()).await).await, "none");
}

async fn stream_len(mut conn: Conn) -> Result<Conn, ActionError> {
    let body = conn.take_body().collect(usize::MAX).await;
    match body {
        Ok(bytes) => Ok(conn.text(bytes.len().to_string())),
        Err(_) => Err(ActionError::status(StatusCode::PAYLOAD_TOO_LARGE)),
    }
}

crate::router! {
    pub StreamRouter;
    post "/upload" => stream_len;
}

#[tokio::test]
async fn streamed_bodies_are_bounded_by_the_router_limit() {
    let router = crate::Router::from(StreamRouter::new()).max_body(8);
    let req = |body: &'static str| {
        Request::post("/upload")
            .header("content-type", "application/octet-stream")
            .body(Body::from(body))
            .unwrap()
    };
    let ok = router.dispatch(req("12345678")).await;
    assert_eq!(ok.into_body().collect(64).await.unwrap(), "8");
    assert_eq!(router.dispatch(req("123456789")).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

async fn tag_on_send(mut conn: Conn) -> Conn {
    // More headers than the fallback keeps inline, one of them twice.
    for (name, value) in [("x-a", "1"), ("x-b", "2"), ("x-c", "3"), ("vary", "accept")] {
        conn.resp_headers_mut().insert(name, http::HeaderValue::from_static(value));
    }
    conn.resp_headers_mut().append("vary", http::HeaderValue::from_static("origin"));
    conn.assign(Greeting("kept")).register_before_send(|conn| {
        let value = conn.get_assign::<Greeting>().map_or("lost", |g| g.0);
        conn.put_resp_header("x-assign", value)
    })
}

crate::router! {
    pub FallbackRouter;
    pipeline tagged { plug tag_on_send; }
    scope "/" { pipe_through tagged; post "/fails" => fails; get "/greet" => greet; }
}

#[tokio::test]
async fn an_error_response_keeps_the_assigns_and_callbacks_plugs_set() {
    let router = FallbackRouter::new();
    let req = Request::post("/fails").body(Body::empty()).unwrap();
    let resp = router.router().dispatch(req).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(resp.headers()["x-assign"], "kept");
    let plugs_headers = |resp: &http::Response<Body>| {
        let text = |v: &http::HeaderValue| v.to_str().unwrap().to_owned();
        let vary: Vec<String> = resp.headers().get_all("vary").iter().map(text).collect();
        let others: Vec<String> =
            ["x-a", "x-b", "x-c"].iter().map(|n| text(&resp.headers()[*n])).collect();
        format!("vary: {}; x: {}", vary.join(", "), others.join(", "))
    };
    assert_eq!(plugs_headers(&resp), "vary: accept, origin; x: 1, 2, 3");
    let resp = router.router().dispatch(Request::get("/greet").body(Body::empty()).unwrap()).await;
    assert_eq!(resp.headers()["x-assign"], "kept");
    assert_eq!(plugs_headers(&resp), "vary: accept, origin; x: 1, 2, 3");
}

async fn put_headers(mut conn: Conn) -> Conn {
    let headers = conn.resp_headers_mut();
    for (name, value) in [
        ("x-pipeline", "yes"),
        ("x-pipeline", "twice"),
        ("x-frame-options", "DENY"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("vary", "accept"),
    ] {
        headers.append(name, http::HeaderValue::from_static(value));
    }
    conn
}

fn framed() -> impl tower_service::Service<
    Request<Body>,
    Response = http::Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + Sync {
    tower::service_fn(|_req: Request<Body>| async move {
        let resp = http::Response::builder()
            .header("x-frame-options", "SAMEORIGIN")
            .header("set-cookie", "svc=1")
            .header("vary", "origin")
            .body(Body::from("framed"))
            .unwrap();
        Ok::<_, std::convert::Infallible>(resp)
    })
}

crate::router! {
    pub HeaderRouter;
    pipeline headers { plug put_headers; }
    scope "/" {
        pipe_through headers;
        forward "/framed" => framed();
    }
}

/// A forwarded service's response keeps the headers its pipeline put, as an action's does;
/// where both set one, the service's wins.
#[tokio::test]
async fn a_forward_keeps_the_pipelines_headers_unless_the_service_sets_them() {
    let req = Request::get("/framed").body(Body::empty()).unwrap();
    let resp = HeaderRouter::new().router().dispatch(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let all = |name: &str| -> Vec<String> {
        let values = resp.headers().get_all(name).iter();
        values.map(|v| v.to_str().unwrap().to_owned()).collect()
    };
    // Every value of the pipeline's own headers.
    assert_eq!(all("x-pipeline"), ["yes", "twice"]);
    // The service's wins over the pipeline's...
    assert_eq!(all("x-frame-options"), ["SAMEORIGIN"]);
    // ...except where a header lists values: both sides' cookies and variants are kept.
    assert_eq!(all("set-cookie"), ["svc=1", "a=1", "b=2"]);
    assert_eq!(all("vary"), ["origin", "accept"]);
}
