//! The WebSocket suite: broadcast fan-out through Fawkes channels against a bare
//! tokio-tungstenite server holding one `tokio::sync::broadcast` channel, and Fawkes on two
//! nodes sharing a Redis (the broadcasts leave one node, the sockets are spread over both).
//!
//! For each server: start it (`bench server ws-*`), read its RSS, open N sockets from several
//! `bench ws-client` processes and join one topic on each, read its RSS again, have it
//! broadcast M timestamped messages back to back, and collect what every socket received.
//! The RSS growth over N is the memory one idle joined socket costs; deliveries per second
//! run from the first broadcast to the last delivery; latency is receive time minus the
//! timestamp in the payload, on the one machine clock.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::report::Settings;
use crate::ws_client::BUCKET_US;
use crate::ws_server::WsKind;

/// How one run is sized.
#[derive(Debug, Clone, Copy)]
struct Plan {
    connections: usize,
    clients: usize,
    broadcasts: u32,
    /// Broadcasts sent one at a time after the burst, `gap` apart: their latency is that of
    /// one broadcast's fan-out to every socket.
    paced: u32,
    gap: Duration,
    /// Every client gives up after this long.
    client_timeout: Duration,
    /// Tokio workers per server: one per core, as a deployed server runs. The fan-out of one
    /// broadcast is a write per socket, and the kernel's share of each (about 10 µs on loopback
    /// here) is most of its cost; the load clients need little CPU.
    workers: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                connections: 1_000,
                clients: 1,
                broadcasts: 10,
                paced: 5,
                gap: Duration::from_millis(200),
                client_timeout: Duration::from_secs(30),
                workers: cores(),
            }
        } else {
            Self {
                connections: 18_000,
                clients: 4,
                broadcasts: 50,
                paced: 10,
                gap: Duration::from_millis(500),
                client_timeout: Duration::from_secs(120),
                workers: cores(),
            }
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The name of the two-node row.
const CLUSTER: &str = "fawkes-redis-2node";

/// What one server (or cluster) measured.
#[derive(Debug, Clone)]
struct WsRow {
    name: &'static str,
    nodes: usize,
    connections: usize,
    connect_rate_per_s: f64,
    rss_per_conn_bytes: f64,
    deliveries: u64,
    deliveries_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    paced_p50_ms: f64,
    paced_p99_ms: f64,
}

/// Runs the WebSocket suite and prints its table.
///
/// # Errors
///
/// When a server or client fails, or a broadcast does not reach every socket.
pub(crate) fn run(settings: &Settings, workers: Option<usize>) -> anyhow::Result<Vec<Value>> {
    let mut plan = Plan::new(settings.quick);
    if let Some(workers) = workers {
        plan.workers = workers.max(1);
    }
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut rows = Vec::new();
    for kind in WsKind::ALL {
        eprintln!(
            "== ws {}: {} sockets over {} client process(es), {} broadcasts",
            kind.name(),
            plan.connections,
            plan.clients,
            plan.broadcasts
        );
        let workers = plan.workers.to_string();
        let server = spawn_server(exe.as_path(), kind.server_arg(), &["--workers", &workers])?;
        let row = run_load(&exe, kind, vec![server], plan, kind.name())
            .with_context(|| format!("ws {}", kind.name()))?;
        rows.push(row);
    }
    if redis_installed() {
        eprintln!(
            "== ws {CLUSTER}: {} sockets over two Fawkes nodes sharing a Redis, {} broadcasts \
             from one node",
            plan.connections, plan.broadcasts
        );
        let redis = ::tests::RedisServer::start();
        let url = redis.url();
        let workers = plan.workers.to_string();
        let nodes = (0..2)
            .map(|_| {
                spawn_server(exe.as_path(), "ws-fawkes", &["--redis", &url, "--workers", &workers])
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        rows.push(run_load(&exe, WsKind::Fawkes, nodes, plan, CLUSTER).context(CLUSTER)?);
    } else {
        eprintln!("== ws {CLUSTER}: skipped, redis-server is not installed");
    }
    print(&rows, plan)?;
    let fawkes = rows.iter().find(|r| r.name == "fawkes").map(|r| r.deliveries_per_s);
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "server": r.name,
                "nodes": r.nodes,
                "connections": r.connections,
                "broadcasts": plan.broadcasts,
                "workers": plan.workers,
                "connect_rate_per_s": round(r.connect_rate_per_s, 1),
                "rss_per_conn_bytes": round(r.rss_per_conn_bytes, 1),
                "deliveries": r.deliveries,
                "deliveries_per_s": round(r.deliveries_per_s, 1),
                "p50_ms": round(r.p50_ms, 3),
                "p99_ms": round(r.p99_ms, 3),
                "paced_broadcasts": plan.paced,
                "paced_p50_ms": round(r.paced_p50_ms, 3),
                "paced_p99_ms": round(r.paced_p99_ms, 3),
                "fawkes_over_this_deliveries": fawkes.map(|f| round(f / r.deliveries_per_s, 4)),
            })
        })
        .collect())
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

