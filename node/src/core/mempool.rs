//! Transactions between `POST /tx` and the consensus order.
//!
//! A submitted transaction waits in `pending` until an own event carries
//! it; the submitter is answered once that event is durably stored, and
//! from then on the transaction must reach the order whatever happens. The
//! event is watched (`in_flight`) until consensus orders it. If it goes
//! stale instead (pruned unordered: created just before a crash and never
//! gossiped, or born where peers could no longer use it, as a node behind
//! a slow link finds with every event), its transactions are written to
//! the ledger's `mempool` table under a durable name (stale event id,
//! index) in the same write as the round that made the event stale, and
//! wait in the forward queue. From there they are sealed in envelopes
//! (see [`super::forward`]) that peers carry as well as this node; the
//! write of the round that delivers an envelope removes its transactions
//! from the table. An envelope that expires undelivered gives its
//! transactions back to the queue, to be sealed again. A restart therefore
//! finds every acknowledged transaction either in a held own event, in an
//! own event replay will bring back, or in the `mempool` table, never in
//! two of them at once; and it seals nothing again until every envelope
//! it may have sealed before has expired.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::{Duration, Instant},
};

use dagger_consensus::{Event, EventId, Limits};
use ed25519_dalek::SigningKey;

use super::forward::{
    is_envelope, max_forwardable_tx, Envelope, ForwardError, Tag, FORWARD_WINDOW,
    MAX_ENVELOPES_PER_EVENT,
};
use super::SubmitError;
use crate::store::MempoolKey;

/// Own reports waiting for an event, at most (the node's components report
/// a few per lease and per chain change; far more means something loops).
pub const MAX_OWN_REPORTS: usize = 4_096;

/// Peers' envelopes this node remembers having carried, at most. Each is
/// carried once and remembered until it expires, and at least
/// [`FORWARD_WINDOW`] (so a signer cannot renew its share by choosing
/// short expiries)...
pub const MAX_CARRIED_ENVELOPES: usize = 4_096;

/// ...per signer: every peer that gets an envelope carries it, so a member
/// that seals more than it could put in its own events makes the others
/// gossip it again; these bound what one signer can make each peer carry
/// per [`FORWARD_WINDOW`] (a node behind a slow link at 5 000 tx/s of 64
/// bytes seals about 1 MB per window, in a few dozen envelopes).
pub const MAX_CARRIED_PER_SIGNER: usize = 256;
pub const MAX_CARRIED_BYTES_PER_SIGNER: usize = 8 << 20;

/// A peer's envelope is carried only if it stays valid at least this long
/// (one about to expire would be skipped by the order anyway).
pub const MIN_CARRIED_VALIDITY_NS: u64 = 1_000_000_000;

/// Names a `POST /tx` submission whose submitter waits for an answer (the
/// async driver keeps the reply channel under this id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubmitId(pub u64);

/// Where a pending transaction came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Submitted here and not yet acknowledged: lost with a crash, which is
    /// fine (the submitter got no answer).
    Fresh(SubmitId),
    /// An envelope (this node's or a peer's) valid until the given Unix
    /// time (ns): nobody waits for an answer, the event carrying it is not
    /// watched (the envelope's sender follows its fate in the order), and
    /// it is dropped once expired.
    Envelope(u64),
}

impl Origin {
    fn is_envelope(&self) -> bool {
        matches!(self, Origin::Envelope(_))
    }
}

struct PendingTx {
    tx: Vec<u8>,
    submitted: Instant,
    origin: Origin,
    /// A report of this node's own components (or an envelope): it has a
    /// lane of its own, taken first, so outside load cannot hold it back.
    own: bool,
}

/// An own event's transactions, kept until consensus orders the event or
/// finds it stale.
struct InFlight {
    submitted: Vec<Instant>,
    txs: Vec<Vec<u8>>,
}

/// An acknowledged transaction whose event went stale: durable under `key`
/// until an envelope holding it is delivered.
struct Forwardable {
    key: MempoolKey,
    tx: Vec<u8>,
    submitted: Instant,
    /// Waiting at a restart: it may be in an envelope sealed before, so it
    /// is sealed again only after the hold (see [`Mempool::hold_queued`]).
    held: bool,
}

/// An envelope this node sealed and follows in the order.
struct Sealed {
    expires_ns: u64,
    items: Vec<Forwardable>,
}

/// Transactions taken for one new own event.
#[derive(Default)]
pub(crate) struct Batch {
    pub txs: Vec<Vec<u8>>,
    submitted: Vec<Instant>,
    origins: Vec<Origin>,
    own: Vec<bool>,
}

impl Batch {
    /// Submitters to answer once the event is durable.
    pub fn submitters(&self) -> Vec<SubmitId> {
        self.origins
            .iter()
            .filter_map(|o| match o {
                Origin::Fresh(id) => Some(*id),
                Origin::Envelope(_) => None,
            })
            .collect()
    }
}

/// The durable name of the `index`-th transaction of a stale own event.
pub fn mempool_key(event: &EventId, index: usize) -> MempoolKey {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(&event.0);
    key[32..].copy_from_slice(&(index as u32).to_le_bytes());
    key
}

