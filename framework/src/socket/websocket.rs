//! The WebSocket transport: the upgrade handshake and the socket task.

use std::sync::Arc;
use std::task::{ready, Context, Poll};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::protocol::{Control, Protocol, ProtocolConfig};
use super::transport::{error, Inner};
use super::{ConnectInfo, Outbound, Outgoing, Socket};
use crate::conn::ConnInfo;
use crate::serializer::{self, Frame, Vsn};
use crate::Body;

const AUTH_PREFIX: &str = "base64url.bearer.phx.";

/// Whether the comma-separated header `name` holds `token` (case-insensitively).
pub(crate) fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
}

/// The subprotocols offered: whether `phoenix` was, and the auth token if one was.
fn protocols(headers: &HeaderMap) -> (bool, Option<String>) {
    let mut phoenix = false;
    let mut token = None;
    for value in
        headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter().filter_map(|v| v.to_str().ok())
    {
        for part in value.split(',').map(str::trim) {
            if part == "phoenix" {
                phoenix = true;
            } else if let Some(encoded) = part.strip_prefix(AUTH_PREFIX) {
                let engines = [
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ];
                token = engines
                    .iter()
                    .find_map(|e| e.decode(encoded.trim_end_matches('=')).ok())
                    .and_then(|bytes| String::from_utf8(bytes).ok());
            }
        }
    }
    (phoenix, token)
}

/// Checks and answers an upgrade request, then runs the socket in a supervised task.
pub(crate) async fn upgrade<S: Socket>(
    inner: Arc<Inner<S>>,
    mut req: Request<Body>,
) -> Response<Body> {
    if req.method() != Method::GET {
        return error(StatusCode::BAD_REQUEST, "websocket connections must use GET");
    }
    let headers = req.headers();
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let version_ok = headers.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
        || !version_ok
    {
        return error(StatusCode::BAD_REQUEST, "expected a websocket upgrade (version 13)");
    }
    let Some(key) = key else {
        return error(StatusCode::BAD_REQUEST, "missing sec-websocket-key");
    };
    if !inner.config.check_origin.allows(headers) {
        crate::instrument::limited!(
            10,
            info!(origin = ?headers.get(header::ORIGIN), "websocket refused: origin not allowed")
        );
        return error(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let query = req.uri().query().unwrap_or_default();
    let params = match crate::conn::params::decode(query, Default::default()) {
        Ok(params) => params,
        Err(err) => return error(StatusCode::BAD_REQUEST, &format!("query string: {err}")),
    };
    let vsn = match Vsn::parse(params.get("vsn").and_then(Value::as_str)) {
        Ok(vsn) => vsn,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    let (offered_phoenix, auth_token) = protocols(headers);
    let Some(conn_info) = req.extensions().get::<ConnInfo>().cloned() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "sockets must be served by an endpoint");
    };
    // Before the application's `connect`: a client past its limit costs it nothing.
    let client = match inner.clients.admit(Some(conn_info.remote_addr()), req.headers()) {
        Ok(client) => client,
        Err(ip) => {
            crate::instrument::limited!(
                10,
                info!(client = %ip, "websocket refused: the client holds its most sockets")
            );
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "too many sockets for this client");
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return resp;
        }
    };
    let client_ip = inner.clients.proxies.client_ip(conn_info.remote_addr().ip(), req.headers());
    let info = ConnectInfo::of(&req, &conn_info, auth_token);
    let connected =
        super::connect(&inner.socket, ("websocket", conn_info.telemetry()), &info, &params, vsn)
            .await;
    let Ok(assigns) = connected else {
        return error(StatusCode::FORBIDDEN, "Forbidden");
    };
    let socket_id: Option<Arc<str>> = inner.socket.id(&assigns).map(Into::into);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let supervisor = conn_info.supervisor().clone();
    let config = ProtocolConfig {
        outbound: Outbound::new(
            vsn,
            inner.config.link_limits(),
            conn_info.telemetry().clone(),
            Some(client_ip),
        ),
        pubsub: conn_info.pubsub().clone(),
        supervisor: supervisor.clone(),
        assigns,
        socket_id,
        channels: inner.channels.clone(),
        max_channels: inner.config.max_channels,
        budget: inner.budget.clone(),
        client,
    };
    let spawned = supervisor
        .spawn_temporary_shared("socket", move |token| run(inner, config, on_upgrade, token));
    if spawned.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    switching_protocols(&key, offered_phoenix.then_some("phoenix"))
}

