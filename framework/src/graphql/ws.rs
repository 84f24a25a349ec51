//! The `graphql-transport-ws` protocol (the `graphql-ws` npm client's): a WebSocket running
//! many operations, each under its client-chosen id.
//!
//! Written here rather than taken from async-graphql's `WebSocket`, which keeps every
//! operation a client starts with no bound and waits for `connection_init` forever: a
//! connection here runs [`GraphQL::max_operations`](super::GraphQL::max_operations) at once,
//! is closed with 4408 without `connection_init` in time, is pinged and closed when its
//! client goes silent, and runs under the endpoint's supervisor like every socket.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_graphql::http::ClientMessage;
use async_graphql::Executor;
use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{error, guard, GraphQL};
use crate::conn::{Assigns, ConnInfo};
use crate::router::ForwardedAssigns;
use crate::socket::has_token;
use crate::{Body, PubSub};

/// The subprotocol spoken.
const PROTOCOL: &str = "graphql-transport-ws";

/// How long a write may wait on a client that does not read.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether `headers` ask for a WebSocket.
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
}

/// Checks and answers an upgrade, then runs the connection under the endpoint's supervisor.
pub(super) async fn upgrade<E: Executor>(
    graphql: GraphQL<E>,
    mut req: Request<Body>,
) -> Response<Body> {
    let headers = req.headers();
    if req.method() != Method::GET
        || !has_token(headers, header::CONNECTION, "upgrade")
        || headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13")
    {
        return error(StatusCode::BAD_REQUEST, "expected a websocket upgrade (GET, version 13)");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return error(StatusCode::BAD_REQUEST, "missing sec-websocket-key");
    };
    if !has_token(headers, header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL) {
        return error(StatusCode::BAD_REQUEST, "expected the graphql-transport-ws subprotocol");
    }
    if !graphql.config.check_origin.allows(headers) {
        crate::instrument::limited!(
            10,
            info!(origin = ?headers.get(header::ORIGIN), "graphql websocket refused: origin not allowed")
        );
        return error(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let Some(info) = req.extensions().get::<ConnInfo>().cloned() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "websockets must be served by an endpoint",
        );
    };
    let client = match graphql.config.clients.admit(Some(info.remote_addr()), req.headers()) {
        Ok(client) => client,
        Err(ip) => {
            crate::instrument::limited!(
                10,
                info!(client = %ip, "graphql websocket refused: the client holds its most")
            );
            let mut resp =
                error(StatusCode::TOO_MANY_REQUESTS, "too many GraphQL websockets for this client");
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return resp;
        }
    };
    let Some(slot) = Slot::take(&graphql) else {
        let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, "too many GraphQL websockets");
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return resp;
    };
    let assigns = ForwardedAssigns::of(&req);
    let client_ip =
        graphql.config.clients.proxies.client_ip(info.remote_addr().ip(), req.headers());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let context = (assigns, info.pubsub().clone(), client_ip);
    let telemetry = info.telemetry().clone();
    let spawned = info.supervisor().spawn_temporary("graphql_ws", move |token| async move {
        let _slots = (slot, client);
        let _gauge = telemetry.gauge(crate::instrument::GaugeKind::Sockets);
        match on_upgrade.await {
            Ok(upgraded) => run(graphql, upgraded, context, token).await,
            Err(err) => tracing::debug!(error = %err, "graphql websocket upgrade failed"),
        }
    });
    if spawned.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    crate::socket::switching_protocols(&key, Some(PROTOCOL))
}

