//! When this node first held each event and when it ordered it, for the
//! explorer (`GET /dag`): kept while consensus keeps the event, forgotten
//! with it (pruned, or dropped while it waited).

use std::collections::HashMap;

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
}

impl Timeline {
    pub(super) fn received(&mut self, id: EventId, now_ns: u64) {
        self.moments
            .entry(id)
            .or_default()
            .received_ns
            .get_or_insert(now_ns);
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
        t.received(a, 10);
        t.received(a, 20);
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
        t.forget(&[a]);
        assert_eq!(t.get(&a), Moments::default());
        assert_eq!(t.len(), 0);
    }
}
