//! The bare hyper server: an HTTP/1.1 connection loop and a hand-written match on the path.
//! It is the floor the frameworks are measured against, so it does only what the scenarios
//! need and has no route table.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};

use crate::scenario::{Ids, Keys, Message, BENCH_HEADER, BENCH_HEADER_VALUE, HELLO};

/// The same limit axum's `Json` applies by default.
const MAX_BODY: usize = 2 * 1024 * 1024;

pub(super) async fn start(
    addr: SocketAddr,
    protocol: &super::Protocol,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("hyper failed to bind {addr}"))?;
    let local = listener.local_addr().context("hyper listener has no address")?;
    let tls = match protocol {
        super::Protocol::H2Tls(dir) => Some(super::tls_acceptor(dir)?),
        _ => None,
    };
    let h2 = *protocol != super::Protocol::Http1;
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                let served = match (tls, h2) {
                    (None, false) => {
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service_fn(handle))
                            .await
                    }
                    (None, true) => {
                        h2_builder()
                            .serve_connection(TokioIo::new(stream), service_fn(handle))
                            .await
                    }
                    (Some(tls), _) => match tls.accept(stream).await {
                        Ok(stream) => {
                            h2_builder()
                                .serve_connection(TokioIo::new(stream), service_fn(handle))
                                .await
                        }
                        Err(err) => {
                            tracing::debug!(error = %err, "TLS handshake failed");
                            return;
                        }
                    },
                };
                if let Err(err) = served {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
            });
        }
    });
    Ok(local)
}

/// HTTP/2 only, with hyper's defaults (the HTTP/2 suite's clients all speak it).
fn h2_builder() -> hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor> {
    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/plaintext") => respond("text/plain; charset=utf-8", HELLO.into()),
        (&Method::GET, "/json") => json(&Message { message: HELLO }),
        (&Method::POST, "/api/v1/echo") => echo(req).await,
        (&Method::GET, path) => match deep_ids(path) {
            Some((id, post_id)) => match (id.parse(), post_id.parse()) {
                (Ok(id), Ok(post_id)) => json(&Ids { id, post_id }),
                _ => not_found(),
            },
            None => not_found(),
        },
        _ => not_found(),
    };
    Ok(resp)
}

/// `/api/v1/users/:id/posts/:post_id`, by hand.
fn deep_ids(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/api/v1/users/")?;
    let (id, rest) = rest.split_once('/')?;
    let post_id = rest.strip_prefix("posts/")?;
    let valid = |s: &str| !s.is_empty() && !s.contains('/');
    (valid(id) && valid(post_id)).then_some((id, post_id))
}

async fn echo(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let bytes = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    match serde_json::from_slice::<Map<String, Value>>(&bytes) {
        Ok(map) => json(&Keys { keys: map.len() }),
        Err(_) => status(StatusCode::BAD_REQUEST),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => respond("application/json", body.into()),
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn respond(content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(BENCH_HEADER, HeaderValue::from_static(BENCH_HEADER_VALUE));
    // As Fawkes puts on every rendered answer, so both servers send the same bytes.
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

fn status(status: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

fn not_found() -> Response<Full<Bytes>> {
    status(StatusCode::NOT_FOUND)
}
