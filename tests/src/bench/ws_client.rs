//! The WebSocket load client: `bench ws-client <fawkes|tungstenite> --port P --conns N
//! --first-ip K --expect M --timeout S [--join 0] [--topics R]`.
//!
//! One process holds at most a few thousand sockets, well under the open-file limit; the
//! driver starts several. Each socket binds its own loopback source address
//! (127.0.0.K, 127.0.0.K+1, ...) so that no single address runs out of ephemeral ports.
//!
//! It prints `joined <n> <µs>` once every socket has joined (or the first failure), then
//! counts the broadcasts each socket receives: `drained` once every socket has the M of the
//! burst, then, with `--paced K`, until every socket also has the K paced ones (marked
//! `"p":1`) or the timeout passes; then one JSON line: deliveries, the last delivery time,
//! latency histograms of the burst and of the paced broadcasts, and the slowest socket of
//! each paced broadcast. It keeps its sockets open until its stdin closes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::ws_server::{now_micros, WsKind, TOPIC};

/// Latency histogram resolution, in microseconds.
pub(crate) const BUCKET_US: u64 = 50;
/// How many handshakes one process keeps in flight.
const IN_FLIGHT: usize = 128;
/// Source addresses 127.0.0.K.. are used round robin over this many.
pub(crate) const SOURCE_ADDRS: u32 = 50;

/// What the command line asked for.
#[derive(Debug)]
struct Args {
    kind: WsKind,
    port: u16,
    conns: usize,
    first_ip: u32,
    expect: usize,
    timeout: Duration,
    /// Paced broadcasts expected after the burst.
    paced: usize,
    /// `--join 0` leaves the sockets connected but unjoined, to tell the socket's memory
    /// from the channel's.
    join: bool,
    /// `--topics R` spreads the sockets over `room:1` to `room:R` (an application's rooms)
    /// instead of the bench server's one topic.
    topics: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let kind = WsKind::parse(args.first().context("ws-client needs a server kind")?)?;
    let mut parsed = Args {
        kind,
        port: 0,
        conns: 1,
        first_ip: 2,
        expect: 1,
        timeout: Duration::from_secs(60),
        paced: 0,
        join: true,
        topics: 0,
    };
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => parsed.port = value.parse()?,
            "--conns" => parsed.conns = value.parse()?,
            "--first-ip" => parsed.first_ip = value.parse()?,
            "--expect" => parsed.expect = value.parse()?,
            "--timeout" => parsed.timeout = Duration::from_secs(value.parse()?),
            "--join" => parsed.join = value != "0",
            "--paced" => parsed.paced = value.parse()?,
            "--topics" => parsed.topics = value.parse()?,
            _ => bail!("unknown ws-client option `{flag}`"),
        }
    }
    anyhow::ensure!(parsed.port != 0, "ws-client needs --port");
    Ok(parsed)
}

