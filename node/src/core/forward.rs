//! Forwarded transactions: how a node whose own events go stale (behind a
//! slow link, cut off, or just unlucky) still gets its transactions
//! ordered, exactly once.
//!
//! A node that finds an own event stale (consensus pruned it unordered, so
//! it will never be ordered anywhere) no longer puts its transactions into
//! its own events alone: it seals them in an [`Envelope`] (signed by its
//! node key, for this network, valid until a consensus time) and sends the
//! envelope to its peers, which carry it in their events, and also carries
//! it itself. Several copies may reach the order; [`Delivered`] lets the
//! first valid one through and skips the rest, the same way on every node,
//! because what it decides depends on the order and the rosters only:
//!
//! * An envelope counts only where the event carrying it has a consensus
//!   time at or before the envelope's expiry, and at most
//!   [`MAX_FORWARD_WINDOW_NS`] before it (so what a node must remember is
//!   bounded in time), and only among the first [`MAX_ENVELOPES_PER_EVENT`]
//!   of its event; everything cheap is checked before the signature.
//! * Each envelope is delivered once: its tag (the hash of its signed
//!   content) is remembered until the order's time passes its expiry, after
//!   which no copy can count anyway (consensus times only grow).
//! * The sender seals the same transactions again only once its own order
//!   is past the old envelope's expiry, and after a restart holds what
//!   waited at recovery until its order is past the restart plus its
//!   window, so no two live envelopes hold one transaction. Two cases
//!   escape this, both left for a design with per-signer sequence numbers
//!   (see docs/PERFORMANCE.md, "A node behind a slow link"): a wall clock
//!   stepped back across a restart by more than the window, and a state
//!   sync that skips the rounds which delivered an envelope longer than a
//!   window before the installed state (the node then cannot tell it from
//!   one that expired, and seals its transactions again).
//!
//! Delivered transactions are attributed to the envelope's signer, not the
//! carrier: a node's reports stay its own whoever carries them.

use std::collections::HashMap;

use dagger_consensus::{Decided, EventId};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// First bytes of every envelope. Clients cannot submit transactions that
/// start with it (see `SubmitError::Reserved`).
pub const FORWARD_TAG: &[u8; 4] = b"DGF1";

/// Whether a transaction of an event is an envelope (clients cannot
/// submit one; see `SubmitError::Reserved`).
pub fn is_envelope(tx: &[u8]) -> bool {
    tx.starts_with(FORWARD_TAG)
}

/// How long a node's new envelope stays valid (consensus time after its
/// sealing, by the sender's clock): long enough for a peer across a slow
/// link to carry it and consensus to order it.
pub const FORWARD_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// The most an envelope's expiry may lie beyond the consensus time of the
/// event carrying it: a signer cannot make the order remember its tags for
/// longer.
pub const MAX_FORWARD_WINDOW_NS: u64 = 20_000_000_000;

/// Transactions in one envelope, at most.
pub const MAX_ENVELOPE_TXS: usize = 1_024;

/// An envelope's whole encoding, at most, whatever the limits (the default
/// largest transaction). It is one transaction of the event that carries
/// it, so a network with smaller limits seals and carries smaller ones:
/// see [`max_sealed`].
pub const MAX_ENVELOPE_BYTES: usize = 64 << 10;

const HEADER_LEN: usize = 4 + 32 + 8 + 4;
/// Per transaction: its length and the signer's mark.
const ITEM_HEADER_LEN: usize = 4 + 8;
const SIGNATURE_LEN: usize = 64;

/// Envelopes the order considers per event, at most (the first ones; the
/// rest deliver nothing): checking an envelope's signature costs every node
/// about as much as checking an event's, so one event cannot make them
/// check thousands.
pub const MAX_ENVELOPES_PER_EVENT: usize = 64;

/// What an envelope adds to the one transaction it holds.
pub const ENVELOPE_OVERHEAD: usize = HEADER_LEN + ITEM_HEADER_LEN + SIGNATURE_LEN;

/// The largest transaction a node admits: one that an envelope of its own
/// can still hold, so whatever it acknowledges can be forwarded.
pub fn max_forwardable_tx(limits: &dagger_consensus::Limits) -> usize {
    max_sealed(limits).saturating_sub(ENVELOPE_OVERHEAD)
}