/// What [`Mempool::seal`] made.
#[derive(Debug, Default)]
pub(crate) struct Sealing {
    /// Envelopes for the peers (each also waits in the own lane).
    pub envelopes: Vec<Vec<u8>>,
    /// Names of waiting transactions that cannot be forwarded (dropped;
    /// remove them from the ledger's table).
    pub dropped: Vec<MempoolKey>,
}

/// The signer's mark for a waiting transaction in its envelopes.
pub(crate) fn mark(key: &MempoolKey) -> u64 {
    let hash = blake3::hash(key);
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// What a delivered own envelope settled.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    /// Names to remove from the ledger's table.
    pub keys: Vec<MempoolKey>,
    /// When the transactions were first submitted (finality).
    pub submitted: Vec<Instant>,
}

pub(crate) struct Mempool {
    pending: VecDeque<PendingTx>,
    /// The node's own reports and envelopes, taken before `pending`.
    own: VecDeque<PendingTx>,
    pending_bytes: usize,
    in_flight: HashMap<EventId, InFlight>,
    /// Transactions and bytes in `in_flight`.
    in_flight_txs: usize,
    in_flight_bytes: usize,
    /// Stale transactions waiting to be sealed...
    forward_queue: VecDeque<Forwardable>,
    /// ...and sealed ones waiting for their envelope's fate.
    forwarding: HashMap<Tag, Sealed>,
    /// Names in `forward_queue` and `forwarding`.
    waiting: HashSet<MempoolKey>,
    /// Transactions and bytes in `forward_queue` and `forwarding`.
    forward_txs: usize,
    forward_bytes: usize,
    /// Held transactions are not sealed before the order's consensus time
    /// passes this: a restart cannot know which envelopes it sealed before.
    seal_after_ns: u64,
    /// Peers' envelopes carried, so each is carried once: tag → (signer,
    /// expiry, bytes).
    carrying: HashMap<Tag, ([u8; 32], u64, usize)>,
    /// Limits on everything admitted and not yet ordered (`pending`,
    /// `in_flight` and the forwarded together): if consensus cannot keep
    /// up, or stalls, submitters are told to come back instead of the node
    /// filling its memory and its own events with transactions it cannot
    /// order.
    max_txs: usize,
    max_bytes: usize,
}

impl Mempool {
    pub fn new(max_txs: usize, max_bytes: usize) -> Mempool {
        Mempool {
            pending: VecDeque::new(),
            own: VecDeque::new(),
            pending_bytes: 0,
            in_flight: HashMap::new(),
            in_flight_txs: 0,
            in_flight_bytes: 0,
            forward_queue: VecDeque::new(),
            forwarding: HashMap::new(),
            waiting: HashSet::new(),
            forward_txs: 0,
            forward_bytes: 0,
            seal_after_ns: 0,
            carrying: HashMap::new(),
            max_txs,
            max_bytes,
        }
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len() + self.own.len() + self.forward_txs
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.own.is_empty()
    }

    /// Stale transactions not yet delivered (queued or sealed).
    pub fn has_forwards(&self) -> bool {
        self.forward_txs > 0
    }

    /// Own events still watched.
    #[cfg(test)]
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// Ids of the own events still watched.
    pub fn in_flight_ids(&self) -> Vec<EventId> {
        self.in_flight.keys().copied().collect()
    }

    /// Admits a new submission, or says why not.
    pub fn admit(
        &mut self,
        tx: Vec<u8>,
        id: SubmitId,
        now: Instant,
        limits: &Limits,
    ) -> Result<(), SubmitError> {
        if tx.is_empty() {
            return Err(SubmitError::Empty);
        }
        let max = max_forwardable_tx(limits);
        if tx.len() > max {
            return Err(SubmitError::TooLarge {
                size: tx.len(),
                max,
            });
        }
        let unordered = self.pending.len() + self.in_flight_txs + self.forward_txs;
        if unordered >= self.max_txs {
            return Err(SubmitError::Busy(unordered));
        }
        let unordered_bytes = self.pending_bytes + self.in_flight_bytes + self.forward_bytes;
        if unordered_bytes.saturating_add(tx.len()) > self.max_bytes {
            return Err(SubmitError::BusyBytes(unordered_bytes));
        }
        self.pending_bytes += tx.len();
        self.pending.push_back(PendingTx {
            tx,
            submitted: now,
            origin: Origin::Fresh(id),
            own: false,
        });
        Ok(())
    }

    /// Admits a report of this node's own components into their lane. It
    /// is not counted against the submission limits (outside load must not
    /// silence the node), only against [`MAX_OWN_REPORTS`].
    pub fn admit_own(
        &mut self,
        tx: Vec<u8>,
        id: SubmitId,
        now: Instant,
        limits: &Limits,
    ) -> Result<(), SubmitError> {
        if tx.is_empty() {
            return Err(SubmitError::Empty);
        }
        let max = max_forwardable_tx(limits);
        if tx.len() > max {
            return Err(SubmitError::TooLarge {
                size: tx.len(),
                max,
            });
        }
        if self.own.len() >= MAX_OWN_REPORTS {
            return Err(SubmitError::Busy(self.own.len()));
        }
        self.push_own(tx, now, Origin::Fresh(id));
        Ok(())
    }

