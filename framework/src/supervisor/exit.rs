//! How a child ended.

use std::any::Any;
use std::fmt;

/// How a child ended, as the supervisor classifies it.
///
/// [`Error`](ExitReason::Error) and [`Panic`](ExitReason::Panic) are abnormal: they are logged,
/// counted in [`Stats`](super::Stats) and restart [`Transient`](super::Restart::Transient)
/// children.
///
/// # Examples
///
/// ```
/// use fawkes::supervisor::ExitReason;
///
/// assert!(!ExitReason::Normal.is_abnormal());
/// assert!(ExitReason::Panic("boom".into()).is_abnormal());
/// assert_eq!(ExitReason::Error("disk full".into()).to_string(), "error: disk full");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// The child returned `Ok(())` on its own.
    Normal,
    /// The child returned `Ok(())` after the supervisor cancelled its token.
    Shutdown,
    /// The child returned an error, rendered with `Display`.
    Error(String),
    /// The child panicked; holds the panic message when it was a string.
    Panic(String),
}

impl ExitReason {
    /// Whether this exit is a failure: an error or a panic.
    #[must_use]
    pub fn is_abnormal(&self) -> bool {
        matches!(self, Self::Error(_) | Self::Panic(_))
    }

    pub(crate) fn from_panic(payload: &(dyn Any + Send)) -> Self {
        Self::Panic(panic_message(payload))
    }
}

/// The message of a caught panic: its payload when that is a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic payload is not a string".to_owned()
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("normal"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::Error(e) => write!(f, "error: {e}"),
            Self::Panic(p) => write!(f, "panic: {p}"),
        }
    }
}
