//! Temporary children: many short-lived tasks (connections, channel processes) that are never
//! restarted and are shut down together.
//!
//! They cost one task, one child cancellation token and one map slot each: no monitor task.
//! Each child's task removes its own slot when it ends, whether it returns, panics or is
//! aborted, because the removal lives in a drop guard owned by the task's future.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

use super::{Error, ExitReason, Shared, Supervisor};

/// Identifies a temporary child spawned with [`Supervisor::spawn_temporary`].
///
/// Ids are unique within one supervisor and never reused.
///
/// # Examples
///
/// ```
/// use fawkes::supervisor::Supervisor;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sup = Supervisor::builder().start();
/// let a = sup.spawn_temporary("conn", |_token| async {}).unwrap();
/// let b = sup.spawn_temporary("conn", |_token| async {}).unwrap();
/// assert_ne!(a, b);
/// # sup.shutdown().await.unwrap();
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId(u64);

impl ChildId {
    /// The id as a number, for logs and metrics.
    #[must_use]
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// Multiplicative hashing: ids are sequential, so SipHash's DoS resistance buys nothing here,
/// and the multiply spreads them over both the bucket bits and the tag bits of the table.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[derive(Default)]
struct State {
    /// Set when shutdown begins; no child is admitted after it.
    closed: bool,
    /// Set once the shutdown timeout has passed, so a child whose abort handle is registered
    /// late is aborted on the spot.
    aborting: bool,
    /// `None` between admission and spawn: the slot is reserved first so shutdown waits for it.
    tasks: HashMap<u64, Option<AbortHandle>, BuildHasherDefault<IdHasher>>,
    /// How many children of each name are running, in order of first spawn: a handful of
    /// names (connections, sockets, channels), so a list beats a map.
    by_name: Vec<(&'static str, usize)>,
}

impl State {
    fn count(&mut self, name: &'static str) -> &mut usize {
        let i = match self.by_name.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                self.by_name.push((name, 0));
                self.by_name.len() - 1
            }
        };
        &mut self.by_name[i].1
    }
}

/// The temporary children of one supervisor.
#[derive(Default)]
pub(crate) struct Temporaries {
    state: Mutex<State>,
    tracker: TaskTracker,
    next_id: AtomicU64,
}

impl Temporaries {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding this lock, but if something ever did, the map is still
        // consistent enough to shut down with.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.tracker.len()
    }

    /// How many children of each name are running (names with none included, once seen).
    pub(crate) fn by_name(&self) -> Vec<(&'static str, usize)> {
        self.lock().by_name.clone()
    }

    /// Map slots in use; equals `len` whenever no spawn is in flight.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.lock().tasks.len()
    }

    /// Stops admitting children; those already admitted can still be awaited.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.tracker.close();
    }

    /// Closes, then waits for every child to return (their tokens are cancelled by the caller),
    /// aborting those still running after `timeout`.
    pub(crate) async fn shutdown(&self, supervisor: &str, timeout: Duration) {
        self.close();
        if tokio::time::timeout(timeout, self.tracker.wait()).await.is_ok() {
            return;
        }
        let handles: Vec<AbortHandle> = {
            let mut state = self.lock();
            state.aborting = true;
            state.tasks.values().flatten().cloned().collect()
        };
        tracing::warn!(
            supervisor,
            remaining = handles.len(),
            ?timeout,
            "temporary children did not stop in time; aborting them"
        );
        for handle in &handles {
            handle.abort();
        }
        drop(handles);
        self.tracker.wait().await;
    }
}

/// Owned by a temporary child's future; frees the child's slot when the future is dropped.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
    name: &'static str,
    // Dropped after `Drop::drop` has removed the slot, so `TaskTracker::wait` only resolves
    // once the map is clean.
    _tracked: TaskTrackerToken,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = self.shared.temporaries.lock();
        state.tasks.remove(&self.id);
        let count = state.count(self.name);
        *count = count.saturating_sub(1);
    }
}

pin_project_lite::pin_project! {
    /// A temporary child's task: its future, caught if it panics, and its registration.
    ///
    /// A plain struct rather than an `async fn`: an async fn keeps its arguments in a part of
    /// its state that is never shared with the future it awaits, so the child's future (a
    /// socket's whole state, over a kilobyte) would be stored twice in every task.
    struct Temporary<Fut> {
        #[pin]
        fut: futures_util::future::CatchUnwind<AssertUnwindSafe<Fut>>,
        registration: Option<Registration>,
    }
}

