//! Installing a state taken by peers (the machine's side of state sync;
//! the exchange itself is in `net::state_sync`).
//!
//! A node that fell behind what its peers keep (offline longer than their
//! disk horizon, or its ledger lost) cannot replay its way back. It installs
//! a peer's snapshot of a snapshot round instead, after checking that the
//! snapshot's checkpoint digest is one peers with more than a third of the
//! stake recorded. Nothing acknowledged is lost on the way: pending and
//! waiting transactions stay; own events still waiting for consensus are
//! either held by the new state, found in the order between the node's old
//! position and the checkpoint (a list of event ids checked against the two
//! running hashes), or stale, and then carried again. The node continues
//! its own chain after the newest event it ever signed, so it cannot sign a
//! sequence number twice.

use std::collections::HashSet;

use dagger_consensus::{CreatorId, EventId, Hashgraph};

use super::{
    checkpoint::{links, Checkpoint},
    forward::split_app_state,
    join_snapshot,
    machine::Machine,
    split_snapshot, CoreError,
};
use crate::store::Write;

/// Why a state offered by a peer was not installed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InstallError {
    #[error("the snapshot does not decode: {0}")]
    Snapshot(String),
    #[error("the snapshot's checkpoint does not match the vouched one")]
    Digest,
    #[error("round {offered} is not ahead of this node's round {ours}")]
    NotAhead { offered: u64, ours: u64 },
    #[error("the ordered ids do not link this node's running hash to the checkpoint's")]
    Gap,
    #[error("the state holds event {0} whose signature or shape does not check")]
    BadEvent(String),
    /// An own event the state does not hold is not ancient there: peers
    /// may still order it, so its transactions cannot be carried again.
    /// Such a node is close behind and catches up by replay.
    #[error("own event {event} (round {round}) may still be ordered after round {offered}")]
    OwnEventLive {
        event: String,
        round: u64,
        offered: u64,
    },
}

/// The ids ordered from a position this node was at up to a checkpoint,
/// fetched from a voucher while this node may have gone on replaying: the
/// ids it ordered since must be a prefix of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderGap {
    /// This node's ordered count when the gap was asked for...
    pub from: u64,
    /// ...and its running hash then.
    pub from_hash: [u8; 32],
    pub ids: Vec<[u8; 32]>,
}

impl Machine {
    /// What this node needs to resolve its own waiting events against the
    /// order up to a checkpoint: its ordered count and running hash now,
    /// and whether it has own events waiting at all.
    pub fn sync_position(&self) -> (u64, [u8; 32], bool) {
        let stats = self.hg.stats();
        (
            stats.ordered_count,
            stats.running_hash,
            !self.mempool.in_flight_ids().is_empty(),
        )
    }

    /// Checks a peer's snapshot blob against a vouched checkpoint without
    /// touching this machine.
    pub fn verify_state(&self, blob: &[u8], vouched: &Checkpoint) -> Result<(), InstallError> {
        let (consensus, observer) =
            split_snapshot(blob).ok_or_else(|| InstallError::Snapshot("truncated".into()))?;
        let hg = Hashgraph::restore(self.config.consensus.clone(), consensus)
            .map_err(|e| InstallError::Snapshot(e.to_string()))?;
        if Checkpoint::of(&hg, observer, vouched.next_tx) != *vouched {
            return Err(InstallError::Digest);
        }
        // The digest covers what consensus decided, not the events: each
        // is checked as a received event is (a peer cannot slip in one its
        // creator never signed).
        hg.verify_signatures()
            .map_err(|id| InstallError::BadEvent(super::hex(&id.0)))?;
        Ok(())
    }

