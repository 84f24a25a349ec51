//! Static children: what to start and how to restart it.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::BoxError;

/// Whether a static child is restarted after it exits.
///
/// # Examples
///
/// ```
/// use fawkes::supervisor::{ChildSpec, Restart};
///
/// // Runs once; rerun only if it fails.
/// let migrate = ChildSpec::new("migrate", |_token| async { Ok::<_, std::io::Error>(()) })
///     .restart(Restart::Transient);
/// # let _ = migrate;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always restarted, whatever the exit: for services that should run forever.
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit (an error or a panic): for jobs that may finish.
    Transient,
    /// Never restarted; removed from the supervisor once it exits.
    Temporary,
}

pub(crate) type StartFn =
    Arc<dyn Fn(CancellationToken) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// A static child: started by the supervisor, restarted per its [`Restart`] kind.
///
/// Cloning is cheap: the start function is shared.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fawkes::supervisor::{ChildSpec, Restart};
///
/// let ticker = ChildSpec::new("ticker", |token| async move {
///     token.cancelled().await;
///     Ok::<_, std::io::Error>(())
/// })
/// .restart(Restart::Permanent)
/// .shutdown_timeout(Duration::from_secs(1));
/// assert_eq!(ticker.id(), "ticker");
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: Arc<str>,
    pub(crate) start: StartFn,
    pub(crate) restart: Restart,
    pub(crate) shutdown_timeout: Duration,
    /// For a nested supervisor ([`SupervisorBuilder::into_child_spec`]): the one its latest
    /// start runs, so that [`Supervisor::tree`] shows its children too.
    ///
    /// [`SupervisorBuilder::into_child_spec`]: super::SupervisorBuilder::into_child_spec
    /// [`Supervisor::tree`]: super::Supervisor::tree
    pub(crate) nested: Option<Arc<Mutex<Option<super::Supervisor>>>>,
}

impl ChildSpec {
    /// The shutdown timeout a spec gets unless told otherwise.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

    /// Describes a child named `id` that runs the future `start` returns.
    ///
    /// `start` is called for every (re)start with a fresh shutdown token; the child should
    /// return when the token is cancelled. It is called inside the child's own task, so a
    /// panic while building the future is caught like any other panic of the child.
    pub fn new<F, Fut, E>(id: impl Into<String>, start: F) -> Self
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let start: StartFn = Arc::new(move |token| {
            let fut = start(token);
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        Self {
            id: Arc::from(id.into()),
            start,
            restart: Restart::default(),
            shutdown_timeout: Self::DEFAULT_SHUTDOWN_TIMEOUT,
            nested: None,
        }
    }

    /// Sets when the child is restarted; [`Restart::Permanent`] by default.
    #[must_use]
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how long the child may take to return after its token is cancelled before its
    /// task is aborted; 5 seconds by default.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The child's id, unique within its supervisor.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}
