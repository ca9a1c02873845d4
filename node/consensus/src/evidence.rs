//! Equivocation evidence: two signed events by one creator that fork (same
//! sequence number or same self-parent). Carries both full events so a
//! slash instruction can re-derive both ids and check both signatures.

use crate::error::EvidenceError;
use crate::event::Event;
use crate::verify;

/// Proof that a creator signed two conflicting events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    pub first: Event,
    pub second: Event,
}

impl Equivocation {
    /// Check the proof on its own: same creator, distinct events that share
    /// a sequence number or a self-parent, both signatures valid for
    /// `network_id`.
    pub fn verify(&self, network_id: &[u8; 32]) -> Result<(), EvidenceError> {
        let (a, b) = (&self.first, &self.second);
        if a.creator() != b.creator() {
            return Err(EvidenceError::DifferentCreators);
        }
        if a.id() == b.id() {
            return Err(EvidenceError::SameEvent);
        }
        if a.seq() != b.seq() && (a.self_parent().is_none() || a.self_parent() != b.self_parent()) {
            return Err(EvidenceError::NotAFork);
        }
        for e in [a, b] {
            verify::signature_ok(e, network_id).map_err(|_| EvidenceError::BadSignature)?;
        }
        Ok(())
    }

    /// Both events' canonical encodings, length-prefixed (u32 LE each).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in [&self.first, &self.second] {
            let bytes = e.encode();
            out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        out
    }
}
