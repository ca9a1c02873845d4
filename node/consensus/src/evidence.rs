//! Equivocation evidence: two signed events by one creator whose headers
//! alone show they cannot both lie on one chain. Carries both full events
//! so anyone (a slash instruction included) can re-derive both ids and
//! check both signatures with nothing but the network id.
//!
//! What counts as a conflict is [`dagger_event_header::headers_conflict`],
//! the very code the on-chain program runs.

use crate::error::EvidenceError;
use crate::event::Event;
use crate::verify;
use dagger_event_header::PairError;

/// Proof that a creator signed two conflicting events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    pub first: Event,
    pub second: Event,
}

pub use dagger_event_header::{evidence_hash, headers_conflict};

impl Equivocation {
    /// Check the proof on its own: same creator, distinct events whose
    /// headers conflict, both signatures valid for `network_id`.
    pub fn verify(&self, network_id: &[u8; 32]) -> Result<(), EvidenceError> {
        let (a, b) = (&self.first, &self.second);
        dagger_event_header::check_pair(a.header(), b.header()).map_err(|e| match e {
            PairError::DifferentCreators => EvidenceError::DifferentCreators,
            PairError::SameEvent => EvidenceError::SameEvent,
            PairError::NotAConflict => EvidenceError::NotAConflict,
        })?;
        for e in [a, b] {
            verify::signature_ok(e, network_id).map_err(|_| EvidenceError::BadSignature)?;
        }
        Ok(())
    }

    /// The two event ids in a fixed order: the same pair however it was
    /// found.
    pub fn pair(&self) -> (crate::event::EventId, crate::event::EventId) {
        let (a, b) = (self.first.id(), self.second.id());
        (a.min(b), a.max(b))
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

    /// Parse [`Equivocation::encode`]'s output (checks nothing but the
    /// encoding; call [`Equivocation::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Equivocation, crate::DecodeError> {
        let mut rest = bytes;
        let mut take = || -> Result<Event, crate::DecodeError> {
            let len = rest.get(..4).ok_or(crate::DecodeError::Truncated)?;
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let body = rest
                .get(4..4usize.saturating_add(len))
                .ok_or(crate::DecodeError::Truncated)?;
            let event = Event::decode(body)?;
            rest = &rest[4 + len..];
            Ok(event)
        };
        let first = take()?;
        let second = take()?;
        if !rest.is_empty() {
            return Err(crate::DecodeError::TrailingBytes(rest.len()));
        }
        Ok(Equivocation { first, second })
    }
}
