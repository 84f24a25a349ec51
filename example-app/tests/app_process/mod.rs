//! The example app as a child process, for the tests that drive the real binary (start-up,
//! signals, several nodes). Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) const STARTUP_DEADLINE: Duration = Duration::from_secs(60);
pub(crate) const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// The app as a child process; killed if a test fails before it exits.
pub(crate) struct App {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) dir: PathBuf,
    /// The thread collecting stderr, when it is captured.
    stderr: Option<JoinHandle<Vec<String>>>,
}

impl App {
    pub(crate) fn start(name: &str, drain_delay_secs: u64) -> Self {
        Self::start_with(name, drain_delay_secs, &[], false)
    }

    /// Starts the app with `env` on top of the defaults below; with `capture_stderr` its log
    /// lines are kept for [`App::stderr_lines`] instead of going to the test's output.
    pub(crate) fn start_with(
        name: &str,
        drain_delay_secs: u64,
        env: &[(&str, &str)],
        capture_stderr: bool,
    ) -> Self {
        let dir =
            std::env::temp_dir().join(format!("fawkes-example-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_example-app"))
            .current_dir(&dir)
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env_remove("DATABASE_URL")
            .env_remove("FAWKES_ENV")
            .env_remove("SECRET_KEY_BASE")
            .env("SHUTDOWN_TIMEOUT_SECS", SHUTDOWN_TIMEOUT_SECS.to_string())
            .env("DRAIN_DELAY_SECS", drain_delay_secs.to_string())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if capture_stderr { Stdio::piped() } else { Stdio::inherit() })
            .spawn()
            .expect("example-app starts");
        // Read from the start so the child never blocks on a full stderr pipe.
        let stderr = child.stderr.take().map(|stderr| {
            std::thread::spawn(move || {
                BufReader::new(stderr).lines().map_while(Result::ok).collect()
            })
        });

        // The first stdout line announces the URL; read it on a thread so a silent child
        // fails the test at the deadline instead of hanging it.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(STARTUP_DEADLINE) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!("no URL line within {STARTUP_DEADLINE:?}: {other:?}");
            }
        };
        let url = line
            .strip_prefix("Fawkes example app listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        let addr = url.parse().unwrap_or_else(|_| panic!("not an address: {url:?}"));
        Self { child, addr, dir, stderr }
    }

    /// The captured stderr lines; call after the app exited, when the pipe is at its end.
    pub(crate) fn stderr_lines(&mut self) -> Vec<String> {
        assert!(self.child.try_wait().unwrap().is_some(), "stderr is read once the app exited");
        let reader = self.stderr.take().expect("started with capture_stderr");
        reader.join().expect("the stderr reader does not panic")
    }

    pub(crate) fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Polls for the exit status until `deadline` passes.
    pub(crate) fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl App {
    /// SIGKILL: no drain, no farewell, as when a node is lost.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `http://<addr>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
