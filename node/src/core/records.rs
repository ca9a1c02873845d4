//! Record keeping: every decided round becomes order and transaction
//! records at fixed positions, and now and then a consensus snapshot that
//! lets the ledger delete what no restart needs any more.
//!
//! Records are keyed by position, so writing a round twice (replay after a
//! crash lost the first write) changes nothing. Snapshots are taken at
//! rounds that are multiples of [`SNAPSHOT_EVERY_ROUNDS`], identical on
//! every node, and never during replay: a snapshot claims to cover every
//! event stored before it, which is only true once replay is over.

use std::collections::HashSet;

use dagger_consensus::{Decided, EventId};

use super::{
    checkpoint::Checkpoint,
    forward::{join_app_state, Delivery},
    join_snapshot,
    machine::{Machine, Now, Output},
};
use crate::store::{OrderRecord, TxRecord, Write};

/// Decided rounds between two consensus snapshots (and deletions of pruned
/// events from disk).
pub const SNAPSHOT_EVERY_ROUNDS: u64 = 8;

/// A snapshot smaller than this is taken at every snapshot round; a larger
/// one only once at least as many event bytes were accepted since the last
/// (see [`Records::snapshot_due`]).
pub(crate) const SNAPSHOT_ALWAYS_BYTES: usize = 1 << 20;

/// Own checkpoints kept in memory (for verifying after a state sync).
pub(crate) const RECENT_CHECKPOINTS: usize = 64;

#[derive(Default)]
pub(crate) struct Records {
    /// Position of the next ordered transaction.
    pub next_tx_position: u64,
    /// Ordered events still held in memory; a pruned event not in here was
    /// stale (never ordered) and can go from disk with the next snapshot.
    pub ordered_held: HashSet<EventId>,
    pruned_since_snapshot: Vec<[u8; 32]>,
    /// Accepted (stored) events that consensus will never insert: evicted
    /// from its waiting areas or discarded there. Deleted from disk with
    /// the next snapshot, unless accepted again meanwhile.
    forget: HashSet<EventId>,
    /// Event bytes accepted since the last snapshot.
    accepted_bytes: usize,
    /// Size of the last snapshot.
    last_snapshot_bytes: usize,
}

impl Records {
    pub fn forget(&mut self, id: EventId) {
        self.forget.insert(id);
    }

    /// Accepted (again): keep it on disk.
    pub fn remember(&mut self, id: EventId) {
        self.forget.remove(&id);
    }

    /// Events of this many bytes were stored.
    pub fn accepted(&mut self, bytes: usize) {
        self.accepted_bytes = self.accepted_bytes.saturating_add(bytes);
    }

    /// Whether a snapshot round also stores a snapshot. A snapshot holds
    /// every held event, so under heavy load (large events, many held) one
    /// can weigh tens of megabytes; taken every few milliseconds it would
    /// make the ledger write far more than the node receives (a flood of
    /// transactions once stalled the ledger writer, and with it every own
    /// event, for minutes). Taking a large one only after as many event
    /// bytes arrived keeps snapshot writing within the size of the events
    /// themselves. Checkpoints are still recorded at every snapshot round,
    /// so any stored snapshot can be vouched for by peers.
    fn snapshot_due(&self) -> bool {
        self.last_snapshot_bytes < SNAPSHOT_ALWAYS_BYTES
            || self.accepted_bytes >= self.last_snapshot_bytes
    }

    fn snapshot_taken(&mut self, bytes: usize) {
        self.last_snapshot_bytes = bytes;
        self.accepted_bytes = 0;
    }

    /// A state sync replaced everything: the ledger's events go with it.
    pub fn reset(&mut self, next_tx_position: u64) {
        *self = Records {
            next_tx_position,
            ..Records::default()
        };
    }
}

impl Machine {
    fn observe_finality(&self, submitted: &[std::time::Instant], now: Now, live: bool) {
        if live {
            for t in submitted {
                self.metrics
                    .finality_latency
                    .observe(now.instant.saturating_duration_since(*t).as_secs_f64());
            }
        }
    }

