//! Event types: identifiers, the signed [`Event`], its [`EventHeader`] and
//! the [`UnsignedEvent`] builder.
//!
//! The id is the blake3 hash of the version-prefixed header encoding (every
//! field but the transaction bodies and the signature). The bodies are bound
//! through `txs_root`, which the verifier checks, so a client holding only a
//! header, a signature and a Merkle proof can check that its transaction was
//! signed into an event. The signature covers a domain tag, the network id
//! and the id.
//!
//! Every event carries its **birth round**, which must equal the round
//! consensus computes for it, and names each parent by a [`ParentRef`]: its
//! id *and* its birth round. So whether a parent still matters, and whether
//! an event is too old or too far ahead, is decided from signed header data
//! alone, the same way on every node (see the crate docs, "Birth rounds").

use std::fmt;
use std::sync::{Arc, OnceLock};

use ed25519_dalek::SigningKey;

use crate::merkle;

pub use dagger_event_header::{
    signing_message, CreatorId, EventHeader, EventId, ParentRef, EVENT_VERSION, SIGNATURE_DOMAIN,
};

/// Raw builder for an event with every field chosen by the caller (tests,
/// tools); [`UnsignedEvent::sign`] fills in the creator, the Merkle root and
/// the signature. Nodes use [`crate::Hashgraph::create_event`], which
/// derives the parents' descriptors and the birth round from the graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnsignedEvent {
    pub seq: u64,
    pub birth_round: u64,
    pub self_parent: Option<ParentRef>,
    pub other_parent: Option<ParentRef>,
    pub created_at_ns: u64,
    pub txs: Vec<Vec<u8>>,
}

impl From<EventHeader> for UnsignedEvent {
    /// The header's fields, without transactions (tests and tools re-sign
    /// edited headers with it).
    fn from(h: EventHeader) -> Self {
        UnsignedEvent {
            seq: h.seq,
            birth_round: h.birth_round,
            self_parent: h.self_parent,
            other_parent: h.other_parent,
            created_at_ns: h.created_at_ns,
            txs: Vec::new(),
        }
    }
}

impl UnsignedEvent {
    /// Sign with `key` for `network_id`. The creator is the key's public key.
    /// Panics only if the batch holds more than `u32::MAX` transactions,
    /// which no caller can build in memory.
    pub fn sign(self, key: &SigningKey, network_id: &[u8; 32]) -> Event {
        let header = self.header(CreatorId::from(key));
        self.sign_header(header, key, network_id)
    }

    /// The header `creator` signs for this event (same panic as `sign`).
    pub(crate) fn header(&self, creator: CreatorId) -> EventHeader {
        let tx_count = u32::try_from(self.txs.len()).expect("batch larger than u32::MAX");
        EventHeader {
            creator,
            seq: self.seq,
            birth_round: self.birth_round,
            self_parent: self.self_parent,
            other_parent: self.other_parent,
            created_at_ns: self.created_at_ns,
            txs_root: merkle::merkle_root(&self.txs),
            tx_count,
        }
    }

    /// Sign `header`, which [`UnsignedEvent::header`] made from `self`
    /// with `key`'s creator id.
    pub(crate) fn sign_header(
        self,
        header: EventHeader,
        key: &SigningKey,
        network_id: &[u8; 32],
    ) -> Event {
        debug_assert!(header.creator == CreatorId::from(key) && header.seq == self.seq);
        let signature = header.sign(key, network_id);
        let event = Event::assemble(header, self.txs, signature);
        // We just produced this signature with the creator's own key.
        let _ = event.0.verified_for.set(*network_id);
        event
    }
}

struct Inner {
    header: EventHeader,
    txs: Vec<Vec<u8>>,
    signature: [u8; 64],
    id: EventId,
    encoded_len: usize,
    /// Network id this event's signature is known to verify for; lets the
    /// same decoded event be handed to several in-process instances (tests,
    /// simulators) without re-verifying.
    verified_for: OnceLock<[u8; 32]>,
}

/// A signed event. Cheap to clone (shared, immutable).
#[derive(Clone)]
pub struct Event(Arc<Inner>);

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.0.id)
            .field("creator", &self.0.header.creator)
            .field("seq", &self.0.header.seq)
            .field("txs", &self.0.txs.len())
            .finish()
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id && self.0.signature == other.0.signature
    }
}
impl Eq for Event {}

impl Event {
    /// Put an event together from parts without checking anything; the
    /// verifier checks the count, the root and the signature on insertion.
    pub fn assemble(header: EventHeader, txs: Vec<Vec<u8>>, signature: [u8; 64]) -> Event {
        let id = header.id();
        let encoded_len = crate::codec::encoded_len(&header, &txs);
        Event(Arc::new(Inner {
            header,
            txs,
            signature,
            id,
            encoded_len,
            verified_for: OnceLock::new(),
        }))
    }

    pub fn id(&self) -> EventId {
        self.0.id
    }
    pub fn header(&self) -> &EventHeader {
        &self.0.header
    }
    pub fn creator(&self) -> CreatorId {
        self.0.header.creator
    }
    pub fn seq(&self) -> u64 {
        self.0.header.seq
    }
    pub fn birth_round(&self) -> u64 {
        self.0.header.birth_round
    }
    pub fn self_parent(&self) -> Option<EventId> {
        self.0.header.self_parent.map(|p| p.id)
    }
    pub fn other_parent(&self) -> Option<EventId> {
        self.0.header.other_parent.map(|p| p.id)
    }
    /// The self-parent's descriptor (id and birth round).
    pub fn self_parent_ref(&self) -> Option<ParentRef> {
        self.0.header.self_parent
    }
    /// The other-parent's descriptor (id and birth round).
    pub fn other_parent_ref(&self) -> Option<ParentRef> {
        self.0.header.other_parent
    }
    pub fn created_at_ns(&self) -> u64 {
        self.0.header.created_at_ns
    }
    pub fn txs_root(&self) -> [u8; 32] {
        self.0.header.txs_root
    }
    pub fn transactions(&self) -> &[Vec<u8>] {
        &self.0.txs
    }
    pub fn signature(&self) -> &[u8; 64] {
        &self.0.signature
    }
    /// Length of [`Event::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        self.0.encoded_len
    }
    /// Canonical encoding: header, transactions, signature.
    pub fn encode(&self) -> Vec<u8> {
        crate::codec::encode(self)
    }
    /// Parse a canonical encoding. Never panics; see [`crate::DecodeError`].
    pub fn decode(bytes: &[u8]) -> Result<Event, crate::DecodeError> {
        crate::codec::decode(bytes)
    }
    /// Inclusion proof for the transaction at `index` (None if out of range).
    pub fn prove_transaction(&self, index: usize) -> Option<merkle::InclusionProof> {
        merkle::prove(&self.0.txs, index)
    }

    pub(crate) fn verified_for(&self) -> Option<&[u8; 32]> {
        self.0.verified_for.get()
    }
    pub(crate) fn mark_verified(&self, network_id: &[u8; 32]) {
        let _ = self.0.verified_for.set(*network_id);
    }
}
