//! `fawkes routes` in the example app's directory prints the table its router generated.

use std::path::Path;
use std::process::Command;

#[test]
fn fawkes_routes_prints_the_example_apps_route_table() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../example-app");
    // The features the workspace's tests build the app with, so nothing is built again.
    let out = Command::new(env!("CARGO_BIN_EXE_fawkes"))
        .current_dir(&example)
        .args(["routes", "--all-features"])
        .output()
        .expect("fawkes runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 20, "{stdout}");
    let find = |method: &str, path: &str| {
        lines
            .iter()
            .find(|l| {
                l.split_whitespace().any(|w| w == method) && l.split_whitespace().any(|w| w == path)
            })
            .unwrap_or_else(|| panic!("no {method} {path} in\n{stdout}"))
    };
    assert!(find("GET", "/healthz").starts_with("healthz_path"));
    assert!(find("POST", "/api/rooms").contains("room_controller::create"));
    assert!(find("GET", "/live/counter").contains("live crate::live::CounterLive"));
    assert!(find("*", "/socket").contains("socket "));
}

#[test]
fn fawkes_routes_outside_a_project_says_so() {
    let dir = std::env::temp_dir().join(format!("fawkes-cli-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fawkes"))
        .current_dir(&dir)
        .arg("routes")
        .output()
        .expect("fawkes runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fawkes: `cargo run -- routes` failed"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