/// One of the [`GraphQL::max_connections`](super::GraphQL::max_connections) WebSockets,
/// given back when dropped.
struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    fn take<E>(graphql: &GraphQL<E>) -> Option<Self> {
        let counter = &graphql.config.connections;
        let max = graphql.config.max_connections;
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Self(Arc::clone(counter)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One start of an operation: a client may reuse an id once the operation under it is
/// done, and what the old one queued must not pass for the new one's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Op {
    id: String,
    start: u64,
}

/// What an operation's task sends the connection to write.
enum Out {
    Next(Op, async_graphql::Response),
    Error(Op, async_graphql::Response),
    Complete(Op),
}

/// One running operation: its start, its task, and the bytes its request keeps.
struct Running {
    start: u64,
    task: AbortHandle,
    bytes: usize,
}

/// The operations running, by id, with their start; aborted when the connection ends.
#[derive(Default)]
struct Operations {
    running: HashMap<String, Running>,
    starts: u64,
    /// The bytes the running operations' requests keep together.
    held: usize,
}

impl Operations {
    /// Whether `op` is the start running under its id.
    fn is_current(&self, op: &Op) -> bool {
        self.running.get(&op.id).is_some_and(|running| running.start == op.start)
    }

    /// Records a started operation.
    fn insert(&mut self, id: String, running: Running) {
        self.held += running.bytes;
        self.running.insert(id, running);
    }

    /// Stops the operation under `id` (aborting its task), if one runs.
    fn stop(&mut self, id: &str) {
        if let Some(running) = self.running.remove(id) {
            self.held -= running.bytes;
            running.task.abort();
        }
    }

    /// Stops `op` (aborting its task) if it is the start running under its id; whether it
    /// was.
    fn finish(&mut self, op: &Op) -> bool {
        if !self.is_current(op) {
            return false;
        }
        self.stop(&op.id);
        true
    }
}

impl Drop for Operations {
    fn drop(&mut self) {
        for running in self.running.values() {
            running.task.abort();
        }
    }
}

/// The longest operation id a client may choose: ids are kept while the operation runs, and
/// clients use UUIDs or counters.
const MAX_ID_BYTES: usize = 128;

async fn run<E: Executor>(
    graphql: GraphQL<E>,
    upgraded: hyper::upgrade::Upgraded,
    (assigns, pubsub, client_ip): (Assigns, PubSub, std::net::IpAddr),
    token: CancellationToken,
) {
    let config = &graphql.config;
    // Small buffers, as the channel sockets': an idle connection holds a few KiB, not the
    // 256 KiB tungstenite's defaults reserve.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(config.body_limit))
        .max_frame_size(Some(config.body_limit));
    let mut ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config))
            .await;
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(64);
    let mut operations = Operations::default();
    let mut acked = false;
    let started = Instant::now();
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + config.keepalive, config.keepalive);
    let close: Option<(u16, String)> = loop {
        let init_deadline = started + config.init_timeout;
        tokio::select! {
            () = token.cancelled() => break Some((1001, "server restart".to_owned())),
            () = tokio::time::sleep_until(init_deadline), if !acked => {
                break Some((4408, "Connection initialisation timeout".to_owned()));
            }
            _ = ping.tick() => {
                // A client answers every ping: one silent for two rounds is gone.
                if last_heard.elapsed() > config.keepalive * 2 + config.keepalive / 2 {
                    break Some((1001, "no answer to pings".to_owned()));
                }
                if send(&mut ws, json!({"type": "ping"})).await.is_err() {
                    break None;
                }
            }
            Some(out) = out_rx.recv() => {
                // An operation the client completed first (or whose id it reused since) may
                // still have results queued: they are not for what runs under the id now.
                let message = match out {
                    Out::Next(op, _) if !operations.is_current(&op) => continue,
                    Out::Next(op, response) => {
                        // Serialized once, straight into the message.
                        let next = NextMessage { id: &op.id, kind: "next", payload: &response };
                        let overhead = NEXT_OVERHEAD + super::json_string_len(&op.id);
                        let limit = config.max_response_bytes.saturating_add(overhead);
                        if let Some(text) = super::json_within(&next, limit) {
                            if send_text(&mut ws, String::from_utf8(text).unwrap_or_default()).await.is_err() {
                                break None;
                            }
                            continue;
                        }
                        operations.finish(&op);
                        let errors = [json!({"message": super::too_large(config.max_response_bytes)})];
                        json!({"id": op.id, "type": "error", "payload": errors})
                    }
                    Out::Error(op, _) | Out::Complete(op) if !operations.finish(&op) => continue,
                    Out::Error(op, response) => json!({"id": op.id, "type": "error", "payload": response.errors}),
                    Out::Complete(op) => json!({"id": op.id, "type": "complete"}),
                };
                if send(&mut ws, message).await.is_err() {
                    break None;
                }
            }
            message = ws.next() => {
                let text = match message {
                    Some(Ok(WsMessage::Text(text))) => text,
                    // tungstenite queued the answering close frame: it goes out now.
                    Some(Ok(WsMessage::Close(_))) => {
                        let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.flush()).await;
                        break None;
                    }
                    None => break None,
                    Some(Ok(WsMessage::Binary(_))) => break Some((4400, "binary messages are not spoken".to_owned())),
                    Some(Ok(_)) => {
                        last_heard = Instant::now();
                        continue;
                    }
                    Some(Err(tokio_tungstenite::tungstenite::Error::Utf8(_))) => {
                        break Some((1007, "text that is not UTF-8".to_owned()));
                    }
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "graphql websocket read failed");
                        break Some((1009, "message too large or malformed".to_owned()));
                    }
                };
                last_heard = Instant::now();
                let message = match ClientMessage::from_bytes(text.as_bytes()) {
                    Ok(message) => message,
                    Err(err) => break Some((4400, format!("invalid message: {err}"))),
                };
                match message {
                    ClientMessage::ConnectionInit { .. } if acked => {
                        break Some((4429, "Too many initialisation requests".to_owned()));
                    }
                    ClientMessage::ConnectionInit { .. } => {
                        acked = true;
                        if send(&mut ws, json!({"type": "connection_ack"})).await.is_err() {
                            break None;
                        }
                    }
                    ClientMessage::Ping { .. } => {
                        if send(&mut ws, json!({"type": "pong"})).await.is_err() {
                            break None;
                        }
                    }
                    ClientMessage::Pong { .. } => {}
                    ClientMessage::Start { .. } if !acked => break Some((4401, "Unauthorized".to_owned())),
                    ClientMessage::Start { id, .. } if id.len() > MAX_ID_BYTES => {
                        break Some((4400, format!("Invalid message: an id is {MAX_ID_BYTES} bytes at most")));
                    }
                    ClientMessage::Start { id, .. } if operations.running.contains_key(&id) => {
                        break Some((4409, format!("Subscriber for {id} already exists")));
                    }
                    ClientMessage::Start { .. } if operations.running.len() >= config.max_operations => {
                        break Some((4429, format!("{} operations at once at most", config.max_operations)));
                    }
                    ClientMessage::Start { id, mut payload } => {
                        // Refused by the guard, or past what running operations may keep:
                        // the operation's error, and the connection goes on.
                        let admitted = guard::admit(&mut payload).and_then(|admitted| {
                            let bytes = super::request_bytes(&payload, admitted.selections);
                            let held = operations.held;
                            graphql.run_operation(bytes, held, Some(client_ip)).map(|place| (place, bytes))
                        });
                        let (place, bytes) = match admitted {
                            Ok(admitted) => admitted,
                            Err(message) => {
                                let errors = [json!({"message": message})];
                                let message = json!({"id": id, "type": "error", "payload": errors});
                                if send(&mut ws, message).await.is_err() {
                                    break None;
                                }
                                continue;
                            }
                        };
                        let request = payload.data(assigns.clone()).data(pubsub.clone());
                        let stream = graphql.executor.execute_stream(request, None);
                        operations.starts += 1;
                        let op = Op { id: id.clone(), start: operations.starts };
                        let task = tokio::spawn(forward(op, stream, out_tx.clone(), place));
                        let start = operations.starts;
                        operations.insert(id, Running { start, task: task.abort_handle(), bytes });
                    }
                    ClientMessage::Stop { id } => operations.stop(&id),
                    ClientMessage::ConnectionTerminate => break None,
                }
            }
        }
    };
    drop(operations);
    if let Some((code, reason)) = close {
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.close(Some(frame))).await;
    }
}

