//! The reliability suite's load tools, run by `tests/reliability/limits.sh` against the example
//! app on loopback. Each prints one `RELIABILITY <scenario> key=value ...` line and exits
//! non-zero when the scenario's goal is missed.
//!
//! ```text
//! reliability flood URL --conns N [--first-ip K] [--hold-secs S]
//! reliability busy URL --conns N [--first-ip K] [--expect-served M]
//! reliability probe URL [--path P] [--secs S] [--every-ms M]
//! reliability stall URL --conns N [--first-ip K] [--timeout-ms T]
//! reliability longpoll URL --sessions N --cap C
//! reliability storm URL --clients N [--over-secs S] [--first-ip K] [--deadline-secs D]
//! reliability soak URL --secs S [--workers N]
//! ```
//!
//! `tests/reliability/README.md` says what each one checks.

#[path = "../reliability/caps.rs"]
mod caps;
#[path = "../reliability/common.rs"]
mod common;
#[path = "../reliability/soak.rs"]
mod soak;
#[path = "../reliability/storm.rs"]
mod storm;

use std::process::ExitCode;

use anyhow::{bail, Context as _};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("reliability: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs a subcommand; `Ok(false)` when it ran but missed its goal.
fn run(args: &[String]) -> anyhow::Result<bool> {
    let (command, rest) = args.split_first().context("usage: reliability <command> URL ...")?;
    let (url, rest) = rest.split_first().context("the app's URL is missing")?;
    let addr = common::addr_of(url)?;
    let flags = common::Flags::parse(rest)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to build the tokio runtime")?;
    runtime.block_on(async move {
        match command.as_str() {
            "flood" => caps::flood(addr, &flags).await,
            "busy" => caps::busy(addr, &flags).await,
            "probe" => caps::probe(addr, &flags).await,
            "stall" => caps::stall(addr, &flags).await,
            "longpoll" => caps::longpoll(addr, &flags).await,
            "storm" => storm::run(addr, &flags).await,
            "soak" => soak::run(addr, &flags).await,
            other => bail!("unknown command `{other}`"),
        }
    })
}
