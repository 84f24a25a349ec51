//! Shared helpers for the integration tests and the benchmark harness.
//!
//! Every server binds `127.0.0.1:0` and every wait is bounded: a test that hangs is a failing
//! test, so network waits go through [`within`] and conditions are polled with [`eventually`]
//! rather than slept on. [`RawConn`] speaks HTTP/1.1 by hand over one TCP connection, for the
//! tests that need control a full client hides: keep-alive reuse, half-sent heads, stalls,
//! oversized headers, chunked bodies and watching the server close the socket.

mod redis_server;

pub use redis_server::RedisServer;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use fawkes::endpoint::RunningEndpoint;
use fawkes::Endpoint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The longest any single network wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// `127.0.0.1:0`: a loopback address on a port the kernel picks.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Starts `endpoint` on a free loopback port; its port is in [`RunningEndpoint::local_addr`].
///
/// # Panics
///
/// When the endpoint cannot start.
pub async fn start(endpoint: Endpoint) -> RunningEndpoint {
    init_tracing();
    endpoint.bind(loopback()).start().await.expect("endpoint starts on a loopback port")
}

/// Logs to the test output when `RUST_LOG` is set, so a failing run can be replayed with logs.
pub fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// Awaits `fut`, failing the test with `what` if it takes longer than `limit`.
///
/// # Panics
///
/// When `limit` passes first.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// Polls `check` every 10 ms until it holds, failing the test with `what` after `limit`.
///
/// # Panics
///
/// When `check` still fails at the deadline.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    eventually_async(limit, what, || std::future::ready(check())).await;
}

/// Like [`eventually`], for a check that has to do I/O.
///
/// # Panics
///
/// When `check` still fails at the deadline.
pub async fn eventually_async<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if matches!(tokio::time::timeout(remaining, check()).await, Ok(true)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An HTTP/1.1-only client with the test deadline, ignoring any proxy settings.
///
/// # Panics
///
/// When the client cannot be built.
pub fn http1_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .expect("HTTP/1.1 client builds")
}

/// An HTTP/2 client speaking h2c with prior knowledge (no upgrade dance), with the deadline.
///
/// # Panics
///
/// When the client cannot be built.
pub fn http2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .expect("HTTP/2 client builds")
}

/// The bytes of an HTTP/1.1 request: `content-length` is added when there is a body.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `body` in the chunked transfer coding, `chunk` bytes at a time, with the final empty chunk.
pub fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / chunk.max(1) * 8 + 5);
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A response read off a [`RawConn`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lowercased) and values, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.text()))
    }
}

/// One HTTP/1.1 connection driven by hand.
///
/// Every read is bounded by [`DEADLINE`] and fails with [`io::ErrorKind::TimedOut`] past it.
#[derive(Debug)]
pub struct RawConn {
    reader: Reader,
    writer: OwnedWriteHalf,
}

