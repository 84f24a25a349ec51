//! The WebSocket transport: the upgrade handshake and the socket task.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::transport::{error, Inner};
use super::{ConnectInfo, Link, Out, Socket};
use crate::channel::{self, ChannelMsg, StopReason};
use crate::endpoint::ConnInfo;
use crate::mailbox::{Mailbox, PushError};
use crate::pubsub::{Broadcast, Deliver, PubSub, SubscriberId};
use crate::serializer::{self, Frame, Message, Payload, Status, Vsn};
use crate::supervisor::Supervisor;
use crate::Body;

const AUTH_PREFIX: &str = "base64url.bearer.phx.";

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
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
        tracing::info!(origin = ?headers.get(header::ORIGIN), "websocket refused: origin not allowed");
        return error(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let Ok(params) = crate::conn::params::decode(req.uri().query().unwrap_or_default()) else {
        return error(StatusCode::BAD_REQUEST, "malformed query string");
    };
    let vsn = match Vsn::parse(params.get("vsn").and_then(Value::as_str)) {
        Ok(vsn) => vsn,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    let (offered_phoenix, auth_token) = protocols(headers);
    let Some(conn_info) = req.extensions().get::<ConnInfo>().cloned() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "sockets must be served by an endpoint");
    };
    let info =
        ConnectInfo { peer: Some(conn_info.remote_addr()), headers: headers.clone(), auth_token };
    let Ok(assigns) = inner.socket.connect(&params, &info).await else {
        return error(StatusCode::FORBIDDEN, "Forbidden");
    };
    let socket_id: Option<Arc<str>> = inner.socket.id(&assigns).map(Into::into);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let supervisor = conn_info.supervisor().clone();
    let ctx = Ctx {
        link: Link::new(vsn, inner.config.outbox_limit),
        pubsub: conn_info.pubsub().clone(),
        supervisor: supervisor.clone(),
        assigns,
        socket_id,
        joined: HashMap::new(),
    };
    let spawned = supervisor.spawn_temporary("socket", move |token| async move {
        match on_upgrade.await {
            Ok(upgraded) => run(inner, ctx, upgraded, token).await,
            Err(err) => tracing::debug!(error = %err, "websocket upgrade failed"),
        }
    });
    if spawned.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if offered_phoenix {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("phoenix"));
    }
    resp
}

struct Joined {
    join_ref: String,
    mailbox: Arc<Mailbox<ChannelMsg>>,
}

/// A socket's state, owned by its task.
struct Ctx {
    link: Arc<Link>,
    pubsub: PubSub,
    supervisor: Supervisor,
    assigns: http::Extensions,
    socket_id: Option<Arc<str>>,
    joined: HashMap<String, Joined>,
}

/// Closes the socket on a `disconnect` broadcast to its id.
struct Disconnect(Arc<Link>);

impl Deliver for Disconnect {
    fn deliver(&self, msg: &Arc<Broadcast>) {
        if msg.event() == "disconnect" {
            self.0.control(Out::Disconnect);
        }
    }
}

type Ws = WebSocketStream<TokioIo<Upgraded>>;

async fn run<S: Socket>(
    inner: Arc<Inner<S>>,
    mut ctx: Ctx,
    upgraded: Upgraded,
    token: CancellationToken,
) {
    let config = &inner.config;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_frame_size))
        .max_frame_size(Some(config.max_frame_size));
    let mut ws: Ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config))
            .await;
    let disconnect: Option<(Arc<str>, SubscriberId)> = ctx.socket_id.clone().map(|id| {
        let sub = ctx.pubsub.subscribe_sink(&id, Arc::new(Disconnect(ctx.link.clone())));
        (id, sub)
    });
    let link = ctx.link.clone();
    let mut batch = Vec::new();
    let mut deadline = Instant::now() + config.heartbeat_timeout;
    let close: Option<(CloseCode, &'static str)> = loop {
        tokio::select! {
            () = token.cancelled() => break Some((CloseCode::Restart, "server restart")),
            _ = link.outbox.recv_all(&mut batch) => {
                let mut close = None;
                for out in batch.drain(..) {
                    match out {
                        Out::Frame(frame) => {
                            if close.is_none() && ws.feed(to_ws(frame)).await.is_err() {
                                close = Some(None);
                            }
                        }
                        Out::ChannelExit { topic, join_ref, crashed } => {
                            if ctx.joined.get(&topic).is_some_and(|j| j.join_ref == join_ref) {
                                ctx.joined.remove(&topic);
                            }
                            tracing::debug!(topic, crashed, "channel exited");
                        }
                        Out::Disconnect => close = close.or(Some(Some((CloseCode::Away, "disconnected")))),
                        Out::Overflow => {
                            tracing::warn!("closing a socket whose client does not keep up");
                            close = close.or(Some(Some((CloseCode::Policy, "outbound buffer full"))));
                        }
                    }
                }
                if !matches!(close, Some(None)) && !flush(&mut ws, config.write_timeout).await {
                    close = Some(None);
                }
                if let Some(close) = close {
                    break close;
                }
            }
            msg = ws.next() => {
                deadline = Instant::now() + config.heartbeat_timeout;
                match msg {
                    None => break None,
                    Some(Ok(WsMessage::Text(text))) => {
                        match serializer::decode_text(link.vsn, &text) {
                            Ok(msg) => ctx.handle(&inner, msg),
                            Err(err) => {
                                tracing::info!(error = %err, "closing a socket that sent a malformed message");
                                break Some((CloseCode::Invalid, "malformed message"));
                            }
                        }
                    }
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        match serializer::decode_binary(link.vsn, &bytes) {
                            Ok(msg) => ctx.handle(&inner, msg),
                            Err(err) => {
                                tracing::info!(error = %err, "closing a socket that sent a malformed binary message");
                                break Some((CloseCode::Invalid, "malformed message"));
                            }
                        }
                    }
                    // Pongs and close replies are queued by tungstenite; write them now.
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Close(_))) => {
                        if !flush(&mut ws, config.write_timeout).await {
                            break None;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                        tracing::info!(size, max_size, "closing a socket that sent an oversized message");
                        break Some((CloseCode::Size, "message too big"));
                    }
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "websocket error");
                        break None;
                    }
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!("closing a socket that missed its heartbeats");
                break Some((CloseCode::Away, "heartbeat timeout"));
            }
        }
    };
    link.outbox.close();
    if let Some((code, reason)) = close {
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = timeout(config.write_timeout, ws.close(Some(frame))).await;
    }
    for (_, joined) in ctx.joined.drain() {
        joined.mailbox.close();
    }
    if let Some((id, sub)) = disconnect {
        ctx.pubsub.unsubscribe(&id, sub);
    }
}

