//! `fawkes new` and `fawkes gen channel`: a service generated against this checkout, with a
//! generated channel, passes `cargo fmt --check`, `cargo clippy -D warnings` and its own tests,
//! prints its routes, and serves `/healthz` and its API when run. Bad names, an existing
//! directory and a channel generated twice are refused with a clear error.
//!
//! The service builds in this workspace's target directory with this workspace's lockfile, so
//! the crates it shares are not fetched or resolved again.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

fn fawkes(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fawkes"))
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("fawkes runs")
}

/// Runs `cargo ARGS` in the service's directory; panics with its output when it fails.
fn cargo(dir: &Path, args: &[&str]) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("cargo runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "cargo {args:?} failed:\n{text}");
    text
}

/// `GET path` over HTTP/1.1 to `addr`: the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the service accepts");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept: application/json\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[test]
fn a_new_service_passes_its_checks_and_serves() {
    let work = std::env::temp_dir().join(format!("fawkes-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let dir = work.join("demo_service");
    let ws = workspace();
    let ws = ws.to_str().unwrap();

    // Bad input first: each is refused, and nothing is written.
    for (args, says) in [
        (vec!["new", "Demo-Service"], "is not a snake_case name"),
        (vec!["new", "type"], "is a Rust keyword"),
        (vec!["new", "demo_service", "--db", "postgres"], "not generated yet"),
        (vec!["new", "demo_service", "--no-db", "--db", "sqlite"], "opposite things"),
    ] {
        let out = fawkes(&work, &args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0, "nothing written");

    // The default: a service on SQLite.
    let out = fawkes(&work, &["new", "demo_service", "--fawkes-path", ws]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for file in [
        "src/repo.rs",
        "migrations/20260101000000_init.sql",
        "Cargo.toml",
        "README.md",
        ".gitignore",
        "src/router.rs",
        "tests/http.rs",
        "deploy/Dockerfile",
        "deploy/k8s/deployment.yaml",
        "deploy/k8s/hpa.yaml",
        "deploy/k8s/pdb.yaml",
        "deploy/k8s/service.yaml",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    // Again: the directory exists, and is named.
    let again = fawkes(&work, &["new", "demo_service", "--fawkes-path", ws]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // A channel: its module, its test, its route on the socket; once only, CamelCase only.
    let generated = fawkes(&dir, &["gen", "channel", "Lobby"]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    assert!(String::from_utf8_lossy(&generated.stdout).contains("src/channels/lobby_channel.rs"));
    let socket = std::fs::read_to_string(dir.join("src/channels/mod.rs")).unwrap();
    assert!(socket.contains(".channel::<LobbyChannel>(\"lobby:*\")"), "{socket}");
    let twice = fawkes(&dir, &["gen", "channel", "Lobby"]);
    let stderr = String::from_utf8_lossy(&twice.stderr);
    assert!(
        !twice.status.success() && stderr.contains("src/channels/lobby_channel.rs already exists"),
        "{stderr}"
    );
    let lower = fawkes(&dir, &["gen", "channel", "lobby"]);
    assert!(String::from_utf8_lossy(&lower.stderr).contains("is not a CamelCase name"));

    // A JSON resource over the database: once only, with known field types.
    let json =
        ["gen", "json", "Blog", "Post", "posts", "title:string", "body:text", "published:boolean"];
    let generated = fawkes(&dir, &json);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let router = std::fs::read_to_string(dir.join("src/router.rs")).unwrap();
    assert!(
        router.contains("resources \"/posts\" => crate::controllers::post_controller"),
        "{router}"
    );
    let twice = fawkes(&dir, &json);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already exists"));
    let typo = fawkes(&dir, &["gen", "json", "Web", "Page", "pages", "title:strin"]);
    assert!(String::from_utf8_lossy(&typo.stderr)
        .contains("`strin` in `title:strin` is not a field type"));

    std::fs::copy(Path::new(ws).join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    cargo(&dir, &["fmt", "--check"]);
    cargo(&dir, &["clippy", "--all-targets", "--", "-D", "warnings"]);
    let tests = cargo(&dir, &["test"]);
    assert!(tests.contains("the_endpoint_serves_over_http ... ok"), "{tests}");
    assert!(tests.contains("a_message_reaches_the_room_with_its_sender ... ok"), "{tests}");
    assert!(tests.contains("shout_goes_to_everyone_on_the_topic ... ok"), "{tests}");
    assert!(tests.contains("every_action_of_posts ... ok"), "{tests}");

    let routes = fawkes(&dir, &["routes"]);
    let table = String::from_utf8_lossy(&routes.stdout);
    assert!(routes.status.success(), "{}", String::from_utf8_lossy(&routes.stderr));
    assert!(
        table
            .lines()
            .any(|l| l.contains("GET") && l.contains("/api/status") && l.ends_with("| api")),
        "{table}"
    );
    assert!(table.lines().any(|l| l.contains("/socket") && l.contains("socket ")), "{table}");

    // Run it as `cargo run` would, on a free port, and ask it.
    let exe = target_dir().join("debug").join("demo_service");
    let mut child = Command::new(&exe)
        .current_dir(&dir)
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.trim().rsplit(' ').next().unwrap_or_default().to_owned();
    let addr = url.trim_start_matches("http://").to_owned();
    let (status, _) = get(&addr, "/healthz");
    assert_eq!(status, 200, "{first}");
    let (status, body) = get(&addr, "/api/status");
    assert_eq!(status, 200);
    assert!(body.contains("\"service\":\"demo_service\""), "{body}");
    let (status, body) = get(&addr, "/api/posts");
    assert_eq!((status, body.trim()), (200, "{\"data\":[]}"));
    let _ = child.kill();
    let _ = child.wait();
    // Its database, a SQLite file where it ran, migrated at startup.
    assert!(dir.join("demo_service_dev.db").is_file());

    // Without a database: no repo, no migrations, and the same checks pass.
    let plain = work.join("plain_service");
    let out = fawkes(&work, &["new", "plain_service", "--no-db", "--fawkes-path", ws]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!plain.join("src/repo.rs").exists() && !plain.join("migrations").exists());
    let no_db = fawkes(&plain, &["gen", "json", "Blog", "Post", "posts", "title:string"]);
    assert!(String::from_utf8_lossy(&no_db.stderr).contains("needs a service with a database"));
    std::fs::copy(Path::new(ws).join("Cargo.lock"), plain.join("Cargo.lock")).unwrap();
    cargo(&plain, &["fmt", "--check"]);
    cargo(&plain, &["clippy", "--all-targets", "--", "-D", "warnings"]);
    let tests = cargo(&plain, &["test"]);
    assert!(tests.contains("the_endpoint_serves_over_http ... ok"), "{tests}");
    let _ = std::fs::remove_dir_all(&work);
}
