//! Catch-ups served from the ledger.
//!
//! A peer that is far behind in the order may be missing events this node
//! has already pruned from memory: it gets the ordered events from its
//! position on, from the ledger (kept `disk_horizon_rounds`). Ordered
//! events form an ancestor-closed set, so the peer recomputes the same
//! consensus from them, checking every signature itself.
//!
//! Replay costs every event's signature and placement, so a peer further
//! behind than the node's `state_sync_gap` events, and whose position the
//! order passed more than `state_sync_min_lag` ago, is also told to take a
//! state sync (`Behind`): it installs a vouched checkpoint in seconds,
//! however long it was away, and keeps replaying these pages meanwhile
//! (a state sync needs more than a third of the stake to say so).
//!
//! A page leaves out what the peer holds already: a node back from a crash
//! may hold more unordered events than a page, and a page of those taught
//! it nothing, every time (its position moves only once it orders).

use std::collections::{HashMap, HashSet};

use dagger_consensus::{CreatorId, Event, EventId};

use super::machine::Machine;
use crate::store::LedgerView;

/// A peer more than this many ordered events behind (or missing events this
/// node pruned from memory) gets the ordered events it misses from the
/// ledger (catch-up) before the usual sync answer.
pub const CATCH_UP_GAP: u64 = 256;

/// Events a catch-up page may leave out because the peer holds them, at
/// least (a page's size if larger).
const MIN_HELD_SKIPS: usize = 4_096;

/// Order records read at once for a catch-up.
const ORDER_READ_CHUNK: usize = 1_024;

/// Default for `CoreConfig::state_sync_min_lag`: a peer the order passed
/// less than this long ago is never told to state sync, however many events
/// it misses (at 16 nodes a few seconds of order exceed the event gap).
pub const STATE_SYNC_MIN_LAG: std::time::Duration = std::time::Duration::from_secs(10);

/// Ledger reads a sync answer needs, planned by the core and carried out
/// by the task that answers the peer: a peer asking for catch-up at its
/// highest rate costs the consensus actor a plan, never disk reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LedgerReads {
    /// Parents the peer lacks that this node pruned from memory (durable).
    pub missing: Vec<EventId>,
    /// Ordered events from the peer's position on.
    pub catch_up: Option<CatchUpPlan>,
    /// The peer's tips (those of creators not seen forking, a few per
    /// roster member at most): a catch-up leaves out every event of their
    /// creators up to their sequence numbers (the peer holds them, or
    /// pruned them as ancient).
    pub held: Vec<EventId>,
}

/// Which ordered events a catch-up sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUpPlan {
    /// The peer's position in the order.
    pub from: u64,
    /// At most this many.
    pub limit: usize,
    /// This node's position when planned.
    pub ours: u64,
    /// `Some(t)`: this node's newest checkpoint is more than its
    /// `state_sync_gap` ordered events past the peer's position, so replay
    /// costs more than a state sync; the peer is told to take one if the
    /// order reached its position before `t` (consensus time: this node's
    /// latest minus `state_sync_min_lag`). A peer that only lags (a slow
    /// link, a busy moment, a large cluster's many events) is not.
    pub state_sync_before_ns: Option<u64>,
}

/// A stored event, decoded (`None` if absent or unreadable).
pub fn stored_event(ledger: &dyn LedgerView, id: &EventId) -> Option<Event> {
    let bytes = ledger.event(&id.0).ok().flatten()?;
    Event::decode(&bytes).ok()
}

/// A whole sync answer: the ledger reads it planned, then the events from
/// memory, at most `max_events`; and whether the peer is behind what this
/// node keeps.
pub fn complete(
    ledger: &dyn LedgerView,
    answer: super::SyncAnswer,
    max_events: usize,
) -> (Vec<Event>, bool) {
    let (mut events, behind) = read(ledger, &answer.ledger);
    events.extend(answer.events);
    events.truncate(max_events);
    (events, behind)
}

