//! OTP-style supervision of tokio tasks.
//!
//! A [`Supervisor`] owns two kinds of children. Static children are described by a
//! [`ChildSpec`], started in order, restarted after they exit according to their [`Restart`]
//! kind and the supervisor's [`Strategy`], and stopped one by one in reverse order. Temporary
//! children, spawned with [`Supervisor::spawn_temporary`], are cheap, never restarted, and
//! stopped all at once in parallel before the static ones. Every child runs in its own task
//! with panics caught there, so a failing child is logged and counted but never takes down the
//! supervisor or the process. If children restart more often than the supervisor's intensity
//! allows, the supervisor shuts everything down and exits with an error; nested under another
//! supervisor (see [`SupervisorBuilder::into_child_spec`]) that error is an abnormal exit its
//! parent reacts to.
//!
//! Supervisors know nothing of HTTP, connections or channels: a child is any future that
//! watches a [`CancellationToken`].
//!
//! # Examples
//!
//! ```
//! use fawkes::supervisor::{ChildSpec, Strategy, Supervisor};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sup = Supervisor::builder()
//!     .name("app")
//!     .strategy(Strategy::OneForOne)
//!     .child(ChildSpec::new("cache", |token| async move {
//!         token.cancelled().await;
//!         Ok::<_, std::io::Error>(())
//!     }))
//!     .start();
//!
//! sup.spawn_temporary("conn", |token| async move { token.cancelled().await }).unwrap();
//! sup.shutdown().await.unwrap();
//! assert!(!sup.is_running());
//! # }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

mod dynamic;
mod error;
mod exit;
mod runner;
mod spec;
#[cfg(test)]
mod tests;

pub use dynamic::ChildId;
pub use error::Error;
pub(crate) use exit::panic_message;
pub use exit::ExitReason;
pub use spec::{ChildSpec, Restart};
#[doc(no_inline)]
pub use tokio_util::sync::CancellationToken;

use dynamic::Temporaries;
use runner::{Command, Runner};

/// Which children are restarted when one of them fails.
///
/// # Examples
///
/// ```
/// use fawkes::supervisor::{Strategy, Supervisor};
///
/// let builder = Supervisor::builder().strategy(Strategy::RestForOne);
/// # let _ = builder;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the child that exited is restarted.
    #[default]
    OneForOne,
    /// All other children are stopped (in reverse order), then all are restarted in order:
    /// for children that cannot work without each other.
    OneForAll,
    /// The children started after the one that exited are stopped (in reverse order), then it
    /// and they are restarted in order: for children that depend on the ones before them.
    RestForOne,
}

/// A snapshot of a supervisor's children and history, from [`Supervisor::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Static children currently running.
    pub static_children: usize,
    /// Temporary children currently running.
    pub temporary_children: usize,
    /// Restarts so far: one per failed child, however many siblings its strategy restarted.
    pub restarts: u64,
    /// Panics caught so far, in static and temporary children alike.
    pub panics: u64,
    /// Abnormal exits (errors and panics) so far, in static and temporary children alike.
    pub abnormal_exits: u64,
}

/// A supervisor and its children at one moment, from [`Supervisor::tree`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Tree {
    /// The supervisor's name.
    pub name: String,
    /// How it restarts its children.
    pub strategy: Strategy,
    /// False once it has begun shutting down.
    pub running: bool,
    /// Its counters.
    pub stats: Stats,
    /// Its temporary children (connections, sockets, channels) counted by the name they were
    /// spawned with, in the order the names first appeared.
    pub temporaries: Vec<(String, usize)>,
    /// Its static children, in start order.
    pub children: Vec<ChildInfo>,
}

/// A static child in a [`Tree`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ChildInfo {
    /// The child's id.
    pub id: String,
    /// When it is restarted.
    pub restart: Restart,
    /// Whether it is running now (false between an exit and its restart).
    pub running: bool,
    /// How often it was restarted after failing.
    pub restarts: u64,
    /// How it last exited abnormally (`error: …`, `panic: …`), if it ever did.
    pub last_exit: Option<String>,
    /// For a nested supervisor: its own tree, while it runs.
    pub supervisor: Option<Box<Tree>>,
}

