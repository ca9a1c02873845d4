//! The verifier: checks an event must pass before it may touch the graph.
//! Stateless checks (limits, header rules, signature, then the Merkle root,
//! so unsigned junk costs one signature check and no hashing) run before
//! buffering; the checks against linked parents run once they are known.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::error::Reject;
use crate::event::{signing_message, Event, EventHeader};
use crate::{merkle, Limits, MAX_EVENTS_PER_ROUND, MAX_HEADER_VALUE};

/// Size limits, transaction count and the parent-presence rules.
pub fn check_shape(e: &Event, limits: &Limits) -> Result<(), Reject> {
    check_parts(e.header(), e.transactions(), e.encoded_len(), limits)
}

/// [`check_shape`] on an event's parts (an own event is checked before it
/// is signed).
pub(crate) fn check_parts(
    header: &EventHeader,
    txs: &[Vec<u8>],
    encoded_len: usize,
    limits: &Limits,
) -> Result<(), Reject> {
    if encoded_len > limits.max_event_bytes {
        return Err(Reject::EventTooLarge {
            size: encoded_len,
            max: limits.max_event_bytes,
        });
    }
    if txs.len() > limits.max_txs_per_event {
        return Err(Reject::TooManyTransactions {
            count: txs.len(),
            max: limits.max_txs_per_event,
        });
    }
    if header.tx_count as usize != txs.len() {
        return Err(Reject::TxCountMismatch {
            declared: header.tx_count,
            actual: txs.len(),
        });
    }
    let mut total = 0usize;
    for (index, tx) in txs.iter().enumerate() {
        if tx.len() > limits.max_tx_bytes {
            return Err(Reject::TransactionTooLarge {
                index,
                size: tx.len(),
                max: limits.max_tx_bytes,
            });
        }
        total = total.saturating_add(tx.len());
    }
    if total > limits.max_batch_bytes {
        return Err(Reject::BatchTooLarge {
            size: total,
            max: limits.max_batch_bytes,
        });
    }
    check_header(header)
}

/// Rules on the header alone: sequence number and self-parent agree, birth
/// rounds are in range and never below a parent's, parents are distinct.
pub fn check_header(h: &EventHeader) -> Result<(), Reject> {
    if (h.seq == 0) != h.self_parent.is_none() {
        return Err(Reject::SelfParentMismatch);
    }
    let b = h.birth_round;
    if b == 0 || b > MAX_HEADER_VALUE {
        return Err(Reject::OutOfRange {
            field: "birth_round",
        });
    }
    if h.seq > MAX_HEADER_VALUE || h.seq > b.saturating_mul(MAX_EVENTS_PER_ROUND) {
        return Err(Reject::OutOfRange { field: "seq" });
    }
    let mut highest = None;
    for p in [&h.self_parent, &h.other_parent].into_iter().flatten() {
        if p.birth_round == 0 || p.birth_round > b {
            return Err(Reject::BirthBelowParent {
                birth_round: b,
                parent_birth_round: p.birth_round,
            });
        }
        highest = highest.max(Some(p.birth_round));
    }
    match highest {
        // No parent at all: the event can only be in round 1.
        None if b != 1 => return Err(Reject::FirstEventNotRoundOne(b)),
        // A round is its parents' round or the one after.
        Some(r0) if b > r0 + 1 => {
            return Err(Reject::BirthAboveParents {
                birth_round: b,
                highest_parent: r0,
            })
        }
        _ => {}
    }
    if let (Some(sp), Some(op)) = (&h.self_parent, &h.other_parent) {
        if sp.id == op.id {
            return Err(Reject::ParentsEqual);
        }
    }
    Ok(())
}

/// The header's Merkle root must commit to the carried batch.
pub(crate) fn check_root(e: &Event) -> Result<(), Reject> {
    if merkle::merkle_root(e.transactions()) == e.txs_root() {
        Ok(())
    } else {
        Err(Reject::BadMerkleRoot)
    }
}

/// Signatures already checked, remembered by (network id, event id,
/// signature): the same event arriving twice (from two peers whose answers
/// overlap, as catch-up pages from side-by-side pulls do) costs one check.
/// The key commits to everything the check reads (the id commits to the
/// creator), so a remembered key means the same verdict. Bounded: the
/// oldest keys are forgotten first.
pub struct SignatureMemo {
    seen: std::sync::Mutex<MemoKeys>,
    capacity: usize,
}

/// The remembered keys, and their order of arrival (oldest first).
type MemoKeys = (
    std::collections::HashSet<[u8; 32]>,
    std::collections::VecDeque<[u8; 32]>,
);

impl SignatureMemo {
    pub fn new(capacity: usize) -> SignatureMemo {
        SignatureMemo {
            seen: Default::default(),
            capacity: capacity.max(1),
        }
    }

    fn key(e: &Event, network_id: &[u8; 32]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"dagger-signature-memo");
        hasher.update(network_id);
        hasher.update(&e.id().0);
        hasher.update(e.signature());
        *hasher.finalize().as_bytes()
    }

    /// [`signature_ok`], skipping the cryptography for an event whose
    /// signature this memo saw pass.
    pub fn check(&self, e: &Event, network_id: &[u8; 32]) -> Result<(), Reject> {
        if e.verified_for() == Some(network_id) {
            return Ok(());
        }
        let key = Self::key(e, network_id);
        if self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .contains(&key)
        {
            e.mark_verified(network_id);
            return Ok(());
        }
        signature_ok(e, network_id)?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (set, order) = &mut *seen;
        if set.insert(key) {
            order.push_back(key);
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Strict ed25519 verification (rejects small-order keys and non-canonical
/// signatures) over domain tag, network id and id. Cached per event.
pub fn signature_ok(e: &Event, network_id: &[u8; 32]) -> Result<(), Reject> {
    if e.verified_for() == Some(network_id) {
        return Ok(());
    }
    let key = VerifyingKey::from_bytes(&e.creator().0).map_err(|_| Reject::BadSignature)?;
    let sig = Signature::from_bytes(e.signature());
    key.verify_strict(&signing_message(network_id, &e.id()), &sig)
        .map_err(|_| Reject::BadSignature)?;
    e.mark_verified(network_id);
    Ok(())
}
