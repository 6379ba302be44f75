//! How many restarts the supervisor allows in a sliding window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most `max_restarts` within `window`; one more trips the budget.
#[derive(Debug, Clone)]
pub struct RestartBudget {
    max_restarts: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl Default for RestartBudget {
    /// Five restarts a minute: a crash loop, not bad luck.
    fn default() -> Self {
        Self::new(5, Duration::from_secs(60))
    }
}

impl RestartBudget {
    /// A budget of `max_restarts` per `window`.
    pub fn new(max_restarts: usize, window: Duration) -> Self {
        Self {
            max_restarts,
            window,
            recent: VecDeque::new(),
        }
    }

    /// Record a restart at `now`; false when the budget is exhausted.
    pub fn allow(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        self.recent.len() <= self.max_restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_after_max_restarts_in_the_window() {
        let mut b = RestartBudget::new(2, Duration::from_secs(10));
        let t = Instant::now();
        assert!(b.allow(t));
        assert!(b.allow(t + Duration::from_secs(1)));
        assert!(!b.allow(t + Duration::from_secs(2)));
    }

    #[test]
    fn old_restarts_age_out() {
        let mut b = RestartBudget::new(1, Duration::from_secs(10));
        let t = Instant::now();
        assert!(b.allow(t));
        assert!(b.allow(t + Duration::from_secs(11)));
    }
}
