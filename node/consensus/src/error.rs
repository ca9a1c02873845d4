//! Typed errors. Every way an event can be refused has its own variant so the
//! network layer can decide whom to penalise without parsing strings.

use thiserror::Error;

/// Why [`crate::Event::decode`] refused a byte string. Decoding never panics
/// and never allocates more than the input length.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the encoding was complete.
    #[error("input truncated")]
    Truncated,
    /// The version byte is not one this build understands.
    #[error("unsupported encoding version {0}")]
    UnsupportedVersion(u8),
    /// A presence flag was neither 0 nor 1 (the encoding is canonical).
    #[error("presence flag must be 0 or 1, got {0}")]
    BadFlag(u8),
    /// Bytes were left after the signature (the encoding is canonical).
    #[error("{0} trailing bytes after the event")]
    TrailingBytes(usize),
}

/// Why an event was not inserted. Returned by [`crate::Hashgraph::insert`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Reject {
    /// The canonical encoding is longer than `Limits::max_event_bytes`.
    #[error("event is {size} bytes, limit {max}")]
    EventTooLarge { size: usize, max: usize },
    /// More transactions than `Limits::max_txs_per_event`.
    #[error("{count} transactions, limit {max}")]
    TooManyTransactions { count: usize, max: usize },
    /// One transaction is longer than `Limits::max_tx_bytes`.
    #[error("transaction {index} is {size} bytes, limit {max}")]
    TransactionTooLarge {
        index: usize,
        size: usize,
        max: usize,
    },
    /// The transactions together exceed `Limits::max_batch_bytes`.
    #[error("batch is {size} bytes, limit {max}")]
    BatchTooLarge { size: usize, max: usize },
    /// The header's transaction count differs from the batch carried.
    #[error("header declares {declared} transactions, batch has {actual}")]
    TxCountMismatch { declared: u32, actual: usize },
    /// The Merkle root in the header does not match the batch.
    #[error("transaction Merkle root mismatch")]
    BadMerkleRoot,
    /// The ed25519 signature does not verify for this network id (a wrong
    /// network id shows up here: the network id is signed, not carried).
    #[error("bad signature")]
    BadSignature,
    /// The creator is in no roster this node currently knows.
    #[error("creator is not in any current roster")]
    UnknownCreator,
    /// The creator is not a member of the roster of the event's round.
    #[error("creator is not in the roster of round {round}")]
    NotInRoster { round: u64 },
    /// `seq == 0` must come without a self-parent and `seq > 0` with one.
    #[error("sequence number and self-parent presence disagree")]
    SelfParentMismatch,
    /// A birth round of 0 or beyond [`crate::MAX_HEADER_VALUE`], or a
    /// sequence number beyond the birth round times
    /// [`crate::MAX_EVENTS_PER_ROUND`].
    #[error("header field {field} out of range")]
    OutOfRange { field: &'static str },
    /// The birth round is below a parent's (as the event describes it).
    #[error("birth round {birth_round} below a parent's {parent_birth_round}")]
    BirthBelowParent {
        birth_round: u64,
        parent_birth_round: u64,
    },
    /// The birth round is more than one above the highest parent's (as
    /// the event describes its parents): no round computation gives that.
    #[error(
        "birth round {birth_round} is more than one above the highest parent's {highest_parent}"
    )]
    BirthAboveParents {
        birth_round: u64,
        highest_parent: u64,
    },
    /// An event without parents is born in round 1.
    #[error("an event without parents is born in round 1, not {0}")]
    FirstEventNotRoundOne(u64),
    /// Self-parent and other-parent are the same event.
    #[error("self-parent and other-parent are the same event")]
    ParentsEqual,
    /// The event was born so long ago that a parent it links may be
    /// pruned (see the crate docs, "Birth rounds"). Not a fault: a slow
    /// link or a late node delivers such events.
    #[error("event born in round {birth_round} is ancient (rounds <= {pruned_through} pruned)")]
    Ancient {
        birth_round: u64,
        pruned_through: u64,
    },
    /// The event is born too far beyond the rounds whose roster is fixed,
    /// or the bounded waiting area for such events is full.
    #[error(
        "event born in round {round} is too far ahead (rosters fixed through {fixed_through})"
    )]
    TooFarAhead { round: u64, fixed_through: u64 },
}

impl Reject {
    /// Whether the event is provably malformed: no honest node ever sends
    /// it, because every honest node checks the same rules (the same way,
    /// from signed data and consensus state) before it keeps and forwards
    /// an event. A peer that sends one can be penalised. The others
    /// (ancient, too far ahead, creator not known yet) depend on how far
    /// this node's consensus is, and honest peers send them.
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            Reject::Ancient { .. } | Reject::TooFarAhead { .. } | Reject::UnknownCreator
        )
    }
}