fn print(rows: &[WsRow], plan: Plan) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nWebSocket broadcast: {} joined sockets, {} broadcasts back to back; {} tokio worker(s) \
         per server.",
        plan.connections, plan.broadcasts, plan.workers
    )?;
    writeln!(
        out,
        "{:<12} {:>7} {:>10} {:>12} {:>11} {:>12} {:>8} {:>8} {:>10} {:>9} {:>9}",
        "server",
        "conns",
        "conn/s",
        "rss B/conn",
        "deliveries",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "fawkes/x",
        "1-msg p50",
        "1-msg p99"
    )?;
    let fawkes = rows.iter().find(|r| r.name == "fawkes").map(|r| r.deliveries_per_s);
    for r in rows {
        writeln!(
            out,
            "{:<12} {:>7} {:>10.0} {:>12.0} {:>11} {:>12.0} {:>8.2} {:>8.2} {:>10} {:>9.2} {:>9.2}",
            r.name,
            r.connections,
            r.connect_rate_per_s,
            r.rss_per_conn_bytes,
            r.deliveries,
            r.deliveries_per_s,
            r.p50_ms,
            r.p99_ms,
            fawkes.map_or("-".to_owned(), |f| format!("{:.2}", f / r.deliveries_per_s)),
            r.paced_p50_ms,
            r.paced_p99_ms,
        )?;
    }
    writeln!(
        out,
        "rss B/conn: server RSS growth from before connecting to all joined, over the sockets; \
         fawkes/x: Fawkes' deliveries/s over this server's; p50/p99: latency over the burst of \
         back-to-back broadcasts; 1-msg p50/p99: over broadcasts sent one at a time after it (one \
         broadcast's fan-out to every socket).\n{CLUSTER}: two Fawkes nodes on one \
         Redis, half the sockets on each, every broadcast made on the first node (so half the \
         deliveries go through Redis); rss summed over both nodes."
    )?;
    Ok(())
}

/// A child process speaking one line at a time on stdin and stdout.
pub(crate) struct LineChild {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    name: String,
}

