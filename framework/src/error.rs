//! The one opaque runtime error of the framework.

use std::fmt;

/// A boxed error that can cross tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A runtime error from Fawkes: binding a listener, serving, shutting down.
///
/// Inspect it with the `is_*` predicates; its [`Display`](fmt::Display) says what went wrong.
///
/// # Examples
///
/// ```
/// let err = fawkes::Error::bind("127.0.0.1:1".parse().unwrap(), std::io::Error::other("denied"));
/// assert!(err.is_bind());
/// assert_eq!(err.to_string(), "failed to bind 127.0.0.1:1: denied");
/// ```
pub struct Error {
    kind: Kind,
    source: Option<BoxError>,
}

#[derive(Debug)]
enum Kind {
    Bind(std::net::SocketAddr),
    Resolve(String),
    Io,
    Supervisor,
    Config(&'static str),
}

impl Error {
    /// An error binding the endpoint's listener to `addr`.
    pub fn bind(addr: std::net::SocketAddr, source: std::io::Error) -> Self {
        Self { kind: Kind::Bind(addr), source: Some(source.into()) }
    }

    /// An address to bind that did not resolve.
    pub(crate) fn resolve(addr: String, source: std::io::Error) -> Self {
        Self { kind: Kind::Resolve(addr), source: Some(source.into()) }
    }

    /// A configuration that cannot be served, found before the listener opens.
    pub(crate) fn config(reason: &'static str) -> Self {
        Self { kind: Kind::Config(reason), source: None }
    }

    pub(crate) fn io(source: std::io::Error) -> Self {
        Self { kind: Kind::Io, source: Some(source.into()) }
    }

    pub(crate) fn supervisor(source: impl Into<BoxError>) -> Self {
        Self { kind: Kind::Supervisor, source: Some(source.into()) }
    }

    /// Whether binding the listener failed.
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, Kind::Bind(_) | Kind::Resolve(_))
    }

    /// Whether an I/O operation failed while serving.
    pub fn is_io(&self) -> bool {
        matches!(self.kind, Kind::Io)
    }

    /// Whether the endpoint's configuration cannot be served (found before it listens).
    pub fn is_config(&self) -> bool {
        matches!(self.kind, Kind::Config(_))
    }

    /// Whether the endpoint's supervisor failed (restart intensity exceeded).
    pub fn is_supervisor(&self) -> bool {
        matches!(self.kind, Kind::Supervisor)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error").field("kind", &self.kind).field("source", &self.source).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Bind(addr) => write!(f, "failed to bind {addr}")?,
            Kind::Resolve(addr) => write!(f, "cannot resolve the address {addr:?}")?,
            Kind::Io => f.write_str("i/o error")?,
            Kind::Supervisor => f.write_str("supervisor failed")?,
            Kind::Config(reason) => write!(f, "invalid endpoint configuration: {reason}")?,
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}
