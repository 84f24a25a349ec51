//! The driver: starts each server as a child process of this binary, checks its answers,
//! measures it with wrk in interleaved rounds, and stops it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::client::{self, RawResponse};
use crate::process::{self, ChildGuard, ScratchDir};
use crate::report::{Machine, Measured, Report, Row, Settings};
use crate::scenario::Scenario;
use crate::server::Kind;
use crate::wrk::{self, Wrk};

/// The route table the servers are compared on.
pub(crate) const MAIN_ROUTES: usize = 100;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) json: Option<PathBuf>,
    pub(crate) http: bool,
    /// The HTTP/2 suite (h2c and TLS, with h2load).
    pub(crate) h2: bool,
    pub(crate) ws: bool,
    /// The GraphQL suite (a small query against the same data from a REST action).
    pub(crate) graphql: bool,
    pub(crate) pin: bool,
    /// Tokio workers per WebSocket server; one per core unless given.
    pub(crate) ws_workers: Option<usize>,
}

/// One server process to measure, on some scenarios.
#[derive(Debug, Clone)]
struct Target {
    kind: Kind,
    routes: usize,
    scenarios: Vec<Scenario>,
}

impl Target {
    fn label(&self) -> String {
        format!("{} ({} routes)", self.kind.name(), self.kind.effective_routes(self.routes))
    }
}

fn plan() -> Vec<Target> {
    let mut targets: Vec<Target> = Kind::ALL
        .into_iter()
        .map(|kind| Target { kind, routes: MAIN_ROUTES, scenarios: Scenario::ALL.to_vec() })
        .collect();
    for routes in crate::routes::SIZES.into_iter().filter(|&n| n != MAIN_ROUTES) {
        targets.push(Target { kind: Kind::Fawkes, routes, scenarios: vec![Scenario::DeepPath] });
    }
    targets
}

/// Runs the suites and writes the report.
///
/// # Errors
///
/// When anything failed: the report is still printed and written first, with the failures.
pub(crate) fn run(options: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let settings = Settings::new(options.quick);
    let mut report = Report::new(Machine::detect(), settings.clone());
    if options.http {
        let program = wrk::ensure()?;
        let pin = options.pin && pinning_available();
        let wrk = Wrk {
            program,
            threads: settings.threads,
            connections: settings.connections,
            cpus: pin.then(|| "1".to_owned()),
        };
        report.set_wrk(wrk.version(), pin);
        run_http(&wrk, &settings, pin, &mut report)?;
    }
    if options.h2 {
        let pin = options.pin && pinning_available();
        report.h2 = crate::h2::run(&settings, pin)?;
    }
    if options.graphql {
        let pin = options.pin && pinning_available();
        report.graphql = crate::graphql::run(&settings, pin)?;
    }
    if options.ws {
        report.ws = crate::ws::run(&settings, options.ws_workers)?;
    }
    report.finish(started.elapsed());
    report.print()?;
    if let Some(path) = &options.json {
        report.write_json(path)?;
        eprintln!("wrote {}", path.display());
    }
    if !report.failures.is_empty() {
        bail!("{} failure(s):\n  {}", report.failures.len(), report.failures.join("\n  "));
    }
    Ok(())
}

/// All servers run at once, and each round drives every server on every scenario back to
/// back, so that load from outside the benchmark (a shared machine, a build next door) drifts
/// over all of them alike rather than over whichever server happened to run at that moment.
/// The report leads with each server's best round, which shrugs off rounds a neighbour
/// disturbed, and compares servers round by round (see `Report::ratio`).
fn run_http(wrk: &Wrk, settings: &Settings, pin: bool, report: &mut Report) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let scratch = ScratchDir::new()?;
    let scripts = write_scripts(scratch.path())?;
    let mut slots: Vec<Slot> = Vec::new();
    // The first server's answers are the reference every other server must match.
    let mut reference: HashMap<&'static str, RawResponse> = HashMap::new();
    for target in plan() {
        let label = target.label();
        let started = Server::start(&exe, target.kind, target.routes, pin).and_then(|server| {
            check_answers(&server, &target, &mut reference)?;
            let first = target.scenarios[0];
            wrk.run(&scripts[first.name()], &server.url(first), settings.warmup)
                .and_then(|r| r.check())
                .context("warm-up failed")?;
            Ok(server)
        });
        match started {
            Ok(server) => {
                eprintln!("== {label}: listening on {}, answers checked, warmed up", server.addr);
                slots.push(Slot { target, server, runs: HashMap::new(), failed: false });
            }
            Err(err) => fail(report, &label, &err),
        }
    }
    for round in 1..=settings.rounds {
        eprintln!("== round {round} of {}", settings.rounds);
        // Each round starts with a different server, so none is always measured first or
        // last within a round.
        let count = slots.len();
        for scenario in Scenario::ALL {
            for i in 0..count {
                let slot = &mut slots[(i + round as usize) % count];
                if slot.failed || !slot.target.scenarios.contains(&scenario) {
                    continue;
                }
                let label = slot.target.label();
                let measured = measure(wrk, settings, &scripts, &mut slot.server, scenario)
                    .and_then(|m| {
                        eprintln!(
                            "   {:<9} {label:<19} {:>8.0} req/s  p50 {:.3} ms  p99 {:.3} ms",
                            scenario.name(),
                            m.wrk.rps,
                            m.wrk.p50_ms,
                            m.wrk.p99_ms,
                        );
                        m.wrk.check()?;
                        slot.server.ensure_alive()?;
                        Ok(m)
                    });
                match measured {
                    Ok(m) => slot.runs.entry(scenario.name()).or_default().push(m),
                    Err(err) => {
                        // A server that failed once is not measured again: its later numbers
                        // would mislead.
                        fail(report, &label, &err.context(format!("{} failed", scenario.name())));
                        slot.failed = true;
                    }
                }
            }
        }
    }
    for slot in slots.iter().filter(|s| !s.failed) {
        for &scenario in &slot.target.scenarios {
            let runs = slot.runs.get(scenario.name()).map(Vec::as_slice).unwrap_or_default();
            if let Some(row) = Row::from_rounds(
                scenario,
                slot.target.kind,
                slot.target.kind.effective_routes(slot.target.routes),
                runs,
            ) {
                report.http.push(row);
            }
        }
    }
    Ok(())
}