/// Why a roster could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RosterError {
    /// A roster needs at least one member.
    #[error("roster is empty")]
    Empty,
    /// Members hold positive stake; remove a member instead of zeroing it.
    #[error("member has zero stake")]
    ZeroStake,
    /// The same creator was listed twice.
    #[error("duplicate member")]
    Duplicate,
    /// The total stake does not fit in a u64.
    #[error("total stake overflows u64")]
    Overflow,
}

/// Why [`crate::Hashgraph::schedule_roster_change`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    /// Changes may only be scheduled for the round most recently returned by
    /// `poll`, before `poll` is called again (that is what keeps every node
    /// applying them at the same round).
    #[error("changes can only be scheduled for round {expected} (got {got})")]
    WrongRound { expected: u64, got: u64 },
    /// No round has been decided yet, or the window for the last one closed.
    #[error("no open scheduling window")]
    NoWindow,
}

/// Why [`crate::Hashgraph::create_event`] could not produce an event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CreateError {
    /// The other-parent is not an event this node holds.
    #[error("other-parent is not held by this node")]
    UnknownOtherParent,
    /// The requested self-parent is not an event this node holds.
    #[error("self-parent is not held by this node")]
    UnknownSelfParent,
    /// The chain's sequence numbers are used up (never on an honest chain).
    #[error("sequence number would overflow")]
    SequenceExhausted,
    /// The new event would be one this node rejects or must hold back.
    #[error("own event rejected: {0}")]
    Rejected(#[from] Reject),
    /// The other-parent is this creator's own event.
    #[error("the other-parent is an own event")]
    OtherParentIsOwn,
    /// The other-parent's round did not check out here: a node only builds
    /// on sound events (see the crate docs, "Sound events").
    #[error("the other-parent is not a sound event")]
    UnsoundOtherParent,
    /// The caller's check refused the event before it was signed (see
    /// [`crate::Hashgraph::create_event_checked`]).
    #[error("refused before signing: {0}")]
    Refused(String),
    /// This creator's latest own event is linked by the new event but not
    /// held here (a state installed from a peer that lacks it): wait until
    /// it arrives, or until it is old enough not to be linked.
    #[error("this node's latest own event is not held yet; waiting for it")]
    OwnHeadMissing,
    /// The parents lie so close to the pruned rounds that the new event's
    /// round cannot be computed: link a recent event.
    #[error("the parents are too old to compute a round from; link a recent event")]
    ParentsTooOld,
    /// The event's round lies beyond the fixed rosters: wait for consensus.
    #[error("consensus is behind; wait for a decided round before creating")]
    WaitForConsensus,
}

/// Why an equivocation proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvidenceError {
    /// The two events have different creators.
    #[error("events have different creators")]
    DifferentCreators,
    /// The two events are the same event.
    #[error("events are identical")]
    SameEvent,
    /// The two headers could both lie on one honest chain.
    #[error("the events do not conflict (they could lie on one chain)")]
    NotAConflict,
    /// One of the signatures does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

/// Why [`crate::Hashgraph::restore`] refused a snapshot. Restoring never
/// panics, and never allocates more than a small multiple of the input
/// length: every count is checked against the bytes left before anything
/// is allocated for it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// The input does not start with the snapshot magic bytes.
    #[error("not a consensus snapshot (bad magic)")]
    BadMagic,
    /// The format version is not one this build understands.
    #[error("unsupported snapshot version {0}")]
    UnsupportedVersion(u16),
    /// The input ended before the encoding was complete, or a count
    /// announces more items than the bytes left can hold.
    #[error("snapshot truncated")]
    Truncated,
    /// The trailing blake3 checksum does not match: the data is corrupt.
    #[error("snapshot checksum mismatch (corrupt data)")]
    ChecksumMismatch,
    /// The snapshot was taken on another network than `config.network_id`.
    #[error("snapshot network id differs from the configured one")]
    NetworkMismatch { expected: [u8; 32], found: [u8; 32] },
    /// Bytes were left after the body (the encoding is canonical).
    #[error("{0} trailing bytes after the snapshot body")]
    TrailingBytes(usize),
    /// A value has a second encoding that [`crate::Hashgraph::snapshot`]
    /// never writes (overlong varint, flag bits, padding, ordering).
    #[error("non-canonical encoding: {0}")]
    NonCanonical(&'static str),
    /// A stored event does not decode.
    #[error("stored event does not decode: {0}")]
    Event(#[from] DecodeError),
    /// A stored event breaks the static rules every inserted event meets.
    #[error("stored event breaks the event rules: {0}")]
    BadEvent(Reject),
    /// A stored roster is not a valid roster.
    #[error("stored roster is invalid: {0}")]
    Roster(#[from] RosterError),
    /// The snapshot holds more than the configured limits (or the fixed
    /// bounds of the algorithm) allow; restore with the limits it was
    /// taken with.
    #[error("{what}: {count} exceeds the limit {max}")]
    LimitExceeded {
        what: &'static str,
        count: u64,
        max: u64,
    },
    /// The decoded state breaks an invariant every real instance keeps.
    #[error("inconsistent state: {0}")]
    Inconsistent(&'static str),
}
