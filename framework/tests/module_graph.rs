//! The crate's modules form layers: a module uses only the modules below it, so there is no
//! cycle among them and each can be read, tested and changed with only what is under it in
//! mind. This test reads the `crate::…` paths of every module's non-test code and fails on an
//! edge that points up the order in `LAYERS`, naming the file that has it.
//!
//! The reading is textual, where `cargo modules` would ask the compiler: `crate::x` and
//! `crate::{x, y::z}` in code outside `#[cfg(test)]` items, comments and `tests.rs` files,
//! with the root's re-exports (`crate::Conn`) resolved through `lib.rs`'s `pub use` lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may use those before it in this list.
const LAYERS: &[&str] = &[
    // Leaves: no other module of the crate.
    "error",
    "budget",
    "mailbox",
    "serializer",
    "supervisor",
    "instrument",
    "otel",
    "secret",
    // Messaging between processes and nodes, and presence on top of it: no HTTP in them.
    "pubsub",
    "presence",
    // HTTP: the conn, what renders onto it, plugs and pipelines, routes.
    "conn",
    // Static files, served as any service is.
    "assets",
    "controller",
    "plug",
    "security",
    "router",
    // Real time over HTTP: channels, and the sockets that carry them.
    "channel",
    "socket",
    // Live pages: views served over channels on a socket of their own.
    "live",
    // GraphQL: a schema served over HTTP, its own WebSocket, and channels.
    "graphql",
    // Serving it all, and what applications mount to watch it (probes, the exporter).
    "endpoint",
    "telemetry",
    // The live dashboard reads the telemetry and serves a socket of its own.
    "dashboard",
    // Test support and fuzzing entry points use everything.
    "test",
    "fuzz",
    "testing",
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file under `src/` belongs to (`None` for `lib.rs`).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?.to_owned();
    if relative.components().count() == 1 {
        let stem = first.strip_suffix(".rs")?;
        return (stem != "lib").then(|| stem.to_owned());
    }
    Some(first)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without `//` comments (doc comments included) and `#[cfg(test)]` items.
fn code_of(src: &str) -> String {
    let uncommented: String = src
        .lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string (a URL) cuts the line short; no `crate::` path follows
            // one in this crate.
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = uncommented.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at + "#[cfg(test)]".len()..];
        // The item ends at its first `;` before any `{`, or at the brace matching its first.
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(brace)) if semi < brace => semi + 1,
            (Some(semi), None) => semi + 1,
            (_, Some(brace)) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (i, c) in item[brace..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = brace + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

fn ident_at(text: &str) -> Option<&str> {
    let text = text.trim_start();
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(text.len());
    (end > 0).then(|| &text[..end])
}

/// The first path segment of every `crate::` path in `code`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // Top-level items of the group: split on commas outside nested braces.
            let mut depth = 0usize;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.extend(ident_at(&group[start..i]).map(str::to_owned));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(ident_at(&group[start..i]).map(str::to_owned));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.extend(ident_at(after).map(str::to_owned));
        }
        rest = after;
    }
    found
}

/// The root's re-exports: `pub use conn::{Body, Conn};` maps `Body` and `Conn` to `conn`.
fn root_exports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).expect("lib.rs");
    let mut exports = BTreeMap::new();
    for line in lib.lines().map(str::trim) {
        let Some(used) = line.strip_prefix("pub use ").and_then(|l| l.strip_suffix(';')) else {
            continue;
        };
        let Some((module, items)) = used.split_once("::") else { continue };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.split(" as ").last().unwrap_or(item).trim();
            exports.insert(name.to_owned(), module.trim_start_matches("crate::").to_owned());
        }
    }
    exports
}

/// Every module's uses of other modules, with a file that has each.
fn edges() -> BTreeMap<(String, String), PathBuf> {
    let src = src_dir();
    let exports = root_exports();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> =
        files.iter().filter_map(|f| module_of(f.strip_prefix(&src).unwrap())).collect();
    let mut edges = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().to_owned();
        let Some(from) = module_of(&relative) else { continue };
        let is_test_file = relative.file_name().is_some_and(|n| n == "tests.rs")
            || relative.components().any(|c| c.as_os_str() == "tests");
        if is_test_file {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).expect("a source file"));
        for first in crate_paths(&code) {
            let to = if modules.contains(&first) {
                first
            } else if let Some(module) = exports.get(&first) {
                module.clone()
            } else {
                continue;
            };
            if to != from && modules.contains(&to) {
                edges.entry((from.clone(), to)).or_insert_with(|| relative.clone());
            }
        }
    }
    edges
}

#[test]
fn every_module_has_a_layer() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let unplaced: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(f.strip_prefix(&src).unwrap()))
        .filter(|m| !LAYERS.contains(&m.as_str()))
        .collect();
    assert!(unplaced.is_empty(), "modules missing from LAYERS: {unplaced:?}");
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let layer = |m: &str| LAYERS.iter().position(|l| *l == m).expect("placed");
    let edges = edges();
    let upward: Vec<String> = edges
        .iter()
        .filter(|((from, to), _)| layer(to) > layer(from))
        .map(|((from, to), file)| format!("{from} -> {to} (in src/{})", file.display()))
        .collect();
    assert!(upward.is_empty(), "modules using a layer above them:\n{}", upward.join("\n"));
    // The reading sees the edges there are: the conn is used by every HTTP module.
    assert!(edges.contains_key(&("router".to_owned(), "conn".to_owned())));
}

#[test]
fn the_reading_finds_paths_in_groups_and_skips_tests_and_comments() {
    let code = code_of(
        "use crate::{conn::Conn, router::{self, Router}, Body};\n\
         // use crate::endpoint;\n\
         fn f() { crate::pubsub::PubSub::process(); }\n\
         #[cfg(test)]\nmod tests { use crate::socket; }\n\
         #[cfg(test)]\nuse crate::channel;\n",
    );
    assert_eq!(crate_paths(&code), ["conn", "router", "Body", "pubsub"]);
}