/// Configures and starts a [`Supervisor`]; from [`Supervisor::builder`].
///
/// Cloning copies the configuration; child specs share their start functions.
#[derive(Clone, Debug)]
#[must_use]
pub struct SupervisorBuilder {
    name: String,
    strategy: Strategy,
    max_restarts: u32,
    within: Duration,
    dynamic_shutdown_timeout: Duration,
    children: Vec<ChildSpec>,
}

impl SupervisorBuilder {
    /// Sets the name used in logs and errors; `"supervisor"` by default.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets which children are restarted when one fails; [`Strategy::OneForOne`] by default.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the restart intensity: when more than `max_restarts` restarts happen within
    /// `within`, the supervisor shuts down and exits with an error. 3 within 5 seconds by
    /// default, as in OTP.
    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.within = within;
        self
    }

    /// Sets how long temporary children may take to return once shutdown cancels them, after
    /// which they are aborted; 10 seconds by default.
    pub fn dynamic_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.dynamic_shutdown_timeout = timeout;
        self
    }

    /// Adds a static child; children are started in the order they are added.
    ///
    /// # Panics
    ///
    /// Panics if a child with the same id was already added.
    #[track_caller]
    pub fn child(mut self, spec: ChildSpec) -> Self {
        assert!(
            self.children.iter().all(|c| c.id != spec.id),
            "supervisor `{}` already has a child `{}`",
            self.name,
            spec.id
        );
        self.children.push(spec);
        self
    }

    /// Starts the supervisor and its static children, in order, on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime.
    #[track_caller]
    #[must_use = "dropping the handle leaves the supervisor running with no way to stop it"]
    pub fn start(self) -> Supervisor {
        let Ok(runtime) = Handle::try_current() else {
            panic!("a supervisor must be started from within a tokio runtime");
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            name: self.name.clone(),
            runtime: runtime.clone(),
            commands,
            stop: CancellationToken::new(),
            done: CancellationToken::new(),
            outcome: OnceLock::new(),
            temporaries: Temporaries::default(),
            counters: Counters::default(),
            dynamic_shutdown_timeout: self.dynamic_shutdown_timeout,
            strategy: self.strategy,
            children: Mutex::default(),
        });
        let runner = Runner::new(
            Arc::clone(&shared),
            self.strategy,
            self.max_restarts,
            self.within,
            self.children,
            command_rx,
        );
        runtime.spawn(runner.run());
        Supervisor { shared }
    }

    /// Turns this configuration into a child spec, to nest a supervisor under another.
    ///
    /// Each (re)start of the child starts a fresh supervisor from this configuration. It runs
    /// until its parent cancels it, then shuts down in order and returns `Ok(())`; when its
    /// restart intensity is exceeded it returns the error, which its parent sees as an
    /// abnormal exit. The spec's shutdown timeout defaults to [`Duration::MAX`], because the
    /// nested supervisor already bounds how long each of its children may take.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::supervisor::{ChildSpec, Supervisor};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let workers = Supervisor::builder()
    ///     .name("workers")
    ///     .child(ChildSpec::new("worker", |token| async move {
    ///         token.cancelled().await;
    ///         Ok::<_, std::io::Error>(())
    ///     }));
    /// let root = Supervisor::builder().name("root").child(workers.into_child_spec("workers")).start();
    /// root.shutdown().await.unwrap();
    /// # }
    /// ```
    pub fn into_child_spec(self, id: impl Into<String>) -> ChildSpec {
        let slot: Arc<Mutex<Option<Supervisor>>> = Arc::default();
        let latest = Arc::clone(&slot);
        let mut spec = ChildSpec::new(id, move |token: CancellationToken| {
            let nested = self.clone().start();
            *latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(nested.clone());
            async move {
                // If the parent aborts this child, the nested supervisor must not be orphaned.
                let _stop_on_drop = StopOnDrop(nested.clone());
                tokio::select! {
                    () = token.cancelled() => nested.shutdown().await,
                    result = nested.wait() => result,
                }
            }
        })
        .shutdown_timeout(Duration::MAX);
        spec.nested = Some(slot);
        spec
    }
}

struct StopOnDrop(Supervisor);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.shared.stop.cancel();
    }
}

