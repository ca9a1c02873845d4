//! What the explorer draws: the held DAG, in slices a live view can follow
//! (new events since a cursor, plus those it saw unsettled).

use std::collections::HashSet;

use dagger_consensus::EventId;

use super::{timeline::Moments, Machine};

/// Most events one slice carries (a first slice under load holds every
/// event of the last rounds; the explorer keeps this many in view).
pub const MAX_DAG_EVENTS: usize = 10_000;

/// One event as the explorer shows it.
#[derive(Clone, Debug)]
pub struct DagEvent {
    pub id: EventId,
    pub creator: [u8; 32],
    pub seq: u64,
    pub round: u64,
    pub self_parent: Option<EventId>,
    pub other_parent: Option<EventId>,
    pub witness: bool,
    pub famous: Option<bool>,
    pub ordered: bool,
    pub sound: bool,
    pub txs: usize,
    pub created_at_ns: u64,
    pub moments: Moments,
}

impl DagEvent {
    /// Whether a later slice may still change it (fame or order pending).
    pub fn unsettled(&self) -> bool {
        !self.ordered || (self.witness && self.famous.is_none())
    }
}

/// Held events inserted from `cursor` on, and the named ones still held.
#[derive(Clone, Debug)]
pub struct DagSlice {
    pub last_decided_round: u64,
    pub pruned_through: u64,
    /// Pass back as `after` for the next slice.
    pub cursor: u64,
    /// The roster for the next round to decide (node key, stake).
    pub roster: Vec<([u8; 32], u64)>,
    /// Creators this node holds fork evidence against.
    pub accused: Vec<[u8; 32]>,
    pub events: Vec<DagEvent>,
}

impl Machine {
    pub fn dag(&self, after: u64, also: &HashSet<EventId>) -> DagSlice {
        let stats = self.hg.stats();
        let mut cursor = after;
        let events: Vec<DagEvent> = self
            .hg
            .held_since(after, also)
            .into_iter()
            .take(MAX_DAG_EVENTS)
            .map(|(event, info, insert_no)| {
                cursor = cursor.max(insert_no + 1);
                DagEvent {
                    id: event.id(),
                    creator: event.creator().0,
                    seq: event.seq(),
                    round: info.round,
                    self_parent: event.self_parent(),
                    other_parent: event.other_parent(),
                    witness: info.witness,
                    famous: info.famous,
                    ordered: info.ordered,
                    sound: info.sound,
                    txs: event.transactions().len(),
                    created_at_ns: event.created_at_ns(),
                    moments: self.timeline.get(&event.id()),
                }
            })
            .collect();
        let mut accused: Vec<[u8; 32]> =
            self.evidence.iter().map(|e| e.first.creator().0).collect();
        accused.sort_unstable();
        accused.dedup();
        DagSlice {
            last_decided_round: stats.last_decided_round,
            pruned_through: stats.pruned_through_round,
            cursor,
            roster: self.roster(),
            accused,
            events,
        }
    }
}
