//! The supervisor's error type.

use std::fmt;
use std::time::Duration;

/// Why a supervisor operation failed, or why a supervisor exited.
///
/// Opaque on purpose: match with the `is_*` predicates so new causes can be added without
/// breaking callers.
///
/// # Examples
///
/// ```
/// use fawkes::supervisor::Supervisor;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sup = Supervisor::builder().start();
/// sup.shutdown().await.unwrap();
/// let err = sup.spawn_temporary("conn", |_token| async {}).unwrap_err();
/// assert!(err.is_stopped());
/// assert_eq!(err.to_string(), "supervisor `supervisor` is not running");
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: Kind,
    // Who the error is about (a supervisor or a child), kept for the message.
    subject: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Stopped,
    IntensityExceeded { max_restarts: u32, within: Duration },
    Duplicate,
    NotFound,
}

impl Error {
    pub(crate) fn stopped(supervisor: &str) -> Self {
        Self { kind: Kind::Stopped, subject: supervisor.to_owned() }
    }

    pub(crate) fn intensity_exceeded(
        supervisor: &str,
        max_restarts: u32,
        within: Duration,
    ) -> Self {
        Self {
            kind: Kind::IntensityExceeded { max_restarts, within },
            subject: supervisor.to_owned(),
        }
    }

    pub(crate) fn duplicate(child: &str) -> Self {
        Self { kind: Kind::Duplicate, subject: child.to_owned() }
    }

    pub(crate) fn not_found(child: &str) -> Self {
        Self { kind: Kind::NotFound, subject: child.to_owned() }
    }

    /// Whether the supervisor is shutting down or has exited, so it takes no new work.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        matches!(self.kind, Kind::Stopped)
    }

    /// Whether the supervisor gave up because its children restarted too often.
    #[must_use]
    pub fn is_intensity_exceeded(&self) -> bool {
        matches!(self.kind, Kind::IntensityExceeded { .. })
    }

    /// Whether a child with the same id is already supervised.
    #[must_use]
    pub fn is_duplicate(&self) -> bool {
        matches!(self.kind, Kind::Duplicate)
    }

    /// Whether no child has the given id.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, Kind::NotFound)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error").field("kind", &self.kind).field("subject", &self.subject).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = &self.subject;
        match self.kind {
            Kind::Stopped => write!(f, "supervisor `{subject}` is not running"),
            Kind::IntensityExceeded { max_restarts, within } => write!(
                f,
                "supervisor `{subject}` exceeded its restart intensity \
                 (more than {max_restarts} restarts within {within:?})"
            ),
            Kind::Duplicate => write!(f, "child `{subject}` is already supervised"),
            Kind::NotFound => write!(f, "no child `{subject}` is supervised"),
        }
    }
}

impl std::error::Error for Error {}
