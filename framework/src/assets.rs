//! Static files with URLs versioned by content, as Phoenix's `Plug.Static` and
//! `static_path` serve them; and the official Phoenix clients from npm, for live pages.
//!
//! [`Assets`] serves a directory through tower-http's `ServeDir` at a mount point
//! (`forward "/assets" => assets.service();`), and links each file as
//! `/assets/app.css?vsn=<digest>`: the first 16 hex digits of the SHA-256 of its content,
//! read at startup. A request carrying the current digest is cached for a year
//! (`immutable`): a changed file gets a new URL, so a browser never keeps a stale one.
//! Anything else (no `vsn`, or an old page asking for a previous version during a rolling
//! deploy) is `no-cache`, revalidated with `Last-Modified`. `ServeDir` answers conditional and
//! range requests, refuses paths that climb out of the directory, and sets the content type
//! from the extension; every answer carries `X-Content-Type-Options: nosniff`.
//!
//! [`PhoenixClients`] serves the `priv/static` of the `phoenix` and `phoenix_live_view` npm
//! packages, installed next to the application, under `/vendor/phoenix` and
//! `/vendor/phoenix_live_view`: the clients are never copied into the application or the
//! framework, and their versions are the package.json's.
//!
//! # Examples
//!
//! ```
//! use fawkes::assets::Assets;
//!
//! let dir = std::env::temp_dir().join(format!("fawkes-assets-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! std::fs::write(dir.join("app.css"), "body { margin: 0 }")?;
//! let assets = Assets::load(&dir)?;
//! assert!(assets.path("app.css").starts_with("/assets/app.css?vsn="));
//! assert_eq!(assets.path("missing.js"), "/assets/missing.js");
//!
//! async fn home(conn: fawkes::Conn) -> fawkes::Conn { conn.text("home") }
//!
//! fawkes::router! {
//!     pub App;
//!     state Assets;
//!     forward "/assets" => state.service();
//!     get "/" => home;
//! }
//! let _app = App::new(assets);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response};
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;
use tower_http::services::ServeDir;

use crate::conn::Body;

/// How long a versioned file is cached: a year, the longest `max-age` caches honour.
const VERSIONED: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// A directory of static files and the digests of its files; clones share them.
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
    /// Reads every file at the top of `dir` to version its URL, for files mounted at
    /// `/assets`.
    ///
    /// # Errors
    ///
    /// When `dir` cannot be read.
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
        Ok(Self {
            inner: Arc::new(Inner {
                prefix: prefix.trim_end_matches('/').to_owned(),
                dir,
                digests,
            }),
        })
    }

    /// No files: every path answers 404 and links are unversioned. For when a directory is
    /// missing and the application runs without it.
    pub fn empty(prefix: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                prefix: prefix.trim_end_matches('/').to_owned(),
                dir: PathBuf::new(),
                digests: HashMap::new(),
            }),
        }
    }

    /// The URL of the file `name`, versioned by its content when it exists.
    pub fn path(&self, name: &str) -> String {
        match self.inner.digests.get(name) {
            Some(digest) => format!("{}/{name}?vsn={digest}", self.inner.prefix),
            None => format!("{}/{name}", self.inner.prefix),
        }
    }

    /// The service to mount with `forward` at the prefix: the directory's files, with the
    /// cache headers described in the [module docs](self).
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
        let empty = self.inner.dir.as_os_str().is_empty();
        // An empty set serves a directory that cannot exist: every path is a 404.
        let dir = if empty { Path::new("/nonexistent/fawkes-assets") } else { &self.inner.dir };
        let serve = ServeDir::new(dir).append_index_html_on_directories(false);
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

/// The official clients live pages load: the `priv/static` of the `phoenix` and
/// `phoenix_live_view` npm packages, mounted at `/vendor/phoenix` and
/// `/vendor/phoenix_live_view` with versioned URLs.
///
/// ```text
/// forward "/vendor/phoenix" => state.clients.phoenix.service();
/// forward "/vendor/phoenix_live_view" => state.clients.live_view.service();
/// ```
#[derive(Debug, Clone)]
pub struct PhoenixClients {
    /// `phoenix`: the channels client (`Socket`), `phoenix.mjs`.
    pub phoenix: Assets,
    /// `phoenix_live_view`: `LiveSocket`, `phoenix_live_view.esm.js`.
    pub live_view: Assets,
}

impl PhoenixClients {
    /// The packages in `node_modules`.
    ///
    /// # Errors
    ///
    /// When a package is not installed there: the message names it and its directory.
    pub fn load(node_modules: impl AsRef<Path>) -> Result<Self, String> {
        let dir = node_modules.as_ref();
        let package = |name: &str| {
            let static_dir = dir.join(name).join("priv/static");
            Assets::load_at(&static_dir, &format!("/vendor/{name}")).map_err(|err| {
                format!("the `{name}` client is not installed ({}: {err})", static_dir.display())
            })
        };
        Ok(Self { phoenix: package("phoenix")?, live_view: package("phoenix_live_view")? })
    }

    /// Serves nothing (every path 404s), for when the packages are not installed: live
    /// pages still render, but are not live.
    pub fn missing() -> Self {
        Self {
            phoenix: Assets::empty("/vendor/phoenix"),
            live_view: Assets::empty("/vendor/phoenix_live_view"),
        }
    }
}

#[cfg(test)]
mod tests;
