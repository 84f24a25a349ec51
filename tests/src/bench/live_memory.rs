//! `bench live-memory`: the example app's memory per idle live view, next to a channel's, in
//! the same run and the same process, measured from outside.
//!
//! Starts the example app's release binary (`--app PATH`), creates `--per-socket K` rooms,
//! then joins `--views N` channels (`room:1` to `room:K` on N / K sockets) and reads the RSS
//! growth; then renders `/live/counter` N times (one browser session: one cookie) and joins
//! the N views on N / K live sockets, as the official client would, and reads the growth
//! again. Each growth over N is what one idle joined channel, and one idle connected live
//! view, costs the app.

use std::time::Duration;

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::app_memory::{create_rooms, start};
use crate::ws_server::rss_bytes;

#[derive(Debug)]
struct Args {
    app: std::path::PathBuf,
    views: usize,
    per_socket: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    // The example app runs 300 live views at most (router::MAX_LIVE_VIEWS).
    let mut parsed = Args { app: exe.with_file_name("example-app"), views: 290, per_socket: 29 };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--app" => parsed.app = value.into(),
            "--views" => parsed.views = value.parse()?,
            "--per-socket" => parsed.per_socket = value.parse()?,
            _ => bail!("unknown live-memory option `{flag}`"),
        }
    }
    anyhow::ensure!(
        (1..=100).contains(&parsed.per_socket),
        "--per-socket must be 1 to 100 (a socket's joins)"
    );
    Ok(parsed)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(url: &str, cookie: Option<&str>) -> anyhow::Result<Ws> {
    let mut req = url.into_client_request()?;
    if let Some(cookie) = cookie {
        req.headers_mut().insert("cookie", cookie.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(ws)
}

/// Sends `joins` and waits for every reply to be ok.
async fn join_all(ws: &mut Ws, joins: Vec<Value>) -> anyhow::Result<()> {
    let count = joins.len();
    for frame in joins {
        ws.send(Message::text(frame.to_string())).await?;
    }
    let mut ok = 0;
    while ok < count {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .context("no join reply within 30 s")?
            .context("the socket closed")??;
        let Message::Text(text) = msg else { continue };
        let frame: Value = serde_json::from_str(&text)?;
        if frame[3] == "phx_reply" {
            anyhow::ensure!(frame[4]["status"] == "ok", "a join was refused: {text}");
            ok += 1;
        }
    }
    Ok(())
}

/// The value of the attribute that follows `before` in `html`.
fn attribute<'a>(html: &'a str, before: &str) -> anyhow::Result<&'a str> {
    let start = html.find(before).with_context(|| format!("no {before}"))? + before.len();
    let end = html[start..].find('"').context("no closing quote")? + start;
    Ok(&html[start..end])
}

/// The `bench live-memory` subcommand.
pub(crate) fn main(args: &[String]) -> anyhow::Result<()> {
    let args = parse(args)?;
    // One process plays every browser: no per-client limit.
    let (app, url, _dir) = start(&args.app, &[("CLIENT_LIMITS", "off".to_owned())])?;
    let pid = app.0.id().to_string();
    let ws_base = url.replacen("http://", "ws://", 1);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let sockets = args.views.div_ceil(args.per_socket);
    let (per_channel, per_view, before, after) = runtime.block_on(async {
        create_rooms(&url, args.per_socket).await?;
        let before = rss_bytes(&pid)?;

        // Channels: `room:1`..`room:K` on each socket, anonymous.
        let mut channel_sockets = Vec::new();
        let mut left = args.views;
        for _ in 0..sockets {
            let n = left.min(args.per_socket);
            left -= n;
            let mut ws = open(&format!("{ws_base}/socket/websocket?vsn=2.0.0"), None).await?;
            let joins = (1..=n)
                .map(|i| json!([i.to_string(), i.to_string(), format!("room:{i}"), "phx_join", {}]))
                .collect();
            join_all(&mut ws, joins).await?;
            channel_sockets.push(ws);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let middle = rss_bytes(&pid)?;

        // Live views: N renders of the counter in one session, joined K to a socket.
        let http = reqwest::Client::new();
        let mut cookie: Option<String> = None;
        let mut pages = Vec::new();
        for _ in 0..args.views {
            let mut req = http.get(format!("{url}/live/counter")).header("accept", "text/html");
            if let Some(cookie) = &cookie {
                req = req.header("cookie", cookie.as_str());
            }
            let resp = req.send().await?;
            anyhow::ensure!(resp.status() == 200, "the counter page answered {}", resp.status());
            if let Some(set) = resp.headers().get("set-cookie") {
                let set = set.to_str()?;
                cookie = Some(set.split(';').next().unwrap_or(set).to_owned());
            }
            let html = resp.text().await?;
            let container = html.find(" data-phx-main").context("no live container")?;
            let id = html[..container].rfind("id=\"").context("no container id")?;
            pages.push((
                attribute(&html[id..], "id=\"")?.to_owned(),
                attribute(&html[container..], "data-phx-session=\"")?.to_owned(),
                attribute(&html, "<meta name=\"csrf-token\" content=\"")?.to_owned(),
            ));
        }
        let cookie = cookie.context("the pages set no session cookie")?;
        let mut live_sockets = Vec::new();
        for chunk in pages.chunks(args.per_socket) {
            let mut ws =
                open(&format!("{ws_base}/live/websocket?vsn=2.0.0"), Some(&cookie)).await?;
            let joins = chunk
                .iter()
                .enumerate()
                .map(|(i, (id, session, csrf))| {
                    json!([i.to_string(), i.to_string(), format!("lv:{id}"), "phx_join", {
                        "url": format!("{url}/live/counter"),
                        "params": {"_csrf_token": csrf, "_mounts": 0},
                        "session": session,
                        "static": "",
                    }])
                })
                .collect();
            join_all(&mut ws, joins).await?;
            live_sockets.push(ws);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = rss_bytes(&pid)?;
        let n = args.views as f64;
        let per_channel = middle.saturating_sub(before) as f64 / n;
        let per_view = after.saturating_sub(middle) as f64 / n;
        drop((channel_sockets, live_sockets));
        anyhow::Ok((per_channel, per_view, before, after))
    })?;
    use std::io::Write as _;
    writeln!(
        std::io::stdout().lock(),
        "example app: {} channels, then {} live views (/live/counter), {} to a socket; RSS \
         {:.1} MiB before, {:.1} MiB after; {per_channel:.0} B per idle joined channel, \
         {per_view:.0} B per idle live view ({:.2}x a channel)",
        args.views,
        args.views,
        args.per_socket,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        per_view / per_channel.max(1.0),
    )?;
    drop(app);
    Ok(())
}
