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

/// `fawkes gen channel NAME` in the project at `dir`: the channel, its test, and its route
/// on the socket. Returns the files written or changed.
pub(crate) fn channel(dir: &Path, name: &str) -> anyhow::Result<Vec<String>> {
    check_camel(name)?;
    let package = package_name(dir)?;
    let topic = snake(name);
    let module = format!("{topic}_channel");
    let source = format!("src/channels/{module}.rs");
    let test = format!("tests/{module}.rs");
    let mod_path = dir.join("src/channels/mod.rs");
    // Everything is checked before anything is written.
    for file in [&source, &test] {
        if dir.join(file).exists() {
            bail!("{file} already exists: `fawkes gen channel {name}` ran before, or the name is taken");
        }
    }
    let mod_text = std::fs::read_to_string(&mod_path).with_context(|| {
        format!("cannot read {}: is this a project `fawkes new` made?", mod_path.display())
    })?;
    let route = format!(".channel::<{name}Channel>(\"{topic}:*\")");
    let Some(changed) = insert_before_marker(&mod_text, CHANNELS_MARKER, &route) else {
        bail!(
            "src/channels/mod.rs has no `{CHANNELS_MARKER}` line to add the route at: add \
             `{route}` to the socket's `Channels` yourself, or put the marker line after them"
        );
    };
    let fill = |template: &str| {
        template
            .replace("__CAMEL__", name)
            .replace("__TOPIC__", &topic)
            .replace("__NAME__", &package)
    };
    let changed = changed.replacen("\nmod ", &format!("\nmod {module};\nmod "), 1).replacen(
        "\npub use ",
        &format!("\npub use {module}::{name}Channel;\npub use "),
        1,
    );
    std::fs::write(
        dir.join(&source),
        fill(include_str!("../templates/gen_channel/channel.rs.tmpl")),
    )
    .with_context(|| format!("cannot write {source}"))?;
    std::fs::write(dir.join(&test), fill(include_str!("../templates/gen_channel/test.rs.tmpl")))
        .with_context(|| format!("cannot write {test}"))?;
    std::fs::write(&mod_path, changed)
        .with_context(|| format!("cannot write {}", mod_path.display()))?;
    crate::new::format(dir);
    Ok(vec![source, test, "src/channels/mod.rs".to_owned()])
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
