//! The node's ledger in redb: every event it accepted (in acceptance order,
//! which is what a restart replays), the consensus order and its
//! transactions, the node's own sequence number, and consensus snapshots
//! that let old events be deleted from disk.
//!
//! Tables:
//! - `events`: acceptance index → canonical event bytes
//! - `event_ids`: event id → acceptance index
//! - `order`: consensus position → [`OrderRecord`]
//! - `txs`: transaction position in the order → [`TxRecord`]
//! - `meta`: small named values (own sequence, snapshot, cursors)
//! - `batches`: acceptance index of the first event of every accepted batch
//!   (a restart replays batch by batch, exactly as the events were taken)
//! - `mempool`: acknowledged transactions whose own event went stale and
//!   that no newer own event carries yet (see `core::mempool`)
//! - `checkpoints`: snapshot round → [`Checkpoint`] (what peers vouch for
//!   in state sync; the last [`KEPT_CHECKPOINTS`])

mod flusher;
mod records;
mod wal;

use std::{
    path::Path,
    sync::{atomic::Ordering, Mutex},
    time::{Duration, Instant},
};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

pub use records::{OrderRecord, PageLimit, TxRecord};

pub use crate::core::Checkpoint;

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const EVENT_IDS: TableDefinition<[u8; 32], u64> = TableDefinition::new("event_ids");
const ORDER: TableDefinition<u64, &[u8]> = TableDefinition::new("order");
const TXS: TableDefinition<u64, &[u8]> = TableDefinition::new("txs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BATCHES: TableDefinition<u64, ()> = TableDefinition::new("batches");
const MEMPOOL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("mempool");
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
/// Attestations to post: subject seed → encoded entry (see `chain::attester`).
const OUTBOX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outbox");
/// Chain watcher cursor: account → digest of what was last reported about it.
const CURSOR: TableDefinition<[u8; 32], [u8; 32]> = TableDefinition::new("cursor");

/// The latest consensus snapshot, under [`SNAPSHOT_KEY`]. A table of its own:
/// a snapshot can weigh tens of megabytes, and a redb leaf holding it would
/// be copied by every commit that touches a small value beside it (`meta`
/// changes with every own event).
const SNAPSHOTS: TableDefinition<u8, &[u8]> = TableDefinition::new("snapshot");
const SNAPSHOT_KEY: u8 = 0;

/// The highest sequence number this node ever signed (its self-fork guard).
const OWN_SEQ: &str = "own_seq";
/// Where ledgers written before [`SNAPSHOTS`] existed kept the snapshot
/// (moved out when such a ledger is opened).
const OLD_SNAPSHOT: &str = "snapshot";
/// The acceptance index the stored snapshot covers.
const SNAPSHOT_INDEX: &str = "snapshot_index";
/// Position of the first event-log record redb does not hold (see `wal`);
/// written by every transaction that applies records.
const LOG_NEXT: &str = "event_log_next";
/// Order position up to which ordered events were deleted from disk.
const FORGOTTEN_THROUGH: &str = "forgotten_through";
/// The checkpoint of the stored snapshot (they are written together).
const STATE_CHECKPOINT: &str = "state_checkpoint";
/// Set by a state sync: the order is contiguous from here on; positions
/// before it (back to what the node recorded itself) are not on disk.
const ORDER_BASE: &str = "order_base";
/// Ordered transactions below this position were pruned. (Order records
/// need no such mark: their readers stop at the first missing position.)
const TXS_PRUNED_BELOW: &str = "txs_pruned_below";

/// How much of the order a node keeps on disk. The order itself is final
/// and every node holds the same; what a client or peer may still read is
/// the newest `txs` transactions and the newest `order` event records (and
/// never an event record whose event is still kept for catch-ups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub txs: u64,
    pub order: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            txs: DEFAULT_RETAIN_TXS,
            order: DEFAULT_RETAIN_ORDER,
        }
    }
}

/// Ten million transactions: about 1.3 GB of 64-byte ones with their
/// records, days of a busy network.
pub const DEFAULT_RETAIN_TXS: u64 = 10_000_000;
/// Order records (80 bytes each) are pruned the same way.
pub const DEFAULT_RETAIN_ORDER: u64 = 10_000_000;
/// At most this many records are pruned per commit, so a lowered retention
/// is caught up over a few commits instead of one long stall.
const PRUNE_PER_COMMIT: usize = 4_096;

/// Checkpoints kept for peers that ask (about 130 000 rounds at one per
/// snapshot round; 88 bytes each).
pub const KEPT_CHECKPOINTS: u64 = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the ledger at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("ledger I/O: {0}")]
    Db(String),
    #[error("corrupt ledger record in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("the event log is not open")]
    LogClosed,
    #[error(
        "the ledger lacks ordered transactions from position {missing} (next stored: {next}); \
         ask another node"
    )]
    Gap { missing: u64, next: u64 },
    #[error(
        "this node keeps the order from position {starts_at} on (older transactions were \
         pruned, see `retain_ordered_txs`); ask an archive or page from there"
    )]
    Pruned { starts_at: u64 },
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
db_err!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// An outbox row: (subject key, encoded entry).
pub type OutboxRow = (Vec<u8>, Vec<u8>);
/// A cursor row: (account, digest of what was last reported about it).
pub type CursorRow = ([u8; 32], [u8; 32]);

/// The durable name of an acknowledged transaction waiting to be forwarded:
/// the stale own event that carried it, and its index there.
pub type MempoolKey = [u8; 36];