/// The largest envelope a node seals or carries under `limits`.
pub fn max_sealed(limits: &dagger_consensus::Limits) -> usize {
    limits.max_tx_bytes.min(MAX_ENVELOPE_BYTES)
}

/// Names an envelope: the hash of everything it says except the signature
/// (so a second signature over the same content is the same envelope).
pub type Tag = [u8; 32];

/// Why an envelope was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ForwardError {
    #[error("not an envelope (missing the forward tag)")]
    NotAnEnvelope,
    #[error("envelope is truncated or malformed")]
    Malformed,
    #[error("envelope holds {0} transactions, limit {MAX_ENVELOPE_TXS}")]
    TooManyTransactions(usize),
    #[error("envelope is {0} bytes, limit {MAX_ENVELOPE_BYTES}")]
    TooLarge(usize),
    #[error("envelope holds an empty transaction or another envelope")]
    BadTransaction,
    #[error("envelope signer is not a valid key")]
    BadKey,
    #[error("envelope signature does not check")]
    BadSignature,
    #[error("envelope expired")]
    Expired,
    #[error("envelope expires too far ahead")]
    TooFarAhead,
    #[error("envelope was sealed by another node than the peer that sent it")]
    NotFromSender,
    #[error("envelope signer is not a member of the roster")]
    NotAMember,
    #[error("{0} envelopes of peers are already carried here")]
    Busy(usize),
    #[error("{0} bytes of this signer's envelopes are already carried here")]
    SignerBusy(usize),
}

/// Signed transactions of one node, valid until `expires_ns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub origin: [u8; 32],
    pub expires_ns: u64,
    pub txs: Vec<Vec<u8>>,
    /// The signer's own mark for each transaction (which of its waiting
    /// transactions it is: a restarted node settles by mark, never by
    /// content, since two waiting transactions may be equal).
    pub marks: Vec<u64>,
    pub tag: Tag,
}

/// An envelope read but whose signature is not checked yet.
pub struct Unverified<'a> {
    pub envelope: Envelope,
    body: &'a [u8],
    signature: [u8; SIGNATURE_LEN],
}

impl Unverified<'_> {
    /// Checks the signature (strictly: a second encoding of one signature
    /// must not pass).
    pub fn verify(self, network: &[u8; 32]) -> Result<Envelope, ForwardError> {
        let key =
            VerifyingKey::from_bytes(&self.envelope.origin).map_err(|_| ForwardError::BadKey)?;
        key.verify_strict(
            &signed_message(network, self.body),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| ForwardError::BadSignature)?;
        Ok(self.envelope)
    }
}

impl Envelope {
    /// Seals `txs` for `network`, each with the signer's mark (at most
    /// [`MAX_ENVELOPE_TXS`], and [`MAX_ENVELOPE_BYTES`] in all; callers
    /// split larger sets).
    pub fn seal_marked(
        key: &SigningKey,
        network: &[u8; 32],
        expires_ns: u64,
        txs: &[(u64, &[u8])],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(Envelope::sealed_len(txs.iter().map(|(_, t)| t.len())));
        out.extend_from_slice(FORWARD_TAG);
        out.extend_from_slice(&key.verifying_key().to_bytes());
        out.extend_from_slice(&expires_ns.to_le_bytes());
        out.extend_from_slice(&(txs.len() as u32).to_le_bytes());
        for (mark, tx) in txs {
            out.extend_from_slice(&(tx.len() as u32).to_le_bytes());
            out.extend_from_slice(&mark.to_le_bytes());
            out.extend_from_slice(tx);
        }
        let signature = key.sign(&signed_message(network, &out));
        out.extend_from_slice(&signature.to_bytes());
        out
    }

    /// [`Envelope::seal_marked`] with every mark 0.
    pub fn seal(key: &SigningKey, network: &[u8; 32], expires_ns: u64, txs: &[Vec<u8>]) -> Vec<u8> {
        let marked: Vec<(u64, &[u8])> = txs.iter().map(|t| (0, t.as_slice())).collect();
        Envelope::seal_marked(key, network, expires_ns, &marked)
    }

    /// Reads and checks an envelope (format, limits, signature): what every
    /// node does alike with the envelopes in the order.
    pub fn open(bytes: &[u8], network: &[u8; 32]) -> Result<Envelope, ForwardError> {
        Envelope::parse(bytes)?.verify(network)
    }

