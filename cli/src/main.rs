//! `fawkes`: the command that goes with the framework, as `mix phx.*` goes with Phoenix.
//!
//! ```text
//! fawkes routes [CARGO_ARGS]...   the route table of the project in this directory
//! ```
//!
//! `fawkes routes` prints the router's own table: it runs the project's binary with the
//! argument `routes` (`cargo run --quiet [CARGO_ARGS] -- routes`), which a Fawkes app's `main`
//! answers by printing `fawkes::router::route_table(AppRouter::ROUTE_TABLE)` (the example app
//! and generated projects do).

use std::process::{Command, ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "fawkes", version, about = "Fawkes: route tables and generators")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Prints the route table of the project in this directory: method, path, what serves
    /// it, its path helper and its pipelines, from the router itself.
    Routes {
        /// Passed to `cargo run` (a package, features…), before `-- routes`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("fawkes: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Routes { cargo_args } => routes(&cargo_args),
    }
}

/// Runs the project's binary with `routes`, its output going straight to ours.
fn routes(cargo_args: &[String]) -> anyhow::Result<ExitCode> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["run", "--quiet"])
        .args(cargo_args)
        .args(["--", "routes"])
        .status()
        .context("cannot run cargo")?;
    if status.success() {
        Ok(ExitCode::SUCCESS)
    } else {
        anyhow::bail!(
            "`cargo run -- routes` failed ({status}): is this a Fawkes project whose `main` \
             prints its route table when given `routes`?"
        )
    }
}