/// One change to the ledger, applied in the order given.
#[derive(Debug, Clone)]
pub enum Write {
    /// Events accepted (in acceptance order); `own_seq` when one is ours.
    /// `mempool_taken`: waiting transactions that are done (removed in the
    /// same transaction; ledgers written before envelopes also named here
    /// those an own event carried again).
    Events {
        events: Vec<([u8; 32], Vec<u8>)>,
        own_seq: Option<u64>,
        mempool_taken: Vec<MempoolKey>,
    },
    /// A decided round: its order records and transactions, and optionally a
    /// snapshot after it plus the pruned events it makes deletable.
    Decided {
        order: Vec<OrderRecord>,
        txs: Vec<TxRecord>,
        snapshot: Option<Vec<u8>>,
        /// Stale events (dropped from memory, never ordered): deleted with
        /// the snapshot. Ordered ones stay for catch-ups until
        /// `forget_ordered_through_round`.
        pruned: Vec<[u8; 32]>,
        /// Delete ordered events received in this round or earlier.
        forget_ordered_through_round: Option<u64>,
        /// Transactions of own events that went stale in this round: kept
        /// until an envelope holding them is delivered...
        mempool_added: Vec<(MempoolKey, Vec<u8>)>,
        /// ...as envelopes of this round were.
        mempool_removed: Vec<MempoolKey>,
        /// At a snapshot round: its checkpoint (also the stored snapshot's,
        /// when the write carries one).
        checkpoint: Option<Checkpoint>,
    },
    /// State sync: replace everything consensus rebuilds from (events,
    /// batches, snapshot) by a snapshot taken by peers, whose checkpoint
    /// they vouched for. The order continues from the checkpoint; what this
    /// node recorded before stays, the hole between is explicit.
    Install {
        snapshot: Vec<u8>,
        checkpoint: Checkpoint,
        mempool_added: Vec<(MempoolKey, Vec<u8>)>,
    },
}

impl Write {
    /// About how many bytes the write stores (its payloads).
    pub fn size_hint(&self) -> usize {
        match self {
            Write::Events { events, .. } => events.iter().map(|(_, b)| b.len() + 32).sum(),
            Write::Decided {
                order,
                txs,
                snapshot,
                mempool_added,
                ..
            } => {
                order.len() * 64
                    + txs.iter().map(|t| t.tx.len() + 48).sum::<usize>()
                    + snapshot.as_ref().map_or(0, Vec::len)
                    + mempool_added
                        .iter()
                        .map(|(_, t)| t.len() + 36)
                        .sum::<usize>()
            }
            Write::Install { snapshot, .. } => snapshot.len(),
        }
    }
}

/// What a restart starts from.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The latest consensus snapshot, if one was taken.
    pub snapshot: Option<Vec<u8>>,
    /// Events accepted after the snapshot, in acceptance order.
    pub events: Vec<Vec<u8>>,
    /// Where in `events` each accepted batch starts (ascending, from 0).
    pub batch_starts: Vec<usize>,
    /// Highest own sequence ever signed.
    pub own_seq: Option<u64>,
    /// Next acceptance index.
    pub next_index: u64,
    /// Acknowledged transactions waiting for a new own event.
    pub mempool: Vec<(MempoolKey, Vec<u8>)>,
    /// The checkpoint of `snapshot`, if one was recorded with it.
    pub checkpoint: Option<Checkpoint>,
}

/// What the consensus core reads from the ledger (it never writes
/// directly: its writes are outputs the driver applies).
pub trait LedgerView: Send + Sync {
    /// The order record at `position`, if recorded.
    fn order_record(&self, position: u64) -> Result<Option<OrderRecord>, StoreError>;
    /// Order records from `from`, at most `limit`.
    fn order_from(&self, from: u64, limit: usize) -> Result<Vec<OrderRecord>, StoreError>;
    /// A stored event's canonical bytes.
    fn event(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Events stored (for status).
    fn event_count(&self) -> Result<u64, StoreError>;
}

impl LedgerView for Store {
    fn order_record(&self, position: u64) -> Result<Option<OrderRecord>, StoreError> {
        Ok(Store::order_from(self, position, 1)?
            .into_iter()
            .find(|r| r.position == position))
    }
    fn order_from(&self, from: u64, limit: usize) -> Result<Vec<OrderRecord>, StoreError> {
        Store::order_from(self, from, limit)
    }
    fn event(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Store::event(self, id)
    }
    fn event_count(&self) -> Result<u64, StoreError> {
        Store::event_count(self)
    }
}

/// Shared by the core (the only writer) and the API (readers): redb lets
/// readers proceed beside a writer.
pub struct Store {
    db: Database,
    next_index: std::sync::atomic::AtomicU64,
    retain_txs: std::sync::atomic::AtomicU64,
    retain_order: std::sync::atomic::AtomicU64,
    log: Mutex<LogState>,
    _flusher: flusher::Flusher,
}

/// The event log and when redb was last made durable.
struct LogState {
    /// Open once `Store::open` has applied what an earlier run left.
    log: Option<wal::EventLog>,
    last_durable: Instant,
}

/// redb is made durable (and the event log started afresh) this often
/// while events flow, or when the log grows past [`LOG_MAX_BYTES`]. A
/// durable redb commit stalls the writer for milliseconds (tens under load,
/// see `docs/PERFORMANCE.md`), so it is rare; the log bounds what a restart
/// replays.
const DURABLE_EVERY: Duration = Duration::from_secs(30);
const LOG_MAX_BYTES: u64 = 64 << 20;

const LOG_FILE: &str = "events.log";
const LEDGER_FILE: &str = "ledger.redb";

/// redb's page cache (its default, 1 GiB, lets a node's memory grow with
/// the order it keeps on disk). Consensus holds what it needs in memory;
/// the ledger is read for catch-ups and lookups.
const CACHE_BYTES: usize = 32 << 20;

impl Store {
    /// Opens (or creates) the ledger under `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join(LEDGER_FILE))
            .map_err(|e| open_err(e.to_string()))?;
        let txn = db.begin_write()?;
        {
            txn.open_table(EVENTS)?;
            txn.open_table(EVENT_IDS)?;
            txn.open_table(ORDER)?;
            txn.open_table(TXS)?;
            let mut meta = txn.open_table(META)?;
            let old = meta.remove(OLD_SNAPSHOT)?.map(|v| v.value().to_vec());
            let mut snapshots = txn.open_table(SNAPSHOTS)?;
            if let Some(old) = old {
                snapshots.insert(SNAPSHOT_KEY, old.as_slice())?;
            }
            txn.open_table(BATCHES)?;
            txn.open_table(MEMPOOL)?;
            txn.open_table(CHECKPOINTS)?;
            txn.open_table(OUTBOX)?;
            txn.open_table(CURSOR)?;
        }
        txn.commit()?;
        let applied = {
            let txn = db.begin_read()?;
            match txn.open_table(META)?.get(LOG_NEXT)? {
                Some(v) => read_u64(v.value(), "meta")?,
                None => 0,
            }
        };
        let log_path = dir.join(LOG_FILE);
        let found = wal::EventLog::read(&log_path)?;
        let store = Store {
            db,
            next_index: std::sync::atomic::AtomicU64::new(0),
            retain_txs: std::sync::atomic::AtomicU64::new(DEFAULT_RETAIN_TXS),
            retain_order: std::sync::atomic::AtomicU64::new(DEFAULT_RETAIN_ORDER),
            log: Mutex::new(LogState {
                log: None,
                last_durable: Instant::now(),
            }),
            _flusher: flusher::Flusher::start(&dir.join(LEDGER_FILE))
                .map_err(|e| open_err(e.to_string()))?,
        };
        let next = store.last_event_index()?.map_or(0, |i| i + 1);
        store.next_index.store(next, Ordering::SeqCst);
        let mut log_next = applied;
        if let Some(found) = found {
            // Records redb lacks: everything from position `applied` on.
            let skip = applied.saturating_sub(found.first) as usize;
            let missing = found.writes.get(skip..).unwrap_or_default();
            if !missing.is_empty() {
                tracing::info!(
                    records = missing.len(),
                    "applying the event log to the ledger"
                );
            }
            log_next = log_next.max(found.end());
            // Durable before the old file is replaced.
            store.commit_marked(missing, true, Some(log_next))?;
        }
        store.lock_log().log = Some(wal::EventLog::create(&log_path, log_next)?);
        Ok(store)
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self) -> u64 {
        self.next_index.load(Ordering::SeqCst)
    }

