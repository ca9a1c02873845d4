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
    join_snapshot,
    machine::{Machine, Now},
};
use crate::store::{OrderRecord, TxRecord, Write};

/// Decided rounds between two consensus snapshots (and deletions of pruned
/// events from disk).
pub const SNAPSHOT_EVERY_ROUNDS: u64 = 8;

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
}

impl Records {
    pub fn forget(&mut self, id: EventId) {
        self.forget.insert(id);
    }

    /// Accepted (again): keep it on disk.
    pub fn remember(&mut self, id: EventId) {
        self.forget.remove(&id);
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
    pub(super) fn record(&mut self, decided: &Decided, now: Now, live: bool) {
        let mut order = Vec::with_capacity(decided.events.len());
        let mut txs = Vec::new();
        for ordered in &decided.events {
            let event = &ordered.event;
            let first_tx = self.records.next_tx_position;
            for tx in event.transactions() {
                txs.push(TxRecord {
                    position: self.records.next_tx_position,
                    event_id: event.id().0,
                    consensus_time_ns: ordered.consensus_time_ns,
                    tx: tx.clone(),
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
                tx_count: event.transactions().len() as u32,
            });
            self.unordered_with_txs.remove(&event.id());
            self.records.ordered_held.insert(event.id());
            if let Some(submitted) = self.mempool.ordered(&event.id()) {
                if live {
                    for t in submitted {
                        self.metrics
                            .finality_latency
                            .observe(now.instant.saturating_duration_since(t).as_secs_f64());
                    }
                }
            }
        }
        let mut mempool_added = Vec::new();
        // An own event consensus no longer knows and did not order will
        // never be ordered: pruned unordered (stale, on every node: staleness
        // is decided by consensus), or a waiting one discarded, evicted or
        // dropped. Its transactions are carried again, whichever way it went.
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
            let observer = self.observer.snapshot();
            let checkpoint = Checkpoint::of(&self.hg, &observer, self.records.next_tx_position);
            self.checkpoints.push_back(checkpoint);
            while self.checkpoints.len() > RECENT_CHECKPOINTS {
                self.checkpoints.pop_front();
            }
            (
                Some(join_snapshot(&self.hg.snapshot(), &observer)),
                Some(checkpoint),
            )
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
