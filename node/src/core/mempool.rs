//! Transactions between `POST /tx` and the consensus order.
//!
//! A submitted transaction waits in `pending` until an own event carries
//! it; the submitter is answered once that event is durably stored, and
//! from then on the transaction must reach the order whatever happens. The
//! event is watched (`in_flight`) until consensus orders it. If it goes
//! stale instead (pruned unordered: created just before a crash and never
//! gossiped, or born where peers could no longer use it), its transactions
//! go back to the front of `pending` under a durable name (stale event id,
//! index) and are written to the ledger's `mempool` table in the same
//! write as the round that made the event stale; the own event that
//! carries them again removes them from that table in the transaction that
//! stores it. A restart therefore finds every acknowledged transaction
//! either in a held own event, in an own event replay will bring back, or
//! in the `mempool` table, never in two of them at once.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::Instant,
};

use dagger_consensus::{Event, EventId, Limits};

use super::SubmitError;
use crate::store::MempoolKey;

/// Own reports waiting for an event, at most (the node's components report
/// a few per lease and per chain change; far more means something loops).
pub const MAX_OWN_REPORTS: usize = 4_096;

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
    /// Acknowledged earlier; its stale event went away; durable under this
    /// name in the ledger's `mempool` table.
    Resubmitted(MempoolKey),
}

struct PendingTx {
    tx: Vec<u8>,
    submitted: Instant,
    origin: Origin,
    /// A report of this node's own components: it has a lane of its own,
    /// taken first, so outside load cannot hold it back.
    own: bool,
}

