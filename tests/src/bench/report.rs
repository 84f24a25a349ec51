//! Results: the table on stdout and the JSON file.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::driver::MAIN_ROUTES;
use crate::scenario::Scenario;
use crate::server::Kind;
use crate::wrk::WrkResult;

/// How long and how hard each run drives a server.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) quick: bool,
    /// Each server is measured on each scenario this many times, interleaved with the others.
    pub(crate) rounds: u32,
    /// The length of one measurement.
    pub(crate) round: Duration,
    pub(crate) warmup: Duration,
    pub(crate) threads: u32,
    pub(crate) connections: u32,
}

impl Settings {
    pub(crate) fn new(quick: bool) -> Self {
        let (rounds, round, warmup) = if quick { (2, 1, 1) } else { (10, 1, 2) };
        Self {
            quick,
            rounds,
            round: Duration::from_secs(round),
            warmup: Duration::from_secs(warmup),
            threads: 1,
            connections: 64,
        }
    }

    /// The time each server spends under load on each scenario.
    pub(crate) fn per_scenario(&self) -> Duration {
        self.round * self.rounds
    }
}

/// One wrk run, and the CPU time the server spent meanwhile.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) wrk: WrkResult,
    /// The server's CPU time, user and kernel.
    pub(crate) cpu: Option<Duration>,
    /// The server's user-mode CPU time.
    pub(crate) user: Option<Duration>,
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The machine the numbers come from.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
    pub(crate) loadavg_start: String,
}

impl Machine {
    pub(crate) fn detect() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let memory_kib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_gib: memory_kib / 1024.0 / 1024.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            loadavg_start: loadavg(),
        }
    }
}

fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// One server on one scenario, over all rounds.
///
/// The headline is the best round: interference from outside (another process on a shared
/// machine) only ever slows a run down, so the fastest round is the closest to what the stack
/// can do. Medians and CPU time per request, summed over all rounds, go alongside.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) scenario: Scenario,
    pub(crate) server: Kind,
    pub(crate) routes: usize,
    /// The best round.
    pub(crate) result: WrkResult,
    pub(crate) rounds_rps: Vec<f64>,
    pub(crate) rps_median: f64,
    pub(crate) p50_ms_median: f64,
    pub(crate) p99_ms_median: f64,
    /// Requests over all rounds.
    pub(crate) requests: u64,
    /// The server's CPU time (all threads) per request, over all rounds.
    pub(crate) cpu_us_per_req: Option<f64>,
    /// The user-mode part of `cpu_us_per_req`: what the stack itself costs, without syscalls.
    pub(crate) user_us_per_req: Option<f64>,
    /// The server's CPU time over the runs' wall time: near 1.0 means the server was the
    /// bottleneck, well below it means the load generator or a neighbour was.
    pub(crate) server_cpu_util: Option<f64>,
}

impl Row {
    /// Folds the rounds of one server on one scenario; `None` without rounds.
    pub(crate) fn from_rounds(
        scenario: Scenario,
        server: Kind,
        routes: usize,
        runs: &[Measured],
    ) -> Option<Self> {
        let best = runs.iter().max_by(|a, b| a.wrk.rps.total_cmp(&b.wrk.rps))?;
        let requests: u64 = runs.iter().map(|m| m.wrk.requests).sum();
        let duration_s: f64 = runs.iter().map(|m| m.wrk.duration_s).sum();
        let cpu: Option<Duration> = runs.iter().map(|m| m.cpu).sum();
        let user: Option<Duration> = runs.iter().map(|m| m.user).sum();
        let per_req = |d: Option<Duration>| {
            d.filter(|_| requests > 0).map(|d| d.as_secs_f64() * 1e6 / requests as f64)
        };
        Some(Self {
            scenario,
            server,
            routes,
            result: best.wrk.clone(),
            rounds_rps: runs.iter().map(|m| m.wrk.rps).collect(),
            rps_median: median(runs.iter().map(|m| m.wrk.rps).collect()),
            p50_ms_median: median(runs.iter().map(|m| m.wrk.p50_ms).collect()),
            p99_ms_median: median(runs.iter().map(|m| m.wrk.p99_ms).collect()),
            requests,
            cpu_us_per_req: per_req(cpu),
            user_us_per_req: per_req(user),
            server_cpu_util: cpu.filter(|_| duration_s > 0.0).map(|c| c.as_secs_f64() / duration_s),
        })
    }
}

