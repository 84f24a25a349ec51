//! `fawkes`: the command that goes with the framework, as `mix phx.*` goes with Phoenix.
//!
//! ```text
//! fawkes new NAME [--no-db] [--path DIR] [--fawkes-path PATH] a new service
//! fawkes gen channel NAME                                     a channel, its test, its route
//! fawkes routes [CARGO_ARGS]...                                the route table of the project here
//! ```
//!
//! `fawkes routes` prints the router's own table: it runs the project's binary with the
//! argument `routes` (`cargo run --quiet [CARGO_ARGS] -- routes`), which a Fawkes app's `main`
//! answers by printing `fawkes::router::route_table(AppRouter::ROUTE_TABLE)` (the example app
//! and generated projects do).

mod gen;
mod new;

use std::io::Write as _;
use std::path::PathBuf;
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
    /// Creates a new service: router with `browser` and `api` pipelines, probes and metrics,
    /// a socket with a channel, tests, a README, a Dockerfile and Kubernetes manifests.
    New {
        /// The service's name, in snake_case (its crate and binary name).
        name: String,
        /// The directory to create (default: ./NAME).
        #[arg(long)]
        path: Option<PathBuf>,
        /// No database.
        #[arg(long)]
        no_db: bool,
        /// The database (default: sqlite; postgres is not generated yet).
        #[arg(long, value_enum)]
        db: Option<new::Db>,
        /// Depend on the framework at this checkout (its workspace root) instead of by version.
        #[arg(long)]
        fawkes_path: Option<PathBuf>,
    },
    /// Adds code to the project in this directory.
    Gen {
        #[command(subcommand)]
        what: Gen,
    },
    /// Prints the route table of the project in this directory: method, path, what serves
    /// it, its path helper and its pipelines, from the router itself.
    Routes {
        /// Passed to `cargo run` (a package, features…), before `-- routes`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum Gen {
    /// A channel `NameChannel` on `name:*` (CamelCase NAME), its test, and its route on the
    /// socket in `src/channels/mod.rs`.
    Channel {
        /// The channel's name, in CamelCase (`Room` makes `RoomChannel` on `room:*`).
        name: String,
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
        Cmd::Gen { what: Gen::Channel { name } } => {
            let written = gen::channel(std::path::Path::new("."), &name)?;
            let mut out = std::io::stdout().lock();
            for file in written {
                writeln!(out, "* {file}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::New { name, path, no_db, db, fawkes_path } => {
            let args = new::NewArgs { name, path, db, no_db, fawkes_path };
            let dir = new::run(&args)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "created {}", dir.display())?;
            writeln!(out, "\n    cd {}\n    cargo test\n    cargo run\n", dir.display())?;
            Ok(ExitCode::SUCCESS)
        }
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
