//! `soak`: clients that come and go for a while: each connects, joins the presence-tracked
//! lobby and a test channel, posts, crashes the test channel and rejoins it, leaves, closes,
//! and starts over; a few close without leaving. The shell script beside it runs HTTP load at
//! the same time, samples the app's memory, and checks that its socket and channel gauges
//! return to zero once everyone is gone.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{check, report, source, websocket, Flags, Ws};

/// The longest one step of a round may take.
const STEP: Duration = Duration::from_secs(5);

pub(crate) async fn run(server: SocketAddr, flags: &Flags) -> anyhow::Result<bool> {
    let run_for = Duration::from_secs(flags.get("secs", 60)?);
    let workers: usize = flags.get("workers", 50)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        tasks.push(tokio::spawn(async move {
            let mut rounds = 0usize;
            let mut errors = Vec::new();
            while started.elapsed() < run_for {
                let from = source(2, worker + rounds);
                match tokio::time::timeout(STEP * 6, round(server, from, worker, rounds)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => errors.push(format!("{err:#}")),
                    Err(_) => errors.push("a round took too long".to_owned()),
                }
                rounds += 1;
            }
            (rounds, errors)
        }));
    }
    let (mut rounds, mut errors) = (0usize, Vec::new());
    for task in tasks {
        let (r, e) = task.await?;
        rounds += r;
        errors.extend(e);
    }
    report(
        "soak_channels",
        &[
            ("secs", run_for.as_secs().to_string()),
            ("workers", workers.to_string()),
            ("rounds", rounds.to_string()),
            ("errors", errors.len().to_string()),
        ],
    );
    if let Some(first) = errors.first() {
        eprintln!("reliability: soak: first error: {first}");
    }
    Ok(check(errors.is_empty(), "every round of joins, posts, crashes and leaves succeeds"))
}

/// One client's visit.
async fn round(
    server: SocketAddr,
    from: std::net::Ipv4Addr,
    worker: usize,
    n: usize,
) -> anyhow::Result<()> {
    let user = format!("soak-{worker}-{n}");
    let mut ws = websocket(from, server, &format!("vsn=2.0.0&user={user}")).await?;
    let test = format!("test:{user}");
    send(&mut ws, json!(["1", "1", "room:lobby", "phx_join", {}])).await?;
    expect_reply(&mut ws, "1", "ok").await?;
    send(&mut ws, json!(["2", "2", test, "phx_join", {}])).await?;
    expect_reply(&mut ws, "2", "ok").await?;
    for i in 0..3 {
        let msg_ref = format!("m{i}");
        send(
            &mut ws,
            json!(["1", msg_ref, "room:lobby", "new_msg", {"author": user, "body": "hi"}]),
        )
        .await?;
        expect_reply(&mut ws, &msg_ref, "ok").await?;
    }
    // A crash, then a rejoin under a new join ref, as the official client does.
    send(&mut ws, json!(["2", "c", test, "crash", {}])).await?;
    expect(&mut ws, |f| f[3] == "phx_error" && f[2] == test.as_str()).await?;
    send(&mut ws, json!(["3", "3", test, "phx_join", {}])).await?;
    expect_reply(&mut ws, "3", "ok").await?;
    if n % 3 == 0 {
        // Gone without a word: the server must clean up after the socket alone.
        drop(ws);
        return Ok(());
    }
    send(&mut ws, json!(["1", "l", "room:lobby", "phx_leave", {}])).await?;
    expect_reply(&mut ws, "l", "ok").await?;
    let _ = ws.close(None).await;
    Ok(())
}

async fn send(ws: &mut Ws, frame: Value) -> anyhow::Result<()> {
    ws.send(Message::text(frame.to_string())).await.context("send")
}

async fn expect_reply(ws: &mut Ws, msg_ref: &str, status: &str) -> anyhow::Result<()> {
    let frame = expect(ws, |f| f[1] == msg_ref && f[3] == "phx_reply").await?;
    anyhow::ensure!(frame[4]["status"] == status, "reply {msg_ref}: {frame}");
    Ok(())
}

/// Reads frames until one matches, skipping broadcasts and pushes.
async fn expect(ws: &mut Ws, matches: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.context("no frame in time")?;
        let msg = msg.context("closed")?.context("read")?;
        let Message::Text(text) = msg else { continue };
        let frame: Value = serde_json::from_str(&text)?;
        if matches(&frame) {
            return Ok(frame);
        }
    }
}