#[derive(Default)]
struct Counters {
    static_children: AtomicUsize,
    restarts: AtomicU64,
    panics: AtomicU64,
    abnormal_exits: AtomicU64,
}

/// State shared by the handles, the supervisor task and the children's tasks.
struct Shared {
    name: String,
    runtime: Handle,
    commands: mpsc::UnboundedSender<Command>,
    /// Cancelled when shutdown begins, for whatever reason; temporary children's tokens are
    /// its children.
    stop: CancellationToken,
    /// Cancelled once the supervisor has exited and `outcome` is set.
    done: CancellationToken,
    outcome: OnceLock<Result<(), Error>>,
    temporaries: Temporaries,
    counters: Counters,
    dynamic_shutdown_timeout: Duration,
    strategy: Strategy,
    /// The static children as the supervisor task last saw them, for [`Supervisor::tree`].
    children: Mutex<Vec<ChildReport>>,
}

/// What [`Supervisor::tree`] shows of a static child; kept up to date by the supervisor task.
#[derive(Clone)]
struct ChildReport {
    id: Arc<str>,
    restart: Restart,
    running: bool,
    restarts: u64,
    last_exit: Option<String>,
    nested: Option<Arc<Mutex<Option<Supervisor>>>>,
}

impl Shared {
    /// Logs and counts a child's exit if it is abnormal.
    fn record_exit(&self, child: &str, reason: &ExitReason) {
        if !reason.is_abnormal() {
            return;
        }
        self.counters.abnormal_exits.fetch_add(1, Ordering::Relaxed);
        if matches!(reason, ExitReason::Panic(_)) {
            self.counters.panics.fetch_add(1, Ordering::Relaxed);
        }
        tracing::error!(supervisor = %self.name, child, reason = %reason, "child exited abnormally");
    }
}

/// A handle to a running supervisor.
///
/// Cheap to clone; every clone controls the same supervisor. Dropping every handle does not
/// stop the supervisor: call [`shutdown`](Self::shutdown).
///
/// # Examples
///
/// ```
/// use fawkes::supervisor::{ChildSpec, Supervisor};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sup = Supervisor::builder().name("jobs").start();
/// sup.start_child(ChildSpec::new("tick", |token| async move {
///     token.cancelled().await;
///     Ok::<_, std::io::Error>(())
/// }))
/// .await
/// .unwrap();
/// assert_eq!(sup.stats().static_children, 1);
/// sup.shutdown().await.unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<Shared>,
}

