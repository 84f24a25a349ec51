//! Fuzzing entry points (feature `fuzzing`). Not public API.
//!
//! One function per target: each feeds arbitrary bytes to one of the crate's own decoders and
//! checks, where it is cheap, what must hold of the result (a decoded frame re-encodes to the
//! same message, a token opens only with its key, a join is idempotent). A function returns
//! quietly on input its decoder refuses and panics when a check fails. The cargo-fuzz targets
//! in `fuzz/` and the stable replay and property tests call exactly these functions, so both
//! run the same checks; [`TARGETS`] lists them by name.
//!
//! Inputs that need a mode start with one byte that picks it, so the fuzzer explores every
//! mode from one corpus.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use serde::Deserialize as _;
use serde_json::{json, Map, Value};

use crate::conn::params;
use crate::conn::ParamsLimits;
use crate::presence::crdt::{self, Delta, Replica, State};
use crate::router::MethodFilter;
use crate::security::{csrf, session, token, DerivedKey, SecretKeyBase, SessionStore, TokenError};
use crate::serializer::{self, Frame, Message, Payload, Status, Vsn};
use crate::socket::longpoll;
use crate::{Body, Conn, Router};

/// The secret key base of every keyed target; the tokens and cookies seeded in the corpora
/// are made with it. Public on purpose: never deploy it.
pub const KEY_BASE: &[u8; 64] = b"fawkes fuzzing key base: public, for fuzzing only, never deploy.";

/// The salt of the keyed targets' key.
pub const SALT: &str = "fawkes fuzzing";

/// The session cookie's name in the `session_cookie` target.
pub const SESSION_COOKIE: &str = "_fawkes_key";

/// The clock (ms since the epoch) of the `session_cookie` target: 2100-01-01, so a cookie made
/// today reads as genuine without a maximum age and expired with a day's.
pub const SESSION_NOW: u64 = 4_102_444_800_000;

/// A fuzz target: the name of its file in `fuzz/fuzz_targets/` and of its corpus directory, and
/// its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target. A new one is a function here, a line in this list, and a file in
/// `fuzz/fuzz_targets/`; the replay test picks it up from this list.
pub const TARGETS: &[Target] = &[
    ("params", params),
    ("serializer", serializer),
    ("router", router),
    ("token", token),
    ("session_cookie", session_cookie),
    ("longpoll", longpoll),
    ("presence", presence),
    ("http", http),
];

/// Query-string and form decoding into nested params, under tight and default limits.
///
/// The first byte picks the limits. A decode that succeeds stays within its limits and gives
/// the same params under looser ones; no value is left `null`.
pub fn params(data: &[u8]) {
    const LIMITS: [(u32, u32); 4] = [
        (ParamsLimits::DEFAULT_MAX_DEPTH, ParamsLimits::DEFAULT_MAX_PARAMS),
        (2, 8),
        (0, 1),
        (5, 50),
    ];
    let Some((&pick, rest)) = data.split_first() else { return };
    // Query strings and form bodies reach the decoder only as UTF-8.
    let Ok(input) = std::str::from_utf8(rest) else { return };
    let (depth, count) = LIMITS[usize::from(pick) % LIMITS.len()];
    let limits = ParamsLimits::default().max_depth(depth).max_params(count);
    let tight = params::decode(input, limits);
    let default = params::decode(input, ParamsLimits::default());
    for (decoded, depth, count) in [
        (&tight, depth, count),
        (&default, ParamsLimits::DEFAULT_MAX_DEPTH, ParamsLimits::DEFAULT_MAX_PARAMS),
    ] {
        if let Ok(map) = decoded {
            let (nodes, deepest) = measure(map);
            assert!(nodes <= count, "{nodes} params past the limit of {count}: {input:?}");
            assert!(deepest <= depth, "{deepest} levels past the limit of {depth}: {input:?}");
        }
    }
    if let Ok(map) = &tight {
        assert_eq!(default.as_ref().ok(), Some(map), "looser limits changed the params: {input:?}");
    }
}