/// Sends one message, giving up on a client that does not read.
/// A `next` message, serialized as it is sent.
#[derive(serde::Serialize)]
struct NextMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    payload: &'a async_graphql::Response,
}

/// The bytes of a `next` message besides its payload and its id (a JSON string):
/// `{"id":` and `,"type":"next","payload":` and `}`.
const NEXT_OVERHEAD: usize = 6 + 25 + 1;

async fn send<S>(ws: &mut WebSocketStream<S>, message: Value) -> Result<(), ()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    send_text(ws, message.to_string()).await
}

async fn send_text<S>(ws: &mut WebSocketStream<S>, text: String) -> Result<(), ()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match tokio::time::timeout(WRITE_TIMEOUT, ws.send(WsMessage::text(text))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Runs one operation, handing its results to the connection. A document refused before it
/// ran ([`refused`](super::refused)) is an `error` message, as the protocol has it.
async fn forward(
    op: Op,
    mut stream: futures_util::stream::BoxStream<'static, async_graphql::Response>,
    out: mpsc::Sender<Out>,
    _place: super::RunningOperation,
) {
    let mut first = true;
    while let Some(response) = stream.next().await {
        let refused = first && super::refused(&response);
        first = false;
        let message = if refused {
            Out::Error(op.clone(), response)
        } else {
            Out::Next(op.clone(), response)
        };
        if out.send(message).await.is_err() || refused {
            return;
        }
    }
    let _ = out.send(Out::Complete(op)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limit on a `next` message is the response's plus exactly what wraps it, escaped ids
    /// included.
    #[test]
    fn a_next_message_is_its_payload_and_the_overhead() {
        let mut response = async_graphql::Response::new(async_graphql::Value::from("hi"));
        response.errors.clear();
        for id in ["1", "a\"b\u{1}c", "ünï"] {
            let next = NextMessage { id, kind: "next", payload: &response };
            let whole = crate::serializer::json_len(&next, usize::MAX).unwrap();
            let payload = crate::serializer::json_len(&response, usize::MAX).unwrap();
            assert_eq!(whole, payload + NEXT_OVERHEAD + super::super::json_string_len(id), "{id}");
            let limit = payload + NEXT_OVERHEAD + super::super::json_string_len(id);
            assert!(super::super::json_within(&next, limit).is_some());
            assert!(super::super::json_within(&next, limit - 1).is_none());
        }
    }

    /// What an operation queued before its id was reused is not taken for the new one's.
    #[tokio::test]
    async fn a_reused_id_is_a_new_start() {
        let mut operations = Operations::default();
        let idle = || tokio::spawn(std::future::pending::<()>()).abort_handle();
        let old = Op { id: "x".to_owned(), start: 1 };
        operations.insert("x".to_owned(), Running { start: 1, task: idle(), bytes: 10 });
        // The client completes it, then starts a new operation under the same id.
        operations.stop("x");
        let new = Op { id: "x".to_owned(), start: 2 };
        operations.insert("x".to_owned(), Running { start: 2, task: idle(), bytes: 7 });
        assert_eq!(operations.held, 7);
        assert!(!operations.is_current(&old));
        assert!(!operations.finish(&old), "the old start's end leaves the new one running");
        assert_eq!(operations.held, 7);
        assert!(operations.is_current(&new));
        assert!(operations.finish(&new));
        assert!(operations.running.is_empty());
        assert_eq!(operations.held, 0);
    }
}
