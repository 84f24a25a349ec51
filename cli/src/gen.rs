//! `fawkes gen`: code added to a project `fawkes new` made.

use std::path::Path;

use anyhow::{bail, Context as _};

/// Where `fawkes gen channel` adds the channel's route: the line of `src/channels/mod.rs`
/// that `fawkes new` writes after the last `.channel::<…>(…)`.
const CHANNELS_MARKER: &str = "// fawkes:channels";

/// `RoomLobby` → `room_lobby`.
pub(crate) fn snake(camel: &str) -> String {
    heck::ToSnakeCase::to_snake_case(camel)
}

/// Checks a type name: CamelCase (`Room`, `RoomLobby`), ASCII.
pub(crate) fn check_camel(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric()) {
        bail!("`{name}` is not a CamelCase name: start with a capital letter, then letters and digits (e.g. `Room`)");
    }
    Ok(())
}

/// The package name in `Cargo.toml` of `dir`.
pub(crate) fn package_name(dir: &Path) -> anyhow::Result<String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!("no {} here: run this in a project `fawkes new` made", manifest.display())
    })?;
    text.lines()
        .find_map(|line| {
            let value = line.trim().strip_prefix("name")?.trim_start().strip_prefix('=')?.trim();
            Some(value.trim_matches('"').to_owned())
        })
        .with_context(|| format!("{} names no package", manifest.display()))
}

/// Where `fawkes gen socket` adds its `socket` line: the line of `src/router.rs` that
/// `fawkes new` writes after the `/socket` route.
const SOCKETS_MARKER: &str = "// fawkes:sockets";

/// Reads `path` of the project at `dir`, saying which file is missing.
fn read(dir: &Path, path: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(dir.join(path))
        .with_context(|| format!("cannot read {path}: is this a project `fawkes new` made?"))
}

/// Fails, naming the file, when one of `files` exists in `dir`.
fn refuse_existing(dir: &Path, files: &[&String], command: &str) -> anyhow::Result<()> {
    for file in files {
        if dir.join(file).exists() {
            bail!("{file} already exists: `fawkes {command}` ran before, or the name is taken");
        }
    }
    Ok(())
}

/// `mod.rs` of `src/channels` with `module` declared and its `item` re-exported, each
/// before the first of its kind.
fn declare(mod_text: &str, module: &str, item: &str) -> String {
    mod_text.replacen("\nmod ", &format!("\nmod {module};\nmod "), 1).replacen(
        "\npub use ",
        &format!("\npub use {module}::{item};\npub use "),
        1,
    )
}

