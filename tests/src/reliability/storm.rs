//! `storm`: many reading clients join one presence-tracked room, one after another. Each must
//! converge to the full list and none may be closed as a slow consumer; the frames each one
//! received tell what a join costs the others.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{check, report, source, websocket, Flags, Ws};

const TOPIC: &str = "room:lobby";

/// A V2 frame's event and payload, the rest skipped.
#[derive(Deserialize)]
struct Frame<P>(IgnoredAny, IgnoredAny, IgnoredAny, IgnoredAny, P);

#[derive(Deserialize)]
struct Diff {
    joins: std::collections::HashMap<String, IgnoredAny>,
    leaves: std::collections::HashMap<String, IgnoredAny>,
}

/// Which of the storm's users a client sees, one bit each.
struct Seen {
    bits: Vec<u64>,
    count: usize,
}

impl Seen {
    fn new(users: usize) -> Self {
        Self { bits: vec![0; users.div_ceil(64)], count: 0 }
    }

    fn index(key: &str, users: usize) -> Option<usize> {
        key.strip_prefix("storm-")?.parse().ok().filter(|&i| i < users)
    }

    fn apply(&mut self, diff: &Diff, users: usize) {
        for key in diff.joins.keys() {
            if let Some(i) = Self::index(key, users) {
                self.set(i, true);
            }
        }
        for key in diff.leaves.keys() {
            if let Some(i) = Self::index(key, users) {
                self.set(i, false);
            }
        }
    }

    fn set(&mut self, i: usize, present: bool) {
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let was = self.bits[word] & bit != 0;
        if present && !was {
            self.bits[word] |= bit;
            self.count += 1;
        } else if !present && was {
            self.bits[word] &= !bit;
            self.count -= 1;
        }
    }
}

/// What one client saw.
struct Outcome {
    /// How many of the storm's users it saw last.
    seen: usize,
    joined: bool,
    frames: usize,
    bytes: usize,
    converged_at: Option<Instant>,
    closed: bool,
}

pub(crate) async fn run(server: SocketAddr, flags: &Flags) -> anyhow::Result<bool> {
    let clients: usize = flags.get("clients", 1000)?;
    let over = Duration::from_secs(flags.get("over-secs", 10)?);
    let first_ip: u32 = flags.get("first-ip", 2)?;
    let deadline = Instant::now() + Duration::from_secs(flags.get("deadline-secs", 90)?);
    let converged = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        // Joins spread evenly over the window, one after another.
        let at = started + over.mul_f64(i as f64 / clients as f64);
        tokio::time::sleep_until(at.into()).await;
        let converged = converged.clone();
        tasks.push(tokio::spawn(async move {
            let ws = websocket(source(first_ip, i), server, &format!("vsn=2.0.0&user=storm-{i}"))
                .await?;
            client(ws, clients, deadline, converged).await
        }));
    }
    let last_join = started.elapsed();
    let mut outcomes = Vec::with_capacity(clients);
    let mut errors = Vec::new();
    for task in tasks {
        match task.await? {
            Ok(outcome) => outcomes.push(outcome),
            Err(err) => errors.push(format!("{err:#}")),
        }
    }
    let done: Vec<_> = outcomes.iter().filter_map(|o| o.converged_at).collect();
    let all_converged = done.iter().max().map(|t| t.duration_since(started));
    let frames: Vec<usize> = outcomes.iter().map(|o| o.frames).collect();
    let closed = outcomes.iter().filter(|o| o.closed).count();
    let mean = frames.iter().sum::<usize>() as f64 / frames.len().max(1) as f64;
    let bytes = outcomes.iter().map(|o| o.bytes).sum::<usize>();
    report(
        "presence_storm",
        &[
            ("clients", clients.to_string()),
            ("joined_over_ms", last_join.as_millis().to_string()),
            ("converged", done.len().to_string()),
            (
                "all_converged_ms",
                all_converged.map_or("never".into(), |d| d.as_millis().to_string()),
            ),
            ("closed", closed.to_string()),
            ("errors", errors.len().to_string()),
            ("frames_per_client_mean", format!("{mean:.1}")),
            ("frames_per_client_max", frames.iter().max().copied().unwrap_or(0).to_string()),
            ("mib_received", (bytes / (1024 * 1024)).to_string()),
        ],
    );
    if let Some(first) = errors.first() {
        eprintln!("reliability: storm: first error: {first}");
    }
    for (i, o) in outcomes.iter().enumerate().filter(|(_, o)| o.converged_at.is_none()).take(5) {
        eprintln!(
            "reliability: storm: client {i} did not converge: joined={} saw {} of {clients} \
             after {} frames, closed={}",
            o.joined, o.seen, o.frames, o.closed
        );
    }
    Ok(check(
        errors.is_empty() && closed == 0 && done.len() == clients,
        "every client converges to the full list and none is closed",
    ))
}

/// Joins the room and follows its presence until every storm user is listed; then keeps
/// reading (the others still need this client listed) until all clients converged.
async fn client(
    mut ws: Ws,
    users: usize,
    deadline: Instant,
    converged: Arc<AtomicUsize>,
) -> anyhow::Result<Outcome> {
    ws.send(Message::text(format!(r#"["1","1","{TOPIC}","phx_join",{{}}]"#))).await?;
    let mut seen = Seen::new(users);
    // Diffs received before the first `presence_state`.
    let mut pending = Some(Vec::new());
    let mut outcome =
        Outcome { seen: 0, joined: false, frames: 0, bytes: 0, converged_at: None, closed: false };
    loop {
        if outcome.converged_at.is_some() && converged.load(Relaxed) >= users {
            break;
        }
        let wait =
            deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(200));
        let msg = match tokio::time::timeout(wait, ws.next()).await {
            Err(_) if Instant::now() >= deadline => break,
            Err(_) => continue,
            Ok(None | Some(Err(_) | Ok(Message::Close(_)))) => {
                outcome.closed = true;
                break;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        let Message::Text(text) = msg else { continue };
        outcome.frames += 1;
        outcome.bytes += text.len();
        if text.contains(r#""phx_reply""#) && text.contains(r#""status":"ok""#) {
            outcome.joined = true;
        } else if text.contains(r#""presence_state""#) {
            type State = std::collections::HashMap<String, IgnoredAny>;
            let Frame(.., state) = serde_json::from_str::<Frame<State>>(&text)?;
            for key in state.keys() {
                if let Some(i) = Seen::index(key, users) {
                    seen.set(i, true);
                }
            }
            // As the official client does: diffs that came before the state apply after it.
            for diff in pending.take().unwrap_or_default() {
                seen.apply(&diff, users);
            }
        } else if text.contains(r#""presence_diff""#) {
            let Frame(.., diff) = serde_json::from_str::<Frame<Diff>>(&text)?;
            match &mut pending {
                Some(pending) => pending.push(diff),
                None => seen.apply(&diff, users),
            }
        }
        outcome.seen = seen.count;
        if outcome.converged_at.is_none() && seen.count == users {
            outcome.converged_at = Some(Instant::now());
            converged.fetch_add(1, Relaxed);
        }
    }
    let _ = ws.close(None).await;
    Ok(outcome)
}
