//! Child processes that cannot outlive the harness, and a scratch directory that goes away.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// A child process killed and reaped when dropped, on every path out of the harness,
/// errors and panics included.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    child: Child,
    name: String,
}

impl ChildGuard {
    pub(crate) fn spawn(command: &mut Command, name: &str) -> anyhow::Result<Self> {
        let child = command.spawn().with_context(|| format!("failed to start {name}"))?;
        Ok(Self { child, name: name.to_owned() })
    }

    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    pub(crate) fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// The exit status, if the child has already exited.
    pub(crate) fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.child.try_wait().with_context(|| format!("failed to poll {}", self.name))
    }

    /// Waits for the child to exit; kills it if `deadline` passes first.
    pub(crate) fn wait_until(&mut self, deadline: Instant) -> anyhow::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                bail!("{} did not finish in time and was killed", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A command running `program`, on the CPUs of `cpus` (a `taskset` list) when given.
pub(crate) fn command_on(cpus: Option<&str>, program: &Path) -> Command {
    match cpus {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.args(["-c", cpus]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Starts `bench server ARGS` from `exe` (on CPU 0 with `pin`), its stdin piped so it never
/// outlives the harness, and reads the port it prints first, within 30 s.
///
/// # Errors
///
/// When it cannot start, exits first, or prints something else.
pub(crate) fn spawn_server(
    exe: &Path,
    args: &[&std::ffi::OsStr],
    pin: bool,
    name: &str,
) -> anyhow::Result<(ChildGuard, u16)> {
    use std::io::BufRead as _;
    use std::process::Stdio;
    let mut command = command_on(pin.then_some("0"), exe);
    command
        .arg("server")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = ChildGuard::spawn(&mut command, name)?;
    let stdout = child.take_stdout().context("server stdout is not piped")?;
    // Reading a pipe blocks, so the first line is read on a thread under a deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(read.map(|_| line));
    });
    let line = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(line)) if !line.is_empty() => line,
        Ok(Ok(_)) => bail!("{name} exited before printing its port"),
        Ok(Err(err)) => bail!("failed to read the port of {name}: {err}"),
        Err(_) => bail!("{name} printed no port within 30 s"),
    };
    let port = line
        .trim()
        .parse()
        .with_context(|| format!("{name} printed {:?}, not a port", line.trim()))?;
    Ok((child, port))
}

/// A directory under the system temp dir, removed when dropped.
#[derive(Debug)]
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("fawkes-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        Ok(Self(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CPU time all threads of process `pid` have used, from the scheduler's per-thread
/// nanosecond counters (`/proc/<pid>/task/<tid>/schedstat`).
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// The user-mode CPU time of process `pid`, all threads, from `/proc/<pid>/stat`. Kernel time
/// (syscalls, the TCP stack) is the rest of [`cpu_time`]; a framework's own cost is user time.
pub(crate) fn user_time(pid: u32) -> Option<Duration> {
    /// `USER_HZ`: the unit of `/proc` CPU times, 100 on every mainstream Linux build.
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime is field 14 of the whole line, the 12th after the name.
    let ticks: u64 = fields.get(11)?.parse().ok()?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cpu_time_of_a_live_process_and_nothing_for_a_missing_one() {
        let me = std::process::id();
        // Burn a little CPU so that the counters have something to show.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(std::hint::black_box(x), 1);
        let (cpu, user) = (cpu_time(me).unwrap(), user_time(me).unwrap());
        // Not compared with each other: `user_time` counts threads that have exited (other
        // tests of this binary), `cpu_time` only the live ones.
        assert!(cpu > Duration::ZERO);
        assert!(user > Duration::ZERO);
        assert!(cpu_time(u32::MAX).is_none() && user_time(u32::MAX).is_none());
    }
}