/// The `101` that completes a WebSocket handshake of `key`, naming the chosen subprotocol.
pub(crate) fn switching_protocols(
    key: &HeaderValue,
    protocol: Option<&'static str>,
) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    }
    resp
}

type Ws = WebSocketStream<Metered<TokioIo<Upgraded>>>;

/// The bytes WebSockets of a transport have read that are not yet part of a whole message:
/// the fragments of a message still coming, held by tungstenite until the last one. A client
/// that starts messages and never finishes them would hold `max_frame_size` per socket.
#[derive(Debug)]
pub(crate) struct Incoming {
    held: std::sync::atomic::AtomicUsize,
    max: usize,
}

impl Incoming {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { held: std::sync::atomic::AtomicUsize::new(0), max })
    }
}

/// What a socket may hold of unfinished messages whatever the budget: small messages in
/// flight are never the reason a socket is closed.
const INCOMING_FREE: usize = 16 * 1024;

/// A socket's connection, counting what it reads against its transport's [`Incoming`] until
/// a whole message comes out ([`Metered::message_done`]).
struct Metered<T> {
    io: T,
    budget: Arc<Incoming>,
    pending: usize,
}

impl<T> Metered<T> {
    /// A whole message came out of what was read: it no longer counts.
    fn message_done(&mut self) {
        use std::sync::atomic::Ordering;
        self.budget.held.fetch_sub(self.pending, Ordering::AcqRel);
        self.pending = 0;
    }
}

impl<T> Drop for Metered<T> {
    fn drop(&mut self) {
        self.message_done();
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Metered<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        use std::sync::atomic::Ordering;
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.io).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.pending += read;
            let held = self.budget.held.fetch_add(read, Ordering::AcqRel) + read;
            if held > self.budget.max && self.pending > INCOMING_FREE {
                tracing::warn!(
                    pending = self.pending,
                    "closing a socket: the transport holds as many unfinished messages as it may"
                );
                return Poll::Ready(Err(std::io::Error::other("incoming budget exceeded")));
            }
        }
        polled
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Metered<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What woke a socket task up.
enum Event {
    Shutdown,
    Outbound,
    Inbound(Option<Result<WsMessage, WsError>>),
    HeartbeatTimeout,
}