    /// Envelopes are not counted in `pending_bytes`: a peer's are bounded
    /// on their own, and this node's hold transactions counted already.
    fn push_own(&mut self, tx: Vec<u8>, now: Instant, origin: Origin) {
        if !origin.is_envelope() {
            self.pending_bytes += tx.len();
        }
        self.own.push_back(PendingTx {
            tx,
            submitted: now,
            origin,
            own: true,
        });
    }

    /// Whether a peer's envelope would be carried (checked before its
    /// signature): `Ok(false)` if it is carried already.
    pub fn may_carry(
        &mut self,
        envelope: &Envelope,
        size: usize,
        now_unix_ns: u64,
    ) -> Result<bool, ForwardError> {
        self.carrying
            .retain(|_, (_, remember_until, _)| *remember_until >= now_unix_ns);
        if self.carrying.contains_key(&envelope.tag) {
            return Ok(false);
        }
        if envelope.expires_ns < now_unix_ns.saturating_add(MIN_CARRIED_VALIDITY_NS) {
            return Err(ForwardError::Expired);
        }
        if self.carrying.len() >= MAX_CARRIED_ENVELOPES {
            return Err(ForwardError::Busy(self.carrying.len()));
        }
        let (count, bytes) = self
            .carrying
            .values()
            .filter(|(signer, _, _)| *signer == envelope.origin)
            .fold((0usize, 0usize), |(c, b), (_, _, size)| (c + 1, b + size));
        if count >= MAX_CARRIED_PER_SIGNER || bytes + size > MAX_CARRIED_BYTES_PER_SIGNER {
            return Err(ForwardError::SignerBusy(bytes));
        }
        Ok(true)
    }

    /// A peer's envelope (checked, and allowed by [`Mempool::may_carry`])
    /// to carry in an own event.
    pub fn carry(&mut self, envelope: &Envelope, bytes: Vec<u8>, now: Instant, now_unix_ns: u64) {
        let remember_until = envelope
            .expires_ns
            .max(now_unix_ns.saturating_add(FORWARD_WINDOW.as_nanos() as u64));
        self.carrying
            .insert(envelope.tag, (envelope.origin, remember_until, bytes.len()));
        self.push_own(bytes, now, Origin::Envelope(envelope.expires_ns));
    }

    /// Takes what fits in one event: the node's own reports and envelopes
    /// first (at most [`MAX_ENVELOPES_PER_EVENT`] envelopes; expired ones
    /// are dropped), then submissions, oldest first.
    pub fn take_batch(&mut self, limits: &Limits, now_unix_ns: u64) -> Batch {
        let mut batch = Batch::default();
        let mut bytes = 0usize;
        let mut envelopes = 0usize;
        for lane in [true, false] {
            loop {
                let queue = if lane {
                    &mut self.own
                } else {
                    &mut self.pending
                };
                let Some(next) = queue.front() else { break };
                if let Origin::Envelope(expires_ns) = next.origin {
                    if expires_ns < now_unix_ns {
                        queue.pop_front();
                        continue;
                    }
                    if envelopes == MAX_ENVELOPES_PER_EVENT {
                        break;
                    }
                }
                if batch.txs.len() >= limits.max_txs_per_event
                    || bytes + next.tx.len() > limits.max_batch_bytes
                {
                    return batch;
                }
                let next = queue.pop_front().expect("front exists");
                bytes += next.tx.len();
                if next.origin.is_envelope() {
                    envelopes += 1;
                } else {
                    self.pending_bytes -= next.tx.len();
                }
                batch.txs.push(next.tx);
                batch.submitted.push(next.submitted);
                batch.origins.push(next.origin);
                batch.own.push(next.own);
            }
        }
        batch
    }

    /// Puts a batch back in front, in its order (the event was not made).
    pub fn put_back(&mut self, batch: Batch) {
        let items = batch
            .txs
            .into_iter()
            .zip(batch.submitted)
            .zip(batch.origins)
            .zip(batch.own)
            .rev();
        for (((tx, submitted), origin), own) in items {
            if !origin.is_envelope() {
                self.pending_bytes += tx.len();
            }
            let item = PendingTx {
                tx,
                submitted,
                origin,
                own,
            };
            if own {
                self.own.push_front(item);
            } else {
                self.pending.push_front(item);
            }
        }
    }

    /// The own event `id` now carries `batch`: watch it (envelopes aside:
    /// their fate is followed in the order). Envelopes are told apart by
    /// their bytes, as [`Mempool::watch`] does after a restart, so both
    /// name a stale event's transactions by the same indices.
    pub fn carried(&mut self, id: EventId, batch: Batch) {
        let (mut txs, mut submitted) = (Vec::new(), Vec::new());
        for (tx, at) in batch.txs.into_iter().zip(batch.submitted) {
            if !is_envelope(&tx) {
                txs.push(tx);
                submitted.push(at);
            }
        }
        if !txs.is_empty() {
            self.start_watching(id, InFlight { submitted, txs });
        }
    }

