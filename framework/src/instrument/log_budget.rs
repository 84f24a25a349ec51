//! A budget of log lines for one call site: lines a client's every message could cause (a
//! refused join, a refused socket) are written a few a second at most, so that a flood costs
//! neither the disk nor the log pipeline, and the next line written says how many were left
//! out.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// At most `per_second` lines a second.
pub(crate) struct LogBudget {
    per_second: u32,
    second: AtomicU64,
    used: AtomicU32,
    suppressed: AtomicU64,
}

impl LogBudget {
    pub(crate) const fn new(per_second: u32) -> Self {
        Self {
            per_second,
            second: AtomicU64::new(0),
            used: AtomicU32::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(left_out)` when a line may be written now, with how many lines were left out
    /// since the last one written; `None` when this second's budget is spent.
    pub(crate) fn take(&self) -> Option<u64> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // Races between threads only make the count approximate.
        if self.second.load(Ordering::Relaxed) != now
            && self.second.swap(now, Ordering::Relaxed) != now
        {
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < self.per_second {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Writes a `tracing` event at most `$per_second` times a second from this call site, with a
/// `left_out` field counting the events not written since the last one.
macro_rules! limited {
    ($per_second:expr, $level:ident!($($args:tt)*)) => {{
        static BUDGET: $crate::instrument::LogBudget = $crate::instrument::LogBudget::new($per_second);
        if let Some(left_out) = BUDGET.take() {
            tracing::$level!(left_out, $($args)*);
        }
    }};
}
pub(crate) use limited;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seconds_budget_is_spent_then_the_left_out_are_counted() {
        let budget = LogBudget::new(3);
        let taken: Vec<Option<u64>> = (0..10).map(|_| budget.take()).collect();
        // Within one second (the test may straddle a second's end: then a new budget starts).
        let written = taken.iter().filter(|t| t.is_some()).count();
        assert!((3..=6).contains(&written), "{taken:?}");
        assert_eq!(taken[0], Some(0));
        // The next second's first line counts what was left out.
        budget.second.store(0, Ordering::Relaxed);
        let left_out = budget.take().expect("a new second's budget");
        assert_eq!(left_out, 10 - written as u64);
    }
}