    /// How much of the order to keep from now on (at least one of each).
    pub fn set_retention(&self, retention: Retention) {
        self.retain_txs
            .store(retention.txs.max(1), Ordering::Relaxed);
        self.retain_order
            .store(retention.order.max(1), Ordering::Relaxed);
    }

    /// Where the readable order of transactions starts: after a state sync
    /// or pruning, later than 0.
    pub fn txs_start(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let base = match meta.get(ORDER_BASE)? {
            Some(v) => Checkpoint::decode(v.value())?.next_tx,
            None => 0,
        };
        Ok(base.max(meta_u64(&meta, TXS_PRUNED_BELOW)?))
    }

    fn last_event_index(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let last = events.last()?.map(|(k, _)| k.value());
        Ok(last)
    }

    /// Everything a restart needs, read in one consistent snapshot.
    pub fn recover(&self) -> Result<Recovered, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let snapshot = txn
            .open_table(SNAPSHOTS)?
            .get(SNAPSHOT_KEY)?
            .map(|v| v.value().to_vec());
        let snapshot_index = match meta.get(SNAPSHOT_INDEX)? {
            Some(v) => Some(read_u64(v.value(), "meta")?),
            None => None,
        };
        let own_seq = match meta.get(OWN_SEQ)? {
            Some(v) => Some(read_u64(v.value(), "meta")?),
            None => None,
        };
        let events_table = txn.open_table(EVENTS)?;
        let from = snapshot_index.map_or(0, |i| i + 1);
        let batches_table = txn.open_table(BATCHES)?;
        let mut starts = std::collections::VecDeque::new();
        for entry in batches_table.range(from..)? {
            starts.push_back(entry?.0.value());
        }
        let mut events = Vec::new();
        let mut batch_starts = Vec::new();
        let mut last = None;
        for entry in events_table.range(from..)? {
            let (k, v) = entry?;
            let index = k.value();
            // A batch starts here if a recorded start lies between the
            // previous stored event and this one (deleted events leave gaps).
            let mut starts_here = batch_starts.is_empty();
            while starts.front().is_some_and(|&s| s <= index) {
                starts.pop_front();
                starts_here = true;
            }
            if starts_here {
                batch_starts.push(events.len());
            }
            last = Some(index);
            events.push(v.value().to_vec());
        }
        let mut mempool = Vec::new();
        for entry in txn.open_table(MEMPOOL)?.iter()? {
            let (k, v) = entry?;
            let key: MempoolKey = k.value().try_into().map_err(|_| StoreError::Corrupt {
                table: "mempool",
                reason: format!("key of {} bytes", k.value().len()),
            })?;
            mempool.push((key, v.value().to_vec()));
        }
        let checkpoint = match meta.get(STATE_CHECKPOINT)? {
            Some(v) => Some(Checkpoint::decode(v.value())?),
            None => None,
        };
        Ok(Recovered {
            snapshot,
            events,
            batch_starts,
            own_seq,
            next_index: last.map_or(self.next(), |l| l + 1).max(self.next()),
            mempool,
            checkpoint,
        })
    }

    /// Appends the `Events` writes among `writes` to the event log; with
    /// `sync` they (and everything logged before) are durable when it
    /// returns. Apply the same writes with [`Store::apply`] afterwards, in
    /// the same order. A state install is never logged: apply it directly.
    pub fn log(&self, writes: &[Write], sync: bool) -> Result<(), StoreError> {
        let mut state = self.lock_log();
        let log = state.log.as_mut().ok_or(StoreError::LogClosed)?;
        log.append(writes, sync).map(|_| ())
    }

    /// Applies writes to redb, in one transaction. redb itself is made
    /// durable only now and then (every [`DURABLE_EVERY`], when the event
    /// log is large, and for a state install, which the log does not hold);
    /// each time the log starts a fresh file.
    pub fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut state = self.lock_log();
        let since = state.last_durable.elapsed();
        let log = state.log.as_mut().ok_or(StoreError::LogClosed)?;
        let install = writes.iter().any(|w| matches!(w, Write::Install { .. }));
        // Every record logged so far is among `writes` or applied before.
        let log_next = log.next();
        if !install && since < DURABLE_EVERY && log.len() < LOG_MAX_BYTES {
            return self.commit_marked(writes, false, Some(log_next));
        }
        self.commit_durably(&mut state, writes)
    }

    /// Makes redb durable and starts a fresh event log (a clean shutdown:
    /// the next start has nothing to apply).
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut state = self.lock_log();
        self.commit_durably(&mut state, &[])
    }

    /// Applies `writes` (after every logged record) in a durable commit, then
    /// starts a fresh event log: redb now holds everything it held.
    fn commit_durably(&self, state: &mut LogState, writes: &[Write]) -> Result<(), StoreError> {
        let log = state.log.as_mut().ok_or(StoreError::LogClosed)?;
        let log_next = log.next();
        let started = Instant::now();
        self.commit_marked(writes, true, Some(log_next))?;
        *log = wal::EventLog::create(log.path(), log_next)?;
        state.last_durable = Instant::now();
        tracing::debug!(
            took_us = started.elapsed().as_micros() as u64,
            "ledger made durable"
        );
        Ok(())
    }

    /// Applies writes in order, in one transaction, outside the event log
    /// (replay's repairs at start-up, tests); `durable` forces it to disk
    /// before returning. The running node writes through [`Store::log`] and
    /// [`Store::apply`].
    pub fn commit(&self, writes: &[Write], durable: bool) -> Result<(), StoreError> {
        self.commit_marked(writes, durable, None)
    }

    /// [`Store::commit`], recording that redb now holds the event-log
    /// records before position `log_next` when given.
    fn commit_marked(
        &self,
        writes: &[Write],
        durable: bool,
        log_next: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        let mut index = self.next();
        {
            let mut events = txn.open_table(EVENTS)?;
            let mut ids = txn.open_table(EVENT_IDS)?;
            let mut order_table = txn.open_table(ORDER)?;
            let mut tx_table = txn.open_table(TXS)?;
            let mut meta = txn.open_table(META)?;
            let mut batches = txn.open_table(BATCHES)?;
            let mut mempool = txn.open_table(MEMPOOL)?;
            let mut checkpoints = txn.open_table(CHECKPOINTS)?;
            let mut snapshots = txn.open_table(SNAPSHOTS)?;
            if let Some(next) = log_next {
                meta.insert(LOG_NEXT, next.to_le_bytes().as_slice())?;
            }
            for write in writes {
                match write {
                    Write::Events {
                        events: batch,
                        own_seq,
                        mempool_taken,
                    } => {
                        let first = index;
                        for (id, bytes) in batch {
                            if ids.get(*id)?.is_some() {
                                continue;
                            }
                            if index == first {
                                batches.insert(index, ())?;
                            }
                            events.insert(index, bytes.as_slice())?;
                            ids.insert(*id, index)?;
                            index += 1;
                        }
                        if let Some(seq) = own_seq {
                            meta.insert(OWN_SEQ, seq.to_le_bytes().as_slice())?;
                        }
                        for key in mempool_taken {
                            mempool.remove(key.as_slice())?;
                        }
                    }
                    Write::Decided {
                        order,
                        txs,
                        snapshot,
                        pruned,
                        forget_ordered_through_round,
                        mempool_added,
                        mempool_removed,
                        checkpoint,
                    } => {
                        for (key, tx) in mempool_added {
                            mempool.insert(key.as_slice(), tx.as_slice())?;
                        }
                        for key in mempool_removed {
                            mempool.remove(key.as_slice())?;
                        }
                        if let Some(checkpoint) = checkpoint {
                            checkpoints.insert(checkpoint.round, checkpoint.encode().as_slice())?;
                            if snapshot.is_some() {
                                meta.insert(STATE_CHECKPOINT, checkpoint.encode().as_slice())?;
                            }
                            let keep_from = checkpoint.round.saturating_sub(
                                KEPT_CHECKPOINTS * crate::core::SNAPSHOT_EVERY_ROUNDS,
                            );
                            let old: Vec<u64> = checkpoints
                                .range(..keep_from)?
                                .map(|entry| entry.map(|(k, _)| k.value()))
                                .collect::<Result<_, _>>()?;
                            for round in old {
                                checkpoints.remove(round)?;
                            }
                        }
                        for record in order {
                            order_table.insert(record.position, record.encode().as_slice())?;
                        }
                        for record in txs {
                            tx_table.insert(record.position, record.encode().as_slice())?;
                        }
                        if let Some(last) = txs.last() {
                            let keep = self.retain_txs.load(Ordering::Relaxed);
                            let cut = (last.position + 1).saturating_sub(keep);
                            if let Some(below) = prune_below(&mut tx_table, cut)? {
                                let below = below.max(meta_u64(&meta, TXS_PRUNED_BELOW)?);
                                meta.insert(TXS_PRUNED_BELOW, below.to_le_bytes().as_slice())?;
                            }
                        }
                        if let Some(snapshot) = snapshot {
                            // The snapshot covers every event accepted before it.
                            snapshots.insert(SNAPSHOT_KEY, snapshot.as_slice())?;
                            match index.checked_sub(1) {
                                Some(covered) => {
                                    meta.insert(SNAPSHOT_INDEX, covered.to_le_bytes().as_slice())?
                                }
                                None => meta.remove(SNAPSHOT_INDEX)?,
                            };
                            // Batch starts before it are never replayed again.
                            let covered: Vec<u64> = batches
                                .range(..index)?
                                .map(|entry| entry.map(|(k, _)| k.value()))
                                .collect::<Result<_, _>>()?;
                            for start in covered {
                                batches.remove(start)?;
                            }
                            // Stale events (pruned, never ordered) are no longer
                            // needed once a snapshot taken after their pruning
                            // is stored; ordered ones serve catch-ups a while.
                            for id in pruned {
                                if let Some(at) = ids.remove(*id)? {
                                    events.remove(at.value())?;
                                }
                            }
                        }
                        if let Some(through) = forget_ordered_through_round {
                            let from = meta_u64(&meta, FORGOTTEN_THROUGH)?;
                            let mut next = from;
                            for entry in order_table.range(from..)? {
                                let (position, bytes) = entry?;
                                let record = OrderRecord::decode(bytes.value())?;
                                if record.round_received > *through {
                                    break;
                                }
                                if let Some(at) = ids.remove(record.event_id)? {
                                    events.remove(at.value())?;
                                }
                                next = position.value() + 1;
                            }
                            meta.insert(FORGOTTEN_THROUGH, next.to_le_bytes().as_slice())?;
                            // Event records whose events are forgotten, past
                            // the retention, go too.
                            let keep = self.retain_order.load(Ordering::Relaxed);
                            let newest = order_table
                                .last()?
                                .map_or(0, |(position, _)| position.value() + 1);
                            let cut = newest.saturating_sub(keep).min(next);
                            prune_below(&mut order_table, cut)?;
                        }
                    }
                    Write::Install {
                        snapshot,
                        checkpoint,
                        mempool_added,
                    } => {
                        // Nothing stored so far is replayed again: the
                        // snapshot replaces it.
                        let stored: Vec<(u64, [u8; 32])> = ids
                            .iter()?
                            .map(|entry| entry.map(|(id, at)| (at.value(), id.value())))
                            .collect::<Result<_, _>>()?;
                        for (at, id) in stored {
                            events.remove(at)?;
                            ids.remove(id)?;
                        }
                        let starts: Vec<u64> = batches
                            .iter()?
                            .map(|entry| entry.map(|(k, _)| k.value()))
                            .collect::<Result<_, _>>()?;
                        for start in starts {
                            batches.remove(start)?;
                        }
                        snapshots.insert(SNAPSHOT_KEY, snapshot.as_slice())?;
                        match index.checked_sub(1) {
                            Some(covered) => {
                                meta.insert(SNAPSHOT_INDEX, covered.to_le_bytes().as_slice())?
                            }
                            None => meta.remove(SNAPSHOT_INDEX)?,
                        };
                        meta.insert(STATE_CHECKPOINT, checkpoint.encode().as_slice())?;
                        meta.insert(ORDER_BASE, checkpoint.encode().as_slice())?;
                        meta.insert(
                            FORGOTTEN_THROUGH,
                            checkpoint.ordered.to_le_bytes().as_slice(),
                        )?;
                        checkpoints.insert(checkpoint.round, checkpoint.encode().as_slice())?;
                        for (key, tx) in mempool_added {
                            mempool.insert(key.as_slice(), tx.as_slice())?;
                        }
                    }
                }
            }
        }
        txn.commit()?;
        self.next_index.store(index, Ordering::SeqCst);
        Ok(())
    }

    /// A stored event's bytes by id (events still held on disk).
    pub fn event(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let ids = txn.open_table(EVENT_IDS)?;
        let Some(index) = ids.get(*id)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let events = txn.open_table(EVENTS)?;
        Ok(events.get(index)?.map(|v| v.value().to_vec()))
    }

    pub fn event_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(EVENTS)?.len()?)
    }

    /// Ordered transactions from position `from`, within `limit`.
    pub fn txs_from(
        &self,
        from: u64,
        limit: impl Into<PageLimit>,
    ) -> Result<Vec<TxRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TXS)?;
        limit.into().take(table.range(from..)?.map(|entry| {
            let (_, v) = entry?;
            TxRecord::decode(v.value())
        }))
    }

    /// The latest checkpoints, newest first, at most `limit`.
    pub fn checkpoints(&self, limit: usize) -> Result<Vec<Checkpoint>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CHECKPOINTS)?;
        let mut out = Vec::new();
        for entry in table.iter()?.rev().take(limit) {
            out.push(Checkpoint::decode(entry?.1.value())?);
        }
        Ok(out)
    }

    /// The stored snapshot and its checkpoint, if the snapshot has one: what
    /// this node serves to a peer that state-syncs.
    pub fn state(&self) -> Result<Option<(Vec<u8>, Checkpoint)>, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let snapshots = txn.open_table(SNAPSHOTS)?;
        let (Some(snapshot), Some(checkpoint)) =
            (snapshots.get(SNAPSHOT_KEY)?, meta.get(STATE_CHECKPOINT)?)
        else {
            return Ok(None);
        };
        Ok(Some((
            snapshot.value().to_vec(),
            Checkpoint::decode(checkpoint.value())?,
        )))
    }

    /// Where a state sync made the order start again, if one did.
    pub fn order_base(&self) -> Result<Option<Checkpoint>, StoreError> {
        match self.meta(ORDER_BASE)? {
            Some(bytes) => Ok(Some(Checkpoint::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Ids of the ordered events from position `from`, at most `limit`,
    /// consecutive (a hole is a [`StoreError::Gap`]).
    pub fn order_ids(&self, from: u64, limit: usize) -> Result<Vec<[u8; 32]>, StoreError> {
        let records = self.order_from(from, limit)?;
        let mut out = Vec::with_capacity(records.len());
        for (record, expected) in records.iter().zip(from..) {
            if record.position != expected {
                return Err(StoreError::Gap {
                    missing: expected,
                    next: record.position,
                });
            }
            out.push(record.event_id);
        }
        Ok(out)
    }

    /// Ordered transactions from position `from`, within `limit`, with
    /// consecutive positions: a hole (which recovery prevents) is an
    /// error, never skipped, so a reader paging by count cannot miss one.
    pub fn txs_page(
        &self,
        from: u64,
        limit: impl Into<PageLimit>,
    ) -> Result<Vec<TxRecord>, StoreError> {
        let starts_at = self.txs_start()?;
        if from < starts_at {
            return Err(StoreError::Pruned { starts_at });
        }
        let records = self.txs_from(from, limit)?;
        for (record, expected) in records.iter().zip(from..) {
            if record.position != expected {
                return Err(StoreError::Gap {
                    missing: expected,
                    next: record.position,
                });
            }
        }
        Ok(records)
    }

    /// Ordered events from position `from`, at most `limit`.
    pub fn order_from(&self, from: u64, limit: usize) -> Result<Vec<OrderRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ORDER)?;
        let mut out = Vec::new();
        for entry in table.range(from..)?.take(limit) {
            let (_, v) = entry?;
            out.push(OrderRecord::decode(v.value())?);
        }
        Ok(out)
    }

    /// A small named value (cursors and the like), for other modules.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(key)?.map(|v| v.value().to_vec()))
    }

    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(key, value)?;
        }
        txn.commit()?;
        Ok(())
    }
}