/// Values and containers under a decoded map, and the deepest nesting of containers.
fn measure(map: &Map<String, Value>) -> (u32, u32) {
    fn walk(value: &Value, nodes: &mut u32) -> u32 {
        *nodes += 1;
        match value {
            Value::String(_) => 0,
            Value::Array(items) => 1 + items.iter().map(|v| walk(v, nodes)).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(|v| walk(v, nodes)).max().unwrap_or(0),
            other => panic!("params hold strings, arrays and objects only, got {other}"),
        }
    }
    let mut nodes = 0;
    let deepest = map.values().map(|v| walk(v, &mut nodes)).max().unwrap_or(0);
    (nodes, deepest)
}

/// The Phoenix wire format: V1 and V2 text frames and V2 binary frames, as the WebSocket
/// transport decodes them.
///
/// The first byte picks V1 text, V2 text or binary. A decoded text frame re-encodes into one
/// that decodes to the same message (V1 frames carry no join ref); a decoded binary frame
/// re-encodes to the very same bytes, and the server's binary frames built from its fields
/// keep their layout.
pub fn serializer(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    match pick % 3 {
        0 => text_frame(Vsn::V1, rest),
        1 => text_frame(Vsn::V2, rest),
        _ => binary_frame(rest),
    }
}

fn text_frame(vsn: Vsn, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(msg) = serializer::decode_text(vsn, text) else { return };
    assert!(matches!(msg.payload, Payload::Json(_)), "a text frame carries JSON");
    let frame = serializer::encode_message(
        vsn,
        msg.join_ref.as_deref(),
        msg.msg_ref.as_deref(),
        &msg.topic,
        &msg.event,
        &msg.payload,
    )
    .expect("a JSON payload encodes in every version");
    let encoded = frame.as_text().expect("a JSON payload encodes as text");
    let again = serializer::decode_text(vsn, encoded)
        .unwrap_or_else(|err| panic!("the encoder's {encoded:?} does not decode: {err}"));
    let join_ref = if vsn == Vsn::V1 { None } else { msg.join_ref.clone() };
    assert_eq!(again.join_ref, join_ref, "{text:?}");
    assert_eq!(
        (&again.msg_ref, &again.topic, &again.event),
        (&msg.msg_ref, &msg.topic, &msg.event)
    );
    let (Payload::Json(before), Payload::Json(after)) = (&msg.payload, &again.payload) else {
        unreachable!("checked above")
    };
    assert!(same_json(before, after), "payload changed: {before} became {after}");
}

fn binary_frame(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    assert!(serializer::decode_binary(Vsn::V1, &bytes).is_err(), "binary frames need V2");
    let Ok(msg) = serializer::decode_binary(Vsn::V2, &bytes) else { return };
    let Payload::Binary(payload) = &msg.payload else { panic!("a binary frame carries bytes") };
    let join_ref = msg.join_ref.as_deref().unwrap_or_default();
    let msg_ref = msg.msg_ref.as_deref().unwrap_or_default();
    // The client's push layout, written back from the decoded fields.
    let fields = [join_ref, msg_ref, &msg.topic, &msg.event];
    assert_eq!(layout(0, &fields, payload), data, "a binary frame re-encodes to its bytes");
    // Every field fits a length byte, so every server frame built from them exists.
    let push = serializer::encode_push(
        Vsn::V2,
        msg.join_ref.as_deref(),
        &msg.topic,
        &msg.event,
        &msg.payload,
    );
    assert_eq!(binary(push), layout(0, &[join_ref, &msg.topic, &msg.event], payload));
    let reply = serializer::encode_reply(
        Vsn::V2,
        msg.join_ref.as_deref(),
        msg.msg_ref.as_deref(),
        &msg.topic,
        Status::Ok,
        &msg.payload,
    );
    assert_eq!(binary(reply), layout(1, &[join_ref, msg_ref, &msg.topic, "ok"], payload));
    let broadcast = serializer::encode_broadcast(Vsn::V2, &msg.topic, &msg.event, &msg.payload);
    assert_eq!(binary(broadcast), layout(2, &[&msg.topic, &msg.event], payload));
}

/// A binary frame: the kind, one length byte per field, the fields, the payload.
fn layout(kind: u8, fields: &[&str], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend(fields.iter().map(|f| u8::try_from(f.len()).expect("decoded fields fit a byte")));
    out.extend(fields.iter().flat_map(|f| f.bytes()));
    out.extend_from_slice(payload);
    out
}

