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
    protocol: &super::Protocol,
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
    // `axum::serve` has no TLS: over TLS the router is served by hyper-util's automatic
    // builder, as `axum::serve` serves it in the clear (HTTP/1.1 or h2c alike).
    if let super::Protocol::H2Tls(dir) = protocol {
        serve_tls(listener, super::tls_acceptor(dir)?, app);
        return Ok(local);
    }
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

/// Serves `app` over TLS: each connection's handshake, then HTTP/2 or HTTP/1.1 as ALPN chose.
fn serve_tls(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor, app: Router) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let served =
                    builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                if let Err(err) = served {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
            });
        }
    });
}