impl Supervisor {
    /// Starts configuring a supervisor.
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder {
            name: "supervisor".to_owned(),
            strategy: Strategy::default(),
            max_restarts: 3,
            within: Duration::from_secs(5),
            dynamic_shutdown_timeout: Duration::from_secs(10),
            children: Vec::new(),
        }
    }

    /// The supervisor's name, as given to [`SupervisorBuilder::name`].
    #[must_use]
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Adds a static child at the end of the start order and starts it.
    ///
    /// Resolves once the child's task is spawned, not once the child is ready.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::is_duplicate`] if a child with the same id is supervised, and with
    /// [`Error::is_stopped`] if the supervisor is shutting down or has exited.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<(), Error> {
        self.call(|reply| Command::StartChild { spec, reply }).await
    }

    /// Stops a static child, waiting at most its shutdown timeout before aborting it, and
    /// removes it from the supervisor.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::is_not_found`] if no child has this id, and with
    /// [`Error::is_stopped`] if the supervisor is shutting down or has exited.
    pub async fn terminate_child(&self, id: &str) -> Result<(), Error> {
        let id = id.to_owned();
        self.call(|reply| Command::TerminateChild { id, reply }).await
    }

    async fn call(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), Error>>) -> Command,
    ) -> Result<(), Error> {
        let stopped = || Error::stopped(&self.shared.name);
        if self.shared.stop.is_cancelled() {
            return Err(stopped());
        }
        let (reply, response) = oneshot::channel();
        self.shared.commands.send(command(reply)).map_err(|_| stopped())?;
        // The reply sender is dropped unanswered when the supervisor exits first.
        response.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// A snapshot of the supervisor's children and counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let counters = &self.shared.counters;
        Stats {
            static_children: counters.static_children.load(Ordering::Relaxed),
            temporary_children: self.shared.temporaries.len(),
            restarts: counters.restarts.load(Ordering::Relaxed),
            panics: counters.panics.load(Ordering::Relaxed),
            abnormal_exits: counters.abnormal_exits.load(Ordering::Relaxed),
        }
    }

    /// The supervisor and its children as they are now: each static child with its restarts
    /// and its last abnormal exit (and, for a nested supervisor, its own tree), and the
    /// temporary children counted by name.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::supervisor::{ChildSpec, Supervisor};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let idle = |token: fawkes::supervisor::CancellationToken| async move {
    ///     token.cancelled().await;
    ///     Ok::<_, std::io::Error>(())
    /// };
    /// let workers = Supervisor::builder().name("workers").child(ChildSpec::new("worker", idle));
    /// let root = Supervisor::builder()
    ///     .name("root")
    ///     .child(ChildSpec::new("cache", idle))
    ///     .child(workers.into_child_spec("workers"))
    ///     .start();
    /// root.spawn_temporary("conn", |token| async move { token.cancelled().await }).unwrap();
    /// tokio::task::yield_now().await;
    ///
    /// let tree = root.tree();
    /// assert_eq!(tree.name, "root");
    /// assert_eq!(tree.temporaries, vec![("conn".to_owned(), 1)]);
    /// let ids: Vec<&str> = tree.children.iter().map(|c| c.id.as_str()).collect();
    /// assert_eq!(ids, ["cache", "workers"]);
    /// let nested = tree.children[1].supervisor.as_ref().expect("a nested supervisor");
    /// assert_eq!(nested.children[0].id, "worker");
    /// root.shutdown().await.unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn tree(&self) -> Tree {
        let reports = self.shared.children.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let children = reports
            .into_iter()
            .map(|report| {
                let nested = report
                    .nested
                    .and_then(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).clone());
                ChildInfo {
                    id: report.id.to_string(),
                    restart: report.restart,
                    running: report.running,
                    restarts: report.restarts,
                    last_exit: report.last_exit,
                    supervisor: nested.filter(|_| report.running).map(|s| Box::new(s.tree())),
                }
            })
            .collect();
        let temporaries = self.shared.temporaries.by_name();
        Tree {
            name: self.shared.name.clone(),
            strategy: self.shared.strategy,
            running: self.is_running(),
            stats: self.stats(),
            temporaries: temporaries.into_iter().map(|(n, c)| (n.to_owned(), c)).collect(),
            children,
        }
    }

    /// Whether the supervisor is running: false once shutdown has begun, whether asked for or
    /// forced by the restart intensity.
    #[must_use]
    pub fn is_running(&self) -> bool {
        !self.shared.stop.is_cancelled()
    }

    /// Shuts the supervisor down in order and resolves when everything is down.
    ///
    /// First no new temporary children are admitted; all temporary children are cancelled
    /// and awaited in parallel, and aborted after the dynamic shutdown timeout. Then static
    /// children are stopped one by one in reverse start order, each cancelled and given its
    /// own shutdown timeout before it is aborted. Children that exit meanwhile are not
    /// restarted. Idempotent: later calls just wait.
    ///
    /// Shutdown proceeds even if this future is dropped once polled. A child should not await
    /// the shutdown of its own supervisor: it would wait for itself until aborted.
    ///
    /// # Errors
    ///
    /// Returns what [`wait`](Self::wait) returns: an error only if the supervisor had already
    /// exited because its restart intensity was exceeded.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.shared.stop.cancel();
        self.wait().await
    }

    /// Resolves when the supervisor has exited and all its children are down.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::is_intensity_exceeded`] when the supervisor exited because its
    /// children restarted too often (it shut all of them down in order first), and with
    /// [`Error::is_stopped`] if the supervisor task was dropped with its runtime.
    pub async fn wait(&self) -> Result<(), Error> {
        self.shared.done.cancelled().await;
        self.shared.outcome.get().cloned().unwrap_or_else(|| Err(Error::stopped(&self.shared.name)))
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("name", &self.shared.name)
            .field("running", &self.is_running())
            .field("stats", &self.stats())
            .finish()
    }
}