/// An own event's transactions, kept until consensus orders the event or
/// finds it stale.
struct InFlight {
    submitted: Vec<Instant>,
    txs: Vec<Vec<u8>>,
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
                Origin::Resubmitted(_) => None,
            })
            .collect()
    }

    /// Waiting transactions the event carries (removed from the ledger's
    /// `mempool` table with the event).
    pub fn taken(&self) -> Vec<MempoolKey> {
        self.origins
            .iter()
            .filter_map(|o| match o {
                Origin::Resubmitted(key) => Some(*key),
                Origin::Fresh(_) => None,
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

pub(crate) struct Mempool {
    pending: VecDeque<PendingTx>,
    /// The node's own reports, taken before `pending`.
    own: VecDeque<PendingTx>,
    pending_bytes: usize,
    /// Names of the resubmitted transactions in `pending`.
    waiting: HashSet<MempoolKey>,
    in_flight: HashMap<EventId, InFlight>,
    /// Transactions and bytes in `in_flight`.
    in_flight_txs: usize,
    in_flight_bytes: usize,
    /// Limits on everything admitted and not yet ordered (`pending` and
    /// `in_flight` together): if consensus cannot keep up, or stalls,
    /// submitters are told to come back instead of the node filling its
    /// memory and its own events with transactions it cannot order.
    max_txs: usize,
    max_bytes: usize,
}

impl Mempool {
    pub fn new(max_txs: usize, max_bytes: usize) -> Mempool {
        Mempool {
            pending: VecDeque::new(),
            own: VecDeque::new(),
            pending_bytes: 0,
            waiting: HashSet::new(),
            in_flight: HashMap::new(),
            in_flight_txs: 0,
            in_flight_bytes: 0,
            max_txs,
            max_bytes,
        }
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len() + self.own.len()
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.own.is_empty()
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

    /// Admits a new submission, or says why not. Resubmitted transactions
    /// bypass the limits: they were accepted already.
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
        if tx.len() > limits.max_tx_bytes {
            return Err(SubmitError::TooLarge {
                size: tx.len(),
                max: limits.max_tx_bytes,
            });
        }
        let unordered = self.pending.len() + self.in_flight_txs;
        if unordered >= self.max_txs {
            return Err(SubmitError::Busy(unordered));
        }
        let unordered_bytes = self.pending_bytes + self.in_flight_bytes;
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
        if tx.len() > limits.max_tx_bytes {
            return Err(SubmitError::TooLarge {
                size: tx.len(),
                max: limits.max_tx_bytes,
            });
        }
        if self.own.len() >= MAX_OWN_REPORTS {
            return Err(SubmitError::Busy(self.own.len()));
        }
        self.pending_bytes += tx.len();
        self.own.push_back(PendingTx {
            tx,
            submitted: now,
            origin: Origin::Fresh(id),
            own: true,
        });
        Ok(())
    }

    /// Takes what fits in one event: the node's own reports first, then
    /// submissions, oldest first.
    pub fn take_batch(&mut self, limits: &Limits) -> Batch {
        let mut batch = Batch::default();
        let mut bytes = 0usize;
        for lane in [true, false] {
            loop {
                let queue = if lane {
                    &mut self.own
                } else {
                    &mut self.pending
                };
                let Some(next) = queue.front() else { break };
                if batch.txs.len() >= limits.max_txs_per_event
                    || bytes + next.tx.len() > limits.max_batch_bytes
                {
                    return batch;
                }
                let next = queue.pop_front().expect("front exists");
                bytes += next.tx.len();
                self.pending_bytes -= next.tx.len();
                if let Origin::Resubmitted(key) = next.origin {
                    self.waiting.remove(&key);
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
            self.push_front(tx, submitted, origin, own);
        }
    }

    fn push_front(&mut self, tx: Vec<u8>, submitted: Instant, origin: Origin, own: bool) {
        if let Origin::Resubmitted(key) = origin {
            self.waiting.insert(key);
        }
        self.pending_bytes += tx.len();
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

    /// The own event `id` now carries `batch`: watch it.
    pub fn carried(&mut self, id: EventId, batch: Batch) {
        if !batch.txs.is_empty() {
            self.start_watching(
                id,
                InFlight {
                    submitted: batch.submitted,
                    txs: batch.txs,
                },
            );
        }
    }

    /// Watches a held own event found at recovery or in an installed state
    /// (its submit times are unknown; `now` stands in), unless it is
    /// watched already.
    pub fn watch(&mut self, event: &Event, now: Instant) {
        if event.transactions().is_empty() || self.in_flight.contains_key(&event.id()) {
            return;
        }
        self.start_watching(
            event.id(),
            InFlight {
                submitted: vec![now; event.transactions().len()],
                txs: event.transactions().to_vec(),
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

    /// An own event replayed from the ledger: watch it, and drop the
    /// resubmitted transactions it carries from `pending` (replay found its
    /// stale predecessor again before reaching it). Returns their names,
    /// to be removed from the ledger's table again.
    pub fn replayed_own(&mut self, event: &Event, now: Instant) -> Vec<MempoolKey> {
        let mut taken = Vec::new();
        for tx in event.transactions() {
            let found = self
                .pending
                .iter()
                .position(|p| matches!(p.origin, Origin::Resubmitted(_)) && p.tx == *tx);
            if let Some(at) = found {
                let p = self.pending.remove(at).expect("position is in range");
                self.pending_bytes -= p.tx.len();
                if let Origin::Resubmitted(key) = p.origin {
                    self.waiting.remove(&key);
                    taken.push(key);
                }
            }
        }
        self.watch(event, now);
        taken
    }

    /// Transactions loaded from the ledger's `mempool` table at start.
    pub fn restore(&mut self, entries: Vec<(MempoolKey, Vec<u8>)>, now: Instant) {
        for (key, tx) in entries.into_iter().rev() {
            if !self.waiting.contains(&key) {
                self.push_front(tx, now, Origin::Resubmitted(key), false);
            }
        }
    }

    /// The event was ordered: returns its transactions' submit times.
    pub fn ordered(&mut self, id: &EventId) -> Option<Vec<Instant>> {
        self.stop_watching(id).map(|f| f.submitted)
    }

    /// The event went stale: its transactions go back in front under their
    /// durable names. Returns the ones to add to the ledger's table.
    pub fn stale(&mut self, id: &EventId) -> Vec<(MempoolKey, Vec<u8>)> {
        let Some(stale) = self.stop_watching(id) else {
            return Vec::new();
        };
        tracing::info!(
            event = %super::hex(&id.0),
            txs = stale.txs.len(),
            "own event went stale; submitting its transactions again"
        );
        let mut added = Vec::new();
        let items = stale.txs.into_iter().zip(stale.submitted).enumerate().rev();
        for (index, (tx, submitted)) in items {
            let key = mempool_key(id, index);
            if self.waiting.contains(&key) {
                continue;
            }
            added.push((key, tx.clone()));
            self.push_front(tx, submitted, Origin::Resubmitted(key), false);
        }
        added.reverse();
        added
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
        let batch = pool.take_batch(&small);
        assert_eq!(batch.txs, vec![vec![9], vec![1]]);
        pool.put_back(batch);
        assert_eq!(pool.pending_len(), 3);
        let batch = pool.take_batch(&limits());
        assert_eq!(batch.txs, vec![vec![9], vec![1], vec![2]]);
        for i in 0..MAX_OWN_REPORTS as u64 {
            pool.admit_own(vec![1], SubmitId(100 + i), now, &limits())
                .unwrap();
        }
        assert!(pool
            .admit_own(vec![1], SubmitId(1), now, &limits())
            .is_err());
    }

    #[test]
    fn a_stale_event_requeues_its_transactions_once_in_front() {
        let now = Instant::now();
        let mut pool = Mempool::new(10, 1 << 20);
        pool.admit(vec![1], SubmitId(1), now, &limits()).unwrap();
        pool.admit(vec![2], SubmitId(2), now, &limits()).unwrap();
        let batch = pool.take_batch(&limits());
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
        let batch = pool.take_batch(&limits());
        assert_eq!(batch.txs, vec![vec![1], vec![2], vec![3]]);
        assert_eq!(
            batch.taken(),
            vec![mempool_key(&id, 0), mempool_key(&id, 1)]
        );
        assert_eq!(batch.submitters(), vec![SubmitId(3)]);
    }

    #[test]
    fn restored_and_replayed_transactions_are_not_doubled() {
        let now = Instant::now();
        let mut pool = Mempool::new(10, 1 << 20);
        let stale = EventId([1; 32]);
        pool.restore(vec![(mempool_key(&stale, 0), vec![7])], now);
        // Replay finds the stale event's staleness again: already waiting.
        pool.watch_for_test(stale, vec![vec![7]], now);
        assert!(pool.stale(&stale).is_empty());
        assert_eq!(pool.pending_len(), 1);
        // A replayed own event carried it: it leaves `pending`, and its name
        // is returned for removal from the ledger.
        let key = crate::identity::Identity::generate();
        let carrier = dagger_consensus::UnsignedEvent {
            birth_round: 1,
            txs: vec![vec![7]],
            ..Default::default()
        }
        .sign(key.signing_key(), &[0; 32]);
        assert_eq!(
            pool.replayed_own(&carrier, now),
            vec![mempool_key(&stale, 0)]
        );
        assert_eq!(pool.pending_len(), 0);
        assert_eq!(pool.in_flight_len(), 1);
    }

    #[test]
    fn limits_refuse_with_a_reason_and_resubmissions_bypass_them() {
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
        let batch = pool.take_batch(&limits());
        pool.carried(first, batch);
        assert_eq!(pool.pending_len(), 0);
        assert_eq!(
            pool.admit(vec![9], SubmitId(9), now, &limits()),
            Err(SubmitError::Busy(3))
        );
        // Stale: back in `pending`, still three unordered.
        assert_eq!(pool.stale(&first).len(), 3);
        assert_eq!(
            pool.admit(vec![9], SubmitId(9), now, &limits()),
            Err(SubmitError::Busy(3))
        );
        let second = EventId([2; 32]);
        let batch = pool.take_batch(&limits());
        pool.carried(second, batch);
        // Watching the same event again (recovery) counts it once.
        pool.watch_for_test(second, vec![vec![0], vec![1], vec![2]], now);
        assert_eq!(
            pool.admit(vec![9], SubmitId(9), now, &limits()),
            Err(SubmitError::Busy(3))
        );
        assert_eq!(pool.ordered(&second).map(|s| s.len()), Some(3));
        pool.admit(vec![9], SubmitId(9), now, &limits()).unwrap();

        let mut pool = Mempool::new(100, 10);
        pool.admit(vec![0; 8], SubmitId(1), now, &limits()).unwrap();
        let batch = pool.take_batch(&limits());
        pool.carried(EventId([3; 32]), batch);
        assert_eq!(
            pool.admit(vec![0; 3], SubmitId(2), now, &limits()),
            Err(SubmitError::BusyBytes(8))
        );
    }
}
