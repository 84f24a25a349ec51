//! The HTTP/2 suite: Fawkes, axum and bare hyper answer the plaintext scenario over HTTP/2,
//! with prior knowledge (`h2c`) and over TLS (ALPN `h2`), driven by h2load (Debian's
//! `nghttp2-client`, installed like wrk). The rounds interleave the servers as the HTTP/1.1
//! suite's do, and each peer is compared with Fawkes round by round.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::process::{ChildGuard, ScratchDir};
use crate::report::{median, Settings};
use crate::scenario::Scenario;
use crate::server::Kind;
use crate::wrk;

/// Connections h2load opens, and the streams it keeps in flight on each.
const CONNECTIONS: u32 = 16;
const STREAMS: u32 = 8;

/// One protocol of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    H2c,
    Tls,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::H2c => "h2c",
            Self::Tls => "h2 (TLS)",
        }
    }
}

/// A server child speaking HTTP/2.
struct Server {
    kind: Kind,
    _child: ChildGuard,
    url: String,
}

impl Server {
    fn start(exe: &Path, kind: Kind, mode: Mode, certs: &Path, pin: bool) -> anyhow::Result<Self> {
        let mut args = [kind.name(), "--port", "0"].map(std::ffi::OsStr::new).to_vec();
        match mode {
            Mode::H2c => args.extend(["--h2c", "on"].map(std::ffi::OsStr::new)),
            Mode::Tls => args.extend([std::ffi::OsStr::new("--tls"), certs.as_os_str()]),
        }
        let (child, port) = crate::process::spawn_server(exe, &args, pin, kind.name())?;
        let scheme = if mode == Mode::Tls { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{port}{}", Scenario::Plaintext.path());
        Ok(Self { kind, _child: child, url })
    }
}

/// h2load's result line: requests per second, once every request succeeded.
fn parse(output: &str) -> anyhow::Result<f64> {
    let rps = output
        .lines()
        .find_map(|l| l.strip_prefix("finished in "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.strip_suffix(" req/s"))
        .and_then(|r| r.trim().parse::<f64>().ok())
        .context("no `finished in ..., N req/s` line")?;
    let requests =
        output.lines().find_map(|l| l.strip_prefix("requests: ")).context("no `requests:` line")?;
    let count = |what: &str| {
        requests
            .split(", ")
            .find_map(|part| part.strip_suffix(what))
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    let (succeeded, failed, errored) = (count(" succeeded"), count(" failed"), count(" errored"));
    if succeeded.unwrap_or(0) == 0 || failed != Some(0) || errored != Some(0) {
        bail!("h2load: {requests}");
    }
    if output.lines().any(|l| l.starts_with("status codes:") && !l.contains(" 0 4xx, 0 5xx")) {
        bail!("h2load counted error statuses:\n{output}");
    }
    Ok(rps)
}

/// One h2load run of `duration` (or of `requests`, to check a server answers).
fn h2load(program: &Path, url: &str, duration: Option<Duration>, pin: bool) -> anyhow::Result<f64> {
    let mut command = crate::process::command_on(pin.then_some("1"), program);
    command.args(["-t", "1", "-c", &CONNECTIONS.to_string(), "-m", &STREAMS.to_string()]);
    match duration {
        Some(d) => command.args(["-D", &d.as_secs().max(1).to_string()]),
        None => command.args(["-n", "200"]),
    };
    command.arg(url).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = ChildGuard::spawn(&mut command, "h2load")?;
    let mut stdout = child.take_stdout().context("h2load stdout is not piped")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let limit = duration.unwrap_or(Duration::ZERO) + Duration::from_secs(30);
    let status = child.wait_until(Instant::now() + limit)?;
    let output = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("h2load exited with {status}:\n{output}");
    }
    parse(&output)
}

/// Runs the suite: rows of `{protocol, server, best_rps, median_rps, ratio_to_fawkes,
/// rounds_rps}`.
///
/// # Errors
///
/// When h2load cannot be installed, a server does not start, or a run fails.
pub(crate) fn run(settings: &Settings, pin: bool) -> anyhow::Result<Vec<Value>> {
    let program = wrk::ensure_installed("h2load", "nghttp2-client")?;
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let scratch = ScratchDir::new()?;
    ::tests::write_self_signed(scratch.path())
        .map_err(|err| anyhow::anyhow!("cannot write a certificate: {err}"))?;
    let mut rows = Vec::new();
    for mode in [Mode::H2c, Mode::Tls] {
        let mut servers = Vec::new();
        for kind in Kind::ALL {
            let server = Server::start(&exe, kind, mode, scratch.path(), pin)
                .with_context(|| format!("{} over {}", kind.name(), mode.name()))?;
            // It answers, and is warmed up.
            let deadline = Instant::now() + Duration::from_secs(10);
            while let Err(err) = h2load(&program, &server.url, None, pin) {
                if Instant::now() > deadline {
                    return Err(err.context(format!(
                        "{} over {} never answered",
                        kind.name(),
                        mode.name()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            h2load(&program, &server.url, Some(settings.warmup), pin)?;
            servers.push(server);
        }
        let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
        for round in 0..settings.rounds as usize {
            eprintln!("== {} round {} of {}", mode.name(), round + 1, settings.rounds);
            for i in 0..servers.len() {
                let at = (i + round) % servers.len();
                let rps = h2load(&program, &servers[at].url, Some(settings.round), pin)
                    .with_context(|| format!("{} over {}", servers[at].kind.name(), mode.name()))?;
                rounds[at].push(rps);
            }
        }
        for (server, runs) in servers.iter().zip(&rounds) {
            let ratios: Vec<f64> = runs.iter().zip(&rounds[0]).map(|(r, f)| r / f).collect();
            rows.push(json!({
                "protocol": mode.name(),
                "server": server.kind.name(),
                "best_rps": runs.iter().copied().fold(0.0, f64::max).round(),
                "median_rps": median(runs.clone()).round(),
                "ratio_to_fawkes": (median(ratios) * 1000.0).round() / 1000.0,
                "rounds_rps": runs.iter().map(|r| r.round()).collect::<Vec<_>>(),
                "connections": CONNECTIONS,
                "streams_per_connection": STREAMS,
            }));
        }
        // Each server stops when its guard drops (its stdin closes).
        drop(servers);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h2load_output_is_read_and_failures_fail() {
        let ok = "finished in 1.00s, 54321.50 req/s, 1.23MB/s\n\
                  requests: 54321 total, 54321 started, 54321 done, 54321 succeeded, 0 failed, 0 errored, 0 timeout\n\
                  status codes: 54321 2xx, 0 3xx, 0 4xx, 0 5xx\n";
        assert!((parse(ok).unwrap() - 54_321.5).abs() < 1e-9);
        let failed = ok.replace("54321 succeeded, 0 failed", "54000 succeeded, 321 failed");
        assert!(parse(&failed).is_err());
        let errors = ok.replace("0 4xx, 0 5xx", "0 4xx, 12 5xx");
        assert!(parse(&errors).is_err());
        assert!(parse("nothing").is_err());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