/// `fawkes gen channel NAME [--socket SOCKET]` in the project at `dir`: the channel, its
/// test, and its route on the socket (`UserSocket` in `src/channels/mod.rs`, or a socket
/// `fawkes gen socket` made). Returns the files written or changed.
pub(crate) fn channel(dir: &Path, name: &str, socket: Option<&str>) -> anyhow::Result<Vec<String>> {
    check_camel(name)?;
    if let Some(socket) = socket {
        check_camel(socket)?;
    }
    let package = package_name(dir)?;
    let topic = snake(name);
    let module = format!("{topic}_channel");
    let source = format!("src/channels/{module}.rs");
    let test = format!("tests/{module}.rs");
    // Everything is checked before anything is written.
    refuse_existing(dir, &[&source, &test], &format!("gen channel {name}"))?;
    let mod_file = "src/channels/mod.rs".to_owned();
    let mod_text = read(dir, &mod_file)?;
    let (socket_file, socket_type, params, channel_type) = match socket {
        None => (
            mod_file.clone(),
            "UserSocket".to_owned(),
            "json!({ \"user\": \"ada\" })",
            format!("{name}Channel"),
        ),
        Some(socket) => (
            format!("src/channels/{}_socket.rs", snake(socket)),
            format!("{socket}Socket"),
            "json!({})",
            format!("super::{name}Channel"),
        ),
    };
    let socket_text = if socket_file == mod_file {
        mod_text.clone()
    } else {
        read(dir, &socket_file).map_err(|_| {
            anyhow::anyhow!(
                "{socket_file} is missing: make the socket first (`fawkes gen socket {}`)",
                socket.unwrap_or_default()
            )
        })?
    };
    let route = format!(".channel::<{channel_type}>(\"{topic}:*\")");
    let Some(socket_text) = insert_before_marker(&socket_text, CHANNELS_MARKER, &route) else {
        bail!(
            "{socket_file} has no `{CHANNELS_MARKER}` line to add the route at: add \
             `{route}` to the socket's `Channels` yourself, or put the marker line after them"
        );
    };
    let fill = |template: &str| {
        template
            .replace("__CAMEL__", name)
            .replace("__TOPIC__", &topic)
            .replace("__SOCKET__", &socket_type)
            .replace("__PARAMS__", params)
            .replace("__NAME__", &package)
    };
    let mod_text = if socket_file == mod_file { socket_text.clone() } else { mod_text };
    let mod_text = declare(&mod_text, &module, &format!("{name}Channel"));
    crate::new::write(
        &dir.join(&source),
        &fill(include_str!("../templates/gen_channel/channel.rs.tmpl")),
    )?;
    crate::new::write(
        &dir.join(&test),
        &fill(include_str!("../templates/gen_channel/test.rs.tmpl")),
    )?;
    crate::new::write(&dir.join(&mod_file), &mod_text)?;
    let mut written = vec![source, test, mod_file.clone()];
    if socket_file != mod_file {
        crate::new::write(&dir.join(&socket_file), &socket_text)?;
        written.push(socket_file);
    }
    crate::new::format(dir);
    Ok(written)
}

/// `fawkes gen socket NAME [--path PATH]` in the project at `dir`: the socket (no channels
/// yet), its test, and its route (default `/name_socket`). Returns the files written or
/// changed.
pub(crate) fn socket(dir: &Path, name: &str, path: Option<&str>) -> anyhow::Result<Vec<String>> {
    check_camel(name)?;
    let package = package_name(dir)?;
    let module = format!("{}_socket", snake(name));
    let path = path.map_or_else(|| format!("/{module}"), str::to_owned);
    check_path(&path, "/admin/socket")?;
    let source = format!("src/channels/{module}.rs");
    let test = format!("tests/{module}.rs");
    refuse_existing(dir, &[&source, &test], &format!("gen socket {name}"))?;
    let router = read(dir, "src/router.rs")?;
    if router.contains(&format!("\"{path}\"")) {
        bail!("src/router.rs has a route at `{path}` already: choose another --path");
    }
    let route = format!("socket \"{path}\" => crate::channels::{name}Socket;");
    let Some(router) = insert_before_marker(&router, SOCKETS_MARKER, &route) else {
        bail!(
            "src/router.rs has no `{SOCKETS_MARKER}` line to add the route at: add `{route}` \
             after the other sockets yourself"
        );
    };
    let mod_text = declare(&read(dir, "src/channels/mod.rs")?, &module, &format!("{name}Socket"));
    let fill = |template: &str| {
        template.replace("__CAMEL__", name).replace("__PATH__", &path).replace("__NAME__", &package)
    };
    crate::new::write(
        &dir.join(&source),
        &fill(include_str!("../templates/gen_socket/socket.rs.tmpl")),
    )?;
    crate::new::write(
        &dir.join(&test),
        &fill(include_str!("../templates/gen_socket/test.rs.tmpl")),
    )?;
    crate::new::write(&dir.join("src/channels/mod.rs"), &mod_text)?;
    crate::new::write(&dir.join("src/router.rs"), &router)?;
    crate::new::format(dir);
    Ok(vec![source, test, "src/channels/mod.rs".to_owned(), "src/router.rs".to_owned()])
}

/// Checks a path given with `--path`: lowercase letters, digits, `_`, `-` and `/`, from `/`.
fn check_path(path: &str, example: &str) -> anyhow::Result<()> {
    let path_ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/_-".contains(&b));
    if !path_ok {
        bail!("`{path}` is not a path for --path: use lowercase letters, digits, `_`, `-` and `/`, starting with `/` (e.g. `{example}`)");
    }
    Ok(())
}

