//! The benchmark harness: Fawkes against axum and bare hyper, over real sockets, driven by wrk.
//!
//! One binary holds the driver and the three servers, so a run builds nothing:
//!
//! ```text
//! bench [http] [--quick] [--json PATH] [--only http,h2,graphql,ws] [--no-pin] [--ws-workers N]
//! bench server <fawkes|axum|hyper> [--routes N] [--port P]
//! bench server fawkes-graphql [--port P]
//! bench server <ws-fawkes|ws-tungstenite> [--port P] [--redis URL (ws-fawkes)]
//! bench ws-client <fawkes|tungstenite> --port P --conns N ...
//! bench gen-routes N
//! bench app-memory [--app PATH] [--conns N] [--rooms R] [--clients C]
//! bench live-memory [--app PATH] [--views N] [--per-socket K]
//! bench live-diff [--events E] [--rounds R]
//! ```
//!
//! The driver starts each server as a child process of this executable, reads its port from
//! the first line of its stdout, checks that it answers every scenario with the expected bytes,
//! measures it with wrk and stops it. `docs/benchmarks.md` explains the setup and the numbers.

#[path = "../bench/app_memory.rs"]
mod app_memory;
#[path = "../bench/client.rs"]
mod client;
#[path = "../bench/driver.rs"]
mod driver;
#[path = "../bench/graphql.rs"]
mod graphql;
#[path = "../bench/h2.rs"]
mod h2;
#[path = "../bench/live_diff.rs"]
mod live_diff;
#[path = "../bench/live_memory.rs"]
mod live_memory;
#[path = "../bench/process.rs"]
mod process;
#[path = "../bench/report.rs"]
mod report;
#[path = "../bench/routes.rs"]
mod routes;
#[path = "../bench/scenario.rs"]
mod scenario;
#[path = "../bench/server/mod.rs"]
mod server;
#[path = "../bench/wrk.rs"]
mod wrk;
#[path = "../bench/ws.rs"]
mod ws;
#[path = "../bench/ws_client.rs"]
mod ws_client;
#[path = "../bench/ws_server.rs"]
mod ws_server;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{bail, Context as _};

const USAGE: &str = "\
usage:
  bench [http] [--quick] [--json PATH] [--only http,h2,graphql,ws] [--no-pin] [--ws-workers N]
  bench server fawkes-graphql [--port P]
  bench server <fawkes|axum|hyper> [--routes N] [--port P] [--layer cors (fawkes, axum)]
               [--h2c on | --tls DIR (cert.pem, key.pem)]
  bench server <ws-fawkes|ws-tungstenite> [--port P] [--workers N] [--redis URL (ws-fawkes)]
  bench ws-client <fawkes|tungstenite> --port P --conns N --first-ip K --expect M --timeout S
  bench gen-routes N
  bench app-memory [--app PATH] [--conns N] [--rooms R] [--clients C]
  bench live-memory [--app PATH] [--views N] [--per-socket K]
  bench live-diff [--events E] [--rounds R]

  --quick      2 s per run instead of 10 s
  --json PATH  also write the results as JSON
  --only LIST  run only these suites (default: all)
  --no-pin     do not pin the server and wrk to separate CPUs
  --ws-workers N  tokio workers per WebSocket server (default: one per core)";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("server") if args.get(1).is_some_and(|k| k.starts_with("ws-")) => {
            let kind = ws_server::WsKind::parse(&args[1])?;
            let (mut port, mut redis, mut workers) = (0, None, 1);
            let mut rest = args[2..].iter();
            while let Some(flag) = rest.next() {
                let value = rest.next().with_context(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--port" => port = value.parse().context("--port takes a port")?,
                    "--redis" if kind == ws_server::WsKind::Fawkes => redis = Some(value.clone()),
                    "--workers" => workers = value.parse().context("--workers takes a number")?,
                    _ => bail!("unknown WebSocket server option `{flag}`\n{USAGE}"),
                }
            }
            ws_server::main(kind, port, redis, workers)
        }
        Some("server") if args.get(1).is_some_and(|k| k == "fawkes-graphql") => {
            let port = match args.get(2..4) {
                Some([flag, value]) if flag == "--port" => {
                    value.parse().context("--port takes a port")?
                }
                None => 0,
                _ => bail!("fawkes-graphql takes --port P only\n{USAGE}"),
            };
            graphql::serve(port)
        }
        Some("ws-client") => ws_client::main(&args[1..]),
        Some("app-memory") => app_memory::main(&args[1..]),
        Some("live-memory") => live_memory::main(&args[1..]),
        Some("live-diff") => live_diff::main(&args[1..]),
        Some("server") => {
            let kind = server::Kind::parse(args.get(1).context("server needs a kind")?)?;
            let mut routes = driver::MAIN_ROUTES;
            let mut port = 0;
            let mut cors = false;
            let mut protocol = server::Protocol::Http1;
            let mut rest = args[2..].iter();
            while let Some(flag) = rest.next() {
                let value = rest.next().with_context(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--routes" => routes = value.parse().context("--routes takes a number")?,
                    "--port" => port = value.parse().context("--port takes a port number")?,
                    "--layer" if value == "cors" && kind != server::Kind::Hyper => cors = true,
                    "--h2c" if value == "on" => protocol = server::Protocol::H2c,
                    "--tls" => protocol = server::Protocol::H2Tls(value.into()),
                    _ => bail!("unknown server option `{flag}`\n{USAGE}"),
                }
            }
            server::main(kind, routes, port, cors, &protocol)
        }
        Some("gen-routes") => {
            let n: usize = args.get(1).context("gen-routes needs N")?.parse()?;
            anyhow::ensure!(n >= routes::FIXED, "a table needs at least {} routes", routes::FIXED);
            std::io::stdout().lock().write_all(routes::generate(n).as_bytes())?;
            Ok(())
        }
        Some("-h" | "--help") => {
            std::io::stdout().lock().write_all(format!("{USAGE}\n").as_bytes())?;
            Ok(())
        }
        Some("http") => driver::run(&parse_driver(&args[1..], true)?),
        _ => driver::run(&parse_driver(&args, false)?),
    }
}

fn parse_driver(args: &[String], http_only: bool) -> anyhow::Result<driver::Options> {
    let mut options = driver::Options {
        quick: false,
        json: None,
        http: true,
        h2: !http_only,
        graphql: !http_only,
        ws: !http_only,
        pin: true,
        ws_workers: None,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--no-pin" => options.pin = false,
            "--ws-workers" => {
                let n = rest.next().context("--ws-workers needs a number")?;
                options.ws_workers = Some(n.parse().context("--ws-workers takes a number")?);
            }
            "--json" => options.json = Some(rest.next().context("--json needs a path")?.into()),
            "--only" => {
                let list = rest.next().context("--only needs a suite list")?;
                options.http = false;
                options.h2 = false;
                options.ws = false;
                options.graphql = false;
                for suite in list.split(',') {
                    match suite.trim() {
                        "http" => options.http = true,
                        "h2" => options.h2 = true,
                        "ws" => options.ws = true,
                        "graphql" => options.graphql = true,
                        other => bail!("unknown suite `{other}`; expected http, h2, ws or graphql"),
                    }
                }
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    Ok(options)
}
