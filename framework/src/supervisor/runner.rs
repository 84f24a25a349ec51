//! The supervisor task: owns the static children, restarts them, and shuts everything down.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::spec::StartFn;
use super::{ChildReport, ChildSpec, Error, ExitReason, Restart, Shared, Strategy};

/// Requests from handles, answered through `reply`.
pub(crate) enum Command {
    StartChild { spec: ChildSpec, reply: oneshot::Sender<Result<(), Error>> },
    TerminateChild { id: String, reply: oneshot::Sender<Result<(), Error>> },
}

/// Sent by a static child's task as its last act.
struct Exit {
    /// Which start of which child ended; exits of starts the supervisor has already stopped on
    /// its own are stale and ignored.
    instance: u64,
    reason: ExitReason,
}

struct Child {
    spec: ChildSpec,
    running: Option<Running>,
    /// Restarts after this child failed (not those its siblings' failures caused).
    restarts: u64,
    /// Its last abnormal exit.
    last_exit: Option<String>,
}

impl Child {
    fn new(spec: ChildSpec) -> Self {
        Self { spec, running: None, restarts: 0, last_exit: None }
    }
}

struct Running {
    instance: u64,
    token: CancellationToken,
    task: JoinHandle<()>,
}

pub(crate) struct Runner {
    shared: Arc<Shared>,
    strategy: Strategy,
    max_restarts: u32,
    within: Duration,
    /// In start order. Only children that are running or about to be restarted are kept: one
    /// that exits for good is removed.
    children: Vec<Child>,
    /// Times of the restarts still inside the intensity window, oldest first.
    restarts: VecDeque<Instant>,
    commands: mpsc::UnboundedReceiver<Command>,
    exits: mpsc::UnboundedReceiver<Exit>,
    exit_tx: mpsc::UnboundedSender<Exit>,
    next_instance: u64,
}

impl Runner {
    pub(crate) fn new(
        shared: Arc<Shared>,
        strategy: Strategy,
        max_restarts: u32,
        within: Duration,
        specs: Vec<ChildSpec>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        let (exit_tx, exits) = mpsc::unbounded_channel();
        Self {
            shared,
            strategy,
            max_restarts,
            within,
            children: specs.into_iter().map(Child::new).collect(),
            restarts: VecDeque::new(),
            commands,
            exits,
            exit_tx,
            next_instance: 0,
        }
    }

    pub(crate) async fn run(mut self) {
        let _exited = ExitGuard(Arc::clone(&self.shared));
        self.start_stopped_children();
        let outcome = loop {
            tokio::select! {
                biased;
                () = self.shared.stop.cancelled() => break Ok(()),
                Some(exit) = self.exits.recv() => {
                    if let Err(e) = self.on_exit(exit).await {
                        break Err(e);
                    }
                }
                Some(command) = self.commands.recv() => self.on_command(command).await,
            }
        };
        // Cancelled here too when the intensity is exceeded, so the handles report it at once.
        self.shared.stop.cancel();
        self.shared
            .temporaries
            .shutdown(&self.shared.name, self.shared.dynamic_shutdown_timeout)
            .await;
        for i in (0..self.children.len()).rev() {
            self.stop_child(i).await;
        }
        self.children.clear();
        self.publish();
        // Set before the guard cancels `done`, so waiters always find it.
        let _ = self.shared.outcome.set(outcome);
    }

