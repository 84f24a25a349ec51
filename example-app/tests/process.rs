//! The real binary over real TCP: start-up contract, the API, graceful shutdown on SIGTERM,
//! and what operations read from it (Prometheus metrics, JSON logs).

mod app_process;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use app_process::{App, SHUTDOWN_TIMEOUT_SECS};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const DRAIN_DELAY_SECS: u64 = 3;

/// A response read off the wire.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body))
        })
    }
}

fn request_bytes(method: &str, path: &str, body: Option<&Value>, close: bool) -> Vec<u8> {
    let body = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\n");
    if close {
        head.push_str("connection: close\r\n");
    }
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// Reads one response whose body has a `content-length` (every response of this app does).
async fn read_response(stream: &mut TcpStream) -> Response {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read response");
        assert!(n > 0, "connection closed mid-response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().expect("content-length"));
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "connection closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Response { status, headers, body }
}

/// One request on a fresh connection.
async fn send(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Response {
    try_send(addr, method, path, body).await.expect("connect")
}

/// One request on a fresh connection; `None` when the connection is refused.
async fn try_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<Response> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(&request_bytes(method, path, body, true)).await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream)).await;
    Some(resp.expect("response within 10 s"))
}

#[tokio::test]
async fn serves_the_api_and_drains_on_sigterm() {
    let mut app = App::start("drain", DRAIN_DELAY_SECS);
    let addr = app.addr;
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    assert!(app.dir.join("fawkes_dev.db").exists(), "the default SQLite file is created on start");

    let health = send(addr, "GET", "/healthz", None).await;
    assert_eq!((health.status, health.json()), (200, json!({"status": "ok"})));
    assert_eq!(send(addr, "GET", "/readyz", None).await.status, 200);

    let created = send(addr, "POST", "/api/rooms", Some(&json!({"room": {"name": "lobby"}}))).await;
    assert_eq!(created.status, 201, "{:?}", String::from_utf8_lossy(&created.body));
    let id = created.json()["data"]["id"].as_i64().unwrap();
    assert_eq!(created.header("location"), Some(format!("/api/rooms/{id}").as_str()));
    let list = send(addr, "GET", "/api/rooms", None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["data"][0]["name"], "lobby");
    assert_eq!(list.json()["data"][0]["id"], id);
    let message = json!({"message": {"author": "ada", "body": "hello"}});
    let posted = send(addr, "POST", &format!("/api/rooms/{id}/messages"), Some(&message)).await;
    assert_eq!(posted.status, 201);
    let messages = send(addr, "GET", &format!("/api/rooms/{id}/messages"), None).await;
    assert_eq!(messages.json()["data"][0]["body"], "hello");

    // An idle keep-alive connection, and a request whose body is only half sent when SIGTERM
    // arrives.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(&request_bytes("GET", "/healthz", None, false)).await.unwrap();
    assert_eq!(read_response(&mut idle).await.status, 200);
    let mut in_flight = TcpStream::connect(addr).await.unwrap();
    let upload =
        request_bytes("POST", "/api/rooms", Some(&json!({"room": {"name": "late"}})), false);
    let (first_half, second_half) = upload.split_at(upload.len() - 5);
    // The head and part of the body go out now; the server has the whole drain delay to read
    // the head before the listener closes and connections are told to drain.
    in_flight.write_all(first_half).await.unwrap();

    let signalled = Instant::now();
    app.terminate();

    // Draining: readiness fails while the listener still accepts, for the drain delay.
    tests::eventually_async(
        Duration::from_secs(DRAIN_DELAY_SECS),
        "/readyz to answer 503",
        || async {
            let resp = try_send(addr, "GET", "/readyz", None).await;
            resp.is_some_and(|r| r.status == 503 && r.json()["status"] == "draining")
        },
    )
    .await;
    // Then the listener closes.
    tests::eventually_async(
        Duration::from_secs(DRAIN_DELAY_SECS + 5),
        "the listener to close",
        || async { TcpStream::connect(addr).await.is_err() },
    )
    .await;
    assert!(
        signalled.elapsed() >= Duration::from_secs(DRAIN_DELAY_SECS) - Duration::from_millis(100),
        "the listener stayed open through the drain delay"
    );

    // The in-flight request still completes, on a connection that then closes.
    in_flight.write_all(second_half).await.unwrap();
    let late = tokio::time::timeout(Duration::from_secs(5), read_response(&mut in_flight))
        .await
        .expect("the in-flight request is answered");
    assert_eq!(late.status, 201, "{:?}", String::from_utf8_lossy(&late.body));
    assert_eq!(late.json()["data"]["name"], "late");

    // The idle keep-alive connection is closed by the server rather than left to time out.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "idle connection closed: {read:?} {rest:?}");

    let status = app
        .wait_exit(Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 5))
        .expect("the app exits within its shutdown deadline");
    assert!(status.success(), "exit status {status:?}");
    assert!(TcpStream::connect(addr).await.is_err(), "nothing listens after exit");
}

