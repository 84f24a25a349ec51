//! The pages' stylesheet and scripts, served from `example-app/assets/` (or `ASSETS_DIR`) by
//! tower-http's `ServeDir` under `/assets/`, with URLs versioned by content.
//!
//! The templates link each file through [`Assets::path`]: `/assets/app.css?vsn=<digest>`, the
//! digest of the file's content read at startup, as Phoenix's `static_path` does with digested
//! files. A request carrying the current digest is cached for a year (`immutable`): a changed
//! file gets a new URL, so a browser never keeps a stale one. Anything else (no `vsn`, or an
//! old page asking for a previous version during a rolling deploy) is `no-cache`, revalidated
//! with `Last-Modified`. `ServeDir` answers conditional and range requests, refuses paths
//! that climb out of the directory, and sets the content type from the extension.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fawkes::Body;
use http::header::{self, HeaderValue};
use http::{Request, Response};
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;
use tower_http::services::ServeDir;

/// The environment variable naming the assets directory; unset, the app serves the one it
/// was built from, so `cargo run` needs no setting (the container image sets it).
pub const ASSETS_DIR_ENV: &str = "ASSETS_DIR";

/// The directory the app was built from: `example-app/assets`.
pub const BUILT_ASSETS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");

/// How long a versioned asset is cached: a year, the longest `max-age` caches honour.
const VERSIONED: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// The assets directory and the digests of its files; clones share them.
#[derive(Debug, Clone)]
pub struct Assets {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Where the files are mounted: `/assets`.
    prefix: String,
    dir: PathBuf,
    /// File name to the first 16 hex digits of its SHA-256.
    digests: HashMap<String, String>,
}

impl Assets {
    /// Reads every file at the top of `dir` to version its URL.
    ///
    /// # Errors
    ///
    /// When `dir` cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// let assets = example_app::assets::Assets::load(example_app::assets::BUILT_ASSETS_DIR)?;
    /// let path = assets.path("app.css");
    /// assert!(path.starts_with("/assets/app.css?vsn="), "{path}");
    /// assert_eq!(assets.path("missing.js"), "/assets/missing.js");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn load(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        Self::load_at(dir, "/assets")
    }

    /// Like [`Assets::load`], for files mounted at `prefix` (`/vendor/phoenix`).
    ///
    /// # Errors
    ///
    /// When `dir` cannot be read.
    pub fn load_at(dir: impl AsRef<Path>, prefix: &str) -> std::io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let mut digests = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else { continue };
            let digest = Sha256::digest(std::fs::read(entry.path())?);
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            digests.insert(name, hex);
        }
        Ok(Self { inner: Arc::new(Inner { prefix: prefix.to_owned(), dir, digests }) })
    }

    /// From [`ASSETS_DIR_ENV`], or the directory the app was built from.
    ///
    /// # Errors
    ///
    /// When that directory cannot be read.
    pub fn from_env() -> std::io::Result<Self> {
        let dir = std::env::var_os(ASSETS_DIR_ENV)
            .map_or_else(|| PathBuf::from(BUILT_ASSETS_DIR), PathBuf::from);
        Self::load(&dir).map_err(|err| {
            std::io::Error::new(err.kind(), format!("assets directory {}: {err}", dir.display()))
        })
    }

    /// The URL of the file `name`, versioned by its content when it exists.
    pub fn path(&self, name: &str) -> String {
        match self.inner.digests.get(name) {
            Some(digest) => format!("{}/{name}?vsn={digest}", self.inner.prefix),
            None => format!("{}/{name}", self.inner.prefix),
        }
    }

    /// The service to mount with `forward "/assets"`: the directory's files, with the cache
    /// headers described in the [module docs](self).
    pub fn service(
        &self,
    ) -> impl tower::Service<
        Request<Body>,
        Response = Response<impl http_body::Body<Data = bytes::Bytes, Error = std::io::Error>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
           + Send
           + Sync
           + 'static {
        let serve = ServeDir::new(&self.inner.dir).append_index_html_on_directories(false);
        let assets = self.clone();
        tower::service_fn(move |req: Request<Body>| {
            let current = assets.is_current(req.uri().path(), req.uri().query());
            let serve = serve.clone();
            async move {
                let mut resp = serve.oneshot(req).await?;
                let headers = resp.headers_mut();
                // A script or stylesheet is never sniffed into something else.
                headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                let cache = if current { VERSIONED } else { HeaderValue::from_static("no-cache") };
                headers.insert(header::CACHE_CONTROL, cache);
                Ok(resp)
            }
        })
    }

    /// Whether `query` names the current version of the file at `path` (relative to the
    /// mount point).
    fn is_current(&self, path: &str, query: Option<&str>) -> bool {
        let Some(vsn) = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("vsn=")))
        else {
            return false;
        };
        let name = path.trim_start_matches('/');
        self.inner.digests.get(name).is_some_and(|digest| digest == vsn)
    }
}

/// The environment variable naming the `node_modules` directory the official Phoenix clients
/// are served from; unset, the example app's own (`npm ci --prefix example-app`).
pub const NODE_MODULES_ENV: &str = "NODE_MODULES_DIR";

/// The `node_modules` the app was built next to.
pub const BUILT_NODE_MODULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/node_modules");

/// The official clients the live pages load, from npm (pinned in `example-app/package.json`
/// and its lockfile): `phoenix`'s and `phoenix_live_view`'s `priv/static`, served under
/// `/vendor/phoenix` and `/vendor/phoenix_live_view` with versioned URLs.
#[derive(Debug, Clone)]
pub struct Vendor {
    /// `phoenix`: the channels client (`Socket`).
    pub phoenix: Assets,
    /// `phoenix_live_view`: `LiveSocket`.
    pub live_view: Assets,
}

impl Vendor {
    /// From [`NODE_MODULES_ENV`], or the `node_modules` next to the app's sources. When the
    /// packages are not installed the live pages still render, but are not live: the error
    /// says what to run.
    ///
    /// # Errors
    ///
    /// When a package is missing.
    pub fn from_env() -> Result<Self, String> {
        let dir = std::env::var_os(NODE_MODULES_ENV)
            .map_or_else(|| PathBuf::from(BUILT_NODE_MODULES), PathBuf::from);
        let package = |name: &str| {
            let static_dir = dir.join(name).join("priv/static");
            Assets::load_at(&static_dir, &format!("/vendor/{name}")).map_err(|err| {
                format!(
                    "the `{name}` client is not installed ({}: {err}): run `npm ci --prefix \
                     example-app`, or set {NODE_MODULES_ENV}; live pages are not live without it",
                    static_dir.display()
                )
            })
        };
        Ok(Self { phoenix: package("phoenix")?, live_view: package("phoenix_live_view")? })
    }

    /// Serves nothing (every path 404s), for when the packages are not installed.
    pub fn missing() -> Self {
        let none = |name: &str| Assets {
            inner: Arc::new(Inner {
                prefix: format!("/vendor/{name}"),
                dir: PathBuf::from("/nonexistent"),
                digests: HashMap::new(),
            }),
        };
        Self { phoenix: none("phoenix"), live_view: none("phoenix_live_view") }
    }
}
