//! `fawkes new` and `fawkes gen`: services generated against this checkout pass
//! `cargo fmt --check`, `cargo clippy -D warnings` and their own tests, print their routes,
//! and serve what was generated when run: on SQLite (with JSON resources, a reference
//! between them, two schemas in one context, a socket with a channel, a live page), without a
//! database, and on a real Postgres server. Bad input is refused with a clear error, before
//! anything is written.
//!
//! The services build in this workspace's target directory with this workspace's lockfile,
//! so the crates they share are not fetched or resolved again.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// A scratch directory for one test, emptied first.
fn scratch(name: &str) -> PathBuf {
    let work = std::env::temp_dir().join(format!("fawkes-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    work
}

fn fawkes(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fawkes"))
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("fawkes runs")
}

/// Runs `fawkes ARGS` in `dir`; panics with its error when it fails.
fn generate(dir: &Path, args: &[&str]) -> String {
    let out = fawkes(dir, args);
    assert!(out.status.success(), "fawkes {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `fawkes ARGS` in `dir`, which must fail saying `says`.
fn refused(dir: &Path, args: &[&str], says: &str) {
    let out = fawkes(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(says), "fawkes {args:?}: {stderr}");
}

/// Runs `cargo ARGS` in the service's directory; panics with its output when it fails.
fn cargo(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .envs(env.iter().copied())
        .output()
        .expect("cargo runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "cargo {args:?} failed:\n{text}");
    text
}

/// `fmt --check`, `clippy -D warnings` and `test` in the service at `dir`, with the
/// workspace's lockfile; returns the tests' output.
fn check(dir: &Path, env: &[(&str, &str)]) -> String {
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    cargo(dir, &["fmt", "--check"], env);
    cargo(dir, &["clippy", "--all-targets", "--", "-D", "warnings"], env);
    cargo(dir, &["test"], env)
}

/// The service's binary, started as `cargo run` would on a free port; its address.
struct Running {
    child: Child,
    addr: String,
}

impl Running {
    fn start(dir: &Path, name: &str, env: &[(&str, &str)]) -> Self {
        let exe = target_dir().join("debug").join(name);
        let mut child = Command::new(&exe)
            .current_dir(dir)
            .env("PORT", "0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the service starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let url = first.trim().rsplit(' ').next().unwrap_or_default().to_owned();
        assert!(url.starts_with("http://"), "the first line says where it listens: {first:?}");
        Self { child, addr: url.trim_start_matches("http://").to_owned() }
    }

    /// `METHOD path` over HTTP/1.1 with a JSON body, if any: the status and the body.
    fn request(&self, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).expect("the service accepts");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let addr = &self.addr;
        let body = json.unwrap_or_default();
        let accept = if path.starts_with("/api") { "application/json" } else { "text/html" };
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\naccept: {accept}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The routes `fawkes routes` prints in `dir`.
fn routes(dir: &Path) -> String {
    generate(dir, &["routes"])
}

#[test]
fn a_new_service_passes_its_checks_and_serves() {
    let work = scratch("new");
    let dir = work.join("demo_service");
    let ws = workspace();
    let ws = ws.to_str().unwrap();

    // Bad input first: each is refused, and nothing is written.
    refused(&work, &["new", "Demo-Service"], "is not a snake_case name");
    refused(&work, &["new", "type"], "is a Rust keyword");
    refused(&work, &["new", "demo_service", "--no-db", "--db", "sqlite"], "opposite things");
    refused(&work, &["new", "demo_service", "--db", "mysql"], "invalid value 'mysql'");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0, "nothing written");

    // The default: a service on SQLite.
    generate(&work, &["new", "demo_service", "--fawkes-path", ws]);
    for file in [
        "src/repo.rs",
        "migrations/20260101000000_init.sql",
        "Cargo.toml",
        "README.md",
        ".gitignore",
        "package.json",
        "src/router.rs",
        "src/live/mod.rs",
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
    refused(&work, &["new", "demo_service", "--fawkes-path", ws], "already exists");

    // A channel on the default socket: its module, its test, its route; once only.
    let out = generate(&dir, &["gen", "channel", "Lobby"]);
    assert!(out.contains("src/channels/lobby_channel.rs"), "{out}");
    let socket = std::fs::read_to_string(dir.join("src/channels/mod.rs")).unwrap();
    assert!(socket.contains(".channel::<LobbyChannel>(\"lobby:*\")"), "{socket}");
    refused(&dir, &["gen", "channel", "Lobby"], "src/channels/lobby_channel.rs already exists");
    refused(&dir, &["gen", "channel", "lobby"], "is not a CamelCase name");

    // A second socket, with a channel of its own.
    generate(&dir, &["gen", "socket", "Admin"]);
    refused(&dir, &["gen", "socket", "Other", "--path", "/socket"], "has a route at `/socket`");
    refused(&dir, &["gen", "socket", "Other", "--path", "no-slash"], "is not a path");
    refused(&dir, &["gen", "channel", "Ops", "--socket", "Nope"], "make the socket first");
    generate(&dir, &["gen", "channel", "Ops", "--socket", "Admin"]);
    let admin = std::fs::read_to_string(dir.join("src/channels/admin_socket.rs")).unwrap();
    assert!(admin.contains(".channel::<super::OpsChannel>(\"ops:*\")"), "{admin}");

    // A live page.
    generate(&dir, &["gen", "live", "Dashboard"]);
    refused(&dir, &["gen", "live", "Board", "--path", "/dashboard"], "has a route at `/dashboard`");

    // JSON resources over the database: users; posts that reference a user; comments in the
    // same context as posts. Once only, with known field types and existing tables.
    generate(&dir, &["gen", "json", "Accounts", "User", "users", "name:string", "age:integer"]);
    let posts = [
        "gen",
        "json",
        "Blog",
        "Post",
        "posts",
        "title:string",
        "body:text",
        "published:boolean",
        "user_id:references:users",
    ];
    generate(&dir, &posts);
    generate(&dir, &["gen", "json", "Blog", "Comment", "comments", "body:text", "score:float"]);
    let router = std::fs::read_to_string(dir.join("src/router.rs")).unwrap();
    for line in [
        "resources \"/posts\" => crate::controllers::post_controller",
        "resources \"/comments\" => crate::controllers::comment_controller",
        "live \"/dashboard\" => crate::live::DashboardLive;",
        "socket \"/admin_socket\" => crate::channels::AdminSocket;",
    ] {
        assert!(router.contains(line), "{line}: {router}");
    }
    let blog = std::fs::read_to_string(dir.join("src/blog.rs")).unwrap();
    assert!(blog.contains("pub struct Post ") && blog.contains("pub struct Comment "), "{blog}");
    assert_eq!(blog.matches("pub enum Error").count(), 1, "{blog}");
    refused(&dir, &posts, "already exists");
    refused(
        &dir,
        &["gen", "json", "Web", "Page", "pages", "title:strin"],
        "`strin` in `title:strin` is not a field type",
    );
    refused(
        &dir,
        &["gen", "json", "Web", "Tag", "tags", "name:string", "owner_id:references:owners"],
        "creates the table `owners`",
    );
    refused(
        &dir,
        &["gen", "json", "Web", "Person", "users", "name:string"],
        "creates the table `users` already",
    );

    let tests = check(&dir, &[]);
    for test in [
        "the_endpoint_serves_over_http ... ok",
        "a_message_reaches_the_room_with_its_sender ... ok",
        "shout_goes_to_everyone_on_the_topic ... ok",
        "a_client_connects_and_only_its_channels_join ... ok",
        "the_router_serves_it ... ok",
        "the_page_renders_and_clicks_change_it ... ok",
        "every_action_of_users ... ok",
        "every_action_of_posts ... ok",
        "every_action_of_comments ... ok",
    ] {
        assert!(tests.contains(test), "{test}: {tests}");
    }

    let table = routes(&dir);
    assert!(
        table
            .lines()
            .any(|l| l.contains("GET") && l.contains("/api/status") && l.ends_with("| api")),
        "{table}"
    );
    assert!(table.lines().any(|l| l.contains("/admin_socket") && l.contains("socket ")), "{table}");
    assert!(table.lines().any(|l| l.contains("/dashboard") && l.contains("live ")), "{table}");

    // Run it and ask it, as a client would.
    let app = Running::start(&dir, "demo_service", &[]);
    assert_eq!(app.request("GET", "/healthz", None).0, 200);
    let (status, body) = app.request("GET", "/api/status", None);
    assert_eq!(status, 200);
    assert!(body.contains("\"service\":\"demo_service\""), "{body}");
    assert_eq!(app.request("GET", "/api/posts", None), (200, "{\"data\":[]}".to_owned()));
    let (status, user) =
        app.request("POST", "/api/users", Some(r#"{"user": {"name": "ada", "age": 36}}"#));
    assert_eq!(status, 201, "{user}");
    assert!(user.contains("\"id\":1"), "{user}");
    let post = r#"{"post": {"title": "t", "body": "b", "published": true, "user_id": 1}}"#;
    let (status, created) = app.request("POST", "/api/posts", Some(post));
    assert_eq!(status, 201, "{created}");
    assert!(created.contains("\"user_id\":1"), "{created}");
    let dangling = post.replace("\"user_id\": 1", "\"user_id\": 2");
    let (status, answer) = app.request("POST", "/api/posts", Some(&dangling));
    assert_eq!((status, answer.as_str()), (422, r#"{"errors":{"user_id":["does not exist"]}}"#));
    // Deleting the user keeps the post, without its user.
    assert_eq!(app.request("DELETE", "/api/users/1", None).0, 204);
    let (_, kept) = app.request("GET", "/api/posts/1", None);
    assert!(kept.contains("\"user_id\":null"), "{kept}");
    // The live page renders as the official client expects it; its clients are served
    // from node_modules once installed.
    let (status, page) = app.request("GET", "/dashboard", None);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(" data-phx-main") && page.contains("<span id=\"count\">0</span>"),
        "{page}"
    );
    assert!(page.contains("\"phoenix_live_view\": \"/vendor/phoenix_live_view/"), "{page}");
    drop(app);
    // Its database, a SQLite file where it ran, migrated at startup.
    assert!(dir.join("demo_service_dev.db").is_file());

    // Without a database: no repo, no migrations, and the same checks pass.
    let plain = work.join("plain_service");
    generate(&work, &["new", "plain_service", "--no-db", "--fawkes-path", ws]);
    assert!(!plain.join("src/repo.rs").exists() && !plain.join("migrations").exists());
    refused(
        &plain,
        &["gen", "json", "Blog", "Post", "posts", "title:string"],
        "needs a service with a database",
    );
    generate(&plain, &["gen", "live", "Board"]);
    // A router without the marker: the command says what to add, and writes nothing.
    let router_path = plain.join("src/router.rs");
    let router = std::fs::read_to_string(&router_path).unwrap();
    let unmarked: String = router
        .lines()
        .filter(|l| !l.contains("// fawkes:live-routes"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&router_path, &unmarked).unwrap();
    refused(&plain, &["gen", "live", "Other"], "has no `// fawkes:live-routes` line to add the route at: add `live \"/other\" => crate::live::OtherLive;`");
    assert!(
        !plain.join("src/live/other_live.rs").exists()
            && !plain.join("tests/other_live.rs").exists()
    );
    assert_eq!(std::fs::read_to_string(&router_path).unwrap(), unmarked);
    std::fs::write(&router_path, &router).unwrap();
    let tests = check(&plain, &[]);
    assert!(tests.contains("the_endpoint_serves_over_http ... ok"), "{tests}");
    assert!(tests.contains("the_page_renders_and_clicks_change_it ... ok"), "{tests}");
    let _ = std::fs::remove_dir_all(&work);
}

/// A throwaway Postgres cluster on a loopback port, stopped and removed when dropped. As
/// root, it belongs to `nobody` (Postgres refuses to run as root).
struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    as_nobody: bool,
    port: u16,
}

impl Postgres {
    fn bin_dir() -> PathBuf {
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
        let debian = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("bin"));
        on_path
            .chain(debian)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
            .expect("Postgres (initdb, pg_ctl) is missing: scripts/test installs it")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_nobody {
            let mut command = Command::new("runuser");
            command.args(["-u", "nobody", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn start() -> Self {
        let dir = scratch("postgres");
        let uid = Command::new("id").arg("-u").output().expect("id runs");
        let as_nobody = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        if as_nobody {
            let chown = Command::new("chown").arg("nobody").arg(&dir).status().unwrap();
            assert!(chown.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Self { dir, bin: Self::bin_dir(), as_nobody, port };
        let data = pg.dir.join("data");
        let init = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(init.success(), "initdb failed");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
             -c dynamic_shared_memory_type=mmap",
            pg.dir.display()
        );
        let started = pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(pg.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        if !started.success() {
            let log = std::fs::read_to_string(pg.dir.join("server.log")).unwrap_or_default();
            panic!("pg_ctl start failed; the server's log:\n{log}");
        }
        pg
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_service_on_postgres_passes_its_checks_and_serves() {
    let pg = Postgres::start();
    let work = scratch("new-postgres");
    let dir = work.join("pg_service");
    let ws = workspace();
    generate(
        &work,
        &["new", "pg_service", "--db", "postgres", "--fawkes-path", ws.to_str().unwrap()],
    );
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains("\"postgres\"") && !cargo_toml.contains("\"sqlite\""),
        "{cargo_toml}"
    );
    let every_type = [
        "gen",
        "json",
        "Catalog",
        "Item",
        "items",
        "name:string",
        "notes:text",
        "stock:integer",
        "price:float",
        "active:boolean",
        "available_at:datetime",
    ];
    generate(&dir, &every_type);
    generate(
        &dir,
        &["gen", "json", "Catalog", "Review", "reviews", "body:text", "item_id:references:items"],
    );
    let migration = std::fs::read_dir(dir.join("migrations"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("_create_items.sql"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap();
    assert!(migration.contains("id BIGSERIAL PRIMARY KEY"), "{migration}");

    let test_url = pg.url("pg_service_test");
    let tests = check(&dir, &[("TEST_DATABASE_URL", &test_url)]);
    for test in [
        "the_endpoint_serves_over_http ... ok",
        "every_action_of_items ... ok",
        "every_action_of_reviews ... ok",
    ] {
        assert!(tests.contains(test), "{test}: {tests}");
    }
    // Run again, the tests replace the databases the first run left.
    cargo(&dir, &["test", "--test", "item_controller"], &[("TEST_DATABASE_URL", &test_url)]);

    // The service creates its database when the server has none by that name.
    let app = Running::start(&dir, "pg_service", &[("DATABASE_URL", &pg.url("pg_service_dev"))]);
    assert_eq!(app.request("GET", "/healthz", None).0, 200);
    let item = r#"{"item": {"name": "n", "notes": "x", "stock": 3, "price": 9.5, "active": true, "available_at": "2026-12-05T00:00:00Z"}}"#;
    let (status, created) = app.request("POST", "/api/items", Some(item));
    assert_eq!(status, 201, "{created}");
    assert!(created.contains("\"price\":9.5") && created.contains("\"stock\":3"), "{created}");
    let (status, review) =
        app.request("POST", "/api/reviews", Some(r#"{"review": {"body": "good", "item_id": 1}}"#));
    assert_eq!(status, 201, "{review}");
    let (status, answer) =
        app.request("POST", "/api/reviews", Some(r#"{"review": {"body": "good", "item_id": 9}}"#));
    assert_eq!((status, answer.as_str()), (422, r#"{"errors":{"item_id":["does not exist"]}}"#));
    let (status, list) = app.request("GET", "/api/items", None);
    assert_eq!(status, 200);
    assert!(list.contains("\"name\":\"n\""), "{list}");
    drop(app);
    let _ = std::fs::remove_dir_all(&work);
}