/// A socket's task, from the upgrade to the close. One `async fn` taking only what it needs to
/// start: a wrapping async block awaiting it would hold a second copy of its arguments for the
/// socket's whole life.
async fn run<S: Socket>(
    inner: Arc<Inner<S>>,
    config: ProtocolConfig,
    on_upgrade: hyper::upgrade::OnUpgrade,
    token: CancellationToken,
) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(err) => return tracing::debug!(error = %err, "websocket upgrade failed"),
    };
    let mut protocol = Protocol::start(config);
    let _gauge = protocol.outbound.telemetry.gauge(crate::instrument::GaugeKind::Sockets);
    let config = &inner.config;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_frame_size))
        .max_frame_size(Some(config.max_frame_size));
    // Wrapping the stream completes at once; not awaiting it keeps the wrapping future out of
    // the task's state, where it would take room beside everything the loop below keeps.
    let metered =
        Metered { io: TokioIo::new(upgraded), budget: inner.incoming.clone(), pending: 0 };
    let wrap = WebSocketStream::from_raw_socket(metered, Role::Server, Some(ws_config));
    let Some(mut ws): Option<Ws> = futures_util::FutureExt::now_or_never(wrap) else {
        protocol.close();
        return tracing::debug!("websocket stream setup did not complete");
    };
    let outbound = protocol.outbound.clone();
    let mut batch = Vec::new();
    // The heartbeat timer is armed once for the socket's life: made anew in every `select!`,
    // it would enter and leave the runtime's timer wheel on every broadcast the socket writes.
    // An inbound message only notes the time; the timer catches up when it fires.
    let mut last_seen = Instant::now();
    let close: Option<(CloseCode, &'static str)> = {
        let heartbeat = tokio::time::sleep_until(last_seen + config.heartbeat_timeout);
        tokio::pin!(heartbeat);
        loop {
            // The select only says what happened; the handling (which awaits writes under
            // timeouts) comes after it, so the task's state holds the waiting futures and the
            // writing ones in the same bytes rather than side by side.
            let event = tokio::select! {
                () = token.cancelled() => Event::Shutdown,
                _ = outbound.queue.recv_all(&mut batch) => Event::Outbound,
                msg = ws.next() => Event::Inbound(msg),
                () = &mut heartbeat => Event::HeartbeatTimeout,
            };
            // Only an outbound batch gets past this match; the write is awaited after it, so the
            // event (an inbound message can be large) is not kept in the task's state meanwhile.
            let outs = match event {
                Event::Shutdown => break Some((CloseCode::Restart, "server restart")),
                Event::Outbound => {
                    // By value: an idle socket keeps no buffer.
                    let outs = std::mem::take(&mut batch);
                    outbound.taken(outs.iter().map(Outgoing::frame_len).sum());
                    // Control messages first: a client that does not keep up is closed now, not
                    // after the frames it cannot take.
                    if outs.iter().all(|out| matches!(out, Outgoing::Frame(_))) {
                        outs
                    } else {
                        let mut close = None;
                        let mut frames = Vec::with_capacity(outs.len());
                        for out in outs {
                            match out {
                                Outgoing::Frame(_) => frames.push(out),
                                control => match protocol.control(control) {
                                    Control::Continue => {}
                                    Control::Disconnect => {
                                        close = close.or(Some((CloseCode::Away, "disconnected")));
                                    }
                                    Control::Overflow => {
                                        close = close
                                            .or(Some((CloseCode::Policy, "outbound buffer full")));
                                    }
                                },
                            }
                        }
                        if close.is_some() {
                            break close;
                        }
                        frames
                    }
                }
                Event::Inbound(msg) => {
                    // Only whole messages count as the client being there: pings alone (which
                    // tungstenite answers between the fragments of a message it holds) would
                    // keep a socket that never finishes a message open for ever.
                    let decoded = match msg {
                        None => break None,
                        Some(Ok(WsMessage::Text(text))) => {
                            last_seen = Instant::now();
                            ws.get_mut().message_done();
                            Some(serializer::decode_text(outbound.vsn, &text))
                        }
                        Some(Ok(WsMessage::Binary(bytes))) => {
                            last_seen = Instant::now();
                            ws.get_mut().message_done();
                            Some(serializer::decode_binary(outbound.vsn, &bytes))
                        }
                        // Pongs and close replies are queued by tungstenite: an empty batch below
                        // flushes them.
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Close(_))) => None,
                        Some(Ok(_)) => continue,
                        Some(Err(WsError::Capacity(CapacityError::MessageTooLong {
                            size,
                            max_size,
                        }))) => {
                            crate::instrument::limited!(
                                10,
                                info!(
                                    size,
                                    max_size, "closing a socket that sent an oversized message"
                                )
                            );
                            break Some((CloseCode::Size, "message too big"));
                        }
                        Some(Err(WsError::Utf8(err))) => {
                            crate::instrument::limited!(
                                10,
                                info!(error = %err, "closing a socket that sent text that is not UTF-8")
                            );
                            break Some((CloseCode::Invalid, "malformed message"));
                        }
                        Some(Err(WsError::Protocol(err))) => {
                            crate::instrument::limited!(
                                10,
                                info!(error = %err, "closing a socket that broke the protocol")
                            );
                            break Some((CloseCode::Protocol, "protocol error"));
                        }
                        Some(Err(err)) => {
                            tracing::debug!(error = %err, "websocket error");
                            break None;
                        }
                    };
                    match decoded {
                        None => Vec::new(),
                        Some(Ok(msg)) => {
                            protocol.handle(msg);
                            continue;
                        }
                        Some(Err(err)) => {
                            crate::instrument::limited!(
                                10,
                                info!(error = %err, "closing a socket that sent a malformed message")
                            );
                            break Some((CloseCode::Invalid, "malformed message"));
                        }
                    }
                }
                Event::HeartbeatTimeout => {
                    let due = last_seen + config.heartbeat_timeout;
                    if due > Instant::now() {
                        heartbeat.as_mut().reset(due);
                        continue;
                    }
                    tracing::debug!("closing a socket that missed its heartbeats");
                    break Some((CloseCode::Away, "heartbeat timeout"));
                }
            };
            let mut frames = outs.into_iter();
            let mut fragments = None;
            let mut write =
                std::future::poll_fn(|cx| poll_write(&mut ws, &mut frames, &mut fragments, cx));
            // Most writes complete at once. One that has to wait gets a deadline for the whole
            // batch, on the heartbeat timer (the socket reads nothing meanwhile), and still hears
            // shutdown while the client is slow to read.
            let written = match futures_util::poll!(&mut write) {
                Poll::Ready(written) => written.is_ok(),
                Poll::Pending => {
                    heartbeat.as_mut().reset(Instant::now() + config.write_timeout);
                    let written = tokio::select! {
                        written = &mut write => written.is_ok(),
                        () = &mut heartbeat => false,
                        () = token.cancelled() => {
                            break Some((CloseCode::Restart, "server restart"))
                        }
                        () = outbound.overflowed() => {
                            tracing::debug!("closing a socket whose client does not keep up");
                            break None;
                        }
                    };
                    heartbeat.as_mut().reset(last_seen + config.heartbeat_timeout);
                    written
                }
            };
            if !written {
                tracing::debug!("closing a socket that could not be written to in time");
                break None;
            }
        }
    };
    protocol.close();
    if let Some((code, reason)) = close {
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = timeout(config.write_timeout, ws.close(Some(frame))).await;
    }
}