fn binary(frame: Option<Frame>) -> Vec<u8> {
    match frame {
        Some(Frame::Binary(bytes)) => bytes.to_vec(),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

/// The routes of the `router` target: static, param, multi-param, wildcard, a param sharing
/// its segment, more params than the router keeps inline, escaped braces, any-method.
const ROUTES: &[(MethodFilter, &str)] = &[
    (MethodFilter::Get, "/"),
    (MethodFilter::Get, "/rooms/{id}"),
    (MethodFilter::Post, "/rooms/{id}"),
    (MethodFilter::Get, "/rooms/{id}/messages/{msg_id}"),
    (MethodFilter::Delete, "/rooms/{id}/messages/{msg_id}"),
    (MethodFilter::Get, "/files/{*path}"),
    (MethodFilter::Get, "/users/{id}/files/{*rest}"),
    (MethodFilter::Get, "/reports/{name}.json"),
    (MethodFilter::Get, "/a/{b}/{c}/{d}/{e}/{f}"),
    (MethodFilter::Put, "/{{braces}}/{id}"),
    (MethodFilter::Head, "/head/{id}"),
    (MethodFilter::Any, "/any/{x}"),
];

/// Where the `router` target forwards to a service that echoes the URI it sees.
const FORWARD: &str = "/socket";

/// The methods the first byte of a `router` input picks from: every tree, and one of none.
const METHODS: [&str; 8] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PURGE"];

/// Router matching with arbitrary request targets, through `tower::Service` as a server
/// drives it.
///
/// The first byte picks the method, the rest is the request target. The answer must be the
/// route matchit finds (404 and 405 included, never a 500), with the path params the action
/// sees equal to matchit's own, percent-decoded; the query params those the decoder gives;
/// a forwarded service sees the path without the forward's prefix.
pub fn router(data: &[u8]) {
    let Some((&pick, target)) = data.split_first() else { return };
    // What a server would refuse before routing never reaches the router.
    let Ok(uri) = Uri::try_from(target) else { return };
    let method = Method::from_bytes(METHODS[usize::from(pick) % METHODS.len()].as_bytes())
        .expect("a valid method");
    let expected = Expected::of(&method, uri.path());
    let request = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .body(Body::empty())
        .expect("a valid request");
    let (status, body) = runtime().block_on(async {
        let mut router = fuzz_router().clone();
        let resp = tower_service::Service::call(&mut router, request).await.expect("infallible");
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body()).await;
        (status, body.expect("an in-memory body").to_bytes())
    });
    let head = method == Method::HEAD;
    match expected {
        Expected::NotFound => assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}"),
        Expected::NotAllowed => {
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        }
        Expected::Forward => {
            assert_eq!(status, StatusCode::OK, "{method} {uri}");
            let path = uri.path();
            let rest = match path.get(FORWARD.len()..) {
                Some("") | None => "/",
                Some(rest) => rest,
            };
            let seen = match uri.query() {
                Some(query) => format!("{rest}?{query}"),
                None => rest.to_owned(),
            };
            if !head {
                assert_eq!(body, seen.as_bytes(), "{method} {uri}: the forwarded path");
            }
        }
        Expected::Route { pattern, params } => {
            assert_eq!(status, StatusCode::OK, "{method} {uri}");
            if head {
                return;
            }
            let echoed: Value = serde_json::from_slice(&body).expect("the echo action's JSON");
            let query = params::decode(uri.query().unwrap_or_default(), ParamsLimits::default())
                .unwrap_or_default();
            let params: Vec<Value> = params.into_iter().map(|(k, v)| json!([k, v])).collect();
            let wanted = json!({ "route": pattern, "params": params, "query": query });
            assert_eq!(echoed, wanted, "{method} {uri}");
        }
    }
}