/// Sends `signal` (`STOP`, `CONT`) to the app.
fn signal(app: &App, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), app.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}

#[tokio::test]
async fn a_burst_of_connections_waits_in_the_listen_backlog_instead_of_being_dropped() {
    // When a replica drains, its clients all reconnect at once to the others. Connections the
    // app has not accepted yet wait in its listener's backlog; past the backlog the kernel drops
    // their SYNs, and each client waits a second for its retransmission (a load balancer with a
    // one-second connect timeout gives up on it). With the app stopped, the kernel alone
    // completes connections, up to the backlog: 128 was std's and mio's default.
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    // The kernel caps any backlog at somaxconn.
    let burst = 500.min(somaxconn.saturating_sub(1));
    let app = App::start("backlog", 0);
    signal(&app, "STOP");
    let connects = (0..burst).map(|_| async {
        // Well short of the first SYN retransmission (1 s).
        tokio::time::timeout(Duration::from_millis(750), TcpStream::connect(app.addr)).await
    });
    let connected = futures_util::future::join_all(connects).await;
    signal(&app, "CONT");
    let completed: Vec<TcpStream> = connected.into_iter().filter_map(|c| c.ok()?.ok()).collect();
    assert_eq!(completed.len(), burst, "connections completed while the app was stopped");

    // And once the app runs again, every one of them is served.
    let served = completed.into_iter().map(|mut stream| async move {
        stream.write_all(&request_bytes("GET", "/healthz", None, true)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), read_response(&mut stream)).await
    });
    for resp in futures_util::future::join_all(served).await {
        assert_eq!(resp.expect("an answer within 20 s").status, 200);
    }
}

#[tokio::test]
async fn sockets_closed_by_sigterm_get_no_phx_close_so_their_clients_rejoin() {
    // On a restart a socket's channels end with the socket: its close frame (1012, service
    // restart) is all the client gets, and once it has reconnected (to another replica) it
    // joins its topics again. A `phx_close` before it would tell the official client that the
    // server ended the channel for good, and it would not rejoin it. Whether a channel's
    // `phx_close` reached the client before the socket's close frame was a race on each socket,
    // so many sockets are looked at.
    const SOCKETS: usize = 40;
    let mut app = App::start("restart-rejoin", 0);
    let mut sockets = Vec::with_capacity(SOCKETS);
    for _ in 0..SOCKETS {
        let mut socket = WsClient::connect(app.addr, "/socket/websocket?vsn=2.0.0").await;
        assert_eq!(socket.join("1", "room:lobby").await, ("ok".to_owned(), json!({})));
        sockets.push(socket);
    }

    app.terminate();
    for (i, socket) in sockets.iter_mut().enumerate() {
        let (frames, code) = socket.until_close().await;
        let ended: Vec<&Value> =
            frames.iter().filter(|f| f[3] == "phx_close" || f[3] == "phx_error").collect();
        assert!(ended.is_empty(), "socket {i} was told its channel ended: {ended:?}");
        assert_eq!(code, Some(1012), "socket {i} closed with 1012 (service restart)");
    }
    let status = app
        .wait_exit(Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 5))
        .expect("the app exits within its shutdown deadline");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigterm_right_after_the_announcement_still_exits_cleanly() {
    // A supervisor may stop the app as soon as it announces itself; the signal must drain it,
    // not kill it with the default action, so the handlers are installed before the URL line.
    for round in 0..3 {
        let mut app = App::start(&format!("early-{round}"), 0);
        app.terminate();
        let status = app.wait_exit(Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 5));
        let status = status.expect("the app exits within its shutdown deadline");
        assert!(status.success(), "round {round}: exit status {status:?}");
    }
}