/// Feeds a batch's frames to the socket and flushes them, as far as the socket takes them
/// now: a hand-written poll keeps no future per frame in the socket task's state. A large
/// frame goes out in fragments, one at a time, between which the batch does not move on.
fn poll_write(
    ws: &mut Ws,
    frames: &mut std::vec::IntoIter<Outgoing>,
    fragments: &mut Option<Fragments>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), WsError>> {
    loop {
        ready!(ws.poll_ready_unpin(cx))?;
        if let Some(fragment) = fragments.as_mut().and_then(Fragments::next) {
            ws.start_send_unpin(fragment)?;
            continue;
        }
        *fragments = None;
        match frames.next() {
            Some(Outgoing::Frame(frame)) => match Fragments::of(frame) {
                Ok(message) => ws.start_send_unpin(message)?,
                Err(large) => *fragments = Some(large),
            },
            Some(_) => {}
            None => return ws.poll_flush_unpin(cx),
        }
    }
}

/// Payloads larger than this go out as a fragmented message. tungstenite copies each frame
/// into a write buffer that keeps its largest size for the socket's life: one 300 KiB
/// `presence_state` would otherwise cost every member of a large room 300 KiB for as long as
/// it stays connected.
const FRAGMENT: usize = 16 * 1024;

/// A large frame's payload, sent a fragment at a time (RFC 6455 §5.4).
struct Fragments {
    data: bytes::Bytes,
    sent: usize,
    binary: bool,
}

impl Fragments {
    /// A frame small enough to go whole, or the fragments of a larger one.
    fn of(frame: Frame) -> Result<WsMessage, Self> {
        match frame {
            Frame::Text(text) if text.len() > FRAGMENT => Err(Self {
                data: AsRef::<bytes::Bytes>::as_ref(&text).clone(),
                sent: 0,
                binary: false,
            }),
            Frame::Binary(bytes) if bytes.len() > FRAGMENT => {
                Err(Self { data: bytes, sent: 0, binary: true })
            }
            Frame::Text(text) => Ok(WsMessage::Text(text)),
            Frame::Binary(bytes) => Ok(WsMessage::Binary(bytes)),
        }
    }

    fn next(&mut self) -> Option<WsMessage> {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;

        if self.sent >= self.data.len() {
            return None;
        }
        let end = (self.sent + FRAGMENT).min(self.data.len());
        let opcode = match (self.sent, self.binary) {
            (0, false) => OpCode::Data(Data::Text),
            (0, true) => OpCode::Data(Data::Binary),
            _ => OpCode::Data(Data::Continue),
        };
        let fragment =
            WsFrame::message(self.data.slice(self.sent..end), opcode, end == self.data.len());
        self.sent = end;
        Some(WsMessage::Frame(fragment))
    }
}
