//! Checkpoints: what every honest node agrees on after a decided round.
//!
//! At every snapshot round `R` (a multiple of
//! [`super::SNAPSHOT_EVERY_ROUNDS`], the same on every node) a node records
//! a digest of the state consensus *determines* at that point: the round,
//! the number of ordered events and their running hash, the transaction
//! count, the rosters scheduled for the rounds ahead and the observer's
//! (the controller's) state. The held-but-unordered events differ from
//! node to node and are left out. Honest nodes therefore record the same
//! digest for `R`, and a digest that peers holding more than a third of the
//! stake report is vouched for by at least one honest node.
//!
//! State sync builds on it: a node too far behind fetches a peer's snapshot
//! of round `R`, recomputes the digest from what it received, and installs
//! it only if the digest is vouched for.

use dagger_consensus::{Hashgraph, ROSTER_DELAY};

use crate::store::StoreError;

/// A node's record of one checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    pub round: u64,
    /// Events in the order after `round`.
    pub ordered: u64,
    /// Running hash of the order after `round`.
    pub running_hash: [u8; 32],
    /// Transactions in the order after `round`.
    pub next_tx: u64,
    pub digest: [u8; 32],
}

pub const CHECKPOINT_LEN: usize = 8 + 8 + 32 + 8 + 32;

impl Checkpoint {
    /// The checkpoint of `hg` right after it decided its last round, with
    /// the observer's state and the transaction count at that point.
    pub fn of(hg: &Hashgraph, observer: &[u8], next_tx: u64) -> Checkpoint {
        let stats = hg.stats();
        let round = stats.last_decided_round;
        let mut h = blake3::Hasher::new();
        h.update(b"DAGGER/checkpoint/1");
        h.update(&hg.config().network_id);
        h.update(&round.to_le_bytes());
        h.update(&stats.ordered_count.to_le_bytes());
        h.update(&stats.running_hash);
        h.update(&next_tx.to_le_bytes());
        // The rosters consensus has fixed for the rounds ahead.
        for r in round + 1..=round + ROSTER_DELAY {
            let roster = hg.roster_at(r);
            h.update(&(roster.len() as u64).to_le_bytes());
            for (member, stake) in roster.members() {
                h.update(&member.0);
                h.update(&stake.to_le_bytes());
            }
        }
        h.update(&(observer.len() as u64).to_le_bytes());
        h.update(observer);
        Checkpoint {
            round,
            ordered: stats.ordered_count,
            running_hash: stats.running_hash,
            next_tx,
            digest: *h.finalize().as_bytes(),
        }
    }

    pub fn encode(&self) -> [u8; CHECKPOINT_LEN] {
        let mut out = [0u8; CHECKPOINT_LEN];
        out[..8].copy_from_slice(&self.round.to_le_bytes());
        out[8..16].copy_from_slice(&self.ordered.to_le_bytes());
        out[16..48].copy_from_slice(&self.running_hash);
        out[48..56].copy_from_slice(&self.next_tx.to_le_bytes());
        out[56..].copy_from_slice(&self.digest);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, StoreError> {
        let bytes: &[u8; CHECKPOINT_LEN] = bytes.try_into().map_err(|_| StoreError::Corrupt {
            table: "checkpoints",
            reason: format!("record of {} bytes", bytes.len()),
        })?;
        let u64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let mut running_hash = [0u8; 32];
        running_hash.copy_from_slice(&bytes[16..48]);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&bytes[56..]);
        Ok(Checkpoint {
            round: u64_at(0),
            ordered: u64_at(8),
            running_hash,
            next_tx: u64_at(48),
            digest,
        })
    }
}

/// Recomputes the running hash over `ids` from `from` and says whether it
/// reaches `to`: a list of ordered event ids is only believed if it links
/// two running hashes the node already trusts.
pub fn links(from: &[u8; 32], ids: &[[u8; 32]], to: &[u8; 32]) -> bool {
    let mut running = *from;
    for id in ids {
        running = dagger_consensus::chain_hash(&running, &dagger_consensus::EventId(*id));
    }
    &running == to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_bad_lengths() {
        let c = Checkpoint {
            round: 8,
            ordered: 40,
            running_hash: [1; 32],
            next_tx: 12,
            digest: [2; 32],
        };
        assert_eq!(Checkpoint::decode(&c.encode()).unwrap(), c);
        assert!(Checkpoint::decode(&c.encode()[1..]).is_err());
    }

    #[test]
    fn only_the_true_list_links_two_running_hashes() {
        let ids = [[3u8; 32], [4u8; 32], [5u8; 32]];
        let mut to = [0u8; 32];
        for id in &ids {
            to = dagger_consensus::chain_hash(&to, &dagger_consensus::EventId(*id));
        }
        assert!(links(&[0; 32], &ids, &to));
        assert!(!links(&[0; 32], &ids[..2], &to));
        assert!(!links(&[0; 32], &[ids[1], ids[0], ids[2]], &to));
        assert!(!links(&[9; 32], &ids, &to));
    }
}