    /// Watches a held own event found at recovery or in an installed state
    /// (its submit times are unknown; `now` stands in), unless it is
    /// watched already.
    pub fn watch(&mut self, event: &Event, now: Instant) {
        let txs: Vec<Vec<u8>> = event
            .transactions()
            .iter()
            .filter(|tx| !is_envelope(tx))
            .cloned()
            .collect();
        if txs.is_empty() || self.in_flight.contains_key(&event.id()) {
            return;
        }
        self.start_watching(
            event.id(),
            InFlight {
                submitted: vec![now; txs.len()],
                txs,
            },
        );
    }

    fn start_watching(&mut self, id: EventId, watched: InFlight) {
        self.in_flight_txs += watched.txs.len();
        self.in_flight_bytes += watched.txs.iter().map(Vec::len).sum::<usize>();
        if let Some(old) = self.in_flight.insert(id, watched) {
            self.forget_counts(&old);
        }
    }

    fn stop_watching(&mut self, id: &EventId) -> Option<InFlight> {
        let watched = self.in_flight.remove(id)?;
        self.forget_counts(&watched);
        Some(watched)
    }

    fn forget_counts(&mut self, watched: &InFlight) {
        self.in_flight_txs -= watched.txs.len();
        self.in_flight_bytes -= watched.txs.iter().map(Vec::len).sum::<usize>();
    }

    /// Transactions loaded from the ledger's `mempool` table at start.
    pub fn restore(&mut self, entries: Vec<(MempoolKey, Vec<u8>)>, now: Instant) {
        for (key, tx) in entries {
            self.queue_forward(Forwardable {
                key,
                tx,
                submitted: now,
                held: false,
            });
        }
    }

    /// What waits to be forwarded now (at the end of a recovery: restored,
    /// or found stale again by replay) may be in envelopes sealed before
    /// the restart, valid until the order's time passes `unix_ns` at most:
    /// it is not sealed again before. Anything that goes stale later was
    /// never sealed, and waits for nothing.
    pub fn hold_queued(&mut self, unix_ns: u64) {
        if self.forward_queue.is_empty() {
            return;
        }
        self.seal_after_ns = self.seal_after_ns.max(unix_ns);
        for item in &mut self.forward_queue {
            item.held = true;
        }
    }

    fn queue_forward(&mut self, item: Forwardable) {
        if !self.waiting.insert(item.key) {
            return;
        }
        self.forward_txs += 1;
        self.forward_bytes += item.tx.len();
        self.forward_queue.push_back(item);
    }

    fn unqueue_counts(&mut self, item: &Forwardable) {
        self.waiting.remove(&item.key);
        self.forward_txs -= 1;
        self.forward_bytes -= item.tx.len();
    }

    /// The event was ordered: returns its transactions' submit times.
    pub fn ordered(&mut self, id: &EventId) -> Option<Vec<Instant>> {
        self.stop_watching(id).map(|f| f.submitted)
    }

    /// The event went stale: its transactions wait to be forwarded under
    /// their durable names. Returns the ones to add to the ledger's table.
    pub fn stale(&mut self, id: &EventId) -> Vec<(MempoolKey, Vec<u8>)> {
        let Some(stale) = self.stop_watching(id) else {
            return Vec::new();
        };
        tracing::info!(
            event = %super::hex(&id.0),
            txs = stale.txs.len(),
            "own event went stale; forwarding its transactions"
        );
        let mut added = Vec::new();
        for (index, (tx, submitted)) in stale.txs.into_iter().zip(stale.submitted).enumerate() {
            let key = mempool_key(id, index);
            if self.waiting.contains(&key) {
                continue;
            }
            added.push((key, tx.clone()));
            self.queue_forward(Forwardable {
                key,
                tx,
                submitted,
                held: false,
            });
        }
        added
    }

    /// Envelopes whose expiry the order's time passed undelivered: their
    /// transactions go back to the queue (first), to be sealed again.
    pub fn expire_forwards(&mut self, order_time_ns: u64) {
        let expired: Vec<Tag> = self
            .forwarding
            .iter()
            .filter(|(_, s)| s.expires_ns < order_time_ns)
            .map(|(tag, _)| *tag)
            .collect();
        for tag in expired {
            let sealed = self.forwarding.remove(&tag).expect("listed above");
            tracing::info!(
                envelope = %super::hex(&tag),
                txs = sealed.items.len(),
                "forwarded transactions expired undelivered; sealing them again"
            );
            self.drop_own_copy(&tag);
            for item in sealed.items.into_iter().rev() {
                self.forward_queue.push_front(item);
            }
        }
    }