impl Store {
    pub fn outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Durable: an attestation once queued survives crashes.
    pub fn outbox_put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(OUTBOX)?;
            table.insert(key, value)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn outbox_remove(&self, key: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(OUTBOX)?;
            table.remove(key)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn cursor(&self) -> Result<Vec<CursorRow>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CURSOR)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.push((k.value(), v.value()));
        }
        Ok(out)
    }

    /// Records what the watcher reported (`None` forgets an account).
    pub fn set_cursor(&self, changes: &[([u8; 32], Option<[u8; 32]>)]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(CURSOR)?;
            for (account, digest) in changes {
                match digest {
                    Some(digest) => {
                        table.insert(*account, *digest)?;
                    }
                    None => {
                        table.remove(*account)?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

fn read_u64(bytes: &[u8], table: &'static str) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        table,
        reason: format!("expected 8 bytes, found {}", bytes.len()),
    })?;
    Ok(u64::from_le_bytes(array))
}

/// A number kept in `meta` (0 when absent).
fn meta_u64(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<u64, StoreError> {
    match meta.get(key)? {
        Some(v) => read_u64(v.value(), "meta"),
        None => Ok(0),
    }
}

/// Removes the records of `table` below `cut`, at most [`PRUNE_PER_COMMIT`]
/// of them; where the table now starts, if anything was removed.
fn prune_below(table: &mut redb::Table<u64, &[u8]>, cut: u64) -> Result<Option<u64>, StoreError> {
    if cut == 0 {
        return Ok(None);
    }
    let old: Vec<u64> = table
        .range(..cut)?
        .take(PRUNE_PER_COMMIT)
        .map(|entry| entry.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    for position in &old {
        table.remove(*position)?;
    }
    Ok(old.last().map(|highest| highest + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(position: u64) -> TxRecord {
        TxRecord {
            position,
            event_id: [1; 32],
            consensus_time_ns: position,
            tx: vec![position as u8],
        }
    }

    #[test]
    fn a_page_with_a_hole_is_an_error_not_a_shorter_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .commit(
                &[Write::Decided {
                    order: Vec::new(),
                    txs: vec![tx(0), tx(1), tx(3)],
                    snapshot: None,
                    pruned: Vec::new(),
                    forget_ordered_through_round: None,
                    mempool_added: Vec::new(),
                    mempool_removed: Vec::new(),
                    checkpoint: None,
                }],
                false,
            )
            .unwrap();
        assert_eq!(store.txs_page(0, 2).unwrap().len(), 2);
        // The byte bound ends a page early, never before its first record.
        let bytes = |bytes| PageLimit { records: 10, bytes };
        assert_eq!(store.txs_page(0, bytes(1)).unwrap().len(), 1);
        assert_eq!(store.txs_page(0, bytes(2)).unwrap().len(), 2);
        assert_eq!(store.txs_page(1, bytes(0)).unwrap().len(), 1);
        assert!(matches!(
            store.txs_page(0, 10),
            Err(StoreError::Gap {
                missing: 2,
                next: 3
            })
        ));
        assert!(matches!(
            store.txs_page(2, 10),
            Err(StoreError::Gap {
                missing: 2,
                next: 3
            })
        ));
        assert_eq!(store.txs_page(3, 10).unwrap().len(), 1);
        assert!(store.txs_page(4, 10).unwrap().is_empty());
    }

    /// A decided round that only adds and removes waiting transactions.
    fn mempool_change(added: Vec<(MempoolKey, Vec<u8>)>, removed: Vec<MempoolKey>) -> Write {
        Write::Decided {
            order: Vec::new(),
            txs: Vec::new(),
            snapshot: None,
            pruned: Vec::new(),
            forget_ordered_through_round: None,
            mempool_added: added,
            mempool_removed: removed,
            checkpoint: None,
        }
    }

    fn decided(txs: Vec<TxRecord>) -> Write {
        Write::Decided {
            order: Vec::new(),
            txs,
            snapshot: None,
            pruned: Vec::new(),
            forget_ordered_through_round: None,
            mempool_added: Vec::new(),
            mempool_removed: Vec::new(),
            checkpoint: None,
        }
    }

    /// The disk keeps the newest `retain_ordered_txs` transactions; a read
    /// below says where the order starts now (never a gap, never a
    /// silently shorter page), and what is kept reads as before, after a
    /// reopening too.
    #[test]
    fn old_ordered_transactions_are_pruned_past_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.set_retention(Retention {
                txs: 100,
                order: 100,
            });
            for batch in 0..10u64 {
                let txs = (batch * 50..batch * 50 + 50).map(tx).collect();
                store.commit(&[decided(txs)], false).unwrap();
                let kept = store.txs_start().unwrap();
                assert_eq!(kept, (batch * 50 + 50).saturating_sub(100));
            }
            assert_eq!(store.txs_start().unwrap(), 400);
            assert!(matches!(
                store.txs_page(0, 10),
                Err(StoreError::Pruned { starts_at: 400 })
            ));
            assert!(matches!(
                store.txs_page(399, 10),
                Err(StoreError::Pruned { starts_at: 400 })
            ));
            let page = store.txs_page(400, 1_000).unwrap();
            assert_eq!(page.len(), 100);
            assert_eq!(page[0].position, 400);
            store.sync().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.txs_start().unwrap(), 400);
        assert_eq!(store.txs_page(450, 1_000).unwrap().len(), 50);
    }

    /// A retention lowered on a large ledger is caught up a bounded number
    /// of records per commit: no single commit stalls on millions.
    #[test]
    fn a_lowered_retention_is_caught_up_in_bounded_steps() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let total = 3 * PRUNE_PER_COMMIT as u64;
        store
            .commit(&[decided((0..total).map(tx).collect())], false)
            .unwrap();
        assert_eq!(store.txs_start().unwrap(), 0);
        store.set_retention(Retention { txs: 1, order: 1 });
        store.commit(&[decided(vec![tx(total)])], false).unwrap();
        assert_eq!(store.txs_start().unwrap(), PRUNE_PER_COMMIT as u64);
        for next in total + 1..total + 4 {
            store.commit(&[decided(vec![tx(next)])], false).unwrap();
        }
        // Caught up: only the newest is kept.
        assert_eq!(store.txs_start().unwrap(), total + 3);
        assert_eq!(store.txs_page(total + 3, 10).unwrap().len(), 1);
    }

    #[test]
    fn mempool_entries_survive_reopening_until_taken_or_delivered() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .commit(
                    &[mempool_change(
                        vec![([1; 36], b"a".to_vec()), ([2; 36], b"b".to_vec())],
                        Vec::new(),
                    )],
                    true,
                )
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.recover().unwrap().mempool.len(), 2);
        store
            .commit(
                &[Write::Events {
                    events: vec![([9; 32], vec![1, 2, 3])],
                    own_seq: Some(0),
                    mempool_taken: vec![[1; 36]],
                }],
                true,
            )
            .unwrap();
        let recovered = store.recover().unwrap();
        assert_eq!(recovered.mempool, vec![([2; 36], b"b".to_vec())]);
        assert_eq!(recovered.own_seq, Some(0));
        // A round that delivers the envelope holding the other one.
        store
            .commit(
                &[mempool_change(
                    vec![([3; 36], b"c".to_vec())],
                    vec![[2; 36]],
                )],
                true,
            )
            .unwrap();
        assert_eq!(
            store.recover().unwrap().mempool,
            vec![([3; 36], b"c".to_vec())]
        );
    }

    fn own_events(seq: u64) -> Write {
        Write::Events {
            events: vec![([seq as u8 + 1; 32], vec![seq as u8; 40])],
            own_seq: Some(seq),
            mempool_taken: Vec::new(),
        }
    }

    /// A crash after the event log synced an own event and before redb got
    /// it: reopening applies the log, once.
    #[test]
    fn an_own_event_only_in_the_event_log_survives_a_crash_and_is_applied_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.log(&[own_events(0)], true).unwrap();
            store.apply(&[own_events(0)]).unwrap();
            // The crash: logged (and announced), never applied to redb.
            store.log(&[own_events(1)], true).unwrap();
            assert_eq!(store.event_count().unwrap(), 1);
        }
        for _ in 0..3 {
            let store = Store::open(dir.path()).unwrap();
            let recovered = store.recover().unwrap();
            assert_eq!(recovered.own_seq, Some(1));
            assert_eq!(recovered.events.len(), 2);
            assert_eq!(store.event_count().unwrap(), 2);
        }
    }

    /// A power loss: redb comes back as of its last durable commit (here:
    /// the one `open` made), the event log as of its last sync. Every own
    /// event that was announced is there, with the events before it.
    #[test]
    fn after_a_power_loss_the_event_log_restores_every_announced_event() {
        let dir = tempfile::tempdir().unwrap();
        let durable_redb = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        std::fs::copy(
            dir.path().join("ledger.redb"),
            durable_redb.path().join("ledger.redb"),
        )
        .unwrap();
        let received = Write::Events {
            events: vec![([200; 32], vec![7; 100])],
            own_seq: None,
            mempool_taken: Vec::new(),
        };
        store.log(std::slice::from_ref(&received), false).unwrap();
        store.apply(&[received]).unwrap();
        store.log(&[own_events(0)], true).unwrap();
        store.apply(&[own_events(0)]).unwrap();
        std::fs::copy(
            dir.path().join(LOG_FILE),
            durable_redb.path().join(LOG_FILE),
        )
        .unwrap();
        drop(store);
        let store = Store::open(durable_redb.path()).unwrap();
        let recovered = store.recover().unwrap();
        assert_eq!(recovered.own_seq, Some(0));
        assert_eq!(recovered.events, vec![vec![7; 100], vec![0; 40]]);
        // Two batches, as they were accepted.
        assert_eq!(recovered.batch_starts, vec![0, 1]);
    }

    /// Once redb is durable the log starts a fresh file; records redb
    /// already holds are never applied again, even when the crash came
    /// before the fresh file was written (or another durable commit, not
    /// the store's own, made them durable).
    #[test]
    fn records_redb_holds_are_not_applied_again() {
        let dir = tempfile::tempdir().unwrap();
        let saved = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.log(&[own_events(0)], true).unwrap();
            store.apply(&[own_events(0)]).unwrap();
            std::fs::copy(dir.path().join(LOG_FILE), saved.path().join(LOG_FILE)).unwrap();
            // An install forces redb durable and rotates the log.
            store
                .apply(&[Write::Install {
                    snapshot: vec![1, 2, 3],
                    checkpoint: Checkpoint {
                        round: 5,
                        ordered: 0,
                        next_tx: 0,
                        running_hash: [0; 32],
                        digest: [0; 32],
                    },
                    mempool_added: Vec::new(),
                }])
                .unwrap();
            assert_eq!(
                store.event_count().unwrap(),
                0,
                "the install replaced the events"
            );
        }
        // The old file reappears (a crash before the fresh one was made).
        std::fs::copy(saved.path().join(LOG_FILE), dir.path().join(LOG_FILE)).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.event_count().unwrap(), 0);
        assert!(store.recover().unwrap().events.is_empty());
    }

    /// Another thread's durable commit (the attester's outbox, the
    /// watcher's cursor) makes the ledger durable as the writer left it:
    /// here with an event already deleted again. A crash then must not
    /// bring the event back from the log.
    #[test]
    fn a_durable_commit_by_anyone_tells_which_log_records_redb_holds() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let received = Write::Events {
            events: vec![([1; 32], vec![1; 64])],
            own_seq: None,
            mempool_taken: Vec::new(),
        };
        store.log(std::slice::from_ref(&received), false).unwrap();
        store.apply(&[received]).unwrap();
        store
            .apply(&[Write::Decided {
                order: Vec::new(),
                txs: Vec::new(),
                snapshot: Some(vec![9]),
                pruned: vec![[1; 32]],
                forget_ordered_through_round: None,
                mempool_added: Vec::new(),
                mempool_removed: Vec::new(),
                checkpoint: None,
            }])
            .unwrap();
        assert_eq!(store.event_count().unwrap(), 0);
        store.set_meta("elsewhere", b"durable").unwrap();
        for file in ["ledger.redb", LOG_FILE] {
            std::fs::copy(dir.path().join(file), crashed.path().join(file)).unwrap();
        }
        let store = Store::open(crashed.path()).unwrap();
        assert_eq!(store.event_count().unwrap(), 0);
        assert!(store.recover().unwrap().events.is_empty());
    }

    fn checkpoint(round: u64) -> Checkpoint {
        Checkpoint {
            round,
            ordered: round,
            next_tx: 0,
            running_hash: [0; 32],
            digest: [round as u8; 32],
        }
    }

    fn snapshot_round(round: u64, snapshot: Option<Vec<u8>>) -> Write {
        Write::Decided {
            order: Vec::new(),
            txs: Vec::new(),
            snapshot,
            pruned: Vec::new(),
            forget_ordered_through_round: None,
            mempool_added: Vec::new(),
            mempool_removed: Vec::new(),
            checkpoint: Some(checkpoint(round)),
        }
    }

    /// A snapshot round without a stored snapshot still records its
    /// checkpoint (peers vouch with it), but the stored state stays the
    /// last snapshot with its own checkpoint: a state sync must never
    /// serve a snapshot under another round's checkpoint.
    #[test]
    fn a_checkpoint_without_a_snapshot_leaves_the_stored_state_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .commit(&[snapshot_round(8, Some(vec![8; 100]))], false)
            .unwrap();
        store.commit(&[snapshot_round(16, None)], false).unwrap();
        let rounds: Vec<u64> = store
            .checkpoints(10)
            .unwrap()
            .iter()
            .map(|c| c.round)
            .collect();
        assert!(rounds.contains(&8) && rounds.contains(&16), "{rounds:?}");
        let (snapshot, checkpoint) = store.state().unwrap().unwrap();
        assert_eq!((snapshot, checkpoint), (vec![8; 100], self::checkpoint(8)));
        assert_eq!(store.recover().unwrap().snapshot, Some(vec![8; 100]));
    }

    /// Ledgers written before snapshots had a table of their own kept the
    /// snapshot in `meta`; opening one moves it, nothing is lost.
    #[test]
    fn a_snapshot_kept_in_meta_by_an_older_ledger_is_moved_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join("ledger.redb")).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                meta.insert(OLD_SNAPSHOT, [5u8; 300].as_slice()).unwrap();
                meta.insert(STATE_CHECKPOINT, checkpoint(24).encode().as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.recover().unwrap().snapshot, Some(vec![5; 300]));
        assert_eq!(store.state().unwrap().unwrap().1, checkpoint(24));
        drop(store);
        // Moved, not copied: a second open finds it in the new table only.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.meta(OLD_SNAPSHOT).unwrap(), None);
        assert_eq!(store.recover().unwrap().snapshot, Some(vec![5; 300]));
    }
}
