//! The LongPoll transport: HTTP requests standing in for a WebSocket.
//!
//! `GET` without a session token opens a session (`status` 410 with a fresh token, which the
//! client takes as "open"); `GET` with the token waits up to the poll window for frames
//! (`status` 200 with `messages`, or 204); `POST` carries client frames, newline-delimited.
//! Every answer is HTTP 200 with the real status in the JSON body, as the official client
//! expects. A session nobody polls for 1.5 × the window ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::protocol::{Control, Protocol, ProtocolConfig};
use super::transport::Inner;
use super::{ConnectInfo, Outbound, Outgoing, Socket};
use crate::conn::ConnInfo;
use crate::security::{SecretKeyBase, Token};
use crate::serializer::{self, Frame, Utf8Bytes, Vsn};
use crate::Body;

/// Frames a client may send in one POST.
pub(crate) const MAX_BATCH: usize = 100;

/// What LongPoll session tokens are signed for (`Token`'s salt).
const TOKEN_SALT: &str = "fawkes longpoll session";

/// The sessions of one transport.
pub(crate) struct LongPoll {
    sessions: Mutex<HashMap<String, Arc<LpSession>>>,
    /// The frames every session holds for its next poll, each counted once.
    held: Arc<Held>,
    /// Signs tokens when the endpoint has no secret key base: random, so only this process
    /// accepts them.
    fallback_key: SecretKeyBase,
}

impl Default for LongPoll {
    fn default() -> Self {
        let secret: [u8; 64] = std::array::from_fn(|_| rand::random());
        let fallback_key = SecretKeyBase::new(secret.to_vec()).expect("64 bytes is long enough");
        Self { sessions: Mutex::new(HashMap::new()), held: Arc::new(Held::default()), fallback_key }
    }
}

/// The bytes of the frames LongPoll sessions hold for their clients' next polls, each frame
/// counted once however many sessions hold it (a broadcast, a topic's `presence_state`), so
/// the count is the memory held. Sessions keep frames in memory until their client polls, so a
/// client that opens sessions and never polls would otherwise hold memory for each; past the
/// limit ([`Transport::longpoll_buffer_limit`](super::Transport::longpoll_buffer_limit)), a
/// session given a frame the budget cannot take is closed, and its client reconnects.
#[derive(Default)]
pub(crate) struct Held {
    frames: Mutex<HashMap<usize, (usize, usize)>>,
    bytes: std::sync::atomic::AtomicUsize,
}

impl Held {
    /// The key of a frame: its bytes' address, which no other frame has while this one is
    /// held (the holder keeps it alive).
    fn key(text: &Utf8Bytes) -> usize {
        text.as_str().as_ptr() as usize
    }

    /// Counts one more holder of `text`; false, counting nothing, when it is new and the
    /// budget of `limit` bytes cannot take it.
    fn hold(&self, text: &Utf8Bytes, limit: usize) -> bool {
        let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((holders, _)) = frames.get_mut(&Self::key(text)) {
            *holders += 1;
            return true;
        }
        let held = self.bytes.load(Ordering::Acquire);
        if held.saturating_add(text.len()) > limit {
            return false;
        }
        self.bytes.store(held + text.len(), Ordering::Release);
        frames.insert(Self::key(text), (1, text.len()));
        true
    }

    /// Counts one holder fewer of each of `texts`.
    fn release<'a>(&self, texts: impl IntoIterator<Item = &'a Utf8Bytes>) {
        let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        for text in texts {
            let key = Self::key(text);
            if let Some((holders, len)) = frames.get_mut(&key) {
                *holders -= 1;
                if *holders == 0 {
                    let len = *len;
                    frames.remove(&key);
                    self.bytes.fetch_sub(len, Ordering::AcqRel);
                }
            }
        }
    }

    /// The bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }
}