    /// Seals the queue into envelopes valid until now (`now.1`, Unix ns)
    /// plus `window`, puts them in the own lane and returns them (for the
    /// peers); held transactions wait until the order's time passes the
    /// hold.
    pub fn seal(
        &mut self,
        order_time_ns: u64,
        key: &SigningKey,
        network: &[u8; 32],
        (limits, window): (&Limits, Duration),
        now: (Instant, u64),
    ) -> Sealing {
        if order_time_ns > self.seal_after_ns {
            for item in &mut self.forward_queue {
                item.held = false;
            }
        }
        let (ready, held): (VecDeque<Forwardable>, VecDeque<Forwardable>) =
            std::mem::take(&mut self.forward_queue)
                .into_iter()
                .partition(|item| !item.held);
        self.forward_queue = held;
        let mut sealing = Sealing::default();
        // Written before envelopes existed (larger than an envelope can
        // hold, or starting with its tag): they cannot be forwarded.
        let max = max_forwardable_tx(limits);
        let (mut ready, unfit): (VecDeque<Forwardable>, VecDeque<Forwardable>) = ready
            .into_iter()
            .partition(|item| item.tx.len() <= max && !is_envelope(&item.tx));
        for item in unfit {
            tracing::error!(
                bytes = item.tx.len(),
                "a stale transaction cannot be forwarded (written by an older version); dropped"
            );
            self.unqueue_counts(&item);
            sealing.dropped.push(item.key);
        }
        // Based on the order's time if this node's clock is behind it: an
        // envelope must not be expired as it leaves.
        let expires_ns = now
            .1
            .max(order_time_ns)
            .saturating_add(window.as_nanos() as u64);
        while !ready.is_empty() {
            let mut items = Vec::new();
            let mut size = Envelope::sealed_len([]);
            while let Some(next) = ready.front() {
                // Every admitted transaction fits an envelope alone.
                if !items.is_empty() && !Envelope::fits(items.len(), size, next.tx.len(), limits) {
                    break;
                }
                let next = ready.pop_front().expect("front exists");
                size += Envelope::sealed_len([next.tx.len()]) - Envelope::sealed_len([]);
                items.push(next);
            }
            let marked: Vec<(u64, &[u8])> = items
                .iter()
                .map(|i| (mark(&i.key), i.tx.as_slice()))
                .collect();
            let bytes = Envelope::seal_marked(key, network, expires_ns, &marked);
            let tag = Envelope::tag_of(&bytes);
            self.forwarding.insert(tag, Sealed { expires_ns, items });
            self.push_own(bytes.clone(), now.0, Origin::Envelope(expires_ns));
            sealing.envelopes.push(bytes);
        }
        sealing
    }

    /// Drops this node's envelope `tag` from the own lane if no event took
    /// it yet (delivered by a peer's copy, or expired).
    fn drop_own_copy(&mut self, tag: &Tag) {
        self.own
            .retain(|p| !(p.origin.is_envelope() && Envelope::tag_of(&p.tx) == *tag));
    }

    /// Settles the sealed envelopes `delivered` remembers (after a state
    /// sync skipped the rounds that delivered them). Returns the names to
    /// remove from the ledger's table.
    pub fn settle_remembered(&mut self, delivered: &super::forward::Delivered) -> Vec<MempoolKey> {
        let tags: Vec<Tag> = self
            .forwarding
            .keys()
            .filter(|tag| delivered.contains(tag))
            .copied()
            .collect();
        tags.iter()
            .flat_map(|tag| self.delivered(tag, &[]).keys)
            .collect()
    }

    /// An envelope of this node's was delivered, holding transactions with
    /// these marks: they are done (and the envelope's copy still waiting
    /// for an own event is dropped). One it no longer follows (sealed
    /// before a restart) settles what the queue holds under the same
    /// marks: a mark names a durable entry, so replaying a delivery whose
    /// effect is already on disk settles nothing else.
    pub fn delivered(&mut self, tag: &Tag, marks: &[u64]) -> Settled {
        self.drop_own_copy(tag);
        let items = match self.forwarding.remove(tag) {
            Some(sealed) => sealed.items,
            None => {
                let mut found = Vec::new();
                for m in marks {
                    if let Some(at) = self.forward_queue.iter().position(|i| mark(&i.key) == *m) {
                        found.push(self.forward_queue.remove(at).expect("position is in range"));
                    }
                }
                found
            }
        };
        let mut settled = Settled::default();
        for item in items {
            self.unqueue_counts(&item);
            settled.keys.push(item.key);
            settled.submitted.push(item.submitted);
        }
        settled
    }
}

