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
        Ok(Self { inner: Arc::new(Inner { dir, digests }) })
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
            Some(digest) => format!("/assets/{name}?vsn={digest}"),
            None => format!("/assets/{name}"),
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