impl LongPoll {
    fn open_sessions(&self) -> usize {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn key<'a>(&'a self, req: &'a Request<Body>) -> &'a SecretKeyBase {
        req.extensions()
            .get::<ConnInfo>()
            .and_then(ConnInfo::secret_key_base)
            .unwrap_or(&self.fallback_key)
    }

    /// A session token: `Token`-signed with the endpoint's key base (or this transport's own).
    fn sign(&self, req: &Request<Body>, id: &str) -> String {
        Token::sign(self.key(req), TOKEN_SALT, id)
    }

    /// The session a token names, if the token is genuine and the session alive.
    fn resume(&self, req: &Request<Body>, token: &str) -> Option<Arc<LpSession>> {
        let id: String = Token::verify(self.key(req), TOKEN_SALT, token, Duration::MAX).ok()?;
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }
}

struct LpSession {
    protocol: Mutex<Protocol>,
    outbound: Arc<Outbound>,
    /// Frames waiting for the next poll: still counted in the link's queue, and shared with
    /// the other sockets a broadcast went to.
    pending: Mutex<Vec<Utf8Bytes>>,
    /// The transport's count of held frames, which `pending` is in.
    held: Arc<Held>,
    held_limit: usize,
    notify: Notify,
    /// Polls made so far: only the newest may wait, so one session holds at most one of the
    /// endpoint's connections waiting (the official client never has two).
    polls: std::sync::atomic::AtomicU64,
    last_poll: Mutex<Instant>,
    closed: AtomicBool,
    limit: usize,
}

impl LpSession {
    fn lock_protocol(&self) -> std::sync::MutexGuard<'_, Protocol> {
        self.protocol.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        *self.last_poll.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn take_pending(&self) -> Vec<Utf8Bytes> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        self.outbound.taken(taken.iter().map(|text| text.len()).sum());
        self.held.release(&taken);
        taken
    }
}

impl Drop for LpSession {
    fn drop(&mut self) {
        let pending = self.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        self.held.release(pending.iter());
    }
}

