//! The part of DAGGER's event format that both the operator nodes and the
//! on-chain program must read identically: the signed header, its canonical
//! encoding, the event id, the exact message a creator signs, and the rule
//! that says when two headers of one creator prove it equivocated.
//!
//! `no_std` and allocation-free, so the program links the very code the
//! consensus crate uses and the two can never disagree about what a
//! conflict is.
//!
//! ```text
//! u8  version (= 2)
//! [32] creator
//! u64 seq
//! u64 birth_round
//! u8  has_self_parent  ([32] id, u64 birth_round if 1)
//! u8  has_other_parent ([32] id, u64 birth_round if 1)
//! u64 created_at_ns
//! [32] txs_root
//! u32 tx_count                      <- end of header: id = blake3(header)
//! ```
//! All integers little-endian. Flags other than 0/1 are refused, so every
//! header has exactly one encoding.

#![no_std]

use core::fmt;

/// Encoding version written as the first byte of every header (2: birth
/// rounds and parent descriptors).
pub const EVENT_VERSION: u8 = 2;

/// Domain tag prefixed to the signed message, so an event signature can
/// never be replayed as a signature over anything else the key signs.
pub const SIGNATURE_DOMAIN: &[u8; 24] = b"DAGGER/event-signature/1";

/// Length of [`signing_message`]: domain, network id, event id.
pub const SIGNING_MESSAGE_LEN: usize = 24 + 32 + 32;

/// Largest header encoding: version, creator, seq, birth round, two
/// optional parents (flag, id, birth round), time, root, count.
pub const HEADER_MAX: usize = 1 + 32 + 8 + 8 + 41 + 41 + 8 + 32 + 4;

/// Smallest header encoding (no parents).
pub const HEADER_MIN: usize = HEADER_MAX - 80;

/// blake3 hash of an event's header encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EventId(pub [u8; 32]);

/// A creator: the ed25519 public key bytes of the node that signs events.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CreatorId(pub [u8; 32]);

fn short_hex(f: &mut fmt::Formatter<'_>, name: &str, b: &[u8; 32]) -> fmt::Result {
    write!(f, "{name}(")?;
    for x in &b[..6] {
        write!(f, "{x:02x}")?;
    }
    write!(f, "..)")
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        short_hex(f, "EventId", &self.0)
    }
}

impl fmt::Debug for CreatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        short_hex(f, "CreatorId", &self.0)
    }
}

#[cfg(feature = "ed25519")]
impl From<&ed25519_dalek::SigningKey> for CreatorId {
    fn from(key: &ed25519_dalek::SigningKey) -> Self {
        CreatorId(key.verifying_key().to_bytes())
    }
}

/// A parent as its child names it: the parent's id and its birth round, so
/// a node that does not hold the parent can still tell how old it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParentRef {
    pub id: EventId,
    pub birth_round: u64,
}

/// Every signed field of an event. Its encoding is what the id hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventHeader {
    pub creator: CreatorId,
    /// 0 for a creator's first event (no self-parent), else self-parent's + 1.
    pub seq: u64,
    /// The round consensus assigns to this event (checked on insertion);
    /// never below a parent's birth round.
    pub birth_round: u64,
    pub self_parent: Option<ParentRef>,
    pub other_parent: Option<ParentRef>,
    /// Creation time in nanoseconds, supplied by the creator's caller.
    pub created_at_ns: u64,
    /// Merkle root of the event's transaction batch.
    pub txs_root: [u8; 32],
    pub tx_count: u32,
}

/// A header's canonical encoding, held without allocating.
#[derive(Clone, Copy)]
pub struct EncodedHeader {
    bytes: [u8; HEADER_MAX],
    len: usize,
}

impl core::ops::Deref for EncodedHeader {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Debug for EncodedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncodedHeader({} bytes)", self.len)
    }
}

struct Writer {
    out: EncodedHeader,
}

impl Writer {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.out.len + bytes.len();
        self.out.bytes[self.out.len..end].copy_from_slice(bytes);
        self.out.len = end;
    }
}

/// Why a header could not be read. Reading never panics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The input ended before the header was complete.
    Truncated,
    /// The version byte is not one this build understands.
    UnsupportedVersion(u8),
    /// A presence flag was neither 0 nor 1 (the encoding is canonical).
    BadFlag(u8),
    /// Bytes were left after the header.
    TrailingBytes(usize),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Truncated => write!(f, "input truncated"),
            HeaderError::UnsupportedVersion(v) => write!(f, "unsupported encoding version {v}"),
            HeaderError::BadFlag(b) => write!(f, "presence flag must be 0 or 1, got {b}"),
            HeaderError::TrailingBytes(n) => write!(f, "{n} trailing bytes after the header"),
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HeaderError> {
        let end = self.pos.checked_add(n).ok_or(HeaderError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(HeaderError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], HeaderError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, HeaderError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, HeaderError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, HeaderError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn opt_parent(&mut self) -> Result<Option<ParentRef>, HeaderError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(ParentRef {
                id: EventId(self.array()?),
                birth_round: self.u64()?,
            })),
            f => Err(HeaderError::BadFlag(f)),
        }
    }
}