#[tokio::test]
async fn a_bad_configuration_fails_to_start() {
    let dir = std::env::temp_dir().join(format!("fawkes-example-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [("PORT", "not-a-port"), ("DATABASE_URL", "mysql://localhost/nope")];
    for (name, value) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_example-app"))
            .current_dir(&dir)
            .env("PORT", "0")
            .env(name, value)
            .stdin(Stdio::null())
            .output()
            .expect("example-app runs");
        assert!(!output.status.success(), "{name}={value} must fail");
        assert!(output.stdout.is_empty(), "no URL is announced for {name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name) || stderr.contains(value), "{name}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Environment variables for one start of the app.
type Vars<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn production_refuses_to_start_without_a_good_secret_key_base() {
    let dir = std::env::temp_dir().join(format!("fawkes-example-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let long = "k".repeat(64);
    let cases: [(Vars<'_>, &str); 5] = [
        (&[("FAWKES_ENV", "prod")], "SECRET_KEY_BASE is not set, and FAWKES_ENV=prod requires it"),
        (&[("FAWKES_ENV", "production"), ("SECRET_KEY_BASE", " ")], "SECRET_KEY_BASE is not set"),
        (&[("FAWKES_ENV", "prod"), ("SECRET_KEY_BASE", &long[..40])], "has 40 bytes, at least 64"),
        (&[("SECRET_KEY_BASE", &long[..63])], "has 63 bytes, at least 64"),
        (
            &[("FAWKES_ENV", "staging"), ("SECRET_KEY_BASE", &long)],
            "is not one of dev, test or prod",
        ),
    ];
    for (env, message) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_example-app"))
            .current_dir(&dir)
            .env("PORT", "0")
            .env_remove("FAWKES_ENV")
            .env_remove("SECRET_KEY_BASE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("example-app runs");
        assert!(!output.status.success(), "{env:?} must fail");
        assert!(output.stdout.is_empty(), "no URL is announced for {env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{env:?}: {stderr}");
        assert!(!stderr.contains(&long[..40]), "the secret is not printed: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn development_makes_up_a_secret_and_says_so() {
    let long = "k".repeat(64);
    let cases: [(&str, Vars<'_>, bool); 3] = [
        ("dev-secret", &[], true),
        ("test-secret", &[("FAWKES_ENV", "test")], true),
        ("prod-secret", &[("FAWKES_ENV", "prod"), ("SECRET_KEY_BASE", &long)], false),
    ];
    for (name, env, warns) in cases {
        let mut app = App::start_with(name, 0, env, true);
        app.terminate();
        let status = app.wait_exit(Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 5));
        assert!(status.expect("the app exits").success(), "{env:?}");
        let lines = app.stderr_lines();
        let warned = lines.iter().any(|l| l.contains("WARN") && l.contains("SECRET_KEY_BASE"));
        assert_eq!(warned, warns, "{env:?}:\n{}", lines.join("\n"));
    }
}

/// One request on a fresh connection, with one extra header.
async fn send_with_header(addr: SocketAddr, path: &str, header: (&str, &str)) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let (name, value) = header;
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\n{name}: {value}\r\n\
         connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream)).await;
    resp.expect("response within 10 s")
}

/// A WebSocket client over a raw HTTP/1.1 upgrade: enough of RFC 6455 for unfragmented text
/// frames, which is all the Phoenix JSON serializer sends.
struct WsClient {
    stream: TcpStream,
    /// Bytes read past the last frame returned.
    buf: Vec<u8>,
}

impl WsClient {
    /// The sample key of RFC 6455 §1.3, and the accept value it requires of the server.
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    async fn connect(addr: SocketAddr, path: &str) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
             sec-websocket-version: 13\r\nsec-websocket-key: {}\r\n\r\n",
            Self::KEY
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let head_end = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 1024];
                let n = stream.read(&mut chunk).await.expect("read the handshake");
                assert!(n > 0, "closed during the handshake: {:?}", String::from_utf8_lossy(&buf));
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("a handshake response within 10 s");
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "not upgraded: {head}");
        let accept = format!("sec-websocket-accept: {}", Self::ACCEPT.to_ascii_lowercase());
        assert!(head.contains(&accept), "wrong accept key: {head}");
        let buf = buf.split_off(head_end);
        Self { stream, buf }
    }

    /// Sends `message` as one masked text frame, as a client must.
    async fn send(&mut self, message: &Value) {
        let payload = serde_json::to_vec(message).unwrap();
        let mask = [0x5a, 0xc3, 0x1e, 0x77];
        let mut frame = vec![0x81];
        match u16::try_from(payload.len()) {
            Ok(len) if len < 126 => frame.push(0x80 | len as u8),
            Ok(len) => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&len.to_be_bytes());
            }
            Err(_) => panic!("a test message of {} bytes is too long", payload.len()),
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.unwrap();
    }

    /// Reads until the buffer holds at least `n` bytes; false when the connection ends first.
    async fn fill(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(read) => self.buf.extend_from_slice(&chunk[..read]),
            }
        }
        true
    }

    /// The next frame: whether it is final, its opcode and its payload; `None` when the
    /// connection ended.
    async fn frame(&mut self) -> Option<(bool, u8, Vec<u8>)> {
        if !self.fill(2).await {
            return None;
        }
        let (fin, opcode) = (self.buf[0] & 0x80 != 0, self.buf[0] & 0x0f);
        assert_eq!(self.buf[1] & 0x80, 0, "a server must not mask its frames");
        let (len, header) = match self.buf[1] & 0x7f {
            126 => {
                if !self.fill(4).await {
                    return None;
                }
                (usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])), 4)
            }
            127 => {
                if !self.fill(10).await {
                    return None;
                }
                let len = u64::from_be_bytes(self.buf[2..10].try_into().unwrap());
                (usize::try_from(len).expect("frame length fits"), 10)
            }
            len => (usize::from(len), 2),
        };
        if !self.fill(header + len).await {
            return None;
        }
        let payload = self.buf[header..header + len].to_vec();
        self.buf.drain(..header + len);
        Some((fin, opcode, payload))
    }

    /// The next text frame, as JSON; pings and other control frames are skipped.
    async fn recv(&mut self) -> Value {
        let next = async {
            loop {
                let frame = self.frame().await;
                match frame.expect("the server closed the WebSocket connection") {
                    (fin, 0x1, payload) => {
                        assert!(fin, "unexpected fragmented text frame");
                        break serde_json::from_slice(&payload).expect("a JSON text frame");
                    }
                    (_, 0x8, payload) => panic!("the server closed the socket: {payload:?}"),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), next).await.expect("a frame within 10 s")
    }

    /// Every text frame until the server's close frame, and the close code; `None` for a
    /// connection that ended without a close frame, or a close frame without a code.
    async fn until_close(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut texts = Vec::new();
        let read = async {
            loop {
                match self.frame().await {
                    None => break None,
                    Some((_, 0x1, payload)) => {
                        texts.push(serde_json::from_slice(&payload).expect("a JSON text frame"));
                    }
                    Some((_, 0x8, payload)) => {
                        break payload.get(..2).map(|code| u16::from_be_bytes([code[0], code[1]]));
                    }
                    Some(_) => {}
                }
            }
        };
        let code = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the socket closes within 10 s");
        (texts, code)
    }

    /// Joins `topic` (serializer 2.0.0) and returns the reply's status and response.
    async fn join(&mut self, join_ref: &str, topic: &str) -> (String, Value) {
        self.send(&json!([join_ref, join_ref, topic, "phx_join", {}])).await;
        for _ in 0..10 {
            let msg = self.recv().await;
            if msg[1] == join_ref && msg[3] == "phx_reply" {
                assert_eq!(msg[2], topic, "{msg}");
                let status = msg[4]["status"].as_str().expect("reply status").to_owned();
                return (status, msg[4]["response"].clone());
            }
        }
        panic!("no reply to the join of {topic}");
    }
}