/// The events `reads` names, parents first, and whether the peer should
/// take a state sync: it is behind what this node keeps (only a state
/// sync helps it then) or far enough behind that replay is the slower way.
pub fn read(ledger: &dyn LedgerView, reads: &LedgerReads) -> (Vec<Event>, bool) {
    let mut out = Vec::new();
    for id in &reads.missing {
        match stored_event(ledger, id) {
            Some(event) => out.push(event),
            None => return (Vec::new(), true),
        }
    }
    let Some(plan) = reads.catch_up else {
        return (out, false);
    };
    // What the peer holds past its position: per creator, the highest
    // sequence number among its tips this node knows. Along an honest
    // creator's chain that covers every earlier event. (Tips of creators
    // seen forking are not passed here; a fork this node no longer sees
    // can still make a page leave out a branch the peer lacks, which then
    // comes as missing parents, a self-parent per round trip.)
    let mut held: HashMap<CreatorId, u64> = HashMap::new();
    for tip in &reads.held {
        if let Some(event) = stored_event(ledger, tip) {
            let seq = held.entry(event.creator()).or_default();
            *seq = (*seq).max(event.seq());
        }
    }
    // Each event left out costs a read and sends nothing, so at most
    // `max(limit, MIN_HELD_SKIPS)` are: a peer claiming to hold everything
    // gets an empty page after at most twice a page's reads (or 4 096
    // more), and one holding more than that past its position stalls as
    // before, until it is far enough behind for a state sync.
    // Consecutive from the peer's position only: an event missing here
    // would leave the peer with descendants it cannot place.
    let skip_budget = plan.limit.max(MIN_HELD_SKIPS);
    let (mut next, mut sent, mut skipped) = (plan.from, 0, 0);
    let mut first = None;
    'pages: while sent < plan.limit {
        let want = (plan.limit - sent + skip_budget - skipped).min(ORDER_READ_CHUNK);
        let records = match ledger.order_from(next, want) {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the order for a catch-up");
                break;
            }
        };
        if first.is_none() {
            first = records.first().map(|r| (r.position, r.consensus_time_ns));
        }
        for record in &records {
            if record.position != next {
                break 'pages;
            }
            let Some(event) = stored_event(ledger, &EventId(record.event_id)) else {
                break 'pages;
            };
            next += 1;
            if held
                .get(&event.creator())
                .is_some_and(|&seq| event.seq() <= seq)
            {
                skipped += 1;
                if skipped == skip_budget {
                    break 'pages;
                }
                continue;
            }
            out.push(event);
            sent += 1;
            if sent == plan.limit {
                break 'pages;
            }
        }
        if records.len() < want {
            break;
        }
    }
    // No record at or after their position yet is the ledger writer running
    // behind consensus (it applies decided rounds a moment later), not a
    // horizon: calling that "behind" sent busy honest peers into state
    // syncs they did not need.
    let behind = next == plan.from && plan.from < plan.ours && first.is_some();
    let far = plan.state_sync_before_ns.is_some_and(|before| {
        first.is_some_and(|(position, time_ns)| position == plan.from && time_ns < before)
    });
    (out, behind || far)
}

impl Machine {
    /// The peer's tips a catch-up may judge what it holds by: not those of
    /// creators seen forking (several tips here or in the peer's list),
    /// and a few per roster member at most (each costs a ledger read).
    pub(super) fn held_tips(&self, tips: &[EventId]) -> Vec<EventId> {
        let creator_of = |id: &EventId| self.hg.event(id).map(|event| event.creator());
        let ours: Vec<Option<CreatorId>> = self.hg.tips().iter().map(creator_of).collect();
        let theirs: Vec<Option<CreatorId>> = tips.iter().map(creator_of).collect();
        let mut forking: HashSet<CreatorId> = HashSet::new();
        for list in [&ours, &theirs] {
            let mut seen = HashSet::new();
            for creator in list.iter().flatten() {
                if !seen.insert(creator) {
                    forking.insert(*creator);
                }
            }
        }
        let most = self
            .hg
            .roster_at(self.hg.stats().last_decided_round + 1)
            .len()
            * 2;
        tips.iter()
            .zip(&theirs)
            .filter(|(_, creator)| creator.is_none_or(|c| !forking.contains(&c)))
            .map(|(id, _)| *id)
            .take(most)
            .collect()
    }

    /// Whether a peer at `their_ordered` needs a catch-up, and of what.
    pub(super) fn catch_up(&self, their_ordered: u64, max_events: usize) -> Option<CatchUpPlan> {
        let ours = self.hg.stats().ordered_count;
        // Ordered events this node no longer holds in memory: a peer short of
        // them cannot get them from the ordinary sync answer.
        let pruned_from_memory = ours.saturating_sub(self.records.ordered_held.len() as u64);
        if their_ordered >= pruned_from_memory && ours <= their_ordered.saturating_add(CATCH_UP_GAP)
        {
            return None;
        }
        let limit = (ours - their_ordered.min(ours)).min(max_events as u64 / 2) as usize;
        let state_sync_before_ns = self
            .checkpoints
            .back()
            .filter(|newest| {
                newest.ordered > their_ordered.saturating_add(self.config.state_sync_gap)
            })
            .map(|_| {
                let lag =
                    u64::try_from(self.config.state_sync_min_lag.as_nanos()).unwrap_or(u64::MAX);
                self.order_time_ns.saturating_sub(lag)
            });
        Some(CatchUpPlan {
            from: their_ordered,
            limit,
            ours,
            state_sync_before_ns,
        })
    }
}
