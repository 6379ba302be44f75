//! Results of work done off an actor, applied in the order it was asked
//! for. Requests are looked at in parallel on the blocking pool, where a
//! small file's lookup can finish before a large one asked earlier; jobs
//! must still queue in request order (an operator's queue is FIFO).

use std::collections::BTreeMap;

/// Hands out tickets and releases arrivals in ticket order.
#[derive(Debug)]
pub struct InOrder<T> {
    next_ticket: u64,
    next_release: u64,
    waiting: BTreeMap<u64, T>,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        Self {
            next_ticket: 0,
            next_release: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> InOrder<T> {
    /// The ticket of the next request.
    pub fn ticket(&mut self) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        ticket
    }

    /// The result of `ticket` arrived: returns every result now due, in
    /// ticket order (empty while an earlier ticket is still out).
    pub fn arrive(&mut self, ticket: u64, item: T) -> Vec<T> {
        if ticket < self.next_release {
            // Not one of ours (a ticket is released once): drop nothing,
            // pass it through rather than hold it forever.
            return vec![item];
        }
        self.waiting.insert(ticket, item);
        let mut due = Vec::new();
        while let Some(item) = self.waiting.remove(&self.next_release) {
            due.push(item);
            self.next_release += 1;
        }
        due
    }

    /// Results held back behind an earlier ticket.
    pub fn held(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::InOrder;

    #[test]
    fn results_are_released_in_ticket_order_whatever_order_they_arrive_in() {
        let mut order = InOrder::default();
        let (a, b, c) = (order.ticket(), order.ticket(), order.ticket());
        assert!(order.arrive(c, "c").is_empty());
        assert!(order.arrive(b, "b").is_empty());
        assert_eq!(order.held(), 2);
        assert_eq!(order.arrive(a, "a"), ["a", "b", "c"]);
        assert_eq!(order.held(), 0);
        let d = order.ticket();
        assert_eq!(order.arrive(d, "d"), ["d"]);
    }

    #[test]
    fn a_ticket_already_released_passes_straight_through() {
        let mut order = InOrder::default();
        let a = order.ticket();
        assert_eq!(order.arrive(a, 1), [1]);
        assert_eq!(order.arrive(a, 2), [2]);
        assert_eq!(order.held(), 0);
    }
}
