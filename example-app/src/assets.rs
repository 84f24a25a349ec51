//! Where the example app's static files come from: its stylesheet and scripts
//! (`example-app/assets/`, or `ASSETS_DIR`) under `/assets/`, and the official Phoenix
//! clients from npm (`example-app/node_modules`, or `NODE_MODULES_DIR`) under `/vendor/`.
//! The framework's [`Assets`] serves both with URLs versioned by content.

use std::path::PathBuf;

pub use fawkes::assets::{Assets, PhoenixClients as Vendor};

/// The environment variable naming the assets directory; unset, the app serves the one it
/// was built from, so `cargo run` needs no setting (the container image sets it).
pub const ASSETS_DIR_ENV: &str = "ASSETS_DIR";

/// The directory the app was built from: `example-app/assets`.
pub const BUILT_ASSETS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");

/// The environment variable naming the `node_modules` directory the official Phoenix clients
/// are served from; unset, the example app's own (`npm ci --prefix example-app`).
pub const NODE_MODULES_ENV: &str = "NODE_MODULES_DIR";

/// The `node_modules` the app was built next to.
pub const BUILT_NODE_MODULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/node_modules");

/// The assets from [`ASSETS_DIR_ENV`], or the directory the app was built from.
///
/// # Errors
///
/// When that directory cannot be read.
///
/// # Examples
///
/// ```
/// let assets = example_app::assets::assets_from_env()?;
/// assert!(assets.path("app.css").starts_with("/assets/app.css?vsn="));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn assets_from_env() -> std::io::Result<Assets> {
    let dir = std::env::var_os(ASSETS_DIR_ENV)
        .map_or_else(|| PathBuf::from(BUILT_ASSETS_DIR), PathBuf::from);
    Assets::load(&dir).map_err(|err| {
        std::io::Error::new(err.kind(), format!("assets directory {}: {err}", dir.display()))
    })
}

/// The clients from [`NODE_MODULES_ENV`], or the `node_modules` next to the app's sources.
/// When the packages are not installed the live pages still render, but are not live: the
/// error says what to run.
///
/// # Errors
///
/// When a package is missing.
pub fn vendor_from_env() -> Result<Vendor, String> {
    let dir = std::env::var_os(NODE_MODULES_ENV)
        .map_or_else(|| PathBuf::from(BUILT_NODE_MODULES), PathBuf::from);
    Vendor::load(dir).map_err(|err| {
        format!(
            "{err}: run `npm ci --prefix example-app`, or set {NODE_MODULES_ENV}; live pages \
             are not live without it"
        )
    })
}
