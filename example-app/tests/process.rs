//! The real binary over real TCP: start-up contract, the API, and graceful shutdown on SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const STARTUP_DEADLINE: Duration = Duration::from_secs(60);
const DRAIN_DELAY_SECS: u64 = 3;
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// The app as a child process; killed if a test fails before it exits.
struct App {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl App {
    fn start(name: &str, drain_delay_secs: u64) -> Self {
        let dir =
            std::env::temp_dir().join(format!("fawkes-example-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_example-app"))
            .current_dir(&dir)
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env_remove("DATABASE_URL")
            .env("SHUTDOWN_TIMEOUT_SECS", SHUTDOWN_TIMEOUT_SECS.to_string())
            .env("DRAIN_DELAY_SECS", drain_delay_secs.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("example-app starts");

        // The first stdout line announces the URL; read it on a thread so a silent child
        // fails the test at the deadline instead of hanging it.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(STARTUP_DEADLINE) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!("no URL line within {STARTUP_DEADLINE:?}: {other:?}");
            }
        };
        let url = line
            .strip_prefix("Fawkes example app listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        let addr = url.parse().unwrap_or_else(|_| panic!("not an address: {url:?}"));
        Self { child, addr, dir }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Polls for the exit status until `deadline` passes.
    fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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

/// Polls `check` every 20 ms until it holds or `deadline` passes.
async fn eventually<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    eventually(Duration::from_secs(DRAIN_DELAY_SECS), "/readyz to answer 503", || async {
        let resp = try_send(addr, "GET", "/readyz", None).await;
        resp.is_some_and(|r| r.status == 503 && r.json() == json!({"status": "draining"}))
    })
    .await;
    // Then the listener closes.
    eventually(Duration::from_secs(DRAIN_DELAY_SECS + 5), "the listener to close", || async {
        TcpStream::connect(addr).await.is_err()
    })
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
