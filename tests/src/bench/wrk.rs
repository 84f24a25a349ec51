//! Driving wrk: finding (or installing) it, running it under a deadline, reading its result.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

use crate::process::ChildGuard;

/// What the `done` hook of the scenario script prints.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct WrkResult {
    pub(crate) requests: u64,
    pub(crate) duration_s: f64,
    pub(crate) rps: f64,
    pub(crate) bytes: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) mean_ms: f64,
    pub(crate) errors: WrkErrors,
}

/// wrk's error counters; `status` counts responses with a status of 400 or more.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct WrkErrors {
    pub(crate) connect: u64,
    pub(crate) read: u64,
    pub(crate) write: u64,
    pub(crate) status: u64,
    pub(crate) timeout: u64,
}

impl WrkResult {
    /// Any error at all fails the run: a benchmark of error responses measures nothing.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        let e = &self.errors;
        if e.status > 0 {
            bail!("wrk counted {} responses with a 4xx/5xx status", e.status);
        }
        if e.connect + e.read + e.write + e.timeout > 0 {
            bail!(
                "wrk saw socket errors: connect {}, read {}, write {}, timeout {}",
                e.connect,
                e.read,
                e.write,
                e.timeout
            );
        }
        if self.requests == 0 {
            bail!("wrk completed no request");
        }
        Ok(())
    }
}

/// How to run wrk.
#[derive(Debug, Clone)]
pub(crate) struct Wrk {
    pub(crate) program: PathBuf,
    pub(crate) threads: u32,
    pub(crate) connections: u32,
    /// The CPU list for `taskset`, when the load generator is pinned.
    pub(crate) cpus: Option<String>,
}

impl Wrk {
    /// Runs one measurement of `duration` against `url` with `script`.
    ///
    /// # Errors
    ///
    /// When wrk fails, overruns its deadline or prints no result.
    pub(crate) fn run(
        &self,
        script: &Path,
        url: &str,
        duration: Duration,
    ) -> anyhow::Result<WrkResult> {
        let mut command = crate::process::command_on(self.cpus.as_deref(), &self.program);
        command
            .arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", duration.as_secs().max(1)))
            .args(["--timeout", "5s", "-s"])
            .arg(script)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn(&mut command, "wrk")?;
        let mut stdout = child.take_stdout();
        let mut stderr = child.take_stderr();
        let out = std::thread::spawn(move || read_all(&mut stdout));
        let err = std::thread::spawn(move || read_all(&mut stderr));
        let status = child.wait_until(Instant::now() + duration + Duration::from_secs(30))?;
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if !status.success() {
            bail!("wrk exited with {status}: {}{}", stderr.trim(), stdout.trim());
        }
        parse(&stdout).with_context(|| format!("wrk printed no result:\n{stdout}{stderr}"))
    }

    /// wrk's version line, for the record.
    pub(crate) fn version(&self) -> String {
        // `wrk -v` prints its version and exits non-zero; only the text matters.
        let output = Command::new(&self.program).arg("-v").stdin(Stdio::null()).output();
        output
            .ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr);
                text.lines().next().map(|l| l.trim().to_owned())
            })
            .unwrap_or_default()
    }
}

fn read_all(reader: &mut Option<impl std::io::Read>) -> String {
    let mut text = String::new();
    if let Some(reader) = reader {
        let _ = reader.read_to_string(&mut text);
    }
    text
}

fn parse(stdout: &str) -> anyhow::Result<WrkResult> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_RESULT "))
        .context("no BENCH_RESULT line")?;
    serde_json::from_str(line).context("malformed BENCH_RESULT line")
}

/// Finds wrk on the `PATH`, installing the Debian package when missing and running as root.
///
/// # Errors
///
/// When wrk is missing and cannot be installed.
pub(crate) fn ensure() -> anyhow::Result<PathBuf> {
    ensure_installed("wrk", "wrk")
}

/// `program` from the PATH, installed from Debian's `package` first when it is missing and
/// this user is root.
///
/// # Errors
///
/// When it is missing and cannot be installed.
pub(crate) fn ensure_installed(program: &str, package: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = which(program) {
        return Ok(path);
    }
    if !is_root() {
        bail!(
            "`{program}` is not installed and this user cannot install it; \
             run `sudo apt-get install -y {package}` (Debian/Ubuntu) and try again"
        );
    }
    eprintln!("{program} not found: running `apt-get update && apt-get install -y {package}`");
    for args in [&["update"][..], &["install", "-y", package][..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .context("failed to run apt-get")?;
        if !status.success() {
            bail!("`apt-get {}` failed with {status}; install {package} by hand", args.join(" "));
        }
    }
    which(program)
        .with_context(|| format!("apt-get installed {package} but `{program}` is not on the PATH"))
}

/// An executable of that name on the `PATH`.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|m| {
            m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
        })
    })
}

/// Whether the effective user is root, from `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").ok().is_some_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_result_line_among_the_summary() {
        let out = "Running 2s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n\
            BENCH_RESULT {\"requests\":10,\"duration_s\":2.0,\"rps\":5.0,\"bytes\":100,\
            \"p50_ms\":1.0,\"p90_ms\":2.0,\"p99_ms\":3.0,\"max_ms\":4.0,\"mean_ms\":1.5,\
            \"errors\":{\"connect\":0,\"read\":0,\"write\":0,\"status\":2,\"timeout\":0}}\n";
        let result = parse(out).unwrap();
        assert_eq!(result.requests, 10);
        assert!(result.check().unwrap_err().to_string().contains("2 responses"));
        assert!(parse("Running 2s test").is_err());
    }
}