impl EventHeader {
    /// Canonical header encoding (version byte first).
    pub fn encode(&self) -> EncodedHeader {
        let mut w = Writer {
            out: EncodedHeader {
                bytes: [0; HEADER_MAX],
                len: 0,
            },
        };
        w.put(&[EVENT_VERSION]);
        w.put(&self.creator.0);
        w.put(&self.seq.to_le_bytes());
        w.put(&self.birth_round.to_le_bytes());
        for p in [&self.self_parent, &self.other_parent] {
            match p {
                Some(p) => {
                    w.put(&[1]);
                    w.put(&p.id.0);
                    w.put(&p.birth_round.to_le_bytes());
                }
                None => w.put(&[0]),
            }
        }
        w.put(&self.created_at_ns.to_le_bytes());
        w.put(&self.txs_root);
        w.put(&self.tx_count.to_le_bytes());
        w.out
    }

    /// Length of [`EventHeader::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        HEADER_MIN
            + 40 * usize::from(self.self_parent.is_some())
            + 40 * usize::from(self.other_parent.is_some())
    }

    /// The id of any event carrying this header.
    pub fn id(&self) -> EventId {
        EventId(*blake3::hash(&self.encode()).as_bytes())
    }

    /// Sign this header for `network_id` (low-level: events are built and
    /// signed with the consensus crate's `UnsignedEvent`).
    #[cfg(feature = "ed25519")]
    pub fn sign(&self, key: &ed25519_dalek::SigningKey, network_id: &[u8; 32]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        key.sign(&signing_message(network_id, &self.id()))
            .to_bytes()
    }

    /// Read a header from the start of `bytes`; returns it and the number
    /// of bytes it took (an event's transactions and signature follow).
    pub fn decode_prefix(bytes: &[u8]) -> Result<(EventHeader, usize), HeaderError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        let version = r.u8()?;
        if version != EVENT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let header = EventHeader {
            creator: CreatorId(r.array()?),
            seq: r.u64()?,
            birth_round: r.u64()?,
            self_parent: r.opt_parent()?,
            other_parent: r.opt_parent()?,
            created_at_ns: r.u64()?,
            txs_root: r.array()?,
            tx_count: r.u32()?,
        };
        Ok((header, r.pos))
    }

    /// Read exactly one header: trailing bytes are refused.
    pub fn decode(bytes: &[u8]) -> Result<EventHeader, HeaderError> {
        let (header, used) = EventHeader::decode_prefix(bytes)?;
        match bytes.len() - used {
            0 => Ok(header),
            rest => Err(HeaderError::TrailingBytes(rest)),
        }
    }
}

/// The exact bytes an event signature covers: domain tag, network id, id.
pub fn signing_message(network_id: &[u8; 32], id: &EventId) -> [u8; SIGNING_MESSAGE_LEN] {
    let mut m = [0u8; SIGNING_MESSAGE_LEN];
    m[..24].copy_from_slice(SIGNATURE_DOMAIN);
    m[24..56].copy_from_slice(network_id);
    m[56..].copy_from_slice(&id.0);
    m
}

/// Whether two headers of one creator *conflict*: they cannot both lie on
/// one honest chain. The caller checks that they are distinct and share
/// the creator.
///
/// On one honest chain sequence numbers go up by one per event, each event
/// names the one before it as self-parent, and birth rounds never go down
/// (an event is never born before a parent). So two distinct events `a`,
/// `b` of one creator with `a.seq <= b.seq` conflict when
/// 1. `a.seq == b.seq` (a fork), or
/// 2. `a.birth_round > b.birth_round` (the later sequence was born
///    earlier: two chains, e.g. a restarted or jumped chain while the old
///    one goes on), or
/// 3. `b.seq == a.seq + 1` and `b` names another self-parent than `a`, or
///    names `a` with another birth round than `a` was born in (a lie that
///    would unlink `a` and give the creator a second witness in a round).
///
/// Every way for a creator to keep two chains alive produces such a pair:
/// both chains track the current round, so an event of the chain with the
/// lower sequence numbers is soon born after one of the other chain.
pub fn headers_conflict(a: &EventHeader, b: &EventHeader) -> bool {
    let (lo, hi) = if a.seq <= b.seq { (a, b) } else { (b, a) };
    lo.seq == hi.seq
        || lo.birth_round > hi.birth_round
        || (hi.seq == lo.seq.saturating_add(1)
            && hi.self_parent
                != Some(ParentRef {
                    id: lo.id(),
                    birth_round: lo.birth_round,
                }))
}

/// Why a pair of headers is not proof of equivocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairError {
    DifferentCreators,
    SameEvent,
    NotAConflict,
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PairError::DifferentCreators => "the two events have different creators",
            PairError::SameEvent => "both events are the same event",
            PairError::NotAConflict => "the two events can lie on one honest chain",
        })
    }
}

/// The evidence rule on headers alone (signatures are checked elsewhere:
/// by ed25519 on the nodes, by the Ed25519 precompile on-chain): same
/// creator, distinct, conflicting.
pub fn check_pair(a: &EventHeader, b: &EventHeader) -> Result<(), PairError> {
    pair_ids(a, b).map(|_| ())
}