/// What the router must answer, found with matchit alone.
enum Expected {
    NotFound,
    NotAllowed,
    Forward,
    Route { pattern: &'static str, params: Vec<(String, String)> },
}

/// matchit trees holding [`ROUTES`] by method, as the router keeps them, and the forward.
struct Trees {
    by_method: Vec<matchit::Router<usize>>,
    any: matchit::Router<Option<usize>>,
}

impl Expected {
    fn of(method: &Method, path: &str) -> Self {
        static TREES: OnceLock<Trees> = OnceLock::new();
        let trees = TREES.get_or_init(|| {
            let mut by_method: Vec<_> = (0..7).map(|_| matchit::Router::new()).collect();
            let mut any = matchit::Router::new();
            for (index, (filter, path)) in ROUTES.iter().enumerate() {
                let inserted = match filter_index(*filter) {
                    Some(i) => by_method[i].insert(*path, index),
                    None => any.insert(*path, Some(index)),
                };
                inserted.expect("the fuzz routes do not conflict");
            }
            any.insert(FORWARD, None).expect("no conflict");
            any.insert(format!("{FORWARD}/{{*rest}}"), None).expect("no conflict");
            Trees { by_method, any }
        });
        // The router ignores one trailing slash.
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        let tree = METHODS.iter().take(7).position(|m| *m == method.as_str());
        let found = tree
            .and_then(|i| trees.by_method[i].at(path).ok())
            .or_else(|| {
                (*method == Method::HEAD).then(|| trees.by_method[0].at(path).ok()).flatten()
            })
            .map(|m| (Some(*m.value), m.params))
            .or_else(|| trees.any.at(path).ok().map(|m| (*m.value, m.params)));
        match found {
            Some((Some(index), found)) => {
                let decode = |v: &str| {
                    percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned()
                };
                let params = found.iter().map(|(k, v)| (k.to_owned(), decode(v))).collect();
                Self::Route { pattern: ROUTES[index].1, params }
            }
            Some((None, _)) => Self::Forward,
            None if trees.by_method.iter().any(|t| t.at(path).is_ok()) => Self::NotAllowed,
            None => Self::NotFound,
        }
    }
}

fn filter_index(filter: MethodFilter) -> Option<usize> {
    match filter {
        MethodFilter::Get => Some(0),
        MethodFilter::Post => Some(1),
        MethodFilter::Put => Some(2),
        MethodFilter::Patch => Some(3),
        MethodFilter::Delete => Some(4),
        MethodFilter::Options => Some(5),
        MethodFilter::Head => Some(6),
        _ => None,
    }
}

fn fuzz_router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        async fn echo(conn: Conn) -> Conn {
            let body = json!({
                "route": conn.route(),
                "params": conn.path_params(),
                "query": conn.query_params(),
            });
            conn.json(&body)
        }
        let mut builder = crate::router::Builder::new();
        for (filter, path) in ROUTES {
            builder = builder.route(*filter, path, path, Vec::new(), echo);
        }
        let service = tower::service_fn(|req: Request<Body>| async move {
            let seen = req.uri().path_and_query().map(|pq| pq.as_str().to_owned());
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(
                seen.unwrap_or_default(),
            )))
        });
        builder.forward(FORWARD, FORWARD, Vec::new(), service).build()
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
    })
}

fn key() -> &'static DerivedKey {
    static KEY: OnceLock<DerivedKey> = OnceLock::new();
    KEY.get_or_init(|| key_base().key_for(SALT))
}

fn key_base() -> SecretKeyBase {
    SecretKeyBase::new(KEY_BASE.to_vec()).expect("64 bytes")
}

/// A key of another base, which must open nothing the fuzz key made.
fn other_key() -> &'static DerivedKey {
    static KEY: OnceLock<DerivedKey> = OnceLock::new();
    KEY.get_or_init(|| SecretKeyBase::new(vec![7; 64]).expect("64 bytes").key_for(SALT))
}

