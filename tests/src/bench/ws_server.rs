//! The WebSocket servers under test: `bench server ws-fawkes|ws-tungstenite --port P`.
//!
//! Both run on the same runtime, multi-thread with `--workers N` workers (one unless told), and
//! take commands on stdin, one per line, answering each with one stdout line:
//!
//! - `rss` → the process's resident set size in bytes;
//! - `blast M` → broadcasts M messages `{"t":<µs since the epoch>}` back to back, from a task
//!   on the runtime so that the fan-out runs on the server's one worker, then
//!   `sent <first µs> <last µs>`;
//! - `pace K G` → broadcasts K messages `{"t":<µs>,"p":1}` G ms apart (one at a time, so each
//!   one's delivery latency is the fan-out of a single broadcast), then `sent <first> <last>`.
//!
//! The first stdout line is the port; EOF on stdin stops the server. `ws-fawkes --redis URL`
//! makes the node one of several sharing that Redis; it announces its port once connected.

use std::io::{BufRead as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use fawkes::channel::{Channel, ChannelSocket, Reply};
use fawkes::serializer::Payload;
use fawkes::socket::{Channels, ConnectInfo, Refused, Socket};
use fawkes::{Endpoint, PubSub};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The topic every client joins.
pub(crate) const TOPIC: &str = "room:bench";
/// The event the broadcasts carry.
pub(crate) const EVENT: &str = "blast";

/// Which WebSocket server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WsKind {
    Fawkes,
    Tungstenite,
}

impl WsKind {
    pub(crate) const ALL: [WsKind; 2] = [Self::Fawkes, Self::Tungstenite];

    /// The name in reports and on the command line of `bench ws-client`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Fawkes => "fawkes",
            Self::Tungstenite => "tungstenite",
        }
    }

    /// The name after `bench server`.
    pub(crate) fn server_arg(self) -> &'static str {
        match self {
            Self::Fawkes => "ws-fawkes",
            Self::Tungstenite => "ws-tungstenite",
        }
    }

    pub(crate) fn parse(name: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name || k.server_arg() == name)
            .with_context(|| format!("unknown WebSocket server `{name}`"))
    }
}

/// Microseconds since the Unix epoch: the clock the clients share with the servers.
pub(crate) fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The resident set size of a process (`self`, or a pid), from `/proc/<it>/status`.
pub(crate) fn rss_bytes(process: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    let kib: u64 = line.split_whitespace().nth(1).context("no VmRSS value")?.parse()?;
    Ok(kib * 1024)
}

/// How a server broadcasts one message.
enum Broadcaster {
    Fawkes(PubSub),
    Tungstenite(broadcast::Sender<Utf8Bytes>),
}

impl Broadcaster {
    fn send(&self, at: u64, paced: bool) {
        match self {
            Self::Fawkes(pubsub) if paced => {
                pubsub.broadcast(TOPIC, EVENT, json!({ "t": at, "p": 1 }));
            }
            Self::Fawkes(pubsub) => pubsub.broadcast(TOPIC, EVENT, json!({ "t": at })),
            Self::Tungstenite(tx) => {
                let text = if paced {
                    format!("{{\"t\":{at},\"p\":1}}")
                } else {
                    format!("{{\"t\":{at}}}")
                };
                // No receivers is not an error here: the driver checks the deliveries.
                let _ = tx.send(Utf8Bytes::from(text));
            }
        }
    }
}

/// The `bench server ws-*` subcommand.
pub(crate) fn main(
    kind: WsKind,
    port: u16,
    redis: Option<String>,
    workers: usize,
) -> anyhow::Result<()> {
    crate::server::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .context("failed to build the tokio runtime")?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (addr, broadcaster) = runtime.block_on(async {
        match kind {
            WsKind::Fawkes => start_fawkes(addr, redis).await,
            WsKind::Tungstenite => start_tungstenite(addr).await,
        }
    })?;
    let broadcaster = std::sync::Arc::new(broadcaster);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", addr.port())?;
    stdout.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        match words.next() {
            Some("rss") => writeln!(stdout, "{}", rss_bytes("self")?)?,
            Some(command @ ("blast" | "pace")) => {
                let count: u32 =
                    words.next().with_context(|| format!("{command} needs a count"))?.parse()?;
                // `pace` spaces its broadcasts and marks them; `blast` sends them back to back.
                let gap = match command {
                    "pace" => {
                        let ms: u64 = words.next().context("pace needs a gap in ms")?.parse()?;
                        Some(Duration::from_millis(ms))
                    }
                    _ => None,
                };
                let b = broadcaster.clone();
                let (first, last) = runtime.block_on(async move {
                    runtime_task(async move {
                        let first = now_micros();
                        let mut last = first;
                        for i in 0..count {
                            if let (Some(gap), true) = (gap, i > 0) {
                                tokio::time::sleep(gap).await;
                            }
                            last = now_micros();
                            b.send(last, gap.is_some());
                        }
                        (first, last)
                    })
                    .await
                })?;
                writeln!(stdout, "sent {first} {last}")?;
            }
            Some(other) => bail!("unknown command `{other}`"),
            None => {}
        }
        stdout.flush()?;
    }
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}

