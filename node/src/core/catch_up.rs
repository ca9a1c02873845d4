//! Catch-ups served from the ledger.
//!
//! A peer that is far behind in the order may be missing events this node
//! has already pruned from memory: it gets the ordered events from its
//! position on, from the ledger (kept `disk_horizon_rounds`). Ordered
//! events form an ancestor-closed set, so the peer recomputes the same
//! consensus from them, checking every signature itself.

use dagger_consensus::Event;

use super::machine::Machine;

/// A peer more than this many ordered events behind (or missing events this
/// node pruned from memory) gets the ordered events it misses from the
/// ledger (catch-up) before the usual sync answer.
pub const CATCH_UP_GAP: u64 = 256;

/// A catch-up answer.
pub(super) struct CatchUp {
    pub events: Vec<Event>,
    /// The peer needs ordered events this node no longer has on disk (or
    /// never had: it joined by state sync after them): only a state sync
    /// brings it back.
    pub behind_horizon: bool,
}

impl Machine {
    pub(super) fn catch_up(&self, their_ordered: u64, max_events: usize) -> CatchUp {
        let none = |behind_horizon| CatchUp {
            events: Vec::new(),
            behind_horizon,
        };
        let ours = self.hg.stats().ordered_count;
        // Ordered events this node no longer holds in memory: a peer short of
        // them cannot get them from the ordinary sync answer.
        let pruned_from_memory = ours.saturating_sub(self.records.ordered_held.len() as u64);
        if their_ordered >= pruned_from_memory && ours <= their_ordered.saturating_add(CATCH_UP_GAP)
        {
            return none(false);
        }
        let limit = (ours - their_ordered.min(ours)).min(max_events as u64 / 2) as usize;
        let records = match self.ledger.order_from(their_ordered, limit) {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the order for a catch-up");
                return none(false);
            }
        };
        // Consecutive from `their_ordered` only: an event missing here would
        // leave the peer with descendants it cannot place.
        let mut out = Vec::with_capacity(records.len());
        for (expected, record) in (their_ordered..).zip(&records) {
            if record.position != expected {
                break;
            }
            let event = self
                .ledger
                .event(&record.event_id)
                .ok()
                .flatten()
                .and_then(|bytes| Event::decode(&bytes).ok());
            match event {
                Some(event) => out.push(event),
                None => break,
            }
        }
        CatchUp {
            // No record at or after their position yet is the ledger writer
            // running behind consensus (it applies decided rounds a moment
            // later), not a horizon: calling that "behind" sent busy honest
            // peers into state syncs they did not need.
            behind_horizon: out.is_empty() && their_ordered < ours && !records.is_empty(),
            events: out,
        }
    }
}
