//! A minimal blocking HTTP/1.1 client over a raw socket, for readiness and for checking that
//! every server answers with the same bytes. It sees the response exactly as wrk does, with
//! nothing in between that could normalise it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::scenario::Scenario;

/// A response as it came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    /// Lower-cased names, sorted, without `date` (the one header that changes every second).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Sends one request on a fresh connection and reads the response to the end.
///
/// # Errors
///
/// When the connection fails or the response is not HTTP/1.1.
pub(crate) fn send(addr: SocketAddr, scenario: Scenario) -> anyhow::Result<RawResponse> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let body = scenario.body().unwrap_or_default();
    let mut request = format!(
        "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n",
        scenario.method(),
        scenario.path()
    );
    if !body.is_empty() {
        request.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> anyhow::Result<RawResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let Some(status) = status_line.strip_prefix("HTTP/1.1 ") else {
        bail!("not an HTTP/1.1 status line: {status_line:?}");
    };
    let status = status.get(..3).and_then(|s| s.parse().ok()).context("no status code")?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').context("malformed header line")?;
        let name = name.trim().to_ascii_lowercase();
        if name != "date" {
            headers.push((name, value.trim().to_owned()));
        }
    }
    headers.sort();
    Ok(RawResponse { status, headers, body: raw[split + 4..].to_vec() })
}

/// Checks one scenario's response against the expected bytes.
///
/// # Errors
///
/// Names what differs.
pub(crate) fn check(addr: SocketAddr, scenario: Scenario) -> anyhow::Result<RawResponse> {
    let resp = send(addr, scenario)?;
    if resp.status != 200 {
        bail!("{} answered {} (body {:?})", scenario.name(), resp.status, lossy(&resp.body));
    }
    if resp.body != scenario.expected_body() {
        bail!(
            "{} answered body {:?}, expected {:?}",
            scenario.name(),
            lossy(&resp.body),
            lossy(&scenario.expected_body())
        );
    }
    let content_type = resp.header("content-type");
    if content_type != Some(scenario.expected_content_type()) {
        bail!("{} answered content-type {content_type:?}", scenario.name());
    }
    let bench = resp.header(crate::scenario::BENCH_HEADER.as_str());
    if bench != Some(crate::scenario::BENCH_HEADER_VALUE) {
        bail!("{} answered without the bench header", scenario.name());
    }
    Ok(resp)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response_and_drops_the_date() {
        let raw = b"HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 2\r\nX-B: 1\r\n\r\nhi";
        let resp = parse(raw).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.headers,
            [("content-length".into(), "2".into()), ("x-b".into(), "1".into())]
        );
        assert_eq!(resp.body, b"hi");
        assert!(parse(b"HTTP/1.0 200 OK\r\n\r\n").is_err());
    }
}