    /// Reads an envelope's format and limits, not its signature (cheap
    /// checks come first).
    pub fn parse(bytes: &[u8]) -> Result<Unverified<'_>, ForwardError> {
        if !is_envelope(bytes) {
            return Err(ForwardError::NotAnEnvelope);
        }
        if bytes.len() < HEADER_LEN + SIGNATURE_LEN {
            return Err(ForwardError::Malformed);
        }
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(ForwardError::TooLarge(bytes.len()));
        }
        let (body, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let origin: [u8; 32] = body[4..36].try_into().expect("32 bytes");
        let expires_ns = u64::from_le_bytes(body[36..44].try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(body[44..48].try_into().expect("4 bytes")) as usize;
        if count > MAX_ENVELOPE_TXS {
            return Err(ForwardError::TooManyTransactions(count));
        }
        if count == 0 {
            return Err(ForwardError::BadTransaction);
        }
        let mut txs = Vec::with_capacity(count);
        let mut marks = Vec::with_capacity(count);
        let mut rest = &body[HEADER_LEN..];
        for _ in 0..count {
            if rest.len() < ITEM_HEADER_LEN {
                return Err(ForwardError::Malformed);
            }
            let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            let mark = u64::from_le_bytes(rest[4..12].try_into().expect("8 bytes"));
            rest = &rest[ITEM_HEADER_LEN..];
            if len > rest.len() {
                return Err(ForwardError::Malformed);
            }
            let (tx, after) = rest.split_at(len);
            if tx.is_empty() || is_envelope(tx) {
                return Err(ForwardError::BadTransaction);
            }
            txs.push(tx.to_vec());
            marks.push(mark);
            rest = after;
        }
        if !rest.is_empty() {
            return Err(ForwardError::Malformed);
        }
        Ok(Unverified {
            envelope: Envelope {
                origin,
                expires_ns,
                txs,
                marks,
                tag: *blake3::hash(body).as_bytes(),
            },
            body,
            signature: signature.try_into().expect("split at the signature length"),
        })
    }

    /// The size [`Envelope::seal_marked`] gives transactions of these
    /// lengths.
    pub fn sealed_len(lens: impl IntoIterator<Item = usize>) -> usize {
        HEADER_LEN
            + SIGNATURE_LEN
            + lens
                .into_iter()
                .map(|len| ITEM_HEADER_LEN + len)
                .sum::<usize>()
    }

    /// Whether one more transaction of `len` bytes fits an envelope of
    /// `count` transactions sealed at `size` bytes, under `limits`.
    pub fn fits(count: usize, size: usize, len: usize, limits: &dagger_consensus::Limits) -> bool {
        count < MAX_ENVELOPE_TXS && size + ITEM_HEADER_LEN + len <= max_sealed(limits)
    }

    /// The tag of sealed bytes (as [`Envelope::open`] finds it).
    pub fn tag_of(sealed: &[u8]) -> Tag {
        let body = &sealed[..sealed.len().saturating_sub(SIGNATURE_LEN)];
        *blake3::hash(body).as_bytes()
    }

    /// Whether an event with consensus time `time_ns` may deliver it.
    pub fn check_time(&self, time_ns: u64) -> Result<(), ForwardError> {
        if time_ns > self.expires_ns {
            return Err(ForwardError::Expired);
        }
        if self.expires_ns - time_ns > MAX_FORWARD_WINDOW_NS {
            return Err(ForwardError::TooFarAhead);
        }
        Ok(())
    }
}

fn signed_message(network: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(24 + 32 + 32);
    message.extend_from_slice(b"DAGGER/forward/1");
    message.extend_from_slice(network);
    message.extend_from_slice(blake3::hash(body).as_bytes());
    message
}

/// One transaction of the order as consumers see it: envelopes opened,
/// repeats and invalid ones left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// Who vouches for it: the carrying event's creator, or the signer of
    /// the envelope that held it.
    pub author: [u8; 32],
    /// The ordered event that carried it.
    pub event: EventId,
    pub consensus_time_ns: u64,
    pub tx: std::borrow::Cow<'a, [u8]>,
    /// The envelope it came in, if any, and the signer's mark for it.
    pub envelope: Option<(Tag, u64)>,
}