/// A running server and what it measured so far.
#[derive(Debug)]
struct Slot {
    target: Target,
    server: Server,
    runs: HashMap<&'static str, Vec<Measured>>,
    failed: bool,
}

fn fail(report: &mut Report, label: &str, err: &anyhow::Error) {
    eprintln!("!! {label}: {err:#}");
    report.failures.push(format!("{label}: {err:#}"));
}

/// Checks every scenario's answer, and that its headers match the first server's.
fn check_answers(
    server: &Server,
    target: &Target,
    reference: &mut HashMap<&'static str, RawResponse>,
) -> anyhow::Result<()> {
    for &scenario in &target.scenarios {
        let resp = client::check(server.addr, scenario)
            .with_context(|| format!("wrong answer to {}", scenario.name()))?;
        match reference.get(scenario.name()) {
            None => {
                reference.insert(scenario.name(), resp);
            }
            Some(expected) if expected.headers != resp.headers => bail!(
                "{} headers differ from the first server's: {:?} vs {:?}",
                scenario.name(),
                resp.headers,
                expected.headers
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Requests per second alone depend on how much CPU the server was given, which on a shared
/// machine varies; CPU time per request does much less, so both are recorded.
fn measure(
    wrk: &Wrk,
    settings: &Settings,
    scripts: &HashMap<&'static str, PathBuf>,
    server: &mut Server,
    scenario: Scenario,
) -> anyhow::Result<Measured> {
    let pid = server.child.id();
    let before = (process::cpu_time(pid), process::user_time(pid));
    let result = wrk.run(&scripts[scenario.name()], &server.url(scenario), settings.round)?;
    let after = (process::cpu_time(pid), process::user_time(pid));
    let delta =
        |a: Option<Duration>, b: Option<Duration>| a.zip(b).map(|(a, b)| b.saturating_sub(a));
    Ok(Measured { wrk: result, cpu: delta(before.0, after.0), user: delta(before.1, after.1) })
}

fn write_scripts(dir: &Path) -> anyhow::Result<HashMap<&'static str, PathBuf>> {
    let mut scripts = HashMap::new();
    for scenario in Scenario::ALL {
        let path = dir.join(format!("{}.lua", scenario.name()));
        std::fs::write(&path, scenario.lua_script())
            .with_context(|| format!("failed to write {}", path.display()))?;
        scripts.insert(scenario.name(), path);
    }
    Ok(scripts)
}

/// Pinning the server and wrk to one core each keeps the scheduler from stacking them.
fn pinning_available() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && wrk::which("taskset").is_some()
}

/// A running server child.
#[derive(Debug)]
struct Server {
    child: ChildGuard,
    addr: SocketAddr,
    name: &'static str,
}

impl Server {
    fn start(exe: &Path, kind: Kind, routes: usize, pin: bool) -> anyhow::Result<Self> {
        let routes = routes.to_string();
        let args = [kind.name(), "--routes", &routes, "--port", "0"].map(std::ffi::OsStr::new);
        let (child, port) = process::spawn_server(exe, &args, pin, kind.name())?;
        let mut server =
            Self { child, addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), name: kind.name() };
        server.wait_ready(Instant::now() + Duration::from_secs(10))?;
        Ok(server)
    }

    /// Polls until the server answers the plaintext scenario with 200.
    fn wait_ready(&mut self, deadline: Instant) -> anyhow::Result<()> {
        loop {
            self.ensure_alive()?;
            let err = match client::send(self.addr, Scenario::Plaintext) {
                Ok(resp) if resp.status == 200 => return Ok(()),
                Ok(resp) => anyhow::anyhow!("answered {}", resp.status),
                Err(err) => err,
            };
            if Instant::now() >= deadline {
                return Err(err.context(format!("{} never became ready", self.name)));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self, scenario: Scenario) -> String {
        format!("http://{}{}", self.addr, scenario.path())
    }

    fn ensure_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} (pid {}) exited with {status}", self.name, self.child.id());
        }
        Ok(())
    }
}