/// [`check_pair`], returning the two event ids it had to compute, so a
/// caller that needs them (the program, to check the signed messages)
/// does not hash the headers again.
pub fn pair_ids(a: &EventHeader, b: &EventHeader) -> Result<(EventId, EventId), PairError> {
    if a.creator != b.creator {
        return Err(PairError::DifferentCreators);
    }
    let ids = (a.id(), b.id());
    if ids.0 == ids.1 {
        return Err(PairError::SameEvent);
    }
    if !headers_conflict(a, b) {
        return Err(PairError::NotAConflict);
    }
    Ok(ids)
}

/// Domain tag of [`evidence_hash`].
pub const EVIDENCE_DOMAIN: &[u8; 19] = b"DAGGER/equivocation";

/// Names one equivocation pair whichever order its events come in, so a
/// pair can be reported once only.
pub fn evidence_hash(a: &EventId, b: &EventId) -> [u8; 32] {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = blake3::Hasher::new();
    h.update(EVIDENCE_DOMAIN);
    h.update(&lo.0);
    h.update(&hi.0);
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u64, birth_round: u64, self_parent: Option<ParentRef>) -> EventHeader {
        EventHeader {
            creator: CreatorId([7; 32]),
            seq,
            birth_round,
            self_parent,
            other_parent: Some(ParentRef {
                id: EventId([3; 32]),
                birth_round,
            }),
            created_at_ns: 42,
            txs_root: [9; 32],
            tx_count: 0,
        }
    }

    #[test]
    fn encoding_round_trips_and_is_canonical() {
        let h = header(
            5,
            3,
            Some(ParentRef {
                id: EventId([1; 32]),
                birth_round: 2,
            }),
        );
        let bytes = h.encode();
        assert_eq!(bytes.len(), h.encoded_len());
        assert_eq!(EventHeader::decode(&bytes), Ok(h.clone()));
        let mut longer = [0u8; HEADER_MAX + 1];
        longer[..bytes.len()].copy_from_slice(&bytes);
        assert_eq!(
            EventHeader::decode(&longer[..bytes.len() + 1]),
            Err(HeaderError::TrailingBytes(1))
        );
        assert_eq!(
            EventHeader::decode(&bytes[..bytes.len() - 1]),
            Err(HeaderError::Truncated)
        );
        let mut bad = longer;
        bad[0] = 1;
        assert_eq!(
            EventHeader::decode(&bad[..bytes.len()]),
            Err(HeaderError::UnsupportedVersion(1))
        );
        bad = longer;
        bad[1 + 32 + 16] = 2;
        assert_eq!(
            EventHeader::decode(&bad[..bytes.len()]),
            Err(HeaderError::BadFlag(2))
        );
        let no_parents = EventHeader {
            self_parent: None,
            other_parent: None,
            ..h
        };
        assert_eq!(no_parents.encode().len(), HEADER_MIN);
    }

    #[test]
    fn the_evidence_rule() {
        let a = header(4, 3, None);
        let fork = EventHeader {
            created_at_ns: 43,
            ..a.clone()
        };
        assert_eq!(check_pair(&a, &fork), Ok(()));
        assert_eq!(check_pair(&a, &a), Err(PairError::SameEvent));
        let stranger = EventHeader {
            creator: CreatorId([8; 32]),
            ..fork.clone()
        };
        assert_eq!(check_pair(&a, &stranger), Err(PairError::DifferentCreators));
        let child = header(
            5,
            3,
            Some(ParentRef {
                id: a.id(),
                birth_round: 3,
            }),
        );
        assert_eq!(check_pair(&a, &child), Err(PairError::NotAConflict));
        assert_eq!(check_pair(&child, &a), Err(PairError::NotAConflict));
        let lying_child = header(
            5,
            3,
            Some(ParentRef {
                id: a.id(),
                birth_round: 1,
            }),
        );
        assert_eq!(check_pair(&a, &lying_child), Ok(()));
        let born_earlier = header(
            9,
            2,
            Some(ParentRef {
                id: EventId([5; 32]),
                birth_round: 2,
            }),
        );
        assert_eq!(check_pair(&a, &born_earlier), Ok(()));
        let later = header(
            9,
            8,
            Some(ParentRef {
                id: EventId([5; 32]),
                birth_round: 8,
            }),
        );
        assert_eq!(check_pair(&a, &later), Err(PairError::NotAConflict));
    }

    #[test]
    fn the_evidence_hash_ignores_order() {
        let (a, b) = (EventId([1; 32]), EventId([2; 32]));
        assert_eq!(evidence_hash(&a, &b), evidence_hash(&b, &a));
        assert_ne!(evidence_hash(&a, &b), evidence_hash(&a, &a));
    }

    #[test]
    fn the_signed_message_layout() {
        let m = signing_message(&[4; 32], &EventId([5; 32]));
        assert_eq!(&m[..24], SIGNATURE_DOMAIN);
        assert_eq!(&m[24..56], &[4; 32]);
        assert_eq!(&m[56..], &[5; 32]);
    }
}
