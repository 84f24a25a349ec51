//! `fawkes new`: a complete service in a new directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// The files of a new service: where each goes, and its template.
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../templates/new/Cargo.toml.tmpl")),
    (".gitignore", include_str!("../templates/new/gitignore.tmpl")),
    ("README.md", include_str!("../templates/new/README.md.tmpl")),
    ("src/main.rs", include_str!("../templates/new/src/main.rs.tmpl")),
    ("src/lib.rs", include_str!("../templates/new/src/lib.rs.tmpl")),
    ("src/router.rs", include_str!("../templates/new/src/router.rs.tmpl")),
    ("src/controllers/mod.rs", include_str!("../templates/new/src/controllers/mod.rs.tmpl")),
    (
        "src/controllers/page_controller.rs",
        include_str!("../templates/new/src/controllers/page_controller.rs.tmpl"),
    ),
    (
        "src/controllers/status_controller.rs",
        include_str!("../templates/new/src/controllers/status_controller.rs.tmpl"),
    ),
    ("src/channels/mod.rs", include_str!("../templates/new/src/channels/mod.rs.tmpl")),
    (
        "src/channels/room_channel.rs",
        include_str!("../templates/new/src/channels/room_channel.rs.tmpl"),
    ),
    ("tests/http.rs", include_str!("../templates/new/tests/http.rs.tmpl")),
    ("tests/channels.rs", include_str!("../templates/new/tests/channels.rs.tmpl")),
    ("src/live/mod.rs", include_str!("../templates/new/src/live/mod.rs.tmpl")),
    ("package.json", include_str!("../templates/new/package.json.tmpl")),
    ("src/repo.rs", include_str!("../templates/new/src/repo.rs.tmpl")),
    (
        "migrations/20260101000000_init.sql",
        include_str!("../templates/new/migrations/20260101000000_init.sql.tmpl"),
    ),
    ("deploy/Dockerfile", include_str!("../templates/new/deploy/Dockerfile.tmpl")),
    (
        "deploy/k8s/deployment.yaml",
        include_str!("../templates/new/deploy/k8s/deployment.yaml.tmpl"),
    ),
    ("deploy/k8s/service.yaml", include_str!("../templates/new/deploy/k8s/service.yaml.tmpl")),
    ("deploy/k8s/hpa.yaml", include_str!("../templates/new/deploy/k8s/hpa.yaml.tmpl")),
    ("deploy/k8s/pdb.yaml", include_str!("../templates/new/deploy/k8s/pdb.yaml.tmpl")),
];

/// The database a new service is generated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Db {
    /// A SQLite file (the default).
    Sqlite,
    /// A Postgres server (`DATABASE_URL`).
    Postgres,
}

/// What `fawkes new` was asked for.
#[derive(Debug)]
pub(crate) struct NewArgs {
    pub(crate) name: String,
    pub(crate) path: Option<PathBuf>,
    pub(crate) db: Option<Db>,
    pub(crate) no_db: bool,
    pub(crate) fawkes_path: Option<PathBuf>,
}

/// Rust's keywords and the crate names a package cannot take, which no service may be named.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "gen",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "fawkes",
];

/// Checks a service name: snake_case (`my_service`), not a keyword or a reserved crate name.
pub(crate) fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || name.ends_with('_') || name.contains("__") {
        bail!(
            "`{name}` is not a snake_case name: use lowercase letters, digits and single \
             underscores, starting with a letter (e.g. `chat_service`)"
        );
    }
    if RESERVED.contains(&name) {
        bail!("`{name}` is a Rust keyword or a reserved crate name: choose another name");
    }
    Ok(())
}

/// `chat_service` → `ChatService`.
fn title(name: &str) -> String {
    heck::ToUpperCamelCase::to_upper_camel_case(name)
}

