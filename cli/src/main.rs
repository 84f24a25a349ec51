//! `fawkes`: the command that goes with the framework, as `mix phx.*` goes with Phoenix.
//!
//! ```text
//! fawkes new NAME [--no-db] [--path DIR] [--fawkes-path PATH] a new service
//! fawkes gen json Context Schema plural field:type...          a JSON resource over the database
//! fawkes gen channel NAME [--socket SOCKET]                    a channel, its test, its route
//! fawkes gen socket NAME [--path PATH]                         a socket, its test, its route
//! fawkes gen live NAME [--path PATH]                           a live page, its test, its route
//! fawkes routes [CARGO_ARGS]...                                the route table of the project here
//! ```
//!
//! `fawkes routes` prints the router's own table: it runs the project's binary with the
//! argument `routes` (`cargo run --quiet [CARGO_ARGS] -- routes`), which a Fawkes app's `main`
//! answers by printing `fawkes::router::route_table(AppRouter::ROUTE_TABLE)` (the example app
//! and generated projects do).

mod gen;
mod json;
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
        /// The database (default: sqlite).
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
    /// A JSON resource: a migration, the context (schema, params with validation, queries),
    /// a controller with index, show, create, update and delete, its JSON view, a test of
    /// every action, and the `resources` route in the `/api` scope.
    Json {
        /// The context module, in CamelCase (`Blog` makes `src/blog.rs`).
        context: String,
        /// The schema, in CamelCase (`Post`).
        schema: String,
        /// The table and the path, in snake_case (`posts`).
        plural: String,
        /// The fields, as name:type (string, text, integer, float, boolean, datetime), or
        /// name:references:table for an optional reference to a row of another table.
        #[arg(required = true)]
        fields: Vec<String>,
    },
    /// A channel `NameChannel` on `name:*` (CamelCase NAME), its test, and its route on the
    /// socket in `src/channels/mod.rs`.
    Channel {
        /// The channel's name, in CamelCase (`Room` makes `RoomChannel` on `room:*`).
        name: String,
        /// The socket to route it on, one `fawkes gen socket` made (default: `UserSocket`).
        #[arg(long)]
        socket: Option<String>,
    },
    /// A live page `NameLive` (CamelCase NAME), its test, and its `live` route in the
    /// browser scope (`/name`, or --path).
    Live {
        /// The view's name, in CamelCase (`Dashboard` makes `DashboardLive` at `/dashboard`).
        name: String,
        /// Where the page is served.
        #[arg(long)]
        path: Option<String>,
    },
    /// A socket `NameSocket` (CamelCase NAME) with no channels yet, its test, and its route
    /// in the router (`/name_socket`, or --path).
    Socket {
        /// The socket's name, in CamelCase (`Admin` makes `AdminSocket` at `/admin_socket`).
        name: String,
        /// Where clients connect (the `phoenix` client adds `/websocket` or `/longpoll`).
        #[arg(long)]
        path: Option<String>,
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
        Cmd::Gen { what } => {
            let here = std::path::Path::new(".");
            let written = match what {
                Gen::Channel { name, socket } => gen::channel(here, &name, socket.as_deref())?,
                Gen::Socket { name, path } => gen::socket(here, &name, path.as_deref())?,
                Gen::Live { name, path } => gen::live(here, &name, path.as_deref())?,
                Gen::Json { context, schema, plural, fields } => {
                    let fields = json::parse_fields(&fields)?;
                    let spec = json::Json {
                        context: &context,
                        schema: &schema,
                        plural: &plural,
                        fields: &fields,
                    };
                    json::json(here, &spec, &timestamp())?
                }
            };
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

/// The migration's version: the time now, `YYYYMMDDHHMMSS` in UTC, as `sqlx migrate add` names
/// them.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_migration_version_is_the_utc_time() {
        let version = super::timestamp();
        assert_eq!(version.len(), 14, "{version}");
        assert!(version.starts_with("20"), "{version}");
        let month: u32 = version[4..6].parse().unwrap();
        let day: u32 = version[6..8].parse().unwrap();
        assert!((1..=12).contains(&month) && (1..=31).contains(&day), "{version}");
    }
}