/// Runs `fut` as a task on the runtime's worker rather than on the calling thread.
async fn runtime_task<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::spawn(fut).await.context("the broadcast task failed")
}

// ----- Fawkes -----

struct BenchChannel;

impl Channel for BenchChannel {
    type Info = ();

    async fn join(
        _topic: &str,
        _payload: Payload,
        _socket: &mut ChannelSocket,
    ) -> Result<(Self, Value), Value> {
        Ok((BenchChannel, json!({})))
    }

    async fn handle_in(&mut self, _: &str, _: Payload, _: &mut ChannelSocket) -> Reply {
        Reply::NoReply
    }
}

struct BenchSocket;

impl Socket for BenchSocket {
    async fn connect(
        &self,
        _params: &Map<String, Value>,
        _info: &ConnectInfo,
    ) -> Result<fawkes::Assigns, Refused> {
        Ok(fawkes::Assigns::new())
    }

    fn channels(&self) -> Channels {
        Channels::new().channel::<BenchChannel>("room:*")
    }
}

fawkes::router! {
    pub WsBenchRouter;
    socket "/socket" => BenchSocket;
}

async fn start_fawkes(
    addr: SocketAddr,
    redis: Option<String>,
) -> anyhow::Result<(SocketAddr, Broadcaster)> {
    // The file limit (20,000 here) bounds the sockets, not the endpoint's default 16,384.
    let mut endpoint = Endpoint::new(WsBenchRouter::new()).bind(addr).max_connections(1 << 20);
    if let Some(url) = &redis {
        let adapter = fawkes::pubsub::Redis::new(url)?.namespace("bench");
        let node = format!("bench-{}", std::process::id());
        endpoint = endpoint.pubsub(PubSub::with_adapter(node, std::sync::Arc::new(adapter)));
    }
    let running =
        endpoint.start().await.with_context(|| format!("fawkes failed to start on {addr}"))?;
    if redis.is_some() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !running.pubsub().adapter().is_connected() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "Redis unreachable for 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok((running.local_addr(), Broadcaster::Fawkes(running.pubsub().clone())))
}

// ----- bare tokio-tungstenite -----

async fn start_tungstenite(addr: SocketAddr) -> anyhow::Result<(SocketAddr, Broadcaster)> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot bind {addr}"))?;
    let local = listener.local_addr()?;
    let (tx, _) = broadcast::channel::<Utf8Bytes>(1024);
    let sender = tx.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve_tungstenite(stream, tx.clone()));
        }
    });
    Ok((local, Broadcaster::Tungstenite(sender)))
}

async fn serve_tungstenite(stream: tokio::net::TcpStream, tx: broadcast::Sender<Utf8Bytes>) {
    // Fawkes' own settings: a 1 KiB read buffer (its default), no write buffer.
    let config = WebSocketConfig::default().read_buffer_size(1024).write_buffer_size(0);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    // Wait for the join, then forward broadcasts until the client goes away.
    let mut rx = loop {
        match stream.next().await {
            Some(Ok(Message::Text(_))) => break tx.subscribe(),
            Some(Ok(_)) => {}
            _ => return,
        }
    };
    if sink.send(Message::text("ok")).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok(text) => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws_client::{connect, receive};

    /// Both servers deliver every broadcast to every joined socket, with a readable timestamp.
    #[test]
    fn both_servers_fan_out_every_broadcast_to_every_joined_socket() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        for kind in WsKind::ALL {
            runtime.block_on(async {
                let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
                let (addr, broadcaster) = match kind {
                    WsKind::Fawkes => start_fawkes(any, None).await,
                    WsKind::Tungstenite => start_tungstenite(any).await,
                }
                .unwrap();
                let mut sockets = Vec::new();
                for _ in 0..3 {
                    let source = Ipv4Addr::LOCALHOST;
                    let ws = tokio::time::timeout(
                        Duration::from_secs(10),
                        connect(kind, Some(TOPIC), source, addr),
                    );
                    sockets.push(ws.await.unwrap().unwrap());
                }
                let before = now_micros();
                broadcaster.send(before, false);
                broadcaster.send(before + 1, false);
                broadcaster.send(before + 2, true);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                let drained = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let expect = crate::ws_client::Expect { burst: 2, paced: 1 };
                for mut ws in sockets {
                    let got = receive(&mut ws, expect, deadline, drained.clone()).await;
                    assert_eq!(got.latencies.len(), 2, "{}", kind.name());
                    assert_eq!(got.paced.len(), 1, "{}", kind.name());
                    assert!(got.last >= before, "{}", kind.name());
                }
                assert_eq!(drained.load(std::sync::atomic::Ordering::Acquire), 3);
            });
        }
    }
}
