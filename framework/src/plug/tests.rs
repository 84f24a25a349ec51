use http::{Request, StatusCode};

use crate::plug::{accepts, layer};
use crate::{Body, Conn};

async fn big(conn: Conn) -> Conn {
    let seen = conn.get_assign::<Seen>().map_or("no", |_| "yes");
    conn.text(format!("assign seen: {seen}; {}", "lorem ipsum ".repeat(200)))
}

#[derive(Clone)]
struct Seen;

async fn mark(conn: Conn) -> Conn {
    conn.assign(Seen)
}

crate::router! {
    pub LayerRouter;
    pipeline api {
        plug accepts(["json"]);
        plug mark;
        plug layer(tower_http::cors::CorsLayer::permissive());
        plug layer(tower_http::compression::CompressionLayer::new());
    }
    scope "/api" {
        pipe_through api;
        get "/big" => big;
    }
}

async fn send(req: Request<Body>) -> http::Response<Body> {
    LayerRouter::new().router().dispatch(req).await
}

#[tokio::test]
async fn tower_layers_wrap_the_rest_of_the_pipeline() {
    let req = Request::get("/api/big")
        .header("origin", "https://example.com")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let resp = send(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let body = resp.into_body().collect(usize::MAX).await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).unwrap();
    // The assign made before the layers reached the action inside them.
    assert!(text.starts_with("assign seen: yes;"), "{text}");
}

#[tokio::test]
async fn a_layer_may_answer_by_itself() {
    let req = Request::options("/api/big")
        .header("origin", "https://example.com")
        .header("access-control-request-method", "GET")
        .body(Body::empty())
        .unwrap();
    let resp = send(req).await;
    // Preflight is answered by CORS; OPTIONS has no route, but the layer runs before that
    // matters only for routed paths, so the router answers 405 for it.
    assert!(resp.status() == StatusCode::OK || resp.status() == StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn accepts_refuses_unsupported_formats_with_406() {
    let req = Request::get("/api/big").header("accept", "text/html").body(Body::empty()).unwrap();
    assert_eq!(send(req).await.status(), StatusCode::NOT_ACCEPTABLE);
    let req = Request::get("/api/big")
        .header("accept", "application/json, text/plain;q=0.5")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(req).await.status(), StatusCode::OK);
}

async fn show_id(conn: Conn) -> Conn {
    let id = conn.get_assign::<crate::plug::RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    conn.text(id)
}

crate::router! {
    pub IdRouter;
    pipeline ids { plug crate::plug::request_id(); }
    scope "/" { pipe_through ids; get "/id" => show_id; }
}

#[tokio::test]
async fn request_ids_are_kept_when_valid_and_made_otherwise() {
    let router = IdRouter::new();
    let incoming = "abcdefghijklmnopqrstuvwxyz-_0123";
    let req = Request::get("/id").header("x-request-id", incoming).body(Body::empty()).unwrap();
    let resp = router.router().dispatch(req).await;
    assert_eq!(resp.headers()["x-request-id"], incoming);
    assert_eq!(resp.into_body().collect(1024).await.unwrap(), incoming);
    let req = Request::get("/id").header("x-request-id", "short").body(Body::empty()).unwrap();
    let resp = router.router().dispatch(req).await;
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 20);
    assert_ne!(made, "short");
}

async fn echo_path_params(conn: Conn) -> Conn {
    let pairs: Vec<String> = conn.path_params().iter().map(|(k, v)| format!("{k}={v}")).collect();
    let id = conn.path_param("id").unwrap_or_default().to_owned();
    let text = format!("{id}; {}; {}", pairs.join(","), conn.path());
    conn.text(text)
}

fn rewrite_uri(mut req: Request<Body>) -> Request<Body> {
    *req.uri_mut() = http::Uri::from_static("/x");
    req
}

crate::router! {
    pub RewriteRouter;
    pipeline rewrite {
        plug layer(tower::util::MapRequestLayer::new(rewrite_uri));
    }
    scope "/" {
        pipe_through rewrite;
        get "/items/:id/parts/:part" => echo_path_params;
    }
}

#[tokio::test]
async fn path_params_survive_a_layer_that_rewrites_the_uri() {
    let req = Request::get("/items/alpha/parts/b%20c").body(Body::empty()).unwrap();
    let resp = RewriteRouter::new().router().dispatch(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect(1024).await.unwrap();
    assert_eq!(body, "alpha; id=alpha,part=b c; /x");
}