/// The `bench ws-client` subcommand.
pub(crate) fn main(args: &[String]) -> anyhow::Result<()> {
    let args = parse(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to build the tokio runtime")?;
    runtime.block_on(run(args))
}

pub(crate) type Ws = WebSocketStream<tokio::net::TcpStream>;

async fn run(args: Args) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + args.timeout;
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut joins = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        let source = Ipv4Addr::from(
            u32::from(Ipv4Addr::new(127, 0, 0, 0)) + args.first_ip + (i as u32 % SOURCE_ADDRS),
        );
        let gate = gate.clone();
        let (kind, join) = (args.kind, args.join);
        let topic = match args.topics {
            0 => TOPIC.to_owned(),
            rooms => format!("room:{}", i % rooms + 1),
        };
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let connecting = connect(kind, join.then_some(topic.as_str()), source, server);
            tokio::time::timeout(Duration::from_secs(20), connecting)
                .await
                .context("connect and join timed out")?
        }));
    }
    let mut sockets = Vec::with_capacity(args.conns);
    for join in joins {
        sockets.push(tokio::time::timeout_at(deadline, join).await.context("join timed out")???);
    }
    let elapsed = started.elapsed();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "joined {} {}", sockets.len(), elapsed.as_micros())?;
    stdout.flush()?;
    drop(stdout);

    let expect = Expect { burst: args.expect, paced: args.paced };
    let drained = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(sockets.len());
    for mut ws in sockets {
        let drained = drained.clone();
        tasks.push(tokio::spawn(async move {
            let got = receive(&mut ws, expect, deadline, drained).await;
            (got, ws)
        }));
    }
    // `drained` tells the driver the burst is through, so the paced broadcasts meet idle
    // sockets (or that the deadline passed: the counts below say what arrived).
    let total = tasks.len();
    while drained.load(Ordering::Acquire) < total && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "drained")?;
    stdout.flush()?;
    drop(stdout);
    let mut deliveries = 0u64;
    let mut paced = 0u64;
    let mut last = 0u64;
    let mut hist: BTreeMap<u64, u64> = BTreeMap::new();
    let mut paced_hist: BTreeMap<u64, u64> = BTreeMap::new();
    // The slowest socket of each paced broadcast, in the order they were sent.
    let mut paced_worst = vec![0u64; args.paced];
    // Every socket stays open until the driver has every client's result: a socket closed as
    // soon as it has its last broadcast would have the server handle closes in the middle of
    // the last fan-out, and charge them to the slowest deliveries.
    let mut open = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (got, ws) = task.await?;
        open.push(ws);
        deliveries += got.latencies.len() as u64;
        paced += got.paced.len() as u64;
        last = last.max(got.last);
        for latency in got.latencies {
            *hist.entry(latency / BUCKET_US).or_default() += 1;
        }
        for (i, latency) in got.paced.into_iter().enumerate() {
            if let Some(worst) = paced_worst.get_mut(i) {
                *worst = (*worst).max(latency);
            }
            *paced_hist.entry(latency / BUCKET_US).or_default() += 1;
        }
    }
    let pairs = |h: BTreeMap<u64, u64>| h.into_iter().map(|(b, n)| [b, n]).collect::<Vec<_>>();
    let line = json!({
        "deliveries": deliveries,
        "last_us": last,
        "hist": pairs(hist),
        "paced": paced,
        "paced_hist": pairs(paced_hist),
        "paced_worst_us": paced_worst,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    drop(stdout);
    // The driver closes stdin (or exits) once it has read every client's line.
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await;
    drop(open);
    Ok(())
}

/// Opens a socket from `source` and, given a topic, joins it (the bench server's own
/// socket ignores which).
pub(crate) async fn connect(
    kind: WsKind,
    join: Option<&str>,
    source: Ipv4Addr,
    server: SocketAddr,
) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))
        .with_context(|| format!("cannot bind {source}"))?;
    let stream = socket.connect(server).await.context("connect failed")?;
    stream.set_nodelay(true)?;
    let url = match kind {
        WsKind::Fawkes => format!("ws://{server}/socket/websocket?vsn=2.0.0"),
        WsKind::Tungstenite => format!("ws://{server}/"),
    };
    // tungstenite's default read buffer is 128 KiB, and it zeroes the free part before every
    // read: the load generator would spend more CPU per broadcast than the server under test.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    let Some(topic) = join else {
        return Ok(ws);
    };
    let join = match kind {
        WsKind::Fawkes => json!(["1", "1", topic, "phx_join", {}]).to_string(),
        WsKind::Tungstenite => "join".to_owned(),
    };
    ws.send(Message::text(join)).await?;
    while let Some(msg) = ws.next().await {
        if let Message::Text(text) = msg? {
            let ok = match kind {
                WsKind::Fawkes => text.contains("\"phx_reply\"") && text.contains("\"ok\""),
                WsKind::Tungstenite => text.as_str() == "ok",
            };
            anyhow::ensure!(ok, "join refused: {text}");
            return Ok(ws);
        }
    }
    bail!("the server closed the socket before the join reply")
}

/// What one socket received: latencies of the burst, the time of its last burst delivery,
/// and latencies of the paced broadcasts.
pub(crate) struct Received {
    pub(crate) latencies: Vec<u64>,
    pub(crate) last: u64,
    pub(crate) paced: Vec<u64>,
}

/// How many broadcasts of each kind a socket waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    pub(crate) burst: usize,
    pub(crate) paced: usize,
}

pub(crate) async fn receive(
    ws: &mut Ws,
    expect: Expect,
    deadline: tokio::time::Instant,
    drained: Arc<AtomicUsize>,
) -> Received {
    let mut got =
        Received { latencies: Vec::with_capacity(expect.burst), last: 0, paced: Vec::new() };
    let mut counted = false;
    // One timer for the whole wait rather than one per message: on a busy client, arming and
    // disarming a timer per frame costs as much as reading it.
    let _ = tokio::time::timeout_at(deadline, async {
        loop {
            if !counted && got.latencies.len() >= expect.burst {
                drained.fetch_add(1, Ordering::AcqRel);
                counted = true;
            }
            if got.latencies.len() >= expect.burst && got.paced.len() >= expect.paced {
                break;
            }
            let Some(Ok(msg)) = ws.next().await else { break };
            let Message::Text(text) = msg else { continue };
            if let Some(sent) = timestamp(text.as_str()) {
                let now = now_micros();
                if text.as_str().contains("\"p\":1") {
                    got.paced.push(now.saturating_sub(sent));
                } else {
                    got.latencies.push(now.saturating_sub(sent));
                    got.last = now;
                }
            }
        }
    })
    .await;
    if !counted {
        drained.fetch_add(1, Ordering::AcqRel);
    }
    got
}

/// The `"t":<µs>` of a broadcast, in either server's framing.
pub(crate) fn timestamp(text: &str) -> Option<u64> {
    let rest = &text[text.find("\"t\":")? + 4..];
    let digits = rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_timestamp_of_both_framings() {
        assert_eq!(timestamp("{\"t\":123}"), Some(123));
        assert_eq!(timestamp("[null,null,\"room:bench\",\"blast\",{\"t\":45}]"), Some(45));
        assert_eq!(timestamp("[null,null,\"room:bench\",\"blast\",{}]"), None);
    }
}