/// Everything a run produced.
#[derive(Debug)]
pub(crate) struct Report {
    machine: Machine,
    settings: Settings,
    /// Whether the HTTP suite ran (it may have run and measured nothing).
    http_suite: bool,
    wrk_version: String,
    pinned: bool,
    elapsed: Duration,
    loadavg_end: String,
    pub(crate) http: Vec<Row>,
    /// HTTP/2 results, from the `h2` suite.
    pub(crate) h2: Vec<Value>,
    /// GraphQL against REST on one Fawkes server, from the `graphql` suite.
    pub(crate) graphql: Vec<Value>,
    /// WebSocket results; the `ws` suite fills it once it exists.
    pub(crate) ws: Vec<Value>,
    pub(crate) failures: Vec<String>,
}

impl Report {
    pub(crate) fn new(machine: Machine, settings: Settings) -> Self {
        Self {
            machine,
            settings,
            http_suite: false,
            wrk_version: String::new(),
            pinned: false,
            elapsed: Duration::ZERO,
            loadavg_end: String::new(),
            http: Vec::new(),
            h2: Vec::new(),
            graphql: Vec::new(),
            ws: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub(crate) fn set_wrk(&mut self, version: String, pinned: bool) {
        self.http_suite = true;
        self.wrk_version = version;
        self.pinned = pinned;
    }

    pub(crate) fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
        self.loadavg_end = loadavg();
    }

    /// Fawkes with the main table on `scenario`: what every ratio divides by.
    fn fawkes_rps(&self, scenario: Scenario) -> Option<f64> {
        self.http
            .iter()
            .find(|r| r.server == Kind::Fawkes && r.routes == MAIN_ROUTES && r.scenario == scenario)
            .map(|r| r.result.rps)
    }

    /// Best round over Fawkes' best round.
    fn best_ratio(&self, row: &Row) -> Option<f64> {
        self.fawkes_rps(row.scenario).filter(|&f| f > 0.0).map(|f| row.result.rps / f)
    }

    /// The median, over rounds, of this row's req/s over Fawkes' in the same round. A round
    /// drives the servers one after the other within seconds, so the machine's drift (a
    /// neighbour, the host's clock speed), which moves whole rounds up and down by tens of
    /// percent here, mostly cancels out of each round's ratio; the median then drops the
    /// rounds where it did not.
    fn ratio(&self, row: &Row) -> Option<f64> {
        let fawkes = self.http.iter().find(|r| {
            r.server == Kind::Fawkes && r.routes == MAIN_ROUTES && r.scenario == row.scenario
        })?;
        let ratios: Vec<f64> = row
            .rounds_rps
            .iter()
            .zip(&fawkes.rounds_rps)
            .filter(|(_, &f)| f > 0.0)
            .map(|(&r, &f)| r / f)
            .collect();
        (!ratios.is_empty()).then(|| median(ratios))
    }

    fn main_rows(&self) -> impl Iterator<Item = &Row> {
        // The bare hyper server has no table, so it belongs to the main comparison whatever
        // its route count says.
        self.http.iter().filter(|r| r.server != Kind::Fawkes || r.routes == MAIN_ROUTES)
    }

    fn scaling_rows(&self) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self
            .http
            .iter()
            .filter(|r| r.server == Kind::Fawkes && r.scenario == Scenario::DeepPath)
            .collect();
        rows.sort_by_key(|r| r.routes);
        rows
    }

