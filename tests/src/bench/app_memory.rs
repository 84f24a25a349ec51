//! `bench app-memory`: the example app's memory per idle joined socket, measured from outside.
//!
//! Starts the example app's release binary (`--app PATH`, default `example-app` next to this
//! executable) on a fresh SQLite file, creates `--rooms R` rooms through its JSON API, reads its
//! RSS, opens `--conns N` sockets from `--clients C` `bench ws-client` processes (each socket
//! joins `room:1` to `room:R` in turn, as anonymous users do: each join is checked against the
//! database and tracked in the room's presence), waits for the presence traffic to settle,
//! and reads the RSS again. The growth over N is what one idle joined socket costs the app.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::ws::LineChild;
use crate::ws_server::rss_bytes;

#[derive(Debug)]
struct Args {
    app: std::path::PathBuf,
    conns: usize,
    rooms: usize,
    clients: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut parsed =
        Args { app: exe.with_file_name("example-app"), conns: 18_000, rooms: 100, clients: 4 };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--app" => parsed.app = value.into(),
            "--conns" => parsed.conns = value.parse()?,
            "--rooms" => parsed.rooms = value.parse()?,
            "--clients" => parsed.clients = value.parse()?,
            _ => bail!("unknown app-memory option `{flag}`"),
        }
    }
    anyhow::ensure!(parsed.rooms > 0 && parsed.clients > 0, "--rooms and --clients must be > 0");
    Ok(parsed)
}

/// A scratch directory, removed when dropped.
pub(crate) struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The example app: asked to stop (SIGTERM, so that a profiler wrapping it writes its
/// report) when dropped, killed if it is still there 30 s later.
pub(crate) struct App(pub(crate) Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the example app at `path` on a fresh SQLite file with `env` set, and waits for the
/// URL it listens on. The app stops when the returned `App` is dropped, its database when the
/// `Scratch` is.
pub(crate) fn start(
    path: &std::path::Path,
    env: &[(&str, String)],
) -> anyhow::Result<(App, String, Scratch)> {
    anyhow::ensure!(
        path.exists(),
        "no example app at {} (cargo build --release -p example-app, or --app PATH)",
        path.display()
    );
    let dir =
        Scratch(std::env::temp_dir().join(format!("fawkes-app-memory-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let database = format!("sqlite://{}?mode=rwc", dir.0.join("app.db").display());
    let mut command = Command::new(path);
    command.env("PORT", "0").env("DATABASE_URL", database).env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", path.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let app = App(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let url = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .context("the example app did not say where it listens")?;
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().trim_end_matches('/').to_owned();
        }
    };
    Ok((app, url, dir))
}

/// The `bench app-memory` subcommand.
pub(crate) fn main(args: &[String]) -> anyhow::Result<()> {
    let args = parse(args)?;
    let (app, url, _dir) = start(
        &args.app,
        &[
            ("MAX_CONNECTIONS", (args.conns + 1_000).to_string()),
            // One process plays every client: no per-client limit.
            ("CLIENT_LIMITS", "off".to_owned()),
        ],
    )?;
    let port: u16 = url.rsplit(':').next().context("no port in the URL")?.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(create_rooms(&url, args.rooms))?;

    let pid = app.0.id();
    let before = rss_bytes(&pid.to_string())?;
    let per_client = args.conns.div_ceil(args.clients);
    let exe = std::env::current_exe()?;
    let mut clients = Vec::new();
    let mut remaining = args.conns;
    for i in 0..args.clients {
        let conns = per_client.min(remaining);
        remaining -= conns;
        let first_ip = 2 + i * crate::ws_client::SOURCE_ADDRS as usize;
        let mut command = Command::new(&exe);
        command.args(["ws-client", "fawkes", "--port", &port.to_string()]).args([
            "--conns",
            &conns.to_string(),
            "--first-ip",
            &first_ip.to_string(),
            "--expect",
            "0",
            "--timeout",
            "120",
            "--topics",
            &args.rooms.to_string(),
        ]);
        clients.push(LineChild::spawn(&mut command, &format!("ws client {i}"))?);
    }
    let mut joined = 0;
    for client in &clients {
        let line = client.line(Duration::from_secs(120))?;
        let n: usize = line
            .strip_prefix("joined ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("a client said {line:?}"))?;
        joined += n;
    }
    anyhow::ensure!(joined == args.conns, "{joined} of {} sockets joined", args.conns);
    // Each join is announced to the room's other members; let those diffs drain.
    std::thread::sleep(Duration::from_secs(5));
    let after = rss_bytes(&pid.to_string())?;
    let per_socket = after.saturating_sub(before) as f64 / args.conns as f64;
    use std::io::Write as _;
    writeln!(
        std::io::stdout().lock(),
        "example app: {} sockets joined over {} rooms; RSS {:.1} MiB before, {:.1} MiB after; \
         {per_socket:.0} B per idle joined socket",
        args.conns,
        args.rooms,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
    )?;
    drop(clients);
    drop(app);
    Ok(())
}

pub(crate) async fn create_rooms(url: &str, rooms: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for i in 1..=rooms {
        let resp = http
            .post(format!("{url}/api/rooms"))
            .json(&serde_json::json!({ "room": { "name": format!("room {i}") } }))
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 201, "creating room {i}: {}", resp.status());
    }
    Ok(())
}
