//! A small multi-producer, single-consumer queue that costs nothing until used.
//!
//! Sockets and channels each own one. tokio's mpsc allocates a block of slots up front; with tens
//! of thousands of idle sockets those blocks dominate memory, so this queue starts empty, grows
//! with use and gives its memory back whenever it is drained.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

pub(crate) struct Mailbox<T> {
    queue: Mutex<State<T>>,
    notify: Notify,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// Why a push failed; the value comes back.
#[derive(Debug)]
pub(crate) enum PushError<T> {
    Full(T),
    Closed(T),
}

impl<T> Mailbox<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(State { items: VecDeque::new(), closed: false }),
            notify: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pushes unless the mailbox holds `limit` items or is closed.
    pub(crate) fn push_bounded(&self, item: T, limit: usize) -> Result<(), PushError<T>> {
        let mut state = self.lock();
        if state.closed {
            return Err(PushError::Closed(item));
        }
        if state.items.len() >= limit {
            return Err(PushError::Full(item));
        }
        let was_empty = state.items.is_empty();
        state.items.push_back(item);
        drop(state);
        if was_empty {
            self.notify.notify_one();
        }
        Ok(())
    }

    /// How many items are queued.
    #[cfg(feature = "redis")]
    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Pushes whatever the length; fails only when closed.
    pub(crate) fn push(&self, item: T) -> Result<(), PushError<T>> {
        self.push_bounded(item, usize::MAX)
    }

    /// Moves everything queued into `out` (handing over the queue's buffer when `out` is empty:
    /// take `out`'s items by value to give the memory back); waits while the mailbox is empty.
    /// Returns false once the mailbox is closed and empty.
    ///
    /// Cancel safe: nothing is taken until the items are moved out in one step.
    pub(crate) async fn recv_all(&self, out: &mut Vec<T>) -> bool {
        loop {
            let notified = self.notify.notified();
            {
                let mut state = self.lock();
                if !state.items.is_empty() {
                    // The whole buffer moves out, so an idle mailbox holds no allocation (with
                    // tens of thousands of sockets, a few hundred bytes each add up).
                    let items = std::mem::take(&mut state.items);
                    if out.is_empty() {
                        *out = Vec::from(items);
                    } else {
                        out.extend(items);
                    }
                    return true;
                }
                if state.closed {
                    return false;
                }
            }
            notified.await;
        }
    }

    /// Takes one item, waiting while empty; `None` once closed and empty.
    pub(crate) async fn recv(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            {
                let mut state = self.lock();
                if let Some(item) = state.items.pop_front() {
                    // Drained: the buffer goes, so an idle channel holds none (a few hundred
                    // bytes, times every joined channel); the next message allocates again.
                    if state.items.is_empty() {
                        state.items = VecDeque::new();
                    }
                    // Another item may be waiting: keep the consumer awake.
                    if !state.items.is_empty() {
                        self.notify.notify_one();
                    }
                    return Some(item);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Refuses further pushes and wakes the consumer; queued items can still be taken.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_push_and_drain() {
        let mb = Mailbox::new();
        mb.push_bounded(1, 2).unwrap();
        mb.push_bounded(2, 2).unwrap();
        assert!(matches!(mb.push_bounded(3, 2), Err(PushError::Full(3))));
        let mut out = Vec::new();
        assert!(mb.recv_all(&mut out).await);
        assert_eq!(out, vec![1, 2]);
        mb.close();
        assert!(matches!(mb.push(4), Err(PushError::Closed(4))));
        assert!(!mb.recv_all(&mut out).await);
    }

    #[tokio::test]
    async fn recv_wakes_on_push_from_another_task() {
        let mb: Arc<Mailbox<u32>> = Mailbox::new();
        let producer = mb.clone();
        let task = tokio::spawn(async move {
            for i in 0..100 {
                producer.push(i).unwrap();
                tokio::task::yield_now().await;
            }
            producer.close();
        });
        let mut got = Vec::new();
        while let Some(i) = mb.recv().await {
            got.push(i);
        }
        task.await.unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }
}