/// One sample of the Prometheus text format: `name{label="value",...} number`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample: {line}"));
        let value = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        let (name, mut rest) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("labels end with }")),
            None => (series, ""),
        };
        let mut labels = BTreeMap::new();
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("label: {line}"));
            let mut label = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => label.extend(chars.next().map(|(_, c)| c)),
                    Some((i, '"')) => break i,
                    Some((_, c)) => label.push(c),
                    None => panic!("unterminated label value: {line}"),
                }
            };
            labels.insert(key.to_owned(), label);
            rest = after[end + 1..].trim_start_matches(',');
        }
        samples.push(Sample { name: name.to_owned(), labels, value });
    }
    samples
}

/// The sum of the samples of `name` whose labels include `labels`; fails when there is none.
#[track_caller]
fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .collect();
    if matching.is_empty() {
        let series: Vec<_> = samples.iter().filter(|s| s.name == name).map(|s| &s.labels).collect();
        panic!("no {name} with {labels:?}; the series of {name}: {series:?}");
    }
    matching.iter().map(|s| s.value).sum()
}

async fn scrape(addr: SocketAddr) -> Vec<Sample> {
    let resp = send(addr, "GET", "/metrics", None).await;
    assert_eq!(resp.status, 200, "{:?}", String::from_utf8_lossy(&resp.body));
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "Prometheus text format: {content_type}");
    parse_metrics(std::str::from_utf8(&resp.body).expect("UTF-8 metrics"))
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_channel_joins() {
    // A fresh process: every count below starts at zero, so the exact numbers are known.
    let app = App::start("metrics", 0);
    let addr = app.addr;
    const LISTS: usize = 4;

    let created = send(addr, "POST", "/api/rooms", Some(&json!({"room": {"name": "ops"}}))).await;
    assert_eq!(created.status, 201, "{:?}", String::from_utf8_lossy(&created.body));
    let id = created.json()["data"]["id"].as_i64().unwrap();
    for _ in 0..LISTS {
        assert_eq!(send(addr, "GET", "/api/rooms", None).await.status, 200);
    }
    let missing = send(addr, "GET", &format!("/api/rooms/{}", id + 1000), None).await;
    assert_eq!(missing.status, 404);

    let mut socket = WsClient::connect(addr, "/socket/websocket?vsn=2.0.0").await;
    assert_eq!(socket.join("1", "room:lobby").await, ("ok".to_owned(), json!({})));
    let (status, response) = socket.join("2", &format!("room:{}", id + 1000)).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "room not found"})));

    let samples = scrape(addr).await;
    let dispatch = "fawkes_router_dispatch_stop_duration_seconds";
    let count = format!("{dispatch}_count");
    let rooms_ok = [("route", "/api/rooms"), ("method", "GET"), ("status", "2xx")];
    assert_eq!(metric(&samples, &count, &rooms_ok), LISTS as f64, "GET /api/rooms");
    let created_ok = [("route", "/api/rooms"), ("method", "POST"), ("status", "2xx")];
    assert_eq!(metric(&samples, &count, &created_ok), 1.0, "POST /api/rooms");
    // The label is the route pattern, never the client's path, so ids cannot explode it.
    let show = [("route", "/api/rooms/:id"), ("method", "GET"), ("status", "4xx")];
    assert_eq!(metric(&samples, &count, &show), 1.0, "GET /api/rooms/:id");
    assert!(
        !samples.iter().any(|s| s.labels.get("route").is_some_and(|r| r.contains(&id.to_string()))),
        "a route label holds a request path"
    );

    // The histogram is a real one: buckets never decrease, and the last holds every request.
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == format!("{dispatch}_bucket"))
        .filter(|s| rooms_ok.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| (s.labels["le"].parse::<f64>().expect("le is a number"), s.value))
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 1, "histogram buckets: {buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative buckets: {buckets:?}");
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, LISTS as f64), "+Inf bucket");
    assert!(metric(&samples, &format!("{dispatch}_sum"), &rooms_ok) > 0.0, "durations summed");

    let endpoint = "fawkes_endpoint_stop_duration_seconds_bucket";
    let all_gets = [("method", "GET"), ("status", "2xx"), ("le", "+Inf")];
    assert!(metric(&samples, endpoint, &all_gets) >= LISTS as f64, "endpoint GET requests");

    let connected = [("transport", "websocket"), ("vsn", "2.0.0"), ("result", "ok")];
    assert_eq!(metric(&samples, "fawkes_socket_connected_total", &connected), 1.0);
    let joined = "fawkes_channel_joined_total";
    assert_eq!(metric(&samples, joined, &[("channel", "room:*"), ("result", "ok")]), 1.0);
    assert_eq!(metric(&samples, joined, &[("channel", "room:*"), ("result", "error")]), 1.0);
    // Both join replies went from a channel to its client.
    assert!(metric(&samples, "fawkes_channel_pushes_total", &[]) >= 2.0, "channel pushes");

    // The socket gauge counts the open socket; it is raised by the socket task, which may
    // start just after the upgrade was answered.
    tests::eventually_async(Duration::from_secs(5), "fawkes_sockets to be 1", || async {
        metric(&scrape(addr).await, "fawkes_sockets", &[]) == 1.0
    })
    .await;
    drop(socket);
    tests::eventually_async(Duration::from_secs(5), "fawkes_sockets to drop to 0", || async {
        metric(&scrape(addr).await, "fawkes_sockets", &[]) == 0.0
    })
    .await;
}

