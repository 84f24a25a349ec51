//! What a new user sees: the smallest application (`src/bin/minimal.rs`), run as a process
//! with no logging set up, says where it listens and logs one line per request, as text or,
//! with `LOG_FORMAT=json`, as JSON.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The app's standard error, a line at a time.
struct App {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl App {
    fn start(json: bool) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_minimal"));
        command.env("PORT", "0").env_remove("RUST_LOG").stderr(Stdio::piped());
        if json {
            command.env("LOG_FORMAT", "json");
        } else {
            command.env_remove("LOG_FORMAT");
        }
        let mut child = command.spawn().expect("the minimal app starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    /// The first line containing `needle`, within 10 s.
    fn line_with(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?}"),
            }
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(addr: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_new_app_says_where_it_listens_and_logs_each_request() {
    let app = App::start(false);
    let listening = app.line_with("endpoint listening");
    let addr = listening.rsplit("addr=").next().unwrap().trim().to_owned();
    assert!(get(&addr).ends_with("hello"));
    let request = app.line_with("sent");
    assert!(request.contains("method=GET") && request.contains("path=/"), "{request}");
    assert!(request.contains("status=200"), "{request}");
}

#[test]
fn with_log_format_json_every_line_is_json() {
    let app = App::start(true);
    let listening: serde_json::Value =
        serde_json::from_str(&app.line_with("endpoint listening")).expect("a JSON line");
    let addr = listening["fields"]["addr"].as_str().unwrap().to_owned();
    assert!(get(&addr).ends_with("hello"));
    let request: serde_json::Value =
        serde_json::from_str(&app.line_with("\"sent\"")).expect("a JSON line");
    assert_eq!(request["fields"]["status"], 200, "{request}");
    assert_eq!(request["span"]["path"], "/", "{request}");
}
