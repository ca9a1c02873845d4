//! Equivocation evidence: two signed events by one creator whose headers
//! alone show they cannot both lie on one chain. Carries both full events
//! so anyone (a slash instruction included) can re-derive both ids and
//! check both signatures with nothing but the network id.
//!
//! On one honest chain sequence numbers go up by one per event, each event
//! names the one before it as self-parent, and birth rounds never go down
//! (an event is never born before a parent). So two distinct events `a`,
//! `b` of one creator with `a.seq <= b.seq` *conflict* when
//! 1. `a.seq == b.seq` (a fork), or
//! 2. `a.birth_round > b.birth_round` (the later sequence was born
//!    earlier: two chains, e.g. a restarted or jumped chain while the old
//!    one goes on), or
//! 3. `b.seq == a.seq + 1` and `b` names another self-parent than `a`, or
//!    names `a` with another birth round than `a` was born in (a lie that
//!    would unlink `a` and give the creator a second witness in a round).
//!
//! Every way for a creator to keep two chains alive produces such a pair:
//! both chains track the current round, so an event of the chain with the
//! lower sequence numbers is soon born after one of the other chain.

use crate::error::EvidenceError;
use crate::event::{Event, EventHeader};
use crate::verify;

/// Proof that a creator signed two conflicting events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    pub first: Event,
    pub second: Event,
}

/// Whether two headers of one creator conflict (see the module docs). The
/// caller checks that they are distinct and share the creator.
pub fn headers_conflict(a: &EventHeader, b: &EventHeader) -> bool {
    let (lo, hi) = if a.seq <= b.seq { (a, b) } else { (b, a) };
    lo.seq == hi.seq
        || lo.birth_round > hi.birth_round
        || (hi.seq == lo.seq.saturating_add(1)
            && hi.self_parent
                != Some(crate::ParentRef {
                    id: lo.id(),
                    birth_round: lo.birth_round,
                }))
}

impl Equivocation {
    /// Check the proof on its own: same creator, distinct events whose
    /// headers conflict, both signatures valid for `network_id`.
    pub fn verify(&self, network_id: &[u8; 32]) -> Result<(), EvidenceError> {
        let (a, b) = (&self.first, &self.second);
        if a.creator() != b.creator() {
            return Err(EvidenceError::DifferentCreators);
        }
        if a.id() == b.id() {
            return Err(EvidenceError::SameEvent);
        }
        if !headers_conflict(a.header(), b.header()) {
            return Err(EvidenceError::NotAConflict);
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