fn status_json(status: StatusCode, mut body: serde_json::Map<String, Value>) -> Response<Body> {
    body.insert("status".to_owned(), Value::from(status.as_u16()));
    let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn status_only(status: StatusCode) -> Response<Body> {
    status_json(status, serde_json::Map::new())
}

/// No room for another session: HTTP 503, and a body the official client understands (any
/// status it does not know makes it throw; 500 makes it retry with its backoff).
fn full() -> Response<Body> {
    let mut resp = status_only(StatusCode::INTERNAL_SERVER_ERROR);
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

fn token_of(req: &Request<Body>, params: &serde_json::Map<String, Value>) -> Option<String> {
    params
        .get("token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| req.headers().get("x-phoenix-longpoll-token")?.to_str().ok().map(str::to_owned))
}

/// Answers one LongPoll request.
pub(crate) async fn handle<S: Socket>(inner: Arc<Inner<S>>, req: Request<Body>) -> Response<Body> {
    if !inner.config.check_origin.allows(req.headers()) {
        return status_only(StatusCode::FORBIDDEN);
    }
    if req.method() == Method::OPTIONS {
        return preflight(&req);
    }
    let query = req.uri().query().unwrap_or_default();
    let Ok(params) = crate::conn::params::decode(query, Default::default()) else {
        return status_only(StatusCode::BAD_REQUEST);
    };
    let session =
        token_of(&req, &params).and_then(|t| inner.longpoll.resume(&req, &t).map(|s| (t, s)));
    match (req.method().clone(), session) {
        (Method::GET, Some((token, session))) => listen(&inner, &session, token).await,
        (Method::GET, None) => open(inner, req, params).await,
        (Method::POST, Some((_, session))) => publish(&inner, &session, req).await,
        (Method::POST, None) => status_only(StatusCode::GONE),
        _ => status_only(StatusCode::BAD_REQUEST),
    }
}

/// A CORS preflight from an origin the check allowed: that origin, and the headers the official
/// client sends, whatever else the request names.
fn preflight(req: &Request<Body>) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    let origin = req.headers().get(header::ORIGIN).cloned();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.unwrap_or(HeaderValue::from_static("*")));
    h.insert(header::VARY, HeaderValue::from_static("origin"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("accept, content-type, x-phoenix-authtoken"),
    );
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("get, post, options"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("3600"));
    resp
}

async fn open<S: Socket>(
    inner: Arc<Inner<S>>,
    req: Request<Body>,
    params: serde_json::Map<String, Value>,
) -> Response<Body> {
    let Ok(vsn) = Vsn::parse(params.get("vsn").and_then(Value::as_str)) else {
        return status_only(StatusCode::BAD_REQUEST);
    };
    // Checked before the application's `connect` runs, so a flood of opens past the limit
    // costs it nothing; checked again when the session is stored.
    let max_sessions = inner.config.max_longpoll_sessions;
    if inner.longpoll.open_sessions() >= max_sessions {
        crate::instrument::limited!(
            10,
            warn!(max_sessions, "longpoll session refused: too many open")
        );
        return full();
    }
    let Some(conn_info) = req.extensions().get::<ConnInfo>().cloned() else {
        return status_only(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let auth_token =
        req.headers().get("x-phoenix-authtoken").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let client = match inner.clients.admit(Some(conn_info.remote_addr()), req.headers()) {
        Ok(client) => client,
        Err(ip) => {
            crate::instrument::limited!(
                10,
                info!(client = %ip, "longpoll session refused: the client holds its most sockets")
            );
            // The body's status is what the official client reads: an error it retries.
            let mut resp = full();
            *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            return resp;
        }
    };
    let client_ip = inner.clients.proxies.client_ip(conn_info.remote_addr().ip(), req.headers());
    let info = ConnectInfo::of(&req, &conn_info, auth_token);
    let connected =
        super::connect(&inner.socket, ("longpoll", conn_info.telemetry()), &info, &params, vsn)
            .await;
    let Ok(assigns) = connected else {
        return status_only(StatusCode::FORBIDDEN);
    };
    let outbound = Outbound::new(
        vsn,
        inner.config.link_limits(),
        conn_info.telemetry().clone(),
        Some(client_ip),
    );
    let protocol = Protocol::start(ProtocolConfig {
        outbound: outbound.clone(),
        pubsub: conn_info.pubsub().clone(),
        supervisor: conn_info.supervisor().clone(),
        socket_id: inner.socket.id(&assigns).map(Into::into),
        assigns,
        channels: inner.channels.clone(),
        max_channels: inner.config.max_channels,
        budget: inner.budget.clone(),
        client,
    });
    let lp = Arc::new(LpSession {
        protocol: Mutex::new(protocol),
        outbound,
        pending: Mutex::new(Vec::new()),
        notify: Notify::new(),
        polls: std::sync::atomic::AtomicU64::new(0),
        last_poll: Mutex::new(Instant::now()),
        closed: AtomicBool::new(false),
        limit: inner.config.outbound_limit,
        held: inner.longpoll.held.clone(),
        held_limit: inner.config.longpoll_buffer,
    });
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>());
    let token = inner.longpoll.sign(&req, &id);
    {
        let mut sessions = inner.longpoll.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() >= max_sessions {
            drop(sessions);
            lp.lock_protocol().close();
            return full();
        }
        sessions.insert(id.clone(), lp.clone());
    }
    let window = inner.config.longpoll_window;
    let pump_inner = inner.clone();
    let spawned = conn_info.supervisor().spawn_temporary("longpoll", move |cancel| async move {
        pump(&lp, cancel, window).await;
        pump_inner.longpoll.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    });
    if spawned.is_err() {
        return status_only(StatusCode::SERVICE_UNAVAILABLE);
    }
    status_json(
        StatusCode::GONE,
        serde_json::Map::from_iter([("token".to_owned(), Value::from(token))]),
    )
}

/// Moves frames from the session's queue to its pending list until the session ends.
async fn pump(lp: &LpSession, cancel: CancellationToken, window: Duration) {
    let _gauge = lp.outbound.telemetry.gauge(crate::instrument::GaugeKind::Sockets);
    let mut batch = Vec::new();
    let idle_limit = window + window / 2;
    loop {
        let idle_at = *lp.last_poll.lock().unwrap_or_else(|e| e.into_inner()) + idle_limit;
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep_until(idle_at) => {
                let last = *lp.last_poll.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= idle_limit {
                    tracing::debug!("longpoll session timed out");
                    break;
                }
            }
            _ = lp.outbound.queue.recv_all(&mut batch) => {
                let mut end = false;
                let mut pending = lp.pending.lock().unwrap_or_else(|e| e.into_inner());
                for out in batch.drain(..) {
                    match out {
                        Outgoing::Frame(Frame::Text(text)) => {
                            if lp.held.hold(&text, lp.held_limit) {
                                pending.push(text);
                            } else if !end {
                                tracing::warn!(
                                    "closing a longpoll session: the sessions' buffers are full"
                                );
                                end = true;
                            }
                        }
                        Outgoing::Frame(Frame::Binary(bytes)) => {
                            lp.outbound.taken(bytes.len());
                            tracing::debug!("binary frames cannot travel over longpoll");
                        }
                        control => {
                            if lp.lock_protocol().control(control) != Control::Continue {
                                end = true;
                            }
                        }
                    }
                }
                if pending.len() > lp.limit {
                    tracing::warn!("closing a longpoll session whose client does not keep up");
                    end = true;
                }
                drop(pending);
                lp.notify.notify_waiters();
                if end {
                    break;
                }
            }
        }
    }
    lp.closed.store(true, Ordering::Release);
    lp.lock_protocol().close();
    lp.notify.notify_waiters();
}

async fn listen<S: Socket>(inner: &Inner<S>, lp: &LpSession, token: String) -> Response<Body> {
    lp.touch();
    let deadline = Instant::now() + inner.config.longpoll_window;
    let this_poll = lp.polls.fetch_add(1, Ordering::AcqRel) + 1;
    // An older poll still waiting on this session gives way to this one.
    lp.notify.notify_waiters();
    loop {
        let notified = lp.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if lp.polls.load(Ordering::Acquire) != this_poll {
            // A newer poll of the session waits instead: answered as a poll with nothing.
            return status_json(
                StatusCode::NO_CONTENT,
                serde_json::Map::from_iter([("token".to_owned(), Value::from(token))]),
            );
        }
        let messages = lp.take_pending();
        if !messages.is_empty() {
            lp.touch();
            return status_json(
                StatusCode::OK,
                serde_json::Map::from_iter([
                    ("token".to_owned(), Value::from(token)),
                    (
                        "messages".to_owned(),
                        Value::Array(
                            messages.iter().map(|text| Value::from(text.as_str())).collect(),
                        ),
                    ),
                ]),
            );
        }
        if lp.closed.load(Ordering::Acquire) {
            return status_only(StatusCode::GONE);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            lp.touch();
            return status_json(
                StatusCode::NO_CONTENT,
                serde_json::Map::from_iter([("token".to_owned(), Value::from(token))]),
            );
        }
    }
}

async fn publish<S: Socket>(
    inner: &Inner<S>,
    lp: &LpSession,
    req: Request<Body>,
) -> Response<Body> {
    // A batch may be as large as one WebSocket frame: what one message of the client costs
    // the server is the same on both transports.
    let limit = inner.config.max_frame_size;
    let body = match req.into_body().collect(limit).await {
        Ok(body) => body,
        Err(crate::conn::BodyError::TooLarge) => return status_only(StatusCode::PAYLOAD_TOO_LARGE),
        Err(_) => return status_only(StatusCode::BAD_REQUEST),
    };
    let Some(messages) = parse_batch(lp.outbound.vsn, &body) else {
        return status_only(StatusCode::BAD_REQUEST);
    };
    if lp.closed.load(Ordering::Acquire) {
        return status_only(StatusCode::GONE);
    }
    let mut session = lp.lock_protocol();
    for msg in messages {
        session.handle(msg);
    }
    status_only(StatusCode::OK)
}

/// The frames of a POST body: UTF-8, one frame per non-blank line, at most [`MAX_BATCH`] of
/// them, every one well formed; `None` (a 400) otherwise. Pure, so it can be tested without a
/// session.
pub(crate) fn parse_batch(vsn: Vsn, body: &[u8]) -> Option<Vec<serializer::Message>> {
    let text = std::str::from_utf8(body).ok()?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > MAX_BATCH {
        return None;
    }
    let mut messages = Vec::with_capacity(lines.len());
    for line in lines {
        match serializer::decode_text(vsn, line) {
            Ok(msg) => messages.push(msg),
            Err(err) => {
                crate::instrument::limited!(10, info!(error = %err, "malformed longpoll message"));
                return None;
            }
        }
    }
    Some(messages)
}

#[cfg(test)]
mod held_tests {
    use super::{Held, Utf8Bytes};

    #[test]
    fn a_frame_held_by_many_sessions_counts_once_until_the_last_lets_go() {
        let held = Held::default();
        let shared = Utf8Bytes::from("x".repeat(100));
        let own = Utf8Bytes::from("y".repeat(100));
        assert!(held.hold(&shared, 250));
        assert!(held.hold(&shared.clone(), 250), "the same bytes again cost nothing");
        assert!(held.hold(&own, 250));
        assert_eq!(held.bytes(), 200);
        let another = Utf8Bytes::from("z".repeat(100));
        assert!(!held.hold(&another, 250), "past the budget");
        assert_eq!(held.bytes(), 200);
        held.release([&shared]);
        assert_eq!(held.bytes(), 200, "one holder of `shared` is left");
        held.release([&shared, &own]);
        assert_eq!(held.bytes(), 0);
        assert!(held.hold(&another, 250));
    }
}