/// Phoenix.Token verification and decryption, and CSRF token unmasking.
///
/// Layout: a mode byte, then the clock (`now`, ms, little-endian u64) and the maximum age (ms;
/// `u64::MAX` for none), then the mode's data:
/// - 0: a token to verify; 1: a token to decrypt. What opens with the fuzz key opens with no
///   other key nor as the other kind, re-seals into a token that opens to the same data, and
///   is expired only when it opens without a maximum age; only a blank token is missing.
/// - 2: claims bytes, signed with the fuzz key, so what a genuine token carries is decoded:
///   the data must be the claims' `data`, typed reads must agree with it.
/// - 3: a CSRF secret (32 bytes) and a pad (32 bytes), then a token: the secret masked with
///   the pad unmasks to the secret and to no other; the token must not panic.
pub fn token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((clock, rest)) = rest.split_first_chunk::<16>() else { return };
    let now = u64::from_le_bytes(clock[..8].try_into().expect("8 bytes"));
    let max_age = match u64::from_le_bytes(clock[8..].try_into().expect("8 bytes")) {
        u64::MAX => Duration::MAX,
        ms => Duration::from_millis(ms),
    };
    match mode % 4 {
        0 | 1 => {
            let Ok(text) = std::str::from_utf8(rest) else { return };
            check_token(mode % 4 == 1, text, max_age, now);
        }
        2 => check_claims(rest, max_age, now),
        _ => check_csrf(rest),
    }
}

type Open = fn(&DerivedKey, &str, Duration, u64) -> Result<Value, TokenError>;

fn opener(encrypted: bool) -> Open {
    if encrypted {
        token::decrypt_at
    } else {
        token::verify_at
    }
}

fn check_token(encrypted: bool, text: &str, max_age: Duration, now: u64) {
    let open = opener(encrypted);
    let got = open(key(), text, max_age, now);
    assert_eq!(got == Err(TokenError::Missing), text.trim().is_empty(), "{text:?}");
    match got {
        Ok(data) => {
            assert_eq!(open(other_key(), text, max_age, now), Err(TokenError::Invalid));
            assert_eq!(opener(!encrypted)(key(), text, max_age, now), Err(TokenError::Invalid));
            let again = if encrypted {
                token::encrypt_at(key(), &data, now)
            } else {
                token::sign_at(key(), &data, now)
            };
            let reopened = open(key(), &again, Duration::ZERO, now).expect("a fresh token opens");
            assert!(same_json(&data, &reopened), "{data} came back as {reopened}");
        }
        Err(TokenError::Expired) => {
            assert!(open(key(), text, Duration::MAX, now).is_ok(), "expired yet not genuine");
        }
        Err(_) => {}
    }
}

fn check_claims(claims: &[u8], max_age: Duration, now: u64) {
    let text = token::sign_message(key(), claims);
    let got = token::verify_at::<Value>(key(), &text, max_age, now);
    assert_eq!(
        token::verify_at::<Value>(other_key(), &text, max_age, now),
        Err(TokenError::Invalid)
    );
    match &got {
        Ok(data) => {
            // Claims may open without parsing whole: serde_json skips unknown fields without
            // checking their strings are UTF-8.
            if let Ok(parsed) = serde_json::from_slice::<Value>(claims) {
                // serde reads a struct from an object or from an array of its fields in order.
                let (field, signed) = match &parsed {
                    Value::Array(items) => (items.first(), items.get(1)),
                    _ => (parsed.get("data"), parsed.get("signed")),
                };
                assert_eq!(field.unwrap_or(&Value::Null), data, "the claims' data");
                assert!(signed.and_then(Value::as_u64).is_some(), "signed is a time");
            }
        }
        Err(TokenError::Expired) => {
            assert!(token::verify_at::<Value>(key(), &text, Duration::MAX, now).is_ok());
        }
        Err(TokenError::Missing) => panic!("a signed token is never missing"),
        Err(_) => {}
    }
    // Typed reads, as the LongPoll session id and the session map are read.
    let as_string = token::verify_at::<String>(key(), &text, max_age, now);
    match (&got, as_string) {
        (Ok(Value::String(s)), Ok(t)) => assert_eq!(*s, t),
        (Ok(Value::String(_)), Err(err)) => panic!("a string read as {err}"),
        (Ok(_), Ok(t)) => panic!("a non-string read as {t:?}"),
        (Ok(_), Err(err)) => assert_eq!(err, TokenError::Invalid),
        (Err(a), b) => assert_eq!(Err(*a), b.map(Value::String)),
    }
    let as_map = token::verify_at::<Map<String, Value>>(key(), &text, max_age, now);
    assert_eq!(got.as_ref().ok().and_then(Value::as_object), as_map.as_ref().ok());
}