/// Writes the service; returns its directory.
pub(crate) fn run(args: &NewArgs) -> anyhow::Result<PathBuf> {
    check_name(&args.name)?;
    if args.no_db && args.db.is_some() {
        bail!("--no-db and --db ask for opposite things: give one of them");
    }
    let db = if args.no_db { None } else { Some(args.db.unwrap_or(Db::Sqlite)) };
    let dir = args.path.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        bail!("{} already exists: choose another --path or remove it", dir.display());
    }
    let fawkes = match &args.fawkes_path {
        Some(path) => {
            let framework = path.join("framework");
            let framework = framework.canonicalize().with_context(|| {
                format!("--fawkes-path {}: no framework/ in it", path.display())
            })?;
            if !framework.join("Cargo.toml").is_file() {
                bail!("--fawkes-path {}: framework/Cargo.toml is missing", path.display());
            }
            format!("path = {:?}", framework.display().to_string())
        }
        None => format!("version = \"{}\"", env!("CARGO_PKG_VERSION")),
    };
    let (name, title) = (args.name.as_str(), title(&args.name));
    let kebab = name.replace('_', "-");
    for (path, template) in FILES {
        let db_only = path.starts_with("migrations/") || *path == "src/repo.rs";
        if db_only && db.is_none() {
            continue;
        }
        let flags: &[&str] = match db {
            Some(Db::Sqlite) => &["db", "sqlite"],
            Some(Db::Postgres) => &["db", "postgres"],
            None => &[],
        };
        let text = select(template, flags)
            .replace("__FAWKES__", &fawkes)
            .replace("__TITLE__", &title)
            .replace("__KEBAB__", &kebab)
            .replace("__NAME__", name);
        write(&dir.join(path), &text)?;
    }
    format(&dir);
    Ok(dir)
}

/// Lays the project at `dir` out with rustfmt, whatever a name's length did to the lines.
pub(crate) fn format(dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let formatted = std::process::Command::new(cargo)
        .arg("fmt")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .status();
    if !formatted.is_ok_and(|status| status.success()) {
        eprintln!("fawkes: note: `cargo fmt` did not run; the code is correct but not laid out");
    }
}

/// The lines of `template` for the kind of service asked for. A section opens with
/// `@@if FLAG@@` and closes with `@@end@@`, with an optional `@@else@@` between; it is kept
/// when `flags` holds FLAG (`db` for any database, `sqlite`, `postgres`). Sections do not nest.
pub(crate) fn select(template: &str, flags: &[&str]) -> String {
    let mut out = String::with_capacity(template.len());
    let (mut keep, mut cond) = (true, true);
    for line in template.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(flag) = trimmed.strip_prefix("@@if ").and_then(|f| f.strip_suffix("@@")) {
            cond = flags.contains(&flag);
            keep = cond;
        } else if trimmed == "@@else@@" {
            keep = !cond;
        } else if trimmed == "@@end@@" {
            keep = true;
        } else if keep {
            out.push_str(line);
        }
    }
    out
}

pub(crate) fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_snake_case_and_not_reserved() {
        for good in ["chat", "chat_service", "a1", "svc_2_b"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Chat",
            "chat-service",
            "1chat",
            "_chat",
            "chat_",
            "a__b",
            "chät",
            "type",
            "fawkes",
            "std",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(title("chat_service_2"), "ChatService2");
    }

    #[test]
    fn sections_follow_the_database() {
        let template = "a\n@@if db@@\nb\n@@else@@\nc\n@@end@@\n@@if postgres@@\ne\n@@end@@\nd\n";
        assert_eq!(select(template, &["db", "sqlite"]), "a\nb\nd\n");
        assert_eq!(select(template, &["db", "postgres"]), "a\nb\ne\nd\n");
        assert_eq!(select(template, &[]), "a\nc\nd\n");
        // Every template's sections are closed.
        for (path, template) in FILES {
            let opened = template.matches("@@if ").count();
            assert_eq!(opened, template.matches("@@end@@").count(), "{path}");
        }
    }
}