    pub(super) fn record(
        &mut self,
        decided: &Decided,
        deliveries: &[Delivery],
        now: Now,
        live: bool,
    ) {
        self.timeline.forget(&decided.pruned);
        self.timeline.forget(&decided.discarded);
        let mut order = Vec::with_capacity(decided.events.len());
        let mut txs = Vec::with_capacity(deliveries.len());
        let mut delivered = deliveries.iter().peekable();
        for ordered in &decided.events {
            let event = &ordered.event;
            let first_tx = self.records.next_tx_position;
            while let Some(d) = delivered.next_if(|d| d.event == event.id()) {
                txs.push(TxRecord {
                    position: self.records.next_tx_position,
                    event_id: event.id().0,
                    consensus_time_ns: ordered.consensus_time_ns,
                    tx: d.tx.to_vec(),
                });
                self.records.next_tx_position += 1;
            }
            order.push(OrderRecord {
                position: ordered.order_index,
                event_id: event.id().0,
                creator: event.creator().0,
                round_received: ordered.round_received,
                consensus_time_ns: ordered.consensus_time_ns,
                running_hash: ordered.running_hash,
                first_tx,
                tx_count: (self.records.next_tx_position - first_tx) as u32,
            });
            self.unordered_with_txs.remove(&event.id());
            self.records.ordered_held.insert(event.id());
            self.timeline.ordered(
                event.id(),
                now.unix_ns,
                ordered.order_index,
                ordered.consensus_time_ns,
            );
            self.order_time_ns = self.order_time_ns.max(ordered.consensus_time_ns);
            if let Some(submitted) = self.mempool.ordered(&event.id()) {
                self.observe_finality(&submitted, now, live);
            }
        }
        // Own envelopes delivered: their transactions are done (and leave
        // the ledger's table in this round's write).
        let me = self.identity.id();
        let mut mempool_removed = Vec::new();
        let mut own_envelopes: Vec<(super::forward::Tag, Vec<u64>)> = Vec::new();
        for d in deliveries.iter().filter(|d| d.author == me) {
            let Some((tag, mark)) = d.envelope else {
                continue;
            };
            match own_envelopes.last_mut() {
                Some((last, marks)) if *last == tag => marks.push(mark),
                _ => own_envelopes.push((tag, vec![mark])),
            }
        }
        for (tag, marks) in own_envelopes {
            let settled = self.mempool.delivered(&tag, &marks);
            self.metrics.forward_envelopes("delivered");
            self.forwarded_txs += settled.keys.len() as u64;
            self.observe_finality(&settled.submitted, now, live);
            mempool_removed.extend(settled.keys);
        }
        let mut mempool_added = Vec::new();
        // An own event consensus no longer knows and did not order will
        // never be ordered: pruned unordered (stale, on every node: staleness
        // is decided by consensus), or a waiting one discarded, evicted or
        // dropped. Its transactions are forwarded, whichever way it went.
        // Pruned ones first, in consensus's order; the sweep below finds
        // them gone too, and takes the rest.
        for id in &decided.pruned {
            mempool_added.extend(self.mempool.stale(id));
        }
        let mut gone: Vec<EventId> = self
            .mempool
            .in_flight_ids()
            .into_iter()
            .filter(|id| !self.hg.knows(id))
            .collect();
        gone.sort_unstable_by_key(|id| id.0);
        for id in gone {
            mempool_added.extend(self.mempool.stale(&id));
        }
        // Envelopes past their expiry will never be delivered: seal what
        // they held again, with what went stale now. Never while replaying
        // (the hold set at recovery covers every envelope sealed before),
        // nor outside the roster (nobody would deliver them).
        self.mempool.expire_forwards(self.order_time_ns);
        if !self.replaying && self.is_member_now(&me) {
            let sealing = self.mempool.seal(
                self.order_time_ns,
                self.identity.signing_key(),
                &self.config.consensus.network_id,
                (&self.config.consensus.limits, self.config.forward_window),
                (now.instant, now.unix_ns),
            );
            mempool_removed.extend(sealing.dropped);
            for envelope in sealing.envelopes {
                self.metrics.forward_envelopes("sealed");
                self.outputs.push_back(Output::Forward(envelope));
                self.react_pending = true;
            }
        }
        // Waiting events the consensus core dropped or evicted will never be
        // ordered here either: stop gossiping at full speed for them.
        let hg = &self.hg;
        self.unordered_with_txs.retain(|id| hg.knows(id));
        for id in &decided.pruned {
            // Ordered events stay on disk for catch-ups (see `catch_up`).
            if !self.records.ordered_held.remove(id) {
                self.records.pruned_since_snapshot.push(id.0);
            }
        }
        self.records
            .forget
            .extend(decided.discarded.iter().copied());
        let snapshot_round =
            !self.replaying && decided.round_received.is_multiple_of(SNAPSHOT_EVERY_ROUNDS);
        let (snapshot, checkpoint) = if snapshot_round {
            let observer = join_app_state(&self.observer.snapshot(), &self.delivered);
            let checkpoint = Checkpoint::of(&self.hg, &observer, self.records.next_tx_position);
            self.checkpoints.push_back(checkpoint);
            while self.checkpoints.len() > RECENT_CHECKPOINTS {
                self.checkpoints.pop_front();
            }
            let snapshot = self.records.snapshot_due().then(|| {
                let snapshot = join_snapshot(&self.hg.snapshot(), &observer);
                self.records.snapshot_taken(snapshot.len());
                snapshot
            });
            (snapshot, Some(checkpoint))
        } else {
            (None, None)
        };
        let (ordered_events, ordered_txs) = (order.len() as u64, txs.len() as u64);
        let pruned = if snapshot.is_some() {
            let hg = &self.hg;
            let forgotten: Vec<EventId> = self
                .records
                .forget
                .drain()
                .filter(|id| !hg.knows(id))
                .collect();
            let mut pruned = std::mem::take(&mut self.records.pruned_since_snapshot);
            pruned.extend(forgotten.into_iter().map(|id| id.0));
            pruned
        } else {
            Vec::new()
        };
        let forget_ordered_through_round = snapshot.as_ref().map(|_| {
            decided
                .round_received
                .saturating_sub(self.config.disk_horizon_rounds)
        });
        self.persist(
            Write::Decided {
                order,
                txs,
                snapshot,
                pruned,
                forget_ordered_through_round,
                mempool_added,
                mempool_removed,
                checkpoint,
            },
            None,
        );
        self.metrics.rounds_decided.inc();
        self.metrics.ordered_events.inc_by(ordered_events);
        self.metrics.ordered_txs.inc_by(ordered_txs);
        self.count_ordered(now.instant, ordered_txs);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the load, snapshots never write much more than the
        /// events themselves: at most the accepted bytes, plus one small
        /// snapshot per snapshot round, plus the last large one.
        #[test]
        fn snapshot_writing_is_bounded_by_what_was_accepted(
            rounds in proptest::collection::vec((0usize..8 << 20, 0usize..64 << 20), 1..200),
        ) {
            let mut records = Records::default();
            let (mut accepted, mut written, mut largest) = (0usize, 0usize, 0usize);
            let mut taken = 0usize;
            for (bytes, snapshot_size) in &rounds {
                records.accepted(*bytes);
                accepted += bytes;
                if records.snapshot_due() {
                    records.snapshot_taken(*snapshot_size);
                    written += snapshot_size;
                    largest = largest.max(*snapshot_size);
                    taken += 1;
                }
            }
            prop_assert!(taken >= 1, "the first snapshot round always stores one");
            prop_assert!(
                written <= accepted + rounds.len() * SNAPSHOT_ALWAYS_BYTES + largest,
                "wrote {written} for {accepted} accepted over {} rounds", rounds.len()
            );
        }

        /// Small snapshots (a lightly loaded node) are stored at every
        /// snapshot round, as before the bound existed.
        #[test]
        fn small_snapshots_are_stored_every_time(
            sizes in proptest::collection::vec(0usize..SNAPSHOT_ALWAYS_BYTES, 1..100),
        ) {
            let mut records = Records::default();
            for size in sizes {
                prop_assert!(records.snapshot_due());
                records.snapshot_taken(size);
            }
        }
    }
}
