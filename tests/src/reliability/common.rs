//! What the reliability tools share: flags, addresses, loopback connections from many source
//! addresses, and the report line.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use anyhow::{bail, Context as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// Source addresses 127.0.0.K.. are used round robin over this many, so that no one address
/// runs out of ephemeral ports.
const SOURCE_ADDRS: u32 = 50;

/// `--name value` pairs.
#[derive(Debug, Default)]
pub(crate) struct Flags(HashMap<String, String>);

impl Flags {
    pub(crate) fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut flags = HashMap::new();
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let Some(name) = flag.strip_prefix("--") else { bail!("unexpected `{flag}`") };
            let value = rest.next().with_context(|| format!("{flag} needs a value"))?;
            flags.insert(name.to_owned(), value.clone());
        }
        Ok(Self(flags))
    }

    /// Flag `name`, or `default` when absent.
    pub(crate) fn get<T: FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.0.get(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|e| anyhow::anyhow!("--{name} {value}: {e}")),
        }
    }

    pub(crate) fn text<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.0.get(name).map_or(default, String::as_str)
    }
}

/// The socket address of `http://127.0.0.1:PORT`.
pub(crate) fn addr_of(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.strip_prefix("http://").context("the URL must be http://host:port")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let addr: SocketAddr = authority.parse().with_context(|| format!("not an address: {url}"))?;
    anyhow::ensure!(addr.ip().is_loopback(), "the reliability tools talk to loopback only");
    Ok(addr)
}

/// The `i`th source address from 127.0.0.`first`.
pub(crate) fn source(first: u32, i: usize) -> Ipv4Addr {
    let offset = u32::try_from(i).unwrap_or(0) % SOURCE_ADDRS;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + first + offset)
}

/// A TCP connection to `server` from `from`.
pub(crate) async fn connect(from: Ipv4Addr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// A WebSocket to the example app's `/socket` with `query`, from `from`.
pub(crate) async fn websocket(
    from: Ipv4Addr,
    server: SocketAddr,
    query: &str,
) -> anyhow::Result<Ws> {
    let stream = connect(from, server).await?;
    let url = format!("ws://{server}/socket/websocket?{query}");
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024).write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .context("websocket handshake")?;
    Ok(ws)
}

/// Prints the scenario's figures as one line the suite collects.
pub(crate) fn report(scenario: &str, figures: &[(&str, String)]) {
    let mut line = format!("RELIABILITY {scenario}");
    for (name, value) in figures {
        line.push_str(&format!(" {name}={value}"));
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Whether a goal held; says why not on stderr.
pub(crate) fn check(ok: bool, what: &str) -> bool {
    if !ok {
        eprintln!("reliability: goal missed: {what}");
    }
    ok
}