    /// Prints the tables to stdout.
    ///
    /// # Errors
    ///
    /// When stdout is closed.
    pub(crate) fn print(&self) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.http_suite {
            self.print_http(&mut out)?;
        }
        if !self.h2.is_empty() {
            self.print_h2(&mut out)?;
        }
        if !self.graphql.is_empty() {
            self.print_graphql(&mut out)?;
        }
        if !self.failures.is_empty() {
            writeln!(out, "\nFAILURES:")?;
            for failure in &self.failures {
                writeln!(out, "  {failure}")?;
            }
        }
        Ok(())
    }

    fn print_graphql(&self, out: &mut impl std::io::Write) -> anyhow::Result<()> {
        let s = &self.settings;
        writeln!(
            out,
            "\nGraphQL: wrk -t{} -c{} on one Fawkes server; {} interleaved rounds of {} s after a {} s \
             warm-up; the same body bytes both ways.",
            s.threads, s.connections, s.rounds, s.round.as_secs(), s.warmup.as_secs(),
        )?;
        writeln!(
            out,
            "{:<8} {:>10} {:>10} {:>8}  request",
            "api", "best req/s", "median", "vs rest"
        )?;
        for row in &self.graphql {
            let number = |key: &str| row[key].as_f64().unwrap_or_default();
            writeln!(
                out,
                "{:<8} {:>10} {:>10} {:>7.2}x  {}",
                row["api"].as_str().unwrap_or_default(),
                thousands(number("best_rps")),
                thousands(number("median_rps")),
                number("ratio_to_rest"),
                row["request"].as_str().unwrap_or_default(),
            )?;
        }
        writeln!(out, "vs rest: the median over rounds of req/s over REST's in the same round.")?;
        Ok(())
    }

    fn print_h2(&self, out: &mut impl std::io::Write) -> anyhow::Result<()> {
        let s = &self.settings;
        let first = &self.h2[0];
        writeln!(
            out,
            "\nHTTP/2: h2load -t1 -c{} -m{} on plaintext; {} interleaved rounds of {} s after a {} s \
             warm-up; every server on one tokio worker thread.",
            first["connections"], first["streams_per_connection"], s.rounds, s.round.as_secs(), s.warmup.as_secs(),
        )?;
        writeln!(
            out,
            "{:<10} {:<7} {:>10} {:>10} {:>9}",
            "protocol", "server", "best req/s", "median", "vs fawkes"
        )?;
        for row in &self.h2 {
            let number = |key: &str| row[key].as_f64().unwrap_or_default();
            writeln!(
                out,
                "{:<10} {:<7} {:>10} {:>10} {:>8.2}x",
                row["protocol"].as_str().unwrap_or_default(),
                row["server"].as_str().unwrap_or_default(),
                thousands(number("best_rps")),
                thousands(number("median_rps")),
                number("ratio_to_fawkes"),
            )?;
        }
        writeln!(
            out,
            "vs fawkes: the median over rounds of req/s over Fawkes' in the same round."
        )?;
        Ok(())
    }

    fn print_http(&self, out: &mut impl std::io::Write) -> anyhow::Result<()> {
        let s = &self.settings;
        writeln!(
            out,
            "\nHTTP: wrk -t{} -c{}; {} s per server and scenario as {} interleaved rounds of {} s \
             after a {} s warm-up;\nevery server on one tokio worker thread{}.",
            s.threads,
            s.connections,
            s.per_scenario().as_secs(),
            s.rounds,
            s.round.as_secs(),
            s.warmup.as_secs(),
            if self.pinned { "; server on CPU 0, wrk on CPU 1" } else { "" }
        )?;
        let header = [
            "scenario",
            "server",
            "routes",
            "best req/s",
            "median",
            "p50 ms",
            "p99 ms",
            "vs fawkes",
            "user us/req",
            "cpu us/req",
            "cpu util",
        ];
        let line = |c: [String; 11]| {
            format!(
                "{:<10} {:<6} {:>6} {:>10} {:>8} {:>7} {:>7} {:>9} {:>11} {:>10} {:>8}",
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]
            )
        };
        writeln!(out, "{}", line(header.map(str::to_owned)))?;
        for scenario in Scenario::ALL {
            for row in self.main_rows().filter(|r| r.scenario == scenario) {
                writeln!(out, "{}", line(self.cells(row)))?;
            }
        }
        let scaling = self.scaling_rows();
        if !scaling.is_empty() {
            writeln!(
                out,
                "\nRoute table size: fawkes on deep_path (\"vs fawkes\": vs 100 routes)"
            )?;
            writeln!(out, "{}", line(header.map(str::to_owned)))?;
            for row in scaling {
                writeln!(out, "{}", line(self.cells(row)))?;
            }
        }
        writeln!(
            out,
            "\nbest req/s: the fastest round (outside interference only slows a run down); \
             median: the median round.\np50/p99 ms: wrk's latency percentiles, the median over \
             rounds (one round's tail is mostly the machine's hiccups).\nvs fawkes: the median over rounds of req/s over Fawkes' \
             (100 routes) in the same round, on the same scenario.\nuser/cpu us/req: the \
             server's user-mode / total CPU time per request over all rounds; cpu util: its CPU \
             time\nover the runs' wall time."
        )?;
        Ok(())
    }

    fn cells(&self, row: &Row) -> [String; 11] {
        [
            row.scenario.name().to_owned(),
            row.server.name().to_owned(),
            row.routes.to_string(),
            thousands(row.result.rps),
            thousands(row.rps_median),
            format!("{:.3}", row.p50_ms_median),
            format!("{:.3}", row.p99_ms_median),
            self.ratio(row).map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x")),
            opt(row.user_us_per_req, 1),
            opt(row.cpu_us_per_req, 1),
            opt(row.server_cpu_util.map(|u| u * 100.0), 0) + "%",
        ]
    }

    pub(crate) fn to_json(&self) -> Value {
        let http: Vec<Value> = self
            .http
            .iter()
            .map(|row| {
                let r = &row.result;
                json!({
                    "scenario": row.scenario.name(),
                    "server": row.server.name(),
                    "routes": row.routes,
                    "rps": round(r.rps, 1),
                    "p50_ms": round(r.p50_ms, 4),
                    "p90_ms": round(r.p90_ms, 4),
                    "p99_ms": round(r.p99_ms, 4),
                    "max_ms": round(r.max_ms, 4),
                    "mean_ms": round(r.mean_ms, 4),
                    "rps_median": round(row.rps_median, 1),
                    "p50_ms_median": round(row.p50_ms_median, 4),
                    "p99_ms_median": round(row.p99_ms_median, 4),
                    "requests": row.requests,
                    "rounds_rps": row.rounds_rps.iter().map(|x| round(*x, 1)).collect::<Vec<_>>(),
                    "ratio_to_fawkes": self.ratio(row).map(|x| round(x, 4)),
                    "ratio_best_to_fawkes": self.best_ratio(row).map(|x| round(x, 4)),
                    "cpu_us_per_req": row.cpu_us_per_req.map(|x| round(x, 3)),
                    "user_us_per_req": row.user_us_per_req.map(|x| round(x, 3)),
                    "server_cpu_util": row.server_cpu_util.map(|x| round(x, 3)),
                })
            })
            .collect();
        let (m, s) = (&self.machine, &self.settings);
        json!({
            "http": http,
            "h2": self.h2,
            "graphql": self.graphql,
            "ws": self.ws,
            "meta": {
                "mode": if s.quick { "quick" } else { "full" },
                "duration_s": s.per_scenario().as_secs(),
                "rounds": s.rounds,
                "round_s": s.round.as_secs(),
                "warmup_s": s.warmup.as_secs(),
                "wrk_threads": s.threads,
                "wrk_connections": s.connections,
                "server_worker_threads": 1,
                "pinned": self.pinned,
                "wrk_version": self.wrk_version,
                "cpus": m.cpus,
                "cpu_model": m.cpu_model,
                "memory_gib": round(m.memory_gib, 1),
                "kernel": m.kernel,
                "loadavg_start": m.loadavg_start,
                "loadavg_end": self.loadavg_end,
                "elapsed_s": round(self.elapsed.as_secs_f64(), 1),
                "rps": "the best round, with its p50_ms and p99_ms; rps_median, p50_ms_median and p99_ms_median are medians over rounds",
                "ratio": "ratio_to_fawkes: the median over rounds of rps / rps of fawkes with 100 routes \
                          on the same scenario in the same round; ratio_best_to_fawkes: best round \
                          over best round",
                "failures": self.failures,
            },
        })
    }

    /// Writes the JSON report.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub(crate) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json())?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("failed to write {}", path.display()))
    }
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "?".to_owned(), |v| format!("{v:.digits$}"))
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// `123456.7` → `123,457`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrk::WrkErrors;

    fn row(server: Kind, routes: usize, scenario: Scenario, rps: f64) -> Row {
        let result = WrkResult {
            requests: 1000,
            duration_s: 1.0,
            rps,
            bytes: 1,
            p50_ms: 1.0,
            p90_ms: 1.0,
            p99_ms: 1.0,
            max_ms: 1.0,
            mean_ms: 1.0,
            errors: WrkErrors::default(),
        };
        let measured = Measured { wrk: result, cpu: Some(Duration::from_millis(10)), user: None };
        Row::from_rounds(scenario, server, routes, &[measured]).unwrap()
    }

    #[test]
    fn ratios_divide_by_fawkes_with_the_main_table() {
        let mut report = Report::new(Machine::detect(), Settings::new(true));
        report.http = vec![
            row(Kind::Fawkes, 100, Scenario::DeepPath, 100.0),
            row(Kind::Axum, 100, Scenario::DeepPath, 150.0),
            row(Kind::Fawkes, 1000, Scenario::DeepPath, 90.0),
            row(Kind::Hyper, 4, Scenario::Json, 10.0),
        ];
        let json = report.to_json();
        let ratios: Vec<Value> =
            json["http"].as_array().unwrap().iter().map(|r| r["ratio_to_fawkes"].clone()).collect();
        assert_eq!(ratios, [json!(1.0), json!(1.5), json!(0.9), Value::Null]);
        let best: Vec<Value> = json["http"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["ratio_best_to_fawkes"].clone())
            .collect();
        assert_eq!(best, ratios);
        assert_eq!(json["ws"], json!([]));
        assert_eq!(report.scaling_rows().len(), 2);
        assert_eq!(json["http"][0]["cpu_us_per_req"], json!(10.0));
    }

    #[test]
    fn rounds_fold_into_the_best_round_medians_and_sums() {
        let run = |rps: f64, p99_ms: f64| Measured {
            wrk: WrkResult { rps, p99_ms, ..row(Kind::Axum, 1, Scenario::Json, 0.0).result },
            cpu: Some(Duration::from_millis(5)),
            user: None,
        };
        let runs = [run(100.0, 9.0), run(300.0, 1.0), run(200.0, 5.0)];
        let row = Row::from_rounds(Scenario::Json, Kind::Axum, 100, &runs).unwrap();
        assert_eq!((row.result.rps, row.result.p99_ms), (300.0, 1.0));
        assert_eq!((row.rps_median, row.p99_ms_median), (200.0, 5.0));
        assert_eq!(row.p50_ms_median, 1.0);
        assert_eq!(row.requests, 3000);
        assert_eq!(row.rounds_rps, [100.0, 300.0, 200.0]);
        assert!((row.cpu_us_per_req.unwrap() - 5.0).abs() < 1e-9);
        assert!(Row::from_rounds(Scenario::Json, Kind::Axum, 100, &[]).is_none());
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn the_ratio_pairs_rounds_and_takes_their_median() {
        let rounds = |server: Kind, rps: &[f64]| {
            let runs: Vec<Measured> = rps
                .iter()
                .map(|&rps| Measured {
                    wrk: WrkResult { rps, ..row(server, 100, Scenario::Json, 0.0).result },
                    cpu: None,
                    user: None,
                })
                .collect();
            Row::from_rounds(Scenario::Json, server, 100, &runs).unwrap()
        };
        let mut report = Report::new(Machine::detect(), Settings::new(true));
        // Round 2 is slow for both; round 3 only for the peer, and its outlier ratio falls
        // out of the median.
        report.http = vec![
            rounds(Kind::Fawkes, &[100.0, 50.0, 100.0]),
            rounds(Kind::Axum, &[90.0, 45.0, 10.0]),
        ];
        let json = report.to_json();
        assert_eq!(json["http"][1]["ratio_to_fawkes"], json!(0.9));
        assert_eq!(json["http"][1]["ratio_best_to_fawkes"], json!(0.9));
        report.http[1] = rounds(Kind::Axum, &[120.0, 60.0, 200.0]);
        let json = report.to_json();
        assert_eq!(json["http"][1]["ratio_to_fawkes"], json!(1.2));
        assert_eq!(json["http"][1]["ratio_best_to_fawkes"], json!(2.0));
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234.0), "1,234");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }
}