impl LineChild {
    pub(crate) fn spawn(command: &mut Command, name: &str) -> anyhow::Result<Self> {
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command.spawn().with_context(|| format!("failed to start {name}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Self { child, stdin, lines, name: name.to_owned() })
    }

    pub(crate) fn line(&self, timeout: Duration) -> anyhow::Result<String> {
        self.lines
            .recv_timeout(timeout)
            .with_context(|| format!("{} said nothing within {timeout:?}, or exited", self.name))
    }

    fn ask(&mut self, command: &str, timeout: Duration) -> anyhow::Result<String> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("{} is gone", self.name))?;
        self.line(timeout)
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        // Closing stdin asks a server to stop; the guard kills whatever is left.
        self.stdin.take();
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn redis_installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `bench server <arg> --port 0 <extra>` and reads its port.
fn spawn_server(
    exe: &std::path::Path,
    arg: &str,
    extra: &[&str],
) -> anyhow::Result<(LineChild, u16)> {
    let server = LineChild::spawn(
        Command::new(exe).args(["server", arg, "--port", "0"]).args(extra),
        &format!("ws server {arg}"),
    )?;
    let port: u16 =
        server.line(Duration::from_secs(20))?.trim().parse().context("the server's port")?;
    Ok((server, port))
}

/// Sums the servers' RSS.
fn rss(servers: &mut [(LineChild, u16)]) -> anyhow::Result<u64> {
    let mut total = 0;
    for (server, _) in servers {
        total += server.ask("rss", Duration::from_secs(10))?.trim().parse::<u64>()?;
    }
    Ok(total)
}

/// Spreads the sockets over `servers` (client process i on server i mod n), then has the
/// first server broadcast.
fn run_load(
    exe: &std::path::Path,
    kind: WsKind,
    mut servers: Vec<(LineChild, u16)>,
    plan: Plan,
    name: &'static str,
) -> anyhow::Result<WsRow> {
    let short = Duration::from_secs(10);
    let rss_before = rss(&mut servers)?;
    let client_count = plan.clients.max(servers.len());
    let per_client = plan.connections.div_ceil(client_count);
    let mut clients = Vec::new();
    let mut remaining = plan.connections;
    for i in 0..client_count {
        let conns = per_client.min(remaining);
        remaining -= conns;
        let port = servers[i % servers.len()].1;
        let args = [
            "ws-client".to_owned(),
            kind.name().to_owned(),
            "--port".to_owned(),
            port.to_string(),
            "--conns".to_owned(),
            conns.to_string(),
            "--first-ip".to_owned(),
            (2 + i * crate::ws_client::SOURCE_ADDRS as usize).to_string(),
            "--expect".to_owned(),
            plan.broadcasts.to_string(),
            "--timeout".to_owned(),
            plan.client_timeout.as_secs().to_string(),
            "--paced".to_owned(),
            plan.paced.to_string(),
        ];
        clients.push(LineChild::spawn(Command::new(exe).args(&args), &format!("ws client {i}"))?);
    }
    let mut joined = 0usize;
    let mut slowest_us = 0u64;
    for client in &clients {
        let line = client.line(plan.client_timeout)?;
        let mut words = line.split_whitespace();
        anyhow::ensure!(words.next() == Some("joined"), "unexpected client line `{line}`");
        joined += words.next().context("joined count")?.parse::<usize>()?;
        slowest_us = slowest_us.max(words.next().context("join time")?.parse()?);
    }
    anyhow::ensure!(joined == plan.connections, "only {joined} sockets joined");
    let connect_rate_per_s = joined as f64 / (slowest_us.max(1) as f64 / 1e6);
    let rss_after = rss(&mut servers)?;
    eprintln!(
        "   {} sockets joined at {connect_rate_per_s:.0}/s; RSS {} -> {} KiB",
        joined,
        rss_before / 1024,
        rss_after / 1024
    );

    let sent = servers[0].0.ask(&format!("blast {}", plan.broadcasts), plan.client_timeout)?;
    let mut words = sent.split_whitespace();
    anyhow::ensure!(words.next() == Some("sent"), "unexpected server line `{sent}`");
    let first_us: u64 = words.next().context("first broadcast time")?.parse()?;
    for client in &clients {
        let line = client.line(plan.client_timeout + short)?;
        anyhow::ensure!(line == "drained", "unexpected client line `{line}`");
    }
    let pace = format!("pace {} {}", plan.paced, plan.gap.as_millis());
    let paced_time = plan.gap * plan.paced + short;
    let sent = servers[0].0.ask(&pace, paced_time)?;
    anyhow::ensure!(sent.starts_with("sent"), "unexpected server line `{sent}`");

    let mut deliveries = 0u64;
    let mut last_us = first_us;
    let mut hist: Vec<(u64, u64)> = Vec::new();
    let mut paced = 0u64;
    let mut paced_hist: Vec<(u64, u64)> = Vec::new();
    for client in &clients {
        let line = client.line(plan.client_timeout + short)?;
        let result: Value = serde_json::from_str(&line).context("client result")?;
        deliveries += result["deliveries"].as_u64().context("deliveries")?;
        last_us = last_us.max(result["last_us"].as_u64().unwrap_or(0));
        for pair in result["hist"].as_array().context("hist")? {
            hist.push((pair[0].as_u64().unwrap_or(0), pair[1].as_u64().unwrap_or(0)));
        }
        paced += result["paced"].as_u64().context("paced")?;
        for pair in result["paced_hist"].as_array().context("paced_hist")? {
            paced_hist.push((pair[0].as_u64().unwrap_or(0), pair[1].as_u64().unwrap_or(0)));
        }
    }
    let expected = plan.connections as u64 * u64::from(plan.broadcasts);
    if deliveries != expected {
        bail!("{deliveries} of {expected} broadcasts were delivered");
    }
    let expected_paced = plan.connections as u64 * u64::from(plan.paced);
    if paced != expected_paced {
        bail!("{paced} of {expected_paced} paced broadcasts were delivered");
    }
    hist.sort_unstable();
    paced_hist.sort_unstable();
    let span_s = (last_us.saturating_sub(first_us)).max(1) as f64 / 1e6;
    Ok(WsRow {
        name,
        nodes: servers.len(),
        connections: joined,
        connect_rate_per_s,
        rss_per_conn_bytes: rss_after.saturating_sub(rss_before) as f64 / joined as f64,
        deliveries,
        deliveries_per_s: deliveries as f64 / span_s,
        p50_ms: quantile(&hist, deliveries, 0.50),
        p99_ms: quantile(&hist, deliveries, 0.99),
        paced_p50_ms: quantile(&paced_hist, paced, 0.50),
        paced_p99_ms: quantile(&paced_hist, paced, 0.99),
    })
}

/// The `q` quantile of a sorted latency histogram, in ms, at the bucket's upper edge.
fn quantile(hist: &[(u64, u64)], total: u64, q: f64) -> f64 {
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for &(bucket, count) in hist {
        seen += count;
        if seen >= rank {
            return ((bucket + 1) * BUCKET_US) as f64 / 1000.0;
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_cumulative_counts() {
        // 90 samples in bucket 0 (< 50 µs), 10 in bucket 20 (1000..1050 µs).
        let hist = [(0, 90), (20, 10)];
        assert_eq!(quantile(&hist, 100, 0.5), 0.05);
        assert_eq!(quantile(&hist, 100, 0.99), 1.05);
        assert_eq!(quantile(&hist, 100, 0.90), 0.05);
    }
}
