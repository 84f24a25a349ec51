//! A count of something shared (bytes held, channels running) against its limit.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How much of a limited resource is taken, and the limit. Taking never goes past the limit:
/// a take that would is refused whole.
#[derive(Debug)]
pub(crate) struct Budget {
    taken: AtomicUsize,
    max: usize,
}

impl Budget {
    pub(crate) const fn new(max: usize) -> Self {
        Self { taken: AtomicUsize::new(0), max }
    }

    /// Takes `amount`; false, taking nothing, when that would go past the limit.
    pub(crate) fn try_take(&self, amount: usize) -> bool {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                let more = taken.saturating_add(amount);
                (more <= self.max).then_some(more)
            })
            .is_ok()
    }

    /// The limit.
    #[cfg(feature = "graphql")]
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Gives back `amount` taken before.
    pub(crate) fn give_back(&self, amount: usize) {
        self.taken.fetch_sub(amount, Ordering::AcqRel);
    }

    /// How much is taken.
    #[cfg(test)]
    pub(crate) fn taken(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn a_take_past_the_limit_is_refused_whole() {
        let budget = Budget::new(10);
        assert!(budget.try_take(6));
        assert!(!budget.try_take(5));
        assert_eq!(budget.taken(), 6);
        assert!(budget.try_take(4));
        budget.give_back(6);
        assert!(budget.try_take(5));
        assert_eq!(budget.taken(), 9);
    }
}