#[cfg(test)]
impl Mempool {
    fn watch_for_test(&mut self, id: EventId, txs: Vec<Vec<u8>>, now: Instant) {
        self.start_watching(
            id,
            InFlight {
                submitted: vec![now; txs.len()],
                txs,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::forward::{MAX_ENVELOPES_PER_EVENT, MAX_ENVELOPE_TXS};
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    /// Client load cannot hold back or crowd out the node's own reports:
    /// they are admitted beyond the client limits and taken first, and a
    /// batch put back keeps each in its lane.
    #[test]
    fn own_reports_have_their_own_lane() {
        let now = Instant::now();
        let mut pool = Mempool::new(2, 1 << 20);
        pool.admit(vec![1], SubmitId(1), now, &limits()).unwrap();
        pool.admit(vec![2], SubmitId(2), now, &limits()).unwrap();
        assert_eq!(
            pool.admit(vec![3], SubmitId(3), now, &limits()),
            Err(SubmitError::Busy(2))
        );
        pool.admit_own(vec![9], SubmitId(9), now, &limits())
            .unwrap();
        let small = Limits {
            max_txs_per_event: 2,
            ..limits()
        };
        let batch = pool.take_batch(&small, 0);
        assert_eq!(batch.txs, vec![vec![9], vec![1]]);
        pool.put_back(batch);
        assert_eq!(pool.pending_len(), 3);
        let batch = pool.take_batch(&limits(), 0);
        assert_eq!(batch.txs, vec![vec![9], vec![1], vec![2]]);
        for i in 0..MAX_OWN_REPORTS as u64 {
            pool.admit_own(vec![1], SubmitId(100 + i), now, &limits())
                .unwrap();
        }
        assert!(pool
            .admit_own(vec![1], SubmitId(1), now, &limits())
            .is_err());
    }

    const NET: [u8; 32] = [5; 32];

    fn seal_now(pool: &mut Mempool, order_time_ns: u64, now: Instant, at: u64) -> Vec<Vec<u8>> {
        pool.seal(
            order_time_ns,
            &signing_key(),
            &NET,
            (&limits(), WINDOW),
            (now, at),
        )
        .envelopes
    }
    const WINDOW: Duration = Duration::from_secs(10);
    const WINDOW_NS: u64 = 10_000_000_000;

    fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    #[test]
    fn a_stale_event_forwards_its_transactions_once() {
        let now = Instant::now();
        let mut pool = Mempool::new(10, 1 << 20);
        pool.admit(vec![1], SubmitId(1), now, &limits()).unwrap();
        pool.admit(vec![2], SubmitId(2), now, &limits()).unwrap();
        let batch = pool.take_batch(&limits(), 0);
        assert_eq!(batch.submitters(), vec![SubmitId(1), SubmitId(2)]);
        let id = EventId([9; 32]);
        pool.carried(id, batch);
        pool.admit(vec![3], SubmitId(3), now, &limits()).unwrap();
        let added = pool.stale(&id);
        assert_eq!(
            added,
            vec![
                (mempool_key(&id, 0), vec![1]),
                (mempool_key(&id, 1), vec![2])
            ]
        );
        // Finding the same staleness again (replay) adds nothing twice.
        assert!(pool.stale(&id).is_empty());
        assert!(pool.has_forwards());
        let envelopes = seal_now(&mut pool, 1, now, 1_000);
        assert_eq!(envelopes.len(), 1);
        let envelope = Envelope::open(&envelopes[0], &NET).unwrap();
        assert_eq!(envelope.txs, vec![vec![1], vec![2]]);
        assert_eq!(envelope.expires_ns, 1_000 + WINDOW_NS);
        // Sealed once: nothing more to seal.
        assert!(seal_now(&mut pool, 2, now, 2_000).is_empty());
        // The envelope goes first, nobody waits for it, and the event that
        // carries it watches only the fresh transaction.
        let batch = pool.take_batch(&limits(), 0);
        assert_eq!(batch.txs, vec![envelopes[0].clone(), vec![3]]);
        assert_eq!(batch.submitters(), vec![SubmitId(3)]);
        let carrier = EventId([8; 32]);
        pool.carried(carrier, batch);
        assert_eq!(pool.ordered(&carrier).map(|s| s.len()), Some(1));
        let settled = pool.delivered(&envelope.tag, &envelope.marks);
        assert_eq!(
            envelope.marks,
            vec![mark(&mempool_key(&id, 0)), mark(&mempool_key(&id, 1))]
        );
        assert_eq!(settled.keys, vec![mempool_key(&id, 0), mempool_key(&id, 1)]);
        assert_eq!(settled.submitted.len(), 2);
        assert!(!pool.has_forwards());
        assert_eq!(pool.pending_len(), 0);
        // Delivered again (another copy): nothing left to settle.
        assert_eq!(
            pool.delivered(&envelope.tag, &envelope.marks),
            Settled::default()
        );
    }

    #[test]
    fn an_expired_envelope_is_sealed_again_and_only_then() {
        let now = Instant::now();
        let mut pool = Mempool::new(10, 1 << 20);
        let id = EventId([9; 32]);
        pool.watch_for_test(id, vec![vec![1]], now);
        pool.stale(&id);
        let first = seal_now(&mut pool, 1, now, 1_000);
        let expiry = 1_000 + WINDOW_NS;
        pool.expire_forwards(expiry);
        assert!(seal_now(&mut pool, expiry, now, 2_000).is_empty());
        pool.expire_forwards(expiry + 1);
        let second = seal_now(&mut pool, expiry + 1, now, 2_000);
        assert_eq!(second.len(), 1);
        assert_ne!(first, second, "a new envelope, with a new expiry");
        assert_eq!(Envelope::open(&second[0], &NET).unwrap().txs, vec![vec![1]]);
        // The old one, should a copy come late, settles nothing.
        let old = Envelope::tag_of(&first[0]);
        assert_eq!(pool.delivered(&old, &[]), Settled::default());
        assert!(pool.has_forwards());
    }

    #[test]
    fn large_sets_are_sealed_in_several_envelopes() {
        let now = Instant::now();
        let mut pool = Mempool::new(10_000, 1 << 30);
        let id = EventId([9; 32]);
        let largest = max_forwardable_tx(&limits());
        let txs: Vec<Vec<u8>> = (0..MAX_ENVELOPE_TXS as u32 + 10)
            .map(|i| i.to_le_bytes().to_vec())
            .chain([vec![7u8; largest], vec![8u8; 10]])
            .collect();
        pool.watch_for_test(id, txs.clone(), now);
        pool.stale(&id);
        let envelopes = seal_now(&mut pool, 1, now, 1_000);
        let opened: Vec<Envelope> = envelopes
            .iter()
            .map(|e| Envelope::open(e, &NET).unwrap())
            .collect();
        assert!(opened.len() >= 3);
        let all: Vec<Vec<u8>> = opened.iter().flat_map(|e| e.txs.clone()).collect();
        assert_eq!(all, txs, "every transaction once, in order");
        // Each fits the event that will carry it; the largest admissible
        // transaction has one to itself.
        assert!(envelopes.iter().all(|e| e.len() <= limits().max_tx_bytes));
        assert!(opened.iter().any(|e| e.txs == [vec![7u8; largest]]));
        let mut pool = Mempool::new(10, 1 << 20);
        assert!(pool
            .admit(vec![1; largest], SubmitId(1), now, &limits())
            .is_ok());
        assert_eq!(
            pool.admit(vec![1; largest + 1], SubmitId(2), now, &limits()),
            Err(SubmitError::TooLarge {
                size: largest + 1,
                max: largest
            })
        );
    }

    #[test]
    fn restored_transactions_wait_out_older_envelopes() {
        let now = Instant::now();
        let mut pool = Mempool::new(10, 1 << 20);
        let stale = EventId([1; 32]);
        pool.restore(
            vec![
                (mempool_key(&stale, 0), vec![7]),
                (mempool_key(&stale, 1), vec![8]),
            ],
            now,
        );
        pool.hold_queued(5_000);
        // Replay finds the stale event's staleness again: already waiting.
        pool.watch_for_test(stale, vec![vec![7], vec![8]], now);
        assert!(pool.stale(&stale).is_empty());
        assert_eq!(pool.pending_len(), 2);
        assert!(seal_now(&mut pool, 5_000, now, 6_000).is_empty());
        // One that goes stale after the restart was never sealed: it does
        // not wait.
        let live = EventId([2; 32]);
        pool.watch_for_test(live, vec![vec![9]], now);
        pool.stale(&live);
        let sealed = seal_now(&mut pool, 5_000, now, 6_000);
        assert_eq!(Envelope::open(&sealed[0], &NET).unwrap().txs, vec![vec![9]]);
        // An envelope sealed before the restart is delivered: what it held
        // is settled by content.
        let settled = pool.delivered(&[1; 32], &[mark(&mempool_key(&stale, 0))]);
        assert_eq!(settled.keys, vec![mempool_key(&stale, 0)]);
        let sealed = seal_now(&mut pool, 5_001, now, 6_000);
        assert_eq!(Envelope::open(&sealed[0], &NET).unwrap().txs, vec![vec![8]]);
        // An event replayed with an envelope does not watch it.
        let key = crate::identity::Identity::generate();
        let carrier = dagger_consensus::UnsignedEvent {
            birth_round: 1,
            txs: vec![sealed[0].clone()],
            ..Default::default()
        }
        .sign(key.signing_key(), &[0; 32]);
        pool.watch(&carrier, now);
        assert_eq!(pool.in_flight_len(), 0);
    }

    #[test]
    fn peers_envelopes_are_carried_once_and_bounded() {
        let now = Instant::now();
        let carry = |pool: &mut Mempool, signer: u8, expires: u64, txs: &[Vec<u8>], at: u64| {
            let key = SigningKey::from_bytes(&[signer; 32]);
            let bytes = Envelope::seal(&key, &NET, expires, txs);
            let envelope = Envelope::open(&bytes, &NET).unwrap();
            let fresh = pool.may_carry(&envelope, bytes.len(), at)?;
            if fresh {
                pool.carry(&envelope, bytes, now, at);
            }
            Ok::<bool, ForwardError>(fresh)
        };
        let second = 1_000_000_000;
        let mut pool = Mempool::new(10, 1 << 20);
        assert_eq!(carry(&mut pool, 1, 5 * second, &[vec![1]], 0), Ok(true));
        assert_eq!(carry(&mut pool, 1, 5 * second, &[vec![1]], 0), Ok(false));
        let batch = pool.take_batch(&limits(), 0);
        assert_eq!(batch.txs.len(), 1);
        assert!(batch.submitters().is_empty());
        // Remembered a whole window even past its expiry: carried once.
        assert_eq!(
            carry(&mut pool, 1, 5 * second, &[vec![1]], 6 * second),
            Ok(false)
        );
        // About to expire: not worth carrying.
        assert_eq!(
            carry(&mut pool, 1, second / 2, &[vec![2]], 0),
            Err(ForwardError::Expired)
        );
        // A signer's share is bounded in count...
        let mut pool = Mempool::new(10, 1 << 20);
        for i in 0..MAX_CARRIED_PER_SIGNER as u64 {
            assert_eq!(carry(&mut pool, 1, 5 * second + i, &[vec![1]], 0), Ok(true));
        }
        assert!(matches!(
            carry(&mut pool, 1, 4 * second, &[vec![1]], 0),
            Err(ForwardError::SignerBusy(_))
        ));
        assert_eq!(carry(&mut pool, 2, 4 * second, &[vec![1]], 0), Ok(true));
        // ...and in bytes.
        let mut pool = Mempool::new(10, 1 << 20);
        let big = vec![vec![1u8; max_forwardable_tx(&limits())]];
        let fit = MAX_CARRIED_BYTES_PER_SIGNER / (64 << 10);
        for i in 0..fit as u64 {
            assert_eq!(carry(&mut pool, 1, 5 * second + i, &big, 0), Ok(true));
        }
        assert!(matches!(
            carry(&mut pool, 1, 4 * second, &big, 0),
            Err(ForwardError::SignerBusy(_))
        ));
        assert_eq!(carry(&mut pool, 2, 4 * second, &big, 0), Ok(true));
        // An expired envelope is dropped rather than carried; at most
        // MAX_ENVELOPES_PER_EVENT go into one event.
        let mut pool = Mempool::new(10, 1 << 20);
        for i in 0..MAX_ENVELOPES_PER_EVENT as u64 + 5 {
            assert_eq!(
                carry(&mut pool, 1 + (i % 3) as u8, 5 * second + i, &[vec![1]], 0),
                Ok(true)
            );
        }
        assert_eq!(
            pool.take_batch(&limits(), 0).txs.len(),
            MAX_ENVELOPES_PER_EVENT
        );
        assert_eq!(pool.take_batch(&limits(), 0).txs.len(), 5);
        assert_eq!(carry(&mut pool, 3, 2 * second, &[vec![9]], 0), Ok(true));
        assert!(pool.take_batch(&limits(), 3 * second).txs.is_empty());
    }

    #[test]
    fn limits_refuse_with_a_reason_and_forwarded_ones_bypass_them() {
        let now = Instant::now();
        let mut pool = Mempool::new(1, 4);
        assert_eq!(
            pool.admit(vec![], SubmitId(0), now, &limits()),
            Err(SubmitError::Empty)
        );
        pool.admit(vec![1, 2, 3], SubmitId(1), now, &limits())
            .unwrap();
        assert_eq!(
            pool.admit(vec![4], SubmitId(2), now, &limits()),
            Err(SubmitError::Busy(1))
        );
        let mut pool = Mempool::new(10, 4);
        pool.admit(vec![1, 2, 3], SubmitId(1), now, &limits())
            .unwrap();
        assert_eq!(
            pool.admit(vec![4, 5], SubmitId(2), now, &limits()),
            Err(SubmitError::BusyBytes(3))
        );
        pool.restore(vec![([3; 36], vec![0; 100])], now);
        assert_eq!(pool.pending_len(), 2);
    }

    /// Transactions an own event carries count against the limits until
    /// they are ordered: a node whose consensus is slow or stalled (it
    /// keeps signing events on its own chain) must not take transactions
    /// without end. Stale ones come back past the limits, and nothing is
    /// counted twice.
    #[test]
    fn carried_transactions_count_against_the_limits_until_ordered() {
        let now = Instant::now();
        let mut pool = Mempool::new(3, 1 << 20);
        for i in 0..3 {
            pool.admit(vec![i], SubmitId(i as u64), now, &limits())
                .unwrap();
        }
        let first = EventId([1; 32]);
        let batch = pool.take_batch(&limits(), 0);
        pool.carried(first, batch);
        assert_eq!(pool.pending_len(), 0);
        assert_eq!(
            pool.admit(vec![9], SubmitId(9), now, &limits()),
            Err(SubmitError::Busy(3))
        );
        // Watching the same event again (recovery) counts it once.
        pool.watch_for_test(first, vec![vec![0], vec![1], vec![2]], now);
        assert_eq!(
            pool.admit(vec![9], SubmitId(9), now, &limits()),
            Err(SubmitError::Busy(3))
        );
        // Stale: forwarded, still three unordered, sealed or not.
        assert_eq!(pool.stale(&first).len(), 3);
        assert_eq!(
            pool.admit(vec![9], SubmitId(9), now, &limits()),
            Err(SubmitError::Busy(3))
        );
        let envelopes = seal_now(&mut pool, 1, now, 1);
        assert_eq!(
            pool.admit(vec![9], SubmitId(9), now, &limits()),
            Err(SubmitError::Busy(3))
        );
        let tag = Envelope::tag_of(&envelopes[0]);
        assert_eq!(pool.delivered(&tag, &[]).keys.len(), 3);
        pool.admit(vec![9], SubmitId(9), now, &limits()).unwrap();

        let mut pool = Mempool::new(100, 10);
        pool.admit(vec![0; 8], SubmitId(1), now, &limits()).unwrap();
        let batch = pool.take_batch(&limits(), 0);
        pool.carried(EventId([3; 32]), batch);
        assert_eq!(
            pool.admit(vec![0; 3], SubmitId(2), now, &limits()),
            Err(SubmitError::BusyBytes(8))
        );
    }
}