/// Where `fawkes gen live` adds its route: the line of `src/router.rs` that `fawkes new`
/// writes at the end of the browser scope.
const LIVE_ROUTES_MARKER: &str = "// fawkes:live-routes";

/// Where `fawkes gen live` declares its module: the line of `src/live/mod.rs` that
/// `fawkes new` writes.
const LIVE_MODULES_MARKER: &str = "// fawkes:live-modules";

/// `fawkes gen live NAME [--path PATH]` in the project at `dir`: the view, its test (the
/// page over HTTP, then joined live), and its `live` route in the browser scope (default
/// `/name`). Returns the files written or changed.
pub(crate) fn live(dir: &Path, name: &str, path: Option<&str>) -> anyhow::Result<Vec<String>> {
    check_camel(name)?;
    let package = package_name(dir)?;
    let topic = snake(name);
    let module = format!("{topic}_live");
    let path = path.map_or_else(|| format!("/{topic}"), str::to_owned);
    check_path(&path, "/dashboard")?;
    let source = format!("src/live/{module}.rs");
    let test = format!("tests/{module}.rs");
    refuse_existing(dir, &[&source, &test], &format!("gen live {name}"))?;
    let router = read(dir, "src/router.rs")?;
    if router.contains(&format!("\"{path}\"")) {
        bail!("src/router.rs has a route at `{path}` already: choose another --path");
    }
    let route = format!("live \"{path}\" => crate::live::{name}Live;");
    let Some(router) = insert_before_marker(&router, LIVE_ROUTES_MARKER, &route) else {
        bail!(
            "src/router.rs has no `{LIVE_ROUTES_MARKER}` line to add the route at: add `{route}` \
             to the scope that pipes through the browser pipeline yourself"
        );
    };
    let live_mod = read(dir, "src/live/mod.rs")?;
    let declaration = format!("mod {module};\npub use {module}::{name}Live;");
    let Some(live_mod) = insert_before_marker(&live_mod, LIVE_MODULES_MARKER, &declaration) else {
        bail!("src/live/mod.rs has no `{LIVE_MODULES_MARKER}` line: add `{declaration}` yourself");
    };
    let flags: &[&str] = if dir.join("src/repo.rs").is_file() { &["db"] } else { &[] };
    let fill = |template: &str| {
        crate::new::select(template, flags)
            .replace("__CAMEL__", name)
            .replace("__TOPIC__", &topic)
            .replace("__PATH__", &path)
            .replace("__NAME__", &package)
    };
    crate::new::write(
        &dir.join(&source),
        &fill(include_str!("../templates/gen_live/live.rs.tmpl")),
    )?;
    crate::new::write(&dir.join(&test), &fill(include_str!("../templates/gen_live/test.rs.tmpl")))?;
    crate::new::write(&dir.join("src/live/mod.rs"), &live_mod)?;
    crate::new::write(&dir.join("src/router.rs"), &router)?;
    crate::new::format(dir);
    Ok(vec![source, test, "src/live/mod.rs".to_owned(), "src/router.rs".to_owned()])
}

/// `text` with `line` added before the line that holds `marker`, at the marker's indent
/// (rustfmt lays it out after); `None` when no line holds it.
pub(crate) fn insert_before_marker(text: &str, marker: &str, line: &str) -> Option<String> {
    let marker_at = text.find(marker)?;
    let line_start = text[..marker_at].rfind('\n').map_or(0, |i| i + 1);
    let indent: String =
        text[line_start..marker_at].chars().take_while(|c| c.is_whitespace()).collect();
    Some(format!("{}{indent}{line}\n{}", &text[..line_start], &text[line_start..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(snake("RoomLobby"), "room_lobby");
        assert_eq!(snake("Room2"), "room2");
        assert!(check_camel("Room").is_ok());
        for bad in ["room", "Room-Lobby", "", "Röom", "Room_Lobby"] {
            assert!(check_camel(bad).is_err(), "{bad}");
        }
    }
}
