//! Rebuilding the machine from the ledger after a restart or a crash.
//!
//! Restore the last consensus snapshot, then replay the events accepted
//! after it batch by batch, polling after each exactly as live (whether an
//! event is ancient depends on the decided round when it is inserted).
//! Replay re-decides rounds whose records a crash may have lost and writes
//! them again; it rebuilds which held events are ordered, which own events
//! still carry unordered transactions, and the acknowledged transactions
//! waiting to be forwarded. Nothing acknowledged is lost: see
//! `mempool`.

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
};

use dagger_consensus::{CreatorId, Event, Hashgraph};

use super::{
    forward::{split_app_state, Delivered},
    machine::{Machine, Now},
    mempool::Mempool,
    records::Records,
    split_snapshot, CoreConfig, CoreError, OrderObserver,
};
use crate::{
    identity::Identity,
    metrics::Metrics,
    store::{LedgerView, Recovered},
};

impl Machine {
    /// The machine as the ledger left it. Its first outputs are the writes
    /// replay found missing: apply them before anything else.
    pub fn recover(
        identity: Identity,
        config: CoreConfig,
        metrics: Arc<Metrics>,
        mut observer: Box<dyn OrderObserver>,
        ledger: Arc<dyn LedgerView>,
        recovered: Recovered,
        now: Now,
    ) -> Result<Machine, CoreError> {
        let (hg, delivered) = match &recovered.snapshot {
            Some(bytes) => {
                let (consensus, app_state) =
                    split_snapshot(bytes).ok_or_else(|| CoreError::Snapshot("truncated".into()))?;
                let (observer_state, delivered) = split_app_state(app_state)
                    .ok_or_else(|| CoreError::Snapshot("application state truncated".into()))?;
                observer
                    .restore(observer_state)
                    .map_err(CoreError::Snapshot)?;
                let hg = Hashgraph::restore(config.consensus.clone(), consensus)
                    .map_err(|e| CoreError::Snapshot(e.to_string()))?;
                (hg, delivered)
            }
            None => (
                Hashgraph::new(config.consensus.clone(), config.genesis.clone()),
                Delivered::default(),
            ),
        };
        let mempool = Mempool::new(config.max_pending_txs, config.max_pending_bytes);
        let mut machine = Machine {
            hg,
            ledger,
            identity: identity.clone(),
            config,
            metrics,
            observer,
            mempool,
            records: Records::default(),
            delivered,
            order_time_ns: 0,
            forwarded_txs: 0,
            undurable: HashSet::new(),
            unordered_with_txs: HashSet::new(),
            outputs: VecDeque::new(),
            last_own_event: now.instant,
            own_seq: recovered.own_seq,
            equivocations: 0,
            evidence: VecDeque::new(),
            timeline: Default::default(),
            ordered_window: VecDeque::new(),
            // Until its first quiet pull, even a node with an empty ledger:
            // its ledger may have been lost while peers hold its chain.
            resuming: true,
            replaying: true,
            received_since_pull: 0,
            last_pull_size: 0,
            checkpoints: recovered.checkpoint.iter().copied().collect(),
            installed: None,
            react_pending: false,
            react_to: None,
            create_at: None,
            signing: super::machine::Signing::Unguarded,
        };
        machine.records.next_tx_position = match recovered.checkpoint {
            // Written with the snapshot: after a state sync it is the only
            // record of the transaction count (the order before it is not
            // on disk).
            Some(c) if c.ordered == machine.hg.stats().ordered_count => c.next_tx,
            _ => machine.recorded_tx_count()?,
        };
        machine.mempool.restore(recovered.mempool, now.instant);
        machine.adopt_held(now.instant);
        // A snapshot can be taken in the middle of a burst of decisions
        // (one received batch deciding several rounds): the rounds after it
        // that its events already decide were decided live before anything
        // later was accepted, so they are decided again here before any
        // stored batch is replayed. Replayed later, an own event created
        // after those rounds made older own events stale would be replayed
        // first, and the staleness found after it would carry the
        // transactions it already carries a second time.
        machine.drive_consensus(now, false);
        let me = CreatorId(identity.id());
        let mut replayed = 0usize;
        let mut bounds = recovered.batch_starts.clone();
        bounds.push(recovered.events.len());
        for window in bounds.windows(2) {
            for bytes in &recovered.events[window[0]..window[1]] {
                let event = match Event::decode(bytes) {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping undecodable stored event");
                        continue;
                    }
                };
                if machine.hg.insert(event.clone()).is_ok() {
                    machine.track(&event);
                    replayed += 1;
                }
                // An own event is watched even if consensus refuses it now:
                // the next decided round finds it gone and forwards its
                // transactions.
                if event.creator() == me
                    && !event.transactions().is_empty()
                    && !machine.records.ordered_held.contains(&event.id())
                {
                    machine.mempool.watch(&event, now.instant);
                }
            }
            machine.drive_consensus(now, false);
        }
        // The self-fork guard: the chain rebuilt from disk must reach the
        // highest sequence this node ever signed.
        if let Some(stored) = machine.own_seq {
            let replayed_seq = machine.own_latest_seq();
            if replayed_seq.is_none_or(|r| r < stored) {
                return Err(CoreError::SelfForkGuard {
                    stored,
                    replayed: replayed_seq.map_or("nothing".into(), |r| r.to_string()),
                });
            }
        }
        // Envelopes sealed before this start may still be delivered until
        // they expire, at most a window after now: what waits to be
        // forwarded is not sealed again before the order's time is past it.
        let window = machine.config.forward_window.as_nanos() as u64;
        machine
            .mempool
            .hold_queued(now.unix_ns.saturating_add(window));
        machine.replaying = false;
        tracing::info!(
            events = replayed,
            snapshot = recovered.snapshot.is_some(),
            ordered = machine.hg.stats().ordered_count,
            waiting_txs = machine.mempool.pending_len(),
            "ledger recovered"
        );
        Ok(machine)
    }

    /// Rebuilds the bookkeeping of what a restored or installed state holds:
    /// ordered events (kept on disk when pruned), events whose transactions
    /// wait for consensus, and among them own ones, watched so that their
    /// transactions are carried again should they go stale.
    pub(super) fn adopt_held(&mut self, now: std::time::Instant) {
        let me = CreatorId(self.identity.id());
        let held: Vec<(Event, bool)> = self
            .hg
            .held_events()
            .into_iter()
            .map(|(e, ordered)| (e.clone(), ordered))
            .collect();
        for (event, ordered) in held {
            if ordered {
                self.records.ordered_held.insert(event.id());
            } else {
                self.track(&event);
                if event.creator() == me {
                    self.mempool.watch(&event, now);
                }
            }
        }
    }

    /// Transactions ordered up to the restored snapshot: the snapshot and
    /// the order records of its round are written in one transaction, so
    /// the record of its last ordered event is on disk.
    fn recorded_tx_count(&self) -> Result<u64, CoreError> {
        let ordered = self.hg.stats().ordered_count;
        if ordered == 0 {
            return Ok(0);
        }
        let record = self.ledger.order_record(ordered - 1)?.ok_or_else(|| {
            CoreError::Snapshot(format!(
                "the order record at position {} is missing",
                ordered - 1
            ))
        })?;
        Ok(record.first_tx + u64::from(record.tx_count))
    }
}