    /// Replaces the consensus state by `blob` (verified against `vouched`).
    /// `gap` lists the ids ordered from a position of this node up to the
    /// checkpoint, when it has own events waiting (see `sync_position`).
    pub fn install(
        &mut self,
        blob: &[u8],
        vouched: &Checkpoint,
        gap: Option<&OrderGap>,
    ) -> Result<(), CoreError> {
        let fail = |e: InstallError| CoreError::Install(e);
        self.verify_state(blob, vouched).map_err(fail)?;
        let ours = self.hg.stats();
        if vouched.round <= ours.last_decided_round {
            return Err(fail(InstallError::NotAhead {
                offered: vouched.round,
                ours: ours.last_decided_round,
            }));
        }
        let gap: HashSet<EventId> = match gap {
            Some(OrderGap {
                from,
                from_hash,
                ids,
            }) => {
                // What this node ordered since `from` must be the gap's
                // start (the running hashes say so), the whole gap must end
                // in the checkpoint's.
                let done = ours.ordered_count.checked_sub(*from);
                let prefix = done.and_then(|d| ids.get(..usize::try_from(d).ok()?));
                if from + ids.len() as u64 != vouched.ordered
                    || !prefix.is_some_and(|p| links(from_hash, p, &ours.running_hash))
                    || !links(from_hash, ids, &vouched.running_hash)
                {
                    return Err(fail(InstallError::Gap));
                }
                ids.iter().map(|id| EventId(*id)).collect()
            }
            None => HashSet::new(),
        };
        let (consensus, app_state) = split_snapshot(blob).expect("verified above");
        let (observer, delivered) = split_app_state(app_state)
            .ok_or_else(|| CoreError::Snapshot("application state truncated".into()))?;
        let mut hg = Hashgraph::restore(self.config.consensus.clone(), consensus)
            .map_err(|e| CoreError::Snapshot(e.to_string()))?;
        // An own event the state lacks is resubmitted below as stale; that
        // is sound only if it is ancient in the state, so no node orders it.
        let pruned = hg.stats().pruned_through_round;
        for id in self.mempool.in_flight_ids() {
            if hg.event_info(&id).is_some() || gap.contains(&id) {
                continue;
            }
            if let Some(info) = self.hg.event_info(&id).filter(|i| i.round > pruned) {
                return Err(fail(InstallError::OwnEventLive {
                    event: super::hex(&id.0),
                    round: info.round,
                    offered: vouched.round,
                }));
            }
        }
        self.observer
            .restore(observer)
            .map_err(CoreError::Snapshot)?;
        let me = CreatorId(self.identity.id());
        if let Some(head) = self.hg.chain_head(&me) {
            hg.resume_chain(&me, head);
        }
        // Own events that waited for consensus: held by the new state and
        // unordered there (watched as before), ordered by it or in the gap
        // (done: watching one the state holds as ordered, nothing would
        // ever settle it, and once pruned it looked stale and its
        // transactions were carried and ordered again), or stale.
        let mut mempool_added = Vec::new();
        for id in self.mempool.in_flight_ids() {
            let ordered = match hg.event_info(&id) {
                Some(info) if !info.ordered => continue,
                Some(_) => true,
                None => gap.contains(&id),
            };
            if ordered {
                self.mempool.ordered(&id);
            } else {
                mempool_added.extend(self.mempool.stale(&id));
            }
        }
        self.hg = hg;
        self.delivered = delivered;
        self.records.reset(vouched.next_tx);
        self.unordered_with_txs.clear();
        self.adopt_held(std::time::Instant::now());
        self.checkpoints.clear();
        self.checkpoints.push_back(*vouched);
        self.resuming = true;
        self.installed = Some(vouched.round);
        tracing::info!(
            round = vouched.round,
            ordered = vouched.ordered,
            resubmitted = mempool_added.len(),
            "installed a state vouched for by peers"
        );
        // The installed state as this node holds it: with its own chain
        // head, which the self-fork guard checks at every restart.
        let snapshot = join_snapshot(&self.hg.snapshot(), app_state);
        self.persist(
            Write::Install {
                snapshot,
                checkpoint: *vouched,
                mempool_added,
            },
            None,
        );
        // Own envelopes the skipped rounds delivered (the installed state
        // still remembers those that have not expired) are done. One
        // delivered longer ago than its expiry cannot be told from one
        // that expired undelivered: see `forward`.
        let settled = self.mempool.settle_remembered(&self.delivered);
        if !settled.is_empty() {
            self.persist(
                Write::Events {
                    events: Vec::new(),
                    own_seq: None,
                    mempool_taken: settled,
                },
                None,
            );
        }
        Ok(())
    }

    /// This node's latest checkpoints, newest first.
    pub fn recent_checkpoints(&self) -> Vec<Checkpoint> {
        self.checkpoints.iter().rev().copied().collect()
    }

    /// The round of the state installed by the last state sync, until a
    /// later checkpoint of this node was found to match its peers'.
    pub fn unverified_install(&self) -> Option<u64> {
        self.installed
    }

    /// A checkpoint of this node after the installed state matched what
    /// peers vouch for: it computes the same consensus as they do.
    pub fn verified(&mut self) {
        self.installed = None;
    }
}
