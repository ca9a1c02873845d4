//! When this node first held each event and when it ordered it, for the
//! explorer (`GET /dag`): kept while consensus keeps the event, forgotten
//! with it (pruned, or dropped while it waited).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use dagger_consensus::EventId;

/// What the explorer shows of an event's life on this node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moments {
    /// Unix ns this node first accepted (or signed) it.
    pub received_ns: Option<u64>,
    /// Unix ns this node put it in the order, and where.
    pub ordered_ns: Option<u64>,
    pub position: Option<u64>,
    pub consensus_time_ns: Option<u64>,
}

#[derive(Default)]
pub(super) struct Timeline {
    moments: HashMap<EventId, Moments>,
    /// When (monotonic) this node first held each own event and each event
    /// that came in its creator's push: events every peer the creator
    /// pushes to gets the same way (see `Machine::sync_answer`).
    pushed: HashMap<EventId, Instant>,
}

impl Timeline {
    /// This node holds `id` from now on (`pushed`: it is an own event, or
    /// came in its creator's push). Only the first call counts.
    pub(super) fn received(&mut self, id: EventId, now_ns: u64, at: Instant, pushed: bool) {
        let moments = self.moments.entry(id).or_default();
        if moments.received_ns.is_some() {
            return;
        }
        moments.received_ns = Some(now_ns);
        if pushed {
            self.pushed.insert(id, at);
        }
    }

    /// Whether `id` came in a push (or is own) less than `window` before
    /// `now`: it may still be on its way to other peers in that push.
    pub(super) fn in_flight(&self, id: &EventId, now: Instant, window: Duration) -> bool {
        self.pushed
            .get(id)
            .is_some_and(|at| now.saturating_duration_since(*at) < window)
    }

    pub(super) fn ordered(&mut self, id: EventId, now_ns: u64, position: u64, consensus_ns: u64) {
        let m = self.moments.entry(id).or_default();
        m.ordered_ns = Some(now_ns);
        m.position = Some(position);
        m.consensus_time_ns = Some(consensus_ns);
    }

    pub(super) fn forget(&mut self, ids: &[EventId]) {
        for id in ids {
            self.moments.remove(id);
            self.pushed.remove(id);
        }
    }

    pub(super) fn get(&self, id: &EventId) -> Moments {
        self.moments.get(id).copied().unwrap_or_default()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.moments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_arrival_counts_and_forgotten_events_leave_nothing() {
        let mut t = Timeline::default();
        let a = EventId([1; 32]);
        let start = Instant::now();
        t.received(a, 10, start, true);
        t.received(a, 20, start + Duration::from_secs(1), false);
        let window = Duration::from_millis(100);
        assert!(t.in_flight(&a, start + window / 2, window));
        assert!(!t.in_flight(&a, start + window, window));
        // A pulled event is never in flight in a push.
        let b = EventId([2; 32]);
        t.received(b, 10, start, false);
        assert!(!t.in_flight(&b, start, window));
        t.ordered(a, 30, 7, 25);
        assert_eq!(
            t.get(&a),
            Moments {
                received_ns: Some(10),
                ordered_ns: Some(30),
                position: Some(7),
                consensus_time_ns: Some(25),
            }
        );
        t.forget(&[a, b]);
        assert_eq!(t.get(&a), Moments::default());
        assert!(!t.in_flight(&a, start, window));
        assert_eq!(t.len(), 0);
        assert!(t.pushed.is_empty());
    }
}