fn check_csrf(data: &[u8]) {
    const LEN: usize = csrf::SECRET_LEN;
    let Some((secret, rest)) = data.split_first_chunk::<LEN>() else { return };
    let Some((pad, rest)) = rest.split_first_chunk::<LEN>() else { return };
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // As `get_csrf_token` masks the secret.
    let mut masked = pad.to_vec();
    masked.extend(secret.iter().zip(pad).map(|(s, p)| s ^ p));
    let good = b64.encode(&masked);
    assert!(csrf::unmasks_to(secret, &good), "a masked secret unmasks");
    let mut other = *secret;
    other[usize::from(pad[0]) % LEN] ^= 1 << (pad[1] % 8);
    assert!(!csrf::unmasks_to(&other, &good), "a token unmasks to one secret only");
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = csrf::unmasks_to(secret, text);
    }
}

/// Session cookie reading: `Cookie` headers parsed, the session cookie found, opened and its
/// map decoded, as `fetch_session` does.
///
/// The first byte's bits pick the store (signed or encrypted), a maximum age (none or a day,
/// at [`SESSION_NOW`]), and what the rest is: `Cookie` header values, one per line, or claims
/// sealed with the fuzz key into the session cookie among others. A session that reads writes
/// back into a cookie that reads as the same session, and no other key reads it.
pub fn session_cookie(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let store = if mode & 1 == 0 { SessionStore::Signed } else { SessionStore::Encrypted };
    let max_age = if mode & 2 == 0 { Duration::MAX } else { Duration::from_secs(86_400) };
    let lines: Vec<Vec<u8>> = if mode & 4 == 0 {
        rest.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
    } else {
        let value = match store {
            SessionStore::Signed => token::sign_message(key(), rest),
            _ => token::encrypt_message(key(), rest),
        };
        vec![format!("theme=dark; {SESSION_COOKIE}={value}; lang=en").into_bytes()]
    };
    // What reaches the plug: header values, read only when they are visible ASCII.
    let values: Vec<HeaderValue> =
        lines.iter().filter_map(|l| HeaderValue::from_bytes(l).ok()).collect();
    let read = |key: &DerivedKey, values: &[HeaderValue]| {
        let headers = values.iter().filter_map(|v| v.to_str().ok());
        session::read_cookie(headers, SESSION_COOKIE, store, key, max_age, SESSION_NOW)
    };
    let Some(map) = read(key(), &values) else { return };
    assert_eq!(read(other_key(), &values), None, "another key read the session");
    let value = match store {
        SessionStore::Signed => token::sign_at(key(), &map, SESSION_NOW),
        _ => token::encrypt_at(key(), &map, SESSION_NOW),
    };
    let written = HeaderValue::from_str(&format!("{SESSION_COOKIE}={value}")).expect("ASCII");
    let again = read(key(), &[written]).expect("a written session reads back");
    let (before, after) = (Value::Object(map), Value::Object(again));
    assert!(same_json(&before, &after), "{before} read back as {after}");
}

/// LongPoll POST bodies: UTF-8, newline-delimited frames, the batch limit, each line decoded.
///
/// The first byte picks V1 or V2. A body is accepted exactly when it is UTF-8, has at most
/// the batch limit of non-blank lines and every one decodes; its messages are those lines
/// decoded one by one, in order.
pub fn longpoll(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let vsn = if pick % 2 == 0 { Vsn::V1 } else { Vsn::V2 };
    let parsed = longpoll::parse_batch(vsn, body);
    let Ok(text) = std::str::from_utf8(body) else {
        assert!(parsed.is_none(), "a body that is not UTF-8 is refused");
        return;
    };
    // Lines end at `\n`, a `\r` before it included.
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let decoded: Option<Vec<Message>> = if lines.len() > longpoll::MAX_BATCH {
        None
    } else {
        lines.iter().map(|l| serializer::decode_text(vsn, l).ok()).collect()
    };
    assert_eq!(parsed, decoded, "{text:?}");
}