impl RawConn {
    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// When the connection is refused or fails.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        let (half, writer) = stream.into_split();
        Ok(Self { reader: Reader { half, buf: Vec::new() }, writer })
    }

    /// Writes `bytes` as they are.
    ///
    /// # Errors
    ///
    /// When the write fails (the server closed the connection, for one).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes).await
    }

    /// Sends a GET for `path` and reads its response.
    ///
    /// # Errors
    ///
    /// When the connection fails or closes before a full response.
    pub async fn get(&mut self, path: &str) -> io::Result<RawResponse> {
        self.send(&request_bytes("GET", path, &[], b"")).await?;
        self.read_response().await
    }

    /// Writes `bytes` while already reading the response, for a server that may answer and
    /// close before it has read everything: a failed or unfinished write is ignored.
    ///
    /// # Errors
    ///
    /// As [`read_response`](Self::read_response).
    pub async fn send_reading_early(&mut self, bytes: &[u8]) -> io::Result<RawResponse> {
        let mut write = std::pin::pin!(self.writer.write_all(bytes));
        let mut read = std::pin::pin!(self.reader.read_response(true));
        let mut writing = true;
        loop {
            tokio::select! {
                resp = &mut read => return resp,
                _ = &mut write, if writing => writing = false,
            }
        }
    }

    /// Reads one response, its body framed by `content-length`, chunked coding, or the end of
    /// the connection.
    ///
    /// # Errors
    ///
    /// When the connection fails or closes before a full response, or a read passes the
    /// deadline.
    pub async fn read_response(&mut self) -> io::Result<RawResponse> {
        self.reader.read_response(true).await
    }

    /// Reads the head of a response that has no body whatever its headers say (the answer to
    /// a HEAD request).
    ///
    /// # Errors
    ///
    /// As [`read_response`](Self::read_response).
    pub async fn read_bodiless_response(&mut self) -> io::Result<RawResponse> {
        self.reader.read_response(false).await
    }

    /// Waits for the server to close the connection and returns whatever it sent first.
    ///
    /// # Errors
    ///
    /// When the connection is still open after `limit`, as [`io::ErrorKind::TimedOut`].
    /// A reset counts as closed.
    pub async fn closed_within(&mut self, limit: Duration) -> io::Result<Vec<u8>> {
        let reader = &mut self.reader;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, reader.half.read(&mut chunk)).await {
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "still open")),
                Ok(Ok(0)) => return Ok(std::mem::take(&mut reader.buf)),
                Ok(Ok(n)) => reader.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(err)) if is_reset(&err) => return Ok(std::mem::take(&mut reader.buf)),
                Ok(Err(err)) => return Err(err),
            }
        }
    }

    /// Whether the server sends anything (or closes) within `limit`; false means silence.
    ///
    /// # Errors
    ///
    /// When the read fails other than by a reset.
    pub async fn answers_within(&mut self, limit: Duration) -> io::Result<bool> {
        let reader = &mut self.reader;
        if !reader.buf.is_empty() {
            return Ok(true);
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(limit, reader.half.read(&mut chunk)).await {
            Err(_) => Ok(false),
            Ok(Ok(n)) => {
                reader.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Ok(Err(err)) if is_reset(&err) => Ok(true),
            Ok(Err(err)) => Err(err),
        }
    }
}

/// The read side of a [`RawConn`] and the bytes read but not yet parsed.
#[derive(Debug)]
struct Reader {
    half: OwnedReadHalf,
    buf: Vec<u8>,
}

impl Reader {
    /// Reads more bytes into the buffer; `Ok(false)` at the end of the stream.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(DEADLINE, self.half.read(&mut chunk))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "read timed out"))??;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    async fn fill_or_eof(&mut self, what: &str) -> io::Result<()> {
        if self.fill().await? {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("closed while reading {what}"),
            ))
        }
    }

    async fn read_response(&mut self, with_body: bool) -> io::Result<RawResponse> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill_or_eof("the response head").await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut response = RawResponse { status, headers, body: Vec::new() };
        if !with_body || status / 100 == 1 || status == 204 || status == 304 {
            return Ok(response);
        }
        if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().map_err(|_| invalid(format!("bad length {len:?}")))?;
            while self.buf.len() < len {
                self.fill_or_eof("the body").await?;
            }
            response.body = self.buf.drain(..len).collect();
        } else if response.header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
            response.body = self.read_chunked().await?;
        } else {
            while self.fill().await? {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    async fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                self.fill_or_eof("a chunk size").await?;
            };
            let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
            self.buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        self.buf.drain(..i + 2);
                        if i == 0 {
                            return Ok(body);
                        }
                    } else {
                        self.fill_or_eof("the trailers").await?;
                    }
                }
            }
            while self.buf.len() < size + 2 {
                self.fill_or_eof("a chunk").await?;
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }
}

fn is_reset(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes a self-signed certificate for `localhost` and `127.0.0.1`, valid for 30 days from an
/// hour ago, and its key, as `cert.pem` and `key.pem` in `dir` (created if missing): for the
/// suites that serve TLS.
///
/// # Errors
///
/// When the directory cannot be written or the certificate cannot be made.
pub fn write_self_signed(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let key = rcgen::KeyPair::generate()?;
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let mut params = rcgen::CertificateParams::new(names)?;
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - Duration::from_secs(3_600);
    params.not_after = now + Duration::from_secs(30 * 86_400);
    let cert = params.self_signed(&key)?;
    std::fs::write(dir.join("cert.pem"), cert.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    Ok(())
}