async fn flush(ws: &mut Ws, limit: std::time::Duration) -> bool {
    matches!(timeout(limit, ws.flush()).await, Ok(Ok(())))
}

fn to_ws(frame: Frame) -> WsMessage {
    match frame {
        Frame::Text(text) => WsMessage::Text(text),
        Frame::Binary(bytes) => WsMessage::Binary(bytes),
    }
}

impl Ctx {
    fn reply(&self, join_ref: Option<&str>, msg: &Message, status: Status, payload: Value) {
        let frame = serializer::encode_reply(
            self.link.vsn,
            join_ref,
            msg.msg_ref.as_deref(),
            &msg.topic,
            status,
            &Payload::Json(payload),
        );
        if let Some(frame) = frame {
            self.link.send(frame);
        }
    }

    fn handle<S: Socket>(&mut self, inner: &Inner<S>, msg: Message) {
        if msg.topic == "phoenix" && msg.event == "heartbeat" {
            self.reply(msg.join_ref.as_deref(), &msg, Status::Ok, json!({}));
            return;
        }
        match msg.event.as_str() {
            "phx_join" => self.join(inner, msg),
            "phx_leave" => self.leave(&msg),
            _ => self.route(msg),
        }
    }

    fn join<S: Socket>(&mut self, inner: &Inner<S>, msg: Message) {
        let join_ref = msg.join_ref.clone().or_else(|| msg.msg_ref.clone()).unwrap_or_default();
        if let Some(old) = self.joined.remove(&msg.topic) {
            let _ = old.mailbox.push(ChannelMsg::Stop(StopReason::DuplicateJoin));
        }
        if self.joined.len() >= inner.config.max_channels {
            let reason = json!({"reason": "too many channels joined"});
            self.reply(msg.join_ref.as_deref(), &msg, Status::Error, reason);
            return;
        }
        let Some(start_channel) = inner.channels.find(&msg.topic) else {
            self.reply(None, &msg, Status::Error, json!({"reason": "unmatched topic"}));
            return;
        };
        let mailbox = Mailbox::new();
        let start = channel::Start {
            topic: msg.topic.clone(),
            join_ref: join_ref.clone(),
            msg_ref: msg.msg_ref.clone(),
            payload: msg.payload.clone(),
            link: self.link.clone(),
            pubsub: self.pubsub.clone(),
            assigns: self.assigns.clone(),
            socket_id: self.socket_id.clone(),
            mailbox: mailbox.clone(),
        };
        let start_channel = start_channel.clone();
        let spawned =
            self.supervisor.spawn_temporary("channel", move |token| start_channel(start, token));
        if spawned.is_err() {
            self.reply(
                msg.join_ref.as_deref(),
                &msg,
                Status::Error,
                json!({"reason": "shutting down"}),
            );
            return;
        }
        self.joined.insert(msg.topic, Joined { join_ref, mailbox });
    }

    fn leave(&mut self, msg: &Message) {
        let current = self
            .joined
            .get(&msg.topic)
            .is_some_and(|j| msg.join_ref.as_deref().is_none_or(|r| r == j.join_ref));
        if current {
            if let Some(joined) = self.joined.remove(&msg.topic) {
                let leave = ChannelMsg::Leave { msg_ref: msg.msg_ref.clone() };
                if joined.mailbox.push(leave).is_ok() {
                    return;
                }
            }
        }
        self.reply(msg.join_ref.as_deref(), msg, Status::Ok, json!({}));
    }

    fn route(&mut self, msg: Message) {
        let Some(joined) = self.joined.get(&msg.topic) else {
            self.reply(
                msg.join_ref.as_deref(),
                &msg,
                Status::Error,
                json!({"reason": "unmatched topic"}),
            );
            return;
        };
        if msg.join_ref.as_deref().is_some_and(|r| r != joined.join_ref) {
            tracing::debug!(topic = %msg.topic, "ignoring a message for a previous join");
            return;
        }
        let push = ChannelMsg::In {
            event: msg.event.clone(),
            payload: msg.payload.clone(),
            msg_ref: msg.msg_ref.clone(),
        };
        match joined.mailbox.push_bounded(push, 1024) {
            Ok(()) => {}
            Err(PushError::Full(_)) => {
                self.reply(
                    msg.join_ref.as_deref(),
                    &msg,
                    Status::Error,
                    json!({"reason": "channel overloaded"}),
                );
            }
            Err(PushError::Closed(_)) => {
                self.reply(
                    msg.join_ref.as_deref(),
                    &msg,
                    Status::Error,
                    json!({"reason": "unmatched topic"}),
                );
            }
        }
    }
}