impl<Fut: Future<Output = ()>> Future for Temporary<Fut> {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let this = self.project();
        let result = std::task::ready!(this.fut.poll(cx));
        if let Some(registration) = this.registration.take() {
            if let Err(payload) = result {
                let reason = ExitReason::from_panic(&*payload);
                registration.shared.record_exit(registration.name, &reason);
            }
        }
        std::task::Poll::Ready(())
    }
}

fn run_temporary<Fut>(registration: Registration, fut: Fut) -> Temporary<Fut>
where
    Fut: Future<Output = ()>,
{
    Temporary { fut: AssertUnwindSafe(fut).catch_unwind(), registration: Some(registration) }
}

/// Which token a temporary child gets.
#[derive(Clone, Copy)]
enum Token {
    /// Its own child of the supervisor's token, which it may cancel without harm.
    Child,
    /// The supervisor's token itself.
    Shared,
}

impl Supervisor {
    /// Spawns a temporary child: never restarted, cancelled and awaited on shutdown.
    ///
    /// Meant for connections and channel processes, so it is cheap: one task, one child
    /// cancellation token and one map slot, with no monitor task. `f` is called right away
    /// with a token that is cancelled when the supervisor shuts down; the future it returns
    /// runs on the supervisor's runtime. On shutdown every temporary child is cancelled at
    /// once and awaited in parallel; those still running after the
    /// [dynamic shutdown timeout](super::SupervisorBuilder::dynamic_shutdown_timeout) are
    /// aborted. A panic, in `f` or in the future, is caught, logged and counted in
    /// [`Stats::panics`](super::Stats::panics); it never reaches the caller.
    ///
    /// This can be called from any thread, inside a runtime or not.
    ///
    /// # Errors
    ///
    /// Returns an error for which [`Error::is_stopped`] holds when the supervisor is shutting
    /// down or has exited; `f` is then not called.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::supervisor::Supervisor;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sup = Supervisor::builder().name("endpoint").start();
    /// sup.spawn_temporary("conn", |token| async move {
    ///     // Serve until the supervisor shuts down.
    ///     token.cancelled().await;
    /// })
    /// .unwrap();
    /// assert_eq!(sup.stats().temporary_children, 1);
    /// sup.shutdown().await.unwrap();
    /// assert_eq!(sup.stats().temporary_children, 0);
    /// # }
    /// ```
    pub fn spawn_temporary<F, Fut>(&self, name: &'static str, f: F) -> Result<ChildId, Error>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, f, Token::Child)
    }

    /// [`Supervisor::spawn_temporary`] for the framework's own children (sockets, channels),
    /// which only ever wait on their token: they get a clone of the supervisor's own token
    /// instead of a child of it, which saves a tree node (over a hundred bytes) per child.
    /// A child that cancelled this token would stop the whole supervisor.
    pub(crate) fn spawn_temporary_shared<F, Fut>(
        &self,
        name: &'static str,
        f: F,
    ) -> Result<ChildId, Error>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, f, Token::Shared)
    }

    fn spawn<F, Fut>(&self, name: &'static str, f: F, token: Token) -> Result<ChildId, Error>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shared = &self.shared;
        let temporaries = &shared.temporaries;
        let id = temporaries.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = {
            let mut state = temporaries.lock();
            // `stop` is checked too so that no child is admitted between `shutdown()` being
            // called and the supervisor task getting round to closing.
            if state.closed || shared.stop.is_cancelled() {
                return Err(Error::stopped(&shared.name));
            }
            state.tasks.insert(id, None);
            *state.count(name) += 1;
            temporaries.tracker.token()
        };
        // From here on every path frees the slot: the registration is dropped with the future.
        let registration = Registration { shared: Arc::clone(shared), id, name, _tracked: tracked };
        let token = match token {
            Token::Child => shared.stop.child_token(),
            Token::Shared => shared.stop.clone(),
        };
        let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| f(token))) {
            Ok(fut) => fut,
            Err(payload) => {
                shared.record_exit(name, &ExitReason::from_panic(&*payload));
                return Ok(ChildId(id));
            }
        };
        // Spawned outside the lock: on a runtime that is shutting down, `spawn` drops the future
        // in place, and the registration's drop takes the lock.
        let task = shared.runtime.spawn(run_temporary(registration, fut));
        let abort_now = {
            let mut state = temporaries.lock();
            let State { aborting, tasks, .. } = &mut *state;
            match tasks.get_mut(&id) {
                // Already finished: its registration removed the slot.
                None => false,
                Some(_) if *aborting => true,
                Some(slot) => {
                    *slot = Some(task.abort_handle());
                    false
                }
            }
        };
        if abort_now {
            task.abort();
        }
        Ok(ChildId(id))
    }
}