    async fn on_exit(&mut self, exit: Exit) -> Result<(), Error> {
        let Some(i) = self
            .children
            .iter()
            .position(|c| c.running.as_ref().is_some_and(|r| r.instance == exit.instance))
        else {
            return Ok(());
        };
        // The task sent its exit as its last act, so its handle can be dropped.
        self.children[i].running = None;
        if exit.reason.is_abnormal() {
            self.children[i].last_exit = Some(exit.reason.to_string());
        }
        let restart = match self.children[i].spec.restart {
            Restart::Permanent => true,
            Restart::Transient => exit.reason.is_abnormal(),
            Restart::Temporary => false,
        };
        if !restart {
            self.children.remove(i);
            self.publish();
            return Ok(());
        }
        if self.shared.stop.is_cancelled() {
            // Shutting down: the main loop is about to stop everything anyway.
            return Ok(());
        }
        if self.intensity_exceeded() {
            let error =
                Error::intensity_exceeded(&self.shared.name, self.max_restarts, self.within);
            tracing::error!(
                supervisor = %self.shared.name,
                child = %self.children[i].spec.id,
                "restart intensity exceeded; shutting down"
            );
            return Err(error);
        }
        self.shared.counters.restarts.fetch_add(1, Ordering::Relaxed);
        self.children[i].restarts += 1;
        tracing::info!(
            supervisor = %self.shared.name,
            child = %self.children[i].spec.id,
            reason = %exit.reason,
            strategy = ?self.strategy,
            "restarting child"
        );
        let siblings = match self.strategy {
            Strategy::OneForOne => i..i,
            Strategy::OneForAll => 0..self.children.len(),
            Strategy::RestForOne => i + 1..self.children.len(),
        };
        for j in siblings.rev() {
            self.stop_child(j).await;
        }
        // Siblings with `Restart::Temporary` were stopped for good: they are never restarted.
        self.children.retain(|c| c.running.is_some() || c.spec.restart != Restart::Temporary);
        // Stopping siblings can take a while; a shutdown asked for meanwhile wins.
        if !self.shared.stop.is_cancelled() {
            self.start_stopped_children();
        }
        Ok(())
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::StartChild { spec, reply } => {
                let result = if self.children.iter().any(|c| c.spec.id == spec.id) {
                    Err(Error::duplicate(&spec.id))
                } else {
                    self.children.push(Child::new(spec));
                    self.start_stopped_children();
                    Ok(())
                };
                let _ = reply.send(result);
            }
            Command::TerminateChild { id, reply } => {
                let result = match self.children.iter().position(|c| *c.spec.id == *id) {
                    Some(i) => {
                        self.stop_child(i).await;
                        self.children.remove(i);
                        self.publish();
                        Ok(())
                    }
                    None => Err(Error::not_found(&id)),
                };
                let _ = reply.send(result);
            }
        }
    }

    /// Records a restart now and tells whether it is one too many for the window.
    fn intensity_exceeded(&mut self) -> bool {
        let now = Instant::now();
        while self.restarts.front().is_some_and(|&t| now.duration_since(t) >= self.within) {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        self.restarts.len() > self.max_restarts as usize
    }

    /// Starts, in order, every child that is not running.
    fn start_stopped_children(&mut self) {
        for child in self.children.iter_mut().filter(|c| c.running.is_none()) {
            let instance = self.next_instance;
            self.next_instance += 1;
            let token = CancellationToken::new();
            let task = tokio::spawn(run_static(
                Arc::clone(&self.shared),
                ChildRun {
                    id: Arc::clone(&child.spec.id),
                    start: Arc::clone(&child.spec.start),
                    token: token.clone(),
                    instance,
                    exits: self.exit_tx.clone(),
                },
            ));
            child.running = Some(Running { instance, token, task });
        }
        self.publish();
    }

    /// Cancels a child and waits for it, aborting it after its shutdown timeout.
    async fn stop_child(&mut self, i: usize) {
        let child = &mut self.children[i];
        let Some(Running { token, mut task, .. }) = child.running.take() else {
            return;
        };
        token.cancel();
        let timeout = child.spec.shutdown_timeout;
        if tokio::time::timeout(timeout, &mut task).await.is_err() {
            tracing::warn!(
                supervisor = %self.shared.name,
                child = %child.spec.id,
                ?timeout,
                "child did not stop in time; aborting it"
            );
            task.abort();
            // Ends at the child's next await point; the child's exit message is never sent.
            let _ = task.await;
        }
        self.publish();
    }

    /// Publishes the children for [`Supervisor::stats`](super::Supervisor::stats) and
    /// [`Supervisor::tree`](super::Supervisor::tree).
    fn publish(&self) {
        let running = self.children.iter().filter(|c| c.running.is_some()).count();
        self.shared.counters.static_children.store(running, Ordering::Relaxed);
        let reports = self
            .children
            .iter()
            .map(|c| ChildReport {
                id: Arc::clone(&c.spec.id),
                restart: c.spec.restart,
                running: c.running.is_some(),
                restarts: c.restarts,
                last_exit: c.last_exit.clone(),
                nested: c.spec.nested.clone(),
            })
            .collect();
        *self.shared.children.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = reports;
    }
}

struct ChildRun {
    id: Arc<str>,
    start: StartFn,
    token: CancellationToken,
    instance: u64,
    exits: mpsc::UnboundedSender<Exit>,
}

/// The body of a static child's task: runs one start of the child, then reports how it ended.
async fn run_static(shared: Arc<Shared>, run: ChildRun) {
    let ChildRun { id, start, token, instance, exits } = run;
    let child_token = token.clone();
    // `start` is called inside the guarded future so a panic while building the child's future
    // is caught like one while running it.
    let result = AssertUnwindSafe(async move { start(child_token).await }).catch_unwind().await;
    let reason = match result {
        Ok(Ok(())) if token.is_cancelled() => ExitReason::Shutdown,
        Ok(Ok(())) => ExitReason::Normal,
        Ok(Err(error)) => ExitReason::Error(error.to_string()),
        Err(payload) => ExitReason::from_panic(&*payload),
    };
    shared.record_exit(&id, &reason);
    // Fails only once the supervisor has exited, when nobody needs to know.
    let _ = exits.send(Exit { instance, reason });
}

/// Marks the supervisor as exited however its task ends, even if dropped with its runtime.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let shared = &self.0;
        shared.stop.cancel();
        shared.temporaries.close();
        shared.counters.static_children.store(0, Ordering::Relaxed);
        let _ = shared.outcome.set(Err(Error::stopped(&shared.name)));
        shared.done.cancel();
    }
}