/// The order's memory of delivered envelopes (part of the state every
/// checkpoint covers, so it is the same on every node).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Tag → expiry (ns).
    seen: HashMap<Tag, u64>,
}

impl Delivered {
    /// The transactions of a decided round, in order. `is_member` says
    /// whether a signer may vouch for transactions in the round.
    pub fn deliver<'a>(
        &mut self,
        decided: &'a Decided,
        network: &[u8; 32],
        is_member: impl Fn(&[u8; 32]) -> bool,
    ) -> Vec<Delivery<'a>> {
        let mut out = Vec::new();
        for ordered in &decided.events {
            let event = &ordered.event;
            let time = ordered.consensus_time_ns;
            let mut envelopes = 0usize;
            for tx in event.transactions() {
                if !is_envelope(tx) {
                    out.push(Delivery {
                        author: event.creator().0,
                        event: event.id(),
                        consensus_time_ns: time,
                        tx: std::borrow::Cow::Borrowed(tx),
                        envelope: None,
                    });
                    continue;
                }
                envelopes += 1;
                if envelopes > MAX_ENVELOPES_PER_EVENT {
                    continue;
                }
                // Everything cheap before the signature: copies of a
                // delivered envelope are skipped by their tag.
                let unverified = match Envelope::parse(tx) {
                    Ok(unverified) => unverified,
                    Err(err) => {
                        tracing::debug!(error = %err, "an ordered envelope does not open; skipped");
                        continue;
                    }
                };
                let candidate = &unverified.envelope;
                if !is_member(&candidate.origin)
                    || candidate.check_time(time).is_err()
                    || self.seen.contains_key(&candidate.tag)
                {
                    continue;
                }
                let envelope = match unverified.verify(network) {
                    Ok(envelope) => envelope,
                    Err(err) => {
                        tracing::debug!(error = %err, "an ordered envelope does not check; skipped");
                        continue;
                    }
                };
                self.seen.insert(envelope.tag, envelope.expires_ns);
                for (inner, mark) in envelope.txs.into_iter().zip(envelope.marks) {
                    out.push(Delivery {
                        author: envelope.origin,
                        event: event.id(),
                        consensus_time_ns: time,
                        tx: std::borrow::Cow::Owned(inner),
                        envelope: Some((envelope.tag, mark)),
                    });
                }
            }
        }
        if let Some(last) = decided.events.last() {
            let now = last.consensus_time_ns;
            self.seen.retain(|_, expires| *expires >= now);
        }
        out
    }

    /// Tags remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    pub fn contains(&self, tag: &Tag) -> bool {
        self.seen.contains_key(tag)
    }

    /// Canonical bytes (sorted by tag).
    pub fn encode(&self) -> Vec<u8> {
        let mut entries: Vec<(&Tag, &u64)> = self.seen.iter().collect();
        entries.sort_unstable();
        let mut out = Vec::with_capacity(4 + entries.len() * 40);
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (tag, expires) in entries {
            out.extend_from_slice(tag);
            out.extend_from_slice(&expires.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Delivered> {
        let count = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let rest = bytes.get(4..)?;
        if rest.len() != count.checked_mul(40)? {
            return None;
        }
        let seen = rest
            .chunks_exact(40)
            .map(|c| {
                let tag: Tag = c[..32].try_into().expect("32 bytes");
                (
                    tag,
                    u64::from_le_bytes(c[32..].try_into().expect("8 bytes")),
                )
            })
            .collect();
        Some(Delivered { seen })
    }
}

/// First bytes of the application state stored with snapshots since
/// envelopes exist: the observer's state, then [`Delivered`]. A state
/// without them is the observer's alone (older ledgers).
const APP_STATE_TAG: &[u8; 8] = b"DGAPP\x00\x00\x01";

/// The state stored beside the consensus snapshot.
pub fn join_app_state(observer: &[u8], delivered: &Delivered) -> Vec<u8> {
    let delivered = delivered.encode();
    let mut out = Vec::with_capacity(16 + observer.len() + delivered.len());
    out.extend_from_slice(APP_STATE_TAG);
    out.extend_from_slice(&(observer.len() as u64).to_le_bytes());
    out.extend_from_slice(observer);
    out.extend_from_slice(&delivered);
    out
}

/// Splits what [`join_app_state`] made (or an older state, all observer).
pub fn split_app_state(bytes: &[u8]) -> Option<(&[u8], Delivered)> {
    let Some(rest) = bytes.strip_prefix(APP_STATE_TAG.as_slice()) else {
        return Some((bytes, Delivered::default()));
    };
    let len = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?) as usize;
    let observer = rest.get(8..8usize.checked_add(len)?)?;
    let delivered = Delivered::decode(&rest[8 + len..])?;
    Some((observer, delivered))
}

#[cfg(test)]
mod tests {
    use dagger_consensus::{Ordered, UnsignedEvent};
    use proptest::prelude::*;

    use super::*;

    const NET: [u8; 32] = [7; 32];

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn tx(n: u32) -> Vec<u8> {
        let mut t = b"tx".to_vec();
        t.extend_from_slice(&n.to_le_bytes());
        t
    }

    #[test]
    fn an_envelope_opens_to_what_was_sealed() {
        let txs = vec![tx(1), tx(2)];
        let sealed = Envelope::seal(&key(1), &NET, 99, &txs);
        let open = Envelope::open(&sealed, &NET).unwrap();
        assert_eq!(open.txs, txs);
        assert_eq!(open.origin, key(1).verifying_key().to_bytes());
        assert_eq!(open.expires_ns, 99);
        assert_eq!(open.tag, Envelope::tag_of(&sealed));
        assert_eq!(open.marks, vec![0, 0]);
        let marked = Envelope::seal_marked(&key(1), &NET, 99, &[(7, b"a"), (9, b"b")]);
        let open = Envelope::open(&marked, &NET).unwrap();
        assert_eq!(
            (open.marks, open.txs),
            (vec![7, 9], vec![b"a".to_vec(), b"b".to_vec()])
        );
        assert_eq!(marked.len(), Envelope::sealed_len([1, 1]));
        // Deterministic: sealing again gives the same bytes and tag.
        assert_eq!(sealed, Envelope::seal(&key(1), &NET, 99, &txs));
    }

    #[test]
    fn envelopes_that_lie_or_break_the_rules_do_not_open() {
        let sealed = Envelope::seal(&key(1), &NET, 99, &[tx(1)]);
        assert_eq!(
            Envelope::open(&sealed, &[8; 32]),
            Err(ForwardError::BadSignature),
            "another network's envelope"
        );
        let mut changed = sealed.clone();
        changed[40] ^= 1; // the expiry
        assert_eq!(
            Envelope::open(&changed, &NET),
            Err(ForwardError::BadSignature)
        );
        let mut other_signer = sealed.clone();
        other_signer[4..36].copy_from_slice(&key(2).verifying_key().to_bytes());
        assert_eq!(
            Envelope::open(&other_signer, &NET),
            Err(ForwardError::BadSignature)
        );
        for cut in [0, 3, 10, 47, sealed.len() - 1] {
            assert!(
                Envelope::open(&sealed[..cut], &NET).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(
            Envelope::open(b"hello", &NET),
            Err(ForwardError::NotAnEnvelope)
        );
        let nested = Envelope::seal(&key(1), &NET, 99, std::slice::from_ref(&sealed));
        assert_eq!(
            Envelope::open(&nested, &NET),
            Err(ForwardError::BadTransaction)
        );
        let empty = Envelope::seal(&key(1), &NET, 99, &[Vec::new()]);
        assert_eq!(
            Envelope::open(&empty, &NET),
            Err(ForwardError::BadTransaction)
        );
        let nothing = Envelope::seal(&key(1), &NET, 99, &[]);
        assert_eq!(
            Envelope::open(&nothing, &NET),
            Err(ForwardError::BadTransaction)
        );
        // A length that runs past the end, and one that overflows.
        let mut long = sealed.clone();
        long[48..52].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Envelope::open(&long, &NET), Err(ForwardError::Malformed));
        let many: Vec<Vec<u8>> = (0..MAX_ENVELOPE_TXS as u32 + 1).map(tx).collect();
        assert_eq!(
            Envelope::open(&Envelope::seal(&key(1), &NET, 99, &many), &NET),
            Err(ForwardError::TooManyTransactions(MAX_ENVELOPE_TXS + 1))
        );
        let big = vec![
            vec![1u8; MAX_ENVELOPE_BYTES / 2],
            vec![2u8; MAX_ENVELOPE_BYTES / 2],
        ];
        assert!(matches!(
            Envelope::open(&Envelope::seal(&key(1), &NET, 99, &big), &NET),
            Err(ForwardError::TooLarge(_))
        ));
        // A count that claims more than the bytes hold.
        let mut short = sealed.clone();
        short[44] = 2;
        assert!(Envelope::open(&short, &NET).is_err());
    }

    #[test]
    fn an_envelope_counts_only_inside_its_window() {
        let open = |expires| {
            Envelope::open(&Envelope::seal(&key(1), &NET, expires, &[tx(1)]), &NET).unwrap()
        };
        assert_eq!(open(100).check_time(100), Ok(()));
        assert_eq!(open(100).check_time(101), Err(ForwardError::Expired));
        let far = 1_000 + MAX_FORWARD_WINDOW_NS + 1;
        assert_eq!(open(far).check_time(1_000), Err(ForwardError::TooFarAhead));
        assert_eq!(open(far).check_time(1_001), Ok(()));
    }

    /// A decided round whose events (creator seed, transactions, consensus
    /// time) are given in order.
    fn round(events: &[(u8, Vec<Vec<u8>>, u64)]) -> Decided {
        let events = events
            .iter()
            .enumerate()
            .map(|(i, (creator, txs, time))| Ordered {
                event: UnsignedEvent {
                    seq: i as u64,
                    birth_round: 1,
                    self_parent: None,
                    other_parent: None,
                    created_at_ns: *time,
                    txs: txs.clone(),
                }
                .sign(&key(*creator), &NET),
                round_received: 1,
                consensus_time_ns: *time,
                order_index: i as u64,
                running_hash: [0; 32],
            })
            .collect();
        Decided {
            round_received: 1,
            judges: Vec::new(),
            events,
            running_hash: [0; 32],
            pruned: Vec::new(),
            discarded: Vec::new(),
        }
    }

    fn delivered_txs(d: &[Delivery]) -> Vec<(u8, Vec<u8>)> {
        d.iter()
            .map(|d| {
                let who = (1..=8u8)
                    .find(|i| key(*i).verifying_key().to_bytes() == d.author)
                    .unwrap();
                (who, d.tx.to_vec())
            })
            .collect()
    }

    #[test]
    fn copies_of_an_envelope_deliver_once_in_the_signers_name() {
        let envelope = Envelope::seal(&key(4), &NET, 1_000, &[tx(1), tx(2)]);
        let decided = round(&[
            (1, vec![tx(9), envelope.clone()], 10),
            (2, vec![envelope.clone()], 20),
            (4, vec![envelope.clone()], 30),
        ]);
        let mut state = Delivered::default();
        let out = state.deliver(&decided, &NET, |_| true);
        assert_eq!(
            delivered_txs(&out),
            vec![(1, tx(9)), (4, tx(1)), (4, tx(2))],
            "the carrier's own transaction, then the envelope's, as node 4's"
        );
        // Still remembered in a later round (expiry not passed).
        let later = round(&[(3, vec![envelope.clone()], 900)]);
        assert!(state.deliver(&later, &NET, |_| true).is_empty());
    }

    #[test]
    fn expired_far_ahead_and_non_member_envelopes_deliver_nothing() {
        let mut state = Delivered::default();
        let expired = Envelope::seal(&key(4), &NET, 5, &[tx(1)]);
        let far = Envelope::seal(&key(4), &NET, 10 + MAX_FORWARD_WINDOW_NS + 1, &[tx(2)]);
        let stranger = Envelope::seal(&key(8), &NET, 100, &[tx(3)]);
        let mut forged = Envelope::seal(&key(4), &NET, 100, &[tx(4)]);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let decided = round(&[(1, vec![expired, far, stranger, forged], 10)]);
        let member = |k: &[u8; 32]| *k != key(8).verifying_key().to_bytes();
        assert!(state.deliver(&decided, &NET, member).is_empty());
        assert!(
            state.is_empty(),
            "nothing to remember for refused envelopes"
        );
    }

    #[test]
    fn an_event_delivers_at_most_its_first_envelopes() {
        let envelopes: Vec<Vec<u8>> = (0..MAX_ENVELOPES_PER_EVENT as u32 + 6)
            .map(|i| Envelope::seal(&key(4), &NET, 1_000, &[tx(i)]))
            .collect();
        let mut state = Delivered::default();
        let decided = round(&[(1, envelopes, 10)]);
        let out = state.deliver(&decided, &NET, |_| true);
        let expected: Vec<Vec<u8>> = (0..MAX_ENVELOPES_PER_EVENT as u32).map(tx).collect();
        assert_eq!(
            out.iter().map(|d| d.tx.to_vec()).collect::<Vec<_>>(),
            expected
        );
    }

    #[test]
    fn tags_are_forgotten_once_the_order_is_past_their_expiry() {
        let mut state = Delivered::default();
        let a = Envelope::seal(&key(4), &NET, 100, &[tx(1)]);
        let b = Envelope::seal(&key(4), &NET, 500, &[tx(2)]);
        state.deliver(&round(&[(1, vec![a, b], 50)]), &NET, |_| true);
        assert_eq!(state.len(), 2);
        state.deliver(&round(&[(1, vec![tx(7)], 101)]), &NET, |_| true);
        assert_eq!(state.len(), 1);
        // An empty round changes nothing (no consensus time).
        state.deliver(&round(&[]), &NET, |_| true);
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn app_state_round_trips_and_reads_older_states() {
        let mut state = Delivered::default();
        let a = Envelope::seal(&key(4), &NET, 100, &[tx(1)]);
        state.deliver(&round(&[(1, vec![a], 50)]), &NET, |_| true);
        let joined = join_app_state(b"observer", &state);
        let (observer, back) = split_app_state(&joined).unwrap();
        assert_eq!((observer, back), (&b"observer"[..], state));
        let (observer, back) = split_app_state(b"old observer state").unwrap();
        assert_eq!(
            (observer, back),
            (&b"old observer state"[..], Delivered::default())
        );
        assert!(split_app_state(&joined[..joined.len() - 1]).is_none());
    }

    proptest! {
        /// Whatever copies, signers, expiries and round boundaries the
        /// order holds: every envelope is delivered at most once, only
        /// inside its window, and two nodes that restart from a snapshot
        /// at any round boundary deliver exactly what one that never
        /// stopped delivers.
        #[test]
        fn delivery_is_once_in_window_and_survives_snapshots(
            items in proptest::collection::vec((0usize..6, 1u8..5, 0u64..40), 1..60),
            cuts in proptest::collection::vec(1usize..8, 1..20),
            restart_at in 0usize..20,
        ) {
            // Six envelopes with expiries spread over the run.
            let envelopes: Vec<Vec<u8>> = (0..6u32)
                .map(|i| Envelope::seal(&key(1 + (i % 3) as u8), &NET, 20 * (i as u64 + 1) * 1_000, &[tx(i)]))
                .collect();
            // Items in order, strictly increasing consensus time.
            let mut time = 0u64;
            let mut rounds = Vec::new();
            let mut rest = &items[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() { break; }
                let (now, later) = rest.split_at((*cut).min(rest.len()));
                rest = later;
                let events: Vec<(u8, Vec<Vec<u8>>, u64)> = now
                    .iter()
                    .map(|(which, carrier, step)| {
                        time += 1 + step * 1_000;
                        (*carrier, vec![envelopes[*which].clone()], time)
                    })
                    .collect();
                rounds.push(round(&events));
            }
            let mut straight = Delivered::default();
            let mut restarted = Delivered::default();
            let mut delivered = HashMap::new();
            for (i, decided) in rounds.iter().enumerate() {
                let out = straight.deliver(decided, &NET, |_| true);
                for d in &out {
                    let (tag, _) = d.envelope.unwrap();
                    prop_assert!(delivered.insert(tag, d.consensus_time_ns).is_none(), "delivered twice");
                    let envelope = Envelope::open(&envelopes.iter().find(|e| Envelope::open(e, &NET).unwrap().tag == tag).unwrap().clone(), &NET).unwrap();
                    prop_assert!(d.consensus_time_ns <= envelope.expires_ns);
                }
                if i == restart_at {
                    restarted = Delivered::decode(&restarted.encode()).unwrap();
                }
                let again = restarted.deliver(decided, &NET, |_| true);
                prop_assert_eq!(out, again);
            }
        }
    }
}
