//! The axum server: an `axum::Router` with the same route table as the Fawkes server, served
//! by `axum::serve`.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::extract::Path;
use axum::http::header::HeaderValue;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::{Json, Router};
use serde_json::{Map, Value};

use crate::routes::{table, Action};
use crate::scenario::{Ids, Keys, Message, BENCH_HEADER, BENCH_HEADER_VALUE, HELLO};

pub(super) async fn start(
    addr: SocketAddr,
    routes: usize,
    cors: bool,
) -> anyhow::Result<SocketAddr> {
    let mut app = Router::new();
    for route in table(routes) {
        let path = route.matchit_path();
        app = match (route.action, route.post) {
            (Action::Plaintext, _) => app.route(&path, get(plaintext)),
            (Action::Json, _) => app.route(&path, get(json)),
            (Action::Deep, _) => app.route(&path, get(deep)),
            (Action::Echo, _) => app.route(&path, post(echo)),
            (Action::Filler, true) => app.route(&path, post(filler)),
            (Action::Filler, false) => app.route(&path, get(filler)),
        };
    }
    if cors {
        app = app.layer(tower_http::cors::CorsLayer::permissive());
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("axum failed to bind {addr}"))?;
    let local = listener.local_addr().context("axum listener has no address")?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "axum server stopped");
        }
    });
    Ok(local)
}

/// The bench header, and the `nosniff` Fawkes puts on every rendered answer, so both servers
/// send the same bytes.
fn bench_header() -> [(http::HeaderName, HeaderValue); 2] {
    [
        (BENCH_HEADER, HeaderValue::from_static(BENCH_HEADER_VALUE)),
        (http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ]
}

async fn plaintext() -> impl IntoResponse {
    (bench_header(), HELLO)
}

async fn json() -> impl IntoResponse {
    (bench_header(), Json(Message { message: HELLO }))
}

async fn deep(Path((id, post_id)): Path<(u64, u64)>) -> impl IntoResponse {
    (bench_header(), Json(Ids { id, post_id }).into_response())
}

async fn echo(Json(body): Json<Map<String, Value>>) -> impl IntoResponse {
    (bench_header(), Json(Keys { keys: body.len() }))
}

async fn filler() -> impl IntoResponse {
    (bench_header(), "filler")
}