/// The presence CRDT: deltas and states from other nodes, one JSON payload per line, decoded
/// as the replication worker decodes them and joined in order.
///
/// Whatever they hold: joining any of them again changes nothing; a node that joins the
/// owner's part of every replica ends with the same state; the topic index lists exactly the
/// visible entries; and a replica's entries dropped (it was reported down) never come back
/// from its deltas already seen.
pub fn presence(data: &[u8]) {
    let mut state = State::default();
    let mut deltas = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let Ok(payload) = serde_json::from_slice::<Value>(line) else { continue };
        let Ok(delta) = Delta::deserialize(&payload) else { continue };
        for change in state.join(&delta) {
            assert_eq!(change.phx_ref, crdt::phx_ref(&delta.replica, change.counter));
            // By identity: a `phx_ref` names a dot by the replica's id alone, which two
            // replicas may share if a node lies about its id.
            let visible =
                state.topic(&change.entry.topic).any(|(_, e)| Arc::ptr_eq(e, &change.entry));
            assert_eq!(visible, change.joined, "a change that did not apply: {payload}");
        }
        deltas.push(delta);
    }
    let joined = state.clone();
    for delta in &deltas {
        assert!(state.join(delta).is_empty(), "joining a delta again changed the state");
    }
    assert_eq!(state, joined, "joining a delta again changed the context");
    let replicas: BTreeSet<&Replica> = deltas.iter().map(|d| &d.replica).collect();
    let mut copy = State::default();
    for replica in &replicas {
        copy.join(&state.part_of(replica));
    }
    assert_eq!(copy, state, "the owners' parts do not rebuild the state");
    let topics: BTreeSet<&str> =
        deltas.iter().flat_map(|d| d.adds.iter().map(|(_, e)| e.topic.as_str())).collect();
    let listed: usize = topics.iter().map(|t| state.topic(t).count()).sum();
    assert_eq!(listed, state.entries().len(), "the topic index and the entries disagree");
    if let Some(&down) = replicas.first() {
        state.drop_replica(down);
        for delta in deltas.iter().filter(|d| d.replica == *down) {
            let back: Vec<_> = state.join(delta).into_iter().filter(|c| c.joined).collect();
            assert!(back.is_empty(), "a dropped entry came back");
        }
    }
}

/// JSON equality up to the last bit of a float, which a print-and-parse may not keep.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => {
                        let tolerance = f64::EPSILON * 4.0 * x.abs().max(y.abs());
                        (x - y).abs() <= tolerance.max(f64::MIN_POSITIVE)
                    }
                    _ => false,
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Whole requests: raw bytes from a client, through the endpoint's HTTP/1 connection handler
/// and the `router` target's routes, in memory.
///
/// The first byte picks how many bytes the client sends at a time (1 to 64), the rest is what
/// it sends before closing. The server must finish (no hang), what it writes must be HTTP
/// answers, and nothing may panic on the way (the router would catch it and answer 500; the
/// routes' actions cannot fail, so a panic is the framework's).
pub fn http(data: &[u8]) {
    let Some((&pick, input)) = data.split_first() else { return };
    let chunk = usize::from(pick % 64) + 1;
    let input = Bytes::copy_from_slice(input);
    let shared = shared();
    let panics = shared.telemetry.panics();
    let output = runtime().block_on(async {
        let serving =
            crate::endpoint::serve_script(fuzz_router().clone(), shared.clone(), input, chunk);
        tokio::time::timeout(Duration::from_secs(5), serving).await
    });
    let output = output.expect("the connection finishes once its client has closed");
    assert_eq!(shared.telemetry.panics(), panics, "a panic while serving");
    assert!(
        output.is_empty() || output.starts_with(b"HTTP/1."),
        "not an HTTP answer: {:?}",
        String::from_utf8_lossy(&output)
    );
}

/// The endpoint state the `http` target's connections share, made once.
fn shared() -> crate::endpoint::SharedRef {
    static SHARED: OnceLock<crate::endpoint::SharedRef> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let _runtime = runtime().enter();
            let supervisor = crate::Supervisor::builder().start();
            let pubsub = crate::PubSub::new("fuzz");
            Arc::new(crate::endpoint::Shared {
                ready: std::sync::atomic::AtomicBool::new(true),
                buffered_bodies: crate::budget::Budget::new(64 * 1024 * 1024),
                unsent_bodies: crate::budget::Budget::new(128 * 1024 * 1024),
                supervisor,
                telemetry: crate::instrument::Telemetry::for_pubsub(&pubsub),
                pubsub,
                secret_key_base: None,
            })
        })
        .clone()
}