#[tokio::test]
async fn json_logs_are_one_object_a_line() {
    let mut app =
        App::start_with("json-logs", 0, &[("LOG_FORMAT", "json"), ("RUST_LOG", "info")], true);
    let addr = app.addr;

    // Request ids come back to the client, who can quote them when reporting a problem.
    let id = "deploy-check-0123456789abcdef";
    let resp = send_with_header(addr, "/api/rooms", ("x-request-id", id)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-request-id"), Some(id), "the request id is echoed");
    let fresh = send(addr, "GET", "/api/rooms", None).await;
    let fresh = fresh.header("x-request-id").expect("a request id is made when none is sent");
    assert!(fresh.len() >= 20 && fresh != id, "a fresh id: {fresh}");

    app.terminate();
    let status = app
        .wait_exit(Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 5))
        .expect("the app exits within its shutdown deadline");
    assert!(status.success(), "exit status {status:?}");

    let lines = app.stderr_lines();
    let mut messages = Vec::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("a log line that is not JSON ({err}): {line}"));
        let object = entry.as_object().unwrap_or_else(|| panic!("not a JSON object: {line}"));
        let level = object.get("level").and_then(Value::as_str);
        assert!(
            matches!(level, Some("TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR")),
            "no level: {line}"
        );
        assert!(object.get("timestamp").is_some_and(Value::is_string), "no timestamp: {line}");
        assert!(object.get("target").is_some_and(Value::is_string), "no target: {line}");
        let fields = object.get("fields").and_then(Value::as_object);
        let fields = fields.unwrap_or_else(|| panic!("no fields object: {line}"));
        messages.push((fields["message"].as_str().unwrap_or_default().to_owned(), entry.clone()));
    }
    let find = |message: &str| {
        messages
            .iter()
            .find(|(m, _)| m == message)
            .map(|(_, entry)| entry)
            .unwrap_or_else(|| panic!("no {message:?} line in:\n{}", lines.join("\n")))
    };
    // Structured fields stay fields, not text in the message: here the bound address.
    let listening = find("endpoint listening");
    assert_eq!(listening["fields"]["addr"], addr.to_string(), "{listening}");
    assert_eq!(listening["level"], "INFO");
    find("SIGTERM received, shutting down");
    assert_eq!(messages.last().map(|(m, _)| m.as_str()), Some("stopped"), "the last line");
    // Every request logs one line in its span, which carries the request's id.
    let sent: Vec<&Value> =
        messages.iter().filter(|(m, _)| m == "sent").map(|(_, entry)| entry).collect();
    let echoed = sent
        .iter()
        .find(|entry| entry["span"]["request_id"] == id)
        .unwrap_or_else(|| panic!("no request line with id {id} in:\n{}", lines.join("\n")));
    assert_eq!(echoed["span"]["method"], "GET", "{echoed}");
    assert_eq!(echoed["span"]["path"], "/api/rooms", "{echoed}");
    assert_eq!(echoed["fields"]["status"], 200, "{echoed}");
    assert!(
        sent.iter().any(|entry| entry["span"]["request_id"] == fresh),
        "the fresh id is logged"
    );
}
