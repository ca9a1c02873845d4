//! The consensus driver: one task that owns the hashgraph and the ledger,
//! so every state change happens in one place, in one order.
//!
//! Everything else (gossip, API, timers) talks to it through a
//! [`CoreHandle`]. The core persists each accepted event before acting on
//! it, persists its own events durably before they are pushed to peers, and
//! drives `poll` to record each decided round (and hand it to an
//! [`OrderObserver`], e.g. the controller, before consensus goes on).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use dagger_consensus::{
    CreateError, CreatorId, Decided, Equivocation, Event, EventId, Hashgraph, InsertOutcome,
    Reject, Roster,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::{
    identity::{Identity, NodeId},
    metrics::Metrics,
    store::{OrderRecord, Store, StoreError, TxRecord, Write},
};

mod writer;
use writer::{LedgerOp, OwnEvent, Undurable};

/// Decided rounds between two consensus snapshots (and deletions of pruned
/// events from disk).
pub const SNAPSHOT_EVERY_ROUNDS: u64 = 8;

/// A peer more than this many ordered events behind (or missing events this
/// node pruned from memory) gets the ordered events it misses from the
/// ledger (catch-up) before the usual sync answer.
pub const CATCH_UP_GAP: u64 = 256;

/// After a restart, the node creates no event while a pull still brings
/// more than this many events (it is catching up): see `Core::may_create`.
const RESUME_QUIET_EVENTS: usize = 64;

/// Sees every decided round, in order, before consensus continues, and may
/// change the roster in response (the change applies `ROSTER_DELAY` rounds
/// later, identically on every node).
pub trait OrderObserver: Send + 'static {
    fn on_decided(&mut self, decided: &Decided) -> Option<Roster>;
    /// State to store with consensus snapshots, so a restart resumes the
    /// observer where the restored consensus resumes.
    fn snapshot(&self) -> Vec<u8>;
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String>;
}

/// An observer that keeps the genesis roster forever.
#[derive(Default)]
pub struct StaticRoster;

impl OrderObserver for StaticRoster {
    fn on_decided(&mut self, _decided: &Decided) -> Option<Roster> {
        None
    }
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }
    fn restore(&mut self, _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct CoreConfig {
    pub consensus: dagger_consensus::Config,
    pub genesis: Roster,
    /// Transactions waiting for an event, at most (then `POST /tx` says busy)...
    pub max_pending_txs: usize,
    /// ...and their bytes.
    pub max_pending_bytes: usize,
    /// An idle node still creates an event this often, so consensus on
    /// earlier events completes.
    pub idle_event_interval: Duration,
    /// Ordered events stay on disk this many decided rounds, so peers that
    /// fell behind can catch up from this node; older ones are deleted.
    pub disk_horizon_rounds: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored consensus snapshot is unusable: {0}")]
    Snapshot(String),
    #[error(
        "ledger says this node signed sequence {stored} but only {replayed} is on disk; \
         refusing to sign again (it could fork itself)"
    )]
    SelfForkGuard { stored: u64, replayed: String },
    #[error("the node is shutting down")]
    Closed,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    #[error("transaction is empty")]
    Empty,
    #[error("transaction is {size} bytes, limit {max}")]
    TooLarge { size: usize, max: usize },
    #[error("{0} transactions already wait for an event; try again")]
    Busy(usize),
    #[error("{0} bytes of transactions already wait for an event; try again")]
    BusyBytes(usize),
    #[error("the node is shutting down")]
    Closed,
}

/// What happened to a batch of received events.
#[derive(Debug, Default, Clone)]
pub struct ReceiveSummary {
    pub inserted: usize,
    pub waiting: usize,
    pub duplicates: usize,
    /// Events of the batch that were refused.
    pub rejected: Vec<(EventId, Reject)>,
    /// Earlier waiting events that failed a check once their parents came.
    pub dropped: Vec<(EventId, Reject)>,
}

impl ReceiveSummary {
    /// The first refusal that proves the sender broke the rules (see
    /// [`Reject::is_fault`]): a peer that sends one is penalised.
    pub fn fault(&self) -> Option<&(EventId, Reject)> {
        self.rejected.iter().find(|(_, r)| r.is_fault())
    }
}

/// A snapshot of the node's consensus figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CoreStatus {
    pub node_id: String,
    pub last_round_created: u64,
    pub last_decided_round: u64,
    pub ordered_events: u64,
    pub ordered_txs: u64,
    pub held_events: usize,
    /// Events kept in the ledger on disk (pruned rounds are deleted).
    pub stored_events: u64,
    pub waiting_events: usize,
    pub pending_txs: usize,
    pub running_hash: String,
    pub own_seq: Option<u64>,
    pub equivocations: u64,
}

enum Command {
    Receive {
        events: Vec<Event>,
        reply: oneshot::Sender<ReceiveSummary>,
    },
    SyncAnswer {
        tips: Vec<EventId>,
        ordered: u64,
        max_events: usize,
        reply: oneshot::Sender<Vec<Event>>,
    },
    Tips {
        reply: oneshot::Sender<Vec<EventId>>,
    },
    AfterSync {
        peer: NodeId,
    },
    Heartbeat,
    Submit {
        tx: Vec<u8>,
        reply: oneshot::Sender<Result<EventId, SubmitError>>,
    },
    Status {
        reply: oneshot::Sender<CoreStatus>,
    },
    Event {
        id: EventId,
        reply: oneshot::Sender<Option<(Event, Option<dagger_consensus::EventInfo>)>>,
    },
    HasWork {
        reply: oneshot::Sender<bool>,
    },
    Evidence {
        reply: oneshot::Sender<Vec<Equivocation>>,
    },
    /// Stop even though other handles are still alive (the API, a test).
    Shutdown,
}

impl Command {
    fn kind(&self) -> &'static str {
        match self {
            Command::Receive { .. } => "receive",
            Command::SyncAnswer { .. } => "sync_answer",
            Command::Tips { .. } => "tips",
            Command::AfterSync { .. } => "after_sync",
            Command::Heartbeat => "heartbeat",
            Command::Submit { .. } => "submit",
            Command::Status { .. } => "status",
            Command::Event { .. } => "event",
            Command::HasWork { .. } => "has_work",
            Command::Evidence { .. } => "evidence",
            Command::Shutdown => "shutdown",
        }
    }
}

/// Cheap, cloneable access to the core task.
#[derive(Clone)]
pub struct CoreHandle {
    tx: mpsc::Sender<Command>,
    own_events: broadcast::Sender<Event>,
    decided: broadcast::Sender<Arc<Decided>>,
    fatal: watch::Receiver<Option<String>>,
    pub node_id: NodeId,
}

macro_rules! ask {
    ($self:expr, $variant:ident { $($field:ident),* }) => {{
        let (reply, rx) = oneshot::channel();
        $self
            .tx
            .send(Command::$variant { $($field,)* reply })
            .await
            .map_err(|_| CoreError::Closed)?;
        rx.await.map_err(|_| CoreError::Closed)
    }};
}

impl CoreHandle {
    /// Inserts events from a peer (in the order given).
    pub async fn receive(&self, events: Vec<Event>) -> Result<ReceiveSummary, CoreError> {
        ask!(self, Receive { events })
    }

    /// The events a peer with these tips is missing, parents first.
    pub async fn sync_answer(
        &self,
        tips: Vec<EventId>,
        ordered: u64,
        max_events: usize,
    ) -> Result<Vec<Event>, CoreError> {
        ask!(
            self,
            SyncAnswer {
                tips,
                ordered,
                max_events
            }
        )
    }

    pub async fn tips(&self) -> Result<Vec<EventId>, CoreError> {
        ask!(self, Tips {})
    }

    /// After pulling from `peer`: create an event whose other-parent is the
    /// peer's latest (gossip about gossip).
    pub async fn after_sync(&self, peer: NodeId) -> Result<(), CoreError> {
        self.tx
            .send(Command::AfterSync { peer })
            .await
            .map_err(|_| CoreError::Closed)
    }

    /// Lets an idle node create an event now and then.
    pub async fn heartbeat(&self) -> Result<(), CoreError> {
        self.tx
            .send(Command::Heartbeat)
            .await
            .map_err(|_| CoreError::Closed)
    }

    /// Queues a transaction; resolves with the id of the own event carrying it.
    pub async fn submit(&self, tx: Vec<u8>) -> Result<EventId, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Submit { tx, reply })
            .await
            .map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)?
    }

    pub async fn status(&self) -> Result<CoreStatus, CoreError> {
        ask!(self, Status {})
    }

    pub async fn event(
        &self,
        id: EventId,
    ) -> Result<Option<(Event, Option<dagger_consensus::EventInfo>)>, CoreError> {
        ask!(self, Event { id })
    }

    /// Whether transactions wait for an event or for consensus (gossip then
    /// runs at full speed).
    pub async fn has_work(&self) -> Result<bool, CoreError> {
        ask!(self, HasWork {})
    }

    pub async fn evidence(&self) -> Result<Vec<Equivocation>, CoreError> {
        ask!(self, Evidence {})
    }

    /// Asks the core to stop after the commands queued before this one; the
    /// ledger writer then flushes what it holds. Other handles get `Closed`.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }

    /// Own events, as soon as they are durably stored (for pushing).
    pub fn own_events(&self) -> broadcast::Receiver<Event> {
        self.own_events.subscribe()
    }

    /// Decided rounds, as they are recorded.
    pub fn decided(&self) -> broadcast::Receiver<Arc<Decided>> {
        self.decided.subscribe()
    }

    /// Resolves with the reason if the ledger fails (the node must stop).
    pub async fn failed(&self) -> String {
        let mut fatal = self.fatal.clone();
        loop {
            if let Some(reason) = fatal.borrow().clone() {
                return reason;
            }
            if fatal.changed().await.is_err() {
                return "ledger writer stopped".to_string();
            }
        }
    }
}

struct PendingTx {
    tx: Vec<u8>,
    submitted: Instant,
    /// `None` for a transaction put back after its event went stale (its
    /// submitter was answered already).
    reply: Option<oneshot::Sender<Result<EventId, SubmitError>>>,
}

/// An own event's transactions, kept until the event is ordered: if it goes
/// stale instead (pruned unordered, e.g. created just before a crash and
/// never gossiped), they are submitted again, so nothing accepted is lost.
struct InFlight {
    submitted: Vec<Instant>,
    txs: Vec<Vec<u8>>,
}

pub struct Core {
    commands: mpsc::Receiver<Command>,
    hg: Hashgraph,
    store: Arc<Store>,
    identity: Identity,
    config: CoreConfig,
    metrics: Arc<Metrics>,
    observer: Box<dyn OrderObserver>,
    pending: VecDeque<PendingTx>,
    pending_bytes: usize,
    /// Own events carrying transactions, not yet ordered: submit times.
    in_flight: HashMap<EventId, InFlight>,
    ledger: Option<mpsc::UnboundedSender<LedgerOp>>,
    writer: Option<std::thread::JoinHandle<()>>,
    undurable: Undurable,
    /// Every held event (anyone's) carrying transactions and not ordered
    /// yet: while there are some, the node gossips at full speed so they
    /// reach consensus quickly wherever they were submitted.
    unordered_with_txs: HashSet<EventId>,
    /// Ordered events still held in memory; a pruned event not in here was
    /// stale (never ordered).
    ordered_held: HashSet<EventId>,
    /// Accepted (stored) events that consensus will never insert: evicted
    /// from its waiting areas or discarded there. Deleted from disk with
    /// the next snapshot, unless accepted again meanwhile.
    forget: HashSet<EventId>,
    decided: broadcast::Sender<Arc<Decided>>,
    next_tx_position: u64,
    rounds_since_snapshot: u64,
    pruned_since_snapshot: Vec<[u8; 32]>,
    last_own_event: Instant,
    own_seq: Option<u64>,
    equivocations: u64,
    evidence: VecDeque<Equivocation>,
    ordered_window: VecDeque<(Instant, u64)>,
    /// Restarted with a history and still catching up (see `may_create`).
    resuming: bool,
    /// Events received since the last pull completed.
    received_since_pull: usize,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Core {
    /// Rebuilds the core from the ledger (snapshot plus the events accepted
    /// after it) and returns it with its handle.
    pub fn open(
        identity: Identity,
        store: Arc<Store>,
        config: CoreConfig,
        metrics: Arc<Metrics>,
        mut observer: Box<dyn OrderObserver>,
    ) -> Result<(Core, CoreHandle), CoreError> {
        let recovered = store.recover()?;
        let hg = match &recovered.snapshot {
            Some(bytes) => {
                let (consensus, observer_state) =
                    split_snapshot(bytes).ok_or_else(|| CoreError::Snapshot("truncated".into()))?;
                observer
                    .restore(observer_state)
                    .map_err(CoreError::Snapshot)?;
                Hashgraph::restore(config.consensus.clone(), consensus)
                    .map_err(|e| CoreError::Snapshot(e.to_string()))?
            }
            None => Hashgraph::new(config.consensus.clone(), config.genesis.clone()),
        };
        let (own_events, _) = broadcast::channel(1024);
        let (decided, _) = broadcast::channel(256);
        let (tx, rx) = mpsc::channel(1024);
        let mut core = Core {
            commands: rx,
            hg,
            store,
            identity: identity.clone(),
            config,
            metrics,
            observer,
            pending: VecDeque::new(),
            pending_bytes: 0,
            in_flight: HashMap::new(),
            ledger: None,
            writer: None,
            undurable: Undurable::default(),
            unordered_with_txs: HashSet::new(),
            ordered_held: HashSet::new(),
            forget: HashSet::new(),
            decided: decided.clone(),
            next_tx_position: 0,
            rounds_since_snapshot: 0,
            pruned_since_snapshot: Vec::new(),
            last_own_event: Instant::now(),
            own_seq: recovered.own_seq,
            equivocations: 0,
            evidence: VecDeque::new(),
            ordered_window: VecDeque::new(),
            resuming: recovered.own_seq.is_some(),
            received_since_pull: 0,
        };
        core.next_tx_position = core.recorded_tx_count()?;
        let mut replayed = 0usize;
        let me = CreatorId(identity.id());
        let mut own_with_txs = Vec::new();
        // Replay batch by batch, polling after each, exactly as the events
        // were taken live: whether an event is ancient depends on the
        // decided round when it is inserted.
        let mut bounds = recovered.batch_starts.clone();
        bounds.push(recovered.events.len());
        for window in bounds.windows(2) {
            for bytes in &recovered.events[window[0]..window[1]] {
                match Event::decode(bytes) {
                    Ok(event) => {
                        if core.hg.insert(event.clone()).is_ok() {
                            core.track(&event);
                            replayed += 1;
                            if event.creator() == me && !event.transactions().is_empty() {
                                own_with_txs.push(event);
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "skipping undecodable stored event"),
                }
            }
            core.drive_consensus(false)?;
        }
        core.drive_consensus(false)?;
        // Own events still waiting for consensus: watch them like live ones,
        // so their transactions are resubmitted if they go stale.
        for event in own_with_txs {
            let id = event.id();
            if core.hg.event_info(&id).is_some_and(|info| !info.ordered) {
                core.in_flight.insert(
                    id,
                    InFlight {
                        submitted: vec![Instant::now(); event.transactions().len()],
                        txs: event.transactions().to_vec(),
                    },
                );
            }
        }
        // The self-fork guard: the chain rebuilt from disk must reach the
        // highest sequence this node ever signed.
        if let Some(stored) = core.own_seq {
            let replayed_seq = core.own_latest_seq();
            if replayed_seq.is_none_or(|r| r < stored) {
                return Err(CoreError::SelfForkGuard {
                    stored,
                    replayed: replayed_seq.map_or("nothing".into(), |r| r.to_string()),
                });
            }
        }
        tracing::info!(
            events = replayed,
            snapshot = recovered.snapshot.is_some(),
            ordered = core.hg.stats().ordered_count,
            "ledger recovered"
        );
        // Replay wrote nothing; from here on every write goes through the writer.
        let (fatal_tx, fatal) = watch::channel(None);
        let (ledger, writer) = writer::spawn(
            core.store.clone(),
            own_events.clone(),
            core.undurable.clone(),
            fatal_tx,
        );
        core.ledger = Some(ledger);
        core.writer = Some(writer);
        let handle = CoreHandle {
            tx,
            own_events,
            decided,
            fatal,
            node_id: identity.id(),
        };
        Ok((core, handle))
    }

    fn recorded_tx_count(&self) -> Result<u64, CoreError> {
        let status = self.hg.stats();
        if status.ordered_count == 0 {
            return Ok(0);
        }
        let last = self.store.order_from(status.ordered_count - 1, 1)?;
        Ok(last
            .first()
            .map_or(0, |r| r.first_tx + u64::from(r.tx_count)))
    }

    fn own_latest_seq(&self) -> Option<u64> {
        self.hg
            .chain_head(&CreatorId(self.identity.id()))
            .map(|head| head.seq)
    }

    /// Runs the core until every handle is dropped or one asks it to stop.
    pub async fn run(mut self) {
        while let Some(command) = self.commands.recv().await {
            if matches!(command, Command::Shutdown) {
                break;
            }
            let started = Instant::now();
            let kind = command.kind();
            let result = self.handle(command);
            let took = started.elapsed();
            if took > Duration::from_millis(5) {
                tracing::debug!(
                    command = kind,
                    took_ms = took.as_millis() as u64,
                    "slow core command"
                );
            }
            if let Err(err) = result {
                tracing::error!(error = %err, "core stopped");
                break;
            }
        }
        // Let the writer finish what is queued, then wait for it.
        self.ledger = None;
        if let Some(writer) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }

    fn write(&self, write: Write, own: Option<OwnEvent>) -> Result<(), CoreError> {
        match &self.ledger {
            // Before the writer starts (replay) nothing is written: it is all on disk.
            None => Ok(()),
            Some(ledger) => ledger
                .send(LedgerOp { write, own })
                .map_err(|_| CoreError::Closed),
        }
    }

    fn handle(&mut self, command: Command) -> Result<(), CoreError> {
        match command {
            Command::Receive { events, reply } => {
                let summary = self.receive(events)?;
                let _ = reply.send(summary);
            }
            Command::SyncAnswer {
                tips,
                ordered,
                max_events,
                reply,
            } => {
                let mut events = self.catch_up(ordered, max_events);
                events.extend(self.hg.events_unknown_to(&tips));
                // Own events not yet durable stay private (see `writer`).
                if !self.undurable.is_empty() {
                    events.retain(|e| !self.undurable.contains(&e.id()));
                }
                events.truncate(max_events);
                let _ = reply.send(events);
            }
            Command::Tips { reply } => {
                let _ = reply.send(self.hg.tips());
            }
            Command::AfterSync { peer } => {
                let other_parent = self.hg.latest_of(&CreatorId(peer));
                let pulled = std::mem::take(&mut self.received_since_pull);
                if self.may_create(pulled) && self.should_create_event() {
                    self.create_event(other_parent)?;
                }
            }
            Command::Heartbeat => {
                // Events normally follow pulls, with the peer's latest event
                // as other-parent: only cross-links advance rounds. This is
                // the fallback when no pull succeeds for a while (a roster of
                // one, or every peer unreachable).
                if self.last_own_event.elapsed() >= self.config.idle_event_interval * 4
                    && self.may_create(0)
                {
                    self.create_event(None)?;
                }
            }
            Command::Submit { tx, reply } => self.submit(tx, reply),
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Event { id, reply } => {
                let found = self
                    .hg
                    .event(&id)
                    .map(|e| (e, self.hg.event_info(&id)))
                    .or_else(|| {
                        let bytes = self.store.event(&id.0).ok().flatten()?;
                        Event::decode(&bytes).ok().map(|e| (e, None))
                    });
                let _ = reply.send(found);
            }
            Command::HasWork { reply } => {
                let _ = reply.send(self.has_work());
            }
            Command::Evidence { reply } => {
                let _ = reply.send(self.evidence.iter().cloned().collect());
            }
            // Handled by `run`, which stops the loop.
            Command::Shutdown => {}
        }
        Ok(())
    }

    fn has_work(&self) -> bool {
        !self.pending.is_empty() || !self.unordered_with_txs.is_empty()
    }

    /// A peer that is far behind in the order may be missing events this
    /// node has already pruned from memory: send it the ordered events from
    /// its position on, from the ledger (kept `disk_horizon_rounds`). Ordered
    /// events form an ancestor-closed set, so the peer recomputes the same
    /// consensus from them, checking every signature itself.
    fn catch_up(&self, their_ordered: u64, max_events: usize) -> Vec<Event> {
        let ours = self.hg.stats().ordered_count;
        // Ordered events this node no longer holds in memory: a peer short of
        // them cannot get them from the ordinary sync answer.
        let pruned_from_memory = ours.saturating_sub(self.ordered_held.len() as u64);
        if their_ordered >= pruned_from_memory && ours <= their_ordered.saturating_add(CATCH_UP_GAP)
        {
            return Vec::new();
        }
        let limit = (ours - their_ordered).min(max_events as u64 / 2) as usize;
        let records = match self.store.order_from(their_ordered, limit) {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the order for a catch-up");
                return Vec::new();
            }
        };
        records
            .iter()
            .map_while(|r| {
                self.store
                    .event(&r.event_id)
                    .ok()
                    .flatten()
                    .and_then(|bytes| Event::decode(&bytes).ok())
            })
            .collect()
    }

    /// Whether a restarted node may sign again. Its last event before the
    /// crash may never have reached anyone; while this node is behind, an
    /// event it signs would be born in rounds its peers already find
    /// ancient, linking that lost event. So it waits until either pulls
    /// bring few events and its tip is recent (peers get the tip by sync and
    /// hold its parents), or its tip is pruned: then the next event is born
    /// so long after it that it does not link it (see the consensus crate,
    /// "Birth rounds").
    fn may_create(&mut self, pulled: usize) -> bool {
        if !self.resuming {
            return true;
        }
        let me = CreatorId(self.identity.id());
        let Some(head) = self.hg.chain_head(&me) else {
            self.resuming = false;
            return true;
        };
        let last_decided = self.hg.stats().last_decided_round;
        let tip_pruned = self.hg.event_info(&head.id).is_none();
        let tip_recent = head.birth_round + dagger_consensus::ANCIENT_HORIZON / 2 > last_decided;
        if tip_pruned || (tip_recent && pulled <= RESUME_QUIET_EVENTS) {
            tracing::info!(
                tip_pruned,
                pulled,
                "caught up after a restart; creating events again"
            );
            self.resuming = false;
        }
        !self.resuming
    }

    fn should_create_event(&self) -> bool {
        self.has_work() || self.last_own_event.elapsed() >= self.config.idle_event_interval
    }

    fn track(&mut self, event: &Event) {
        if !event.transactions().is_empty() {
            self.unordered_with_txs.insert(event.id());
        }
    }

    fn submit(&mut self, tx: Vec<u8>, reply: oneshot::Sender<Result<EventId, SubmitError>>) {
        let limits = &self.config.consensus.limits;
        let result = if tx.is_empty() {
            Err(SubmitError::Empty)
        } else if tx.len() > limits.max_tx_bytes {
            Err(SubmitError::TooLarge {
                size: tx.len(),
                max: limits.max_tx_bytes,
            })
        } else if self.pending.len() >= self.config.max_pending_txs {
            Err(SubmitError::Busy(self.pending.len()))
        } else if self.pending_bytes.saturating_add(tx.len()) > self.config.max_pending_bytes {
            Err(SubmitError::BusyBytes(self.pending_bytes))
        } else {
            Ok(())
        };
        match result {
            Ok(()) => {
                self.pending_bytes += tx.len();
                self.pending.push_back(PendingTx {
                    tx,
                    submitted: Instant::now(),
                    reply: Some(reply),
                });
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn receive(&mut self, events: Vec<Event>) -> Result<ReceiveSummary, CoreError> {
        self.received_since_pull += events.len();
        let mut summary = ReceiveSummary::default();
        let mut accepted: Vec<Event> = Vec::new();
        for event in events {
            let id = event.id();
            match self.hg.insert(event.clone()) {
                Ok(InsertOutcome::Inserted(inserted)) => {
                    tracing::trace!(
                        creator = %hex(&event.creator().0[..4]),
                        seq = event.seq(),
                        round = inserted.round,
                        witness = inserted.witness,
                        "event inserted"
                    );
                    summary.inserted += 1 + inserted.unblocked.len();
                    self.track(&event);
                    self.forget.remove(&id);
                    accepted.push(event);
                    for (dropped, reject) in inserted.dropped {
                        self.metrics.reject_event(reject_label(&reject));
                        self.forget.insert(dropped);
                        summary.dropped.push((dropped, reject));
                    }
                }
                Ok(InsertOutcome::Buffered { evicted }) => {
                    // Waiting events pushed out of the bounded buffer will
                    // not be inserted: delete them from disk too.
                    let kept = !evicted.contains(&id);
                    self.forget.extend(evicted);
                    if kept {
                        summary.waiting += 1;
                        self.track(&event);
                        self.forget.remove(&id);
                        accepted.push(event);
                    }
                }
                Ok(InsertOutcome::Parked) => {
                    summary.waiting += 1;
                    self.track(&event);
                    self.forget.remove(&id);
                    accepted.push(event);
                }
                Ok(InsertOutcome::Duplicate) => summary.duplicates += 1,
                Err(reject) => {
                    tracing::debug!(event = %hex(&id.0), %reject, "event rejected");
                    self.metrics.reject_event(reject_label(&reject));
                    summary.rejected.push((id, reject));
                }
            }
        }
        if !accepted.is_empty() {
            self.metrics.events_received.inc_by(accepted.len() as u64);
            let events = accepted.iter().map(|e| (e.id().0, e.encode())).collect();
            self.write(
                Write::Events {
                    events,
                    own_seq: None,
                },
                None,
            )?;
        }
        self.collect_evidence();
        self.drive_consensus(true)?;
        Ok(summary)
    }

    fn collect_evidence(&mut self) {
        for evidence in self.hg.take_equivocations() {
            tracing::warn!(creator = %hex(&evidence.first.creator().0), "equivocation detected");
            self.metrics.equivocations.inc();
            self.equivocations += 1;
            if self.evidence.len() >= 256 {
                self.evidence.pop_front();
            }
            self.evidence.push_back(evidence);
        }
    }

    /// Signs, stores durably, and pushes a new own event with the pending
    /// transactions that fit.
    fn create_event(&mut self, other_parent: Option<EventId>) -> Result<(), CoreError> {
        let limits = self.config.consensus.limits.clone();
        let mut txs = Vec::new();
        let mut replies = Vec::new();
        let mut bytes = 0usize;
        while let Some(next) = self.pending.front() {
            if txs.len() >= limits.max_txs_per_event
                || bytes + next.tx.len() > limits.max_batch_bytes
            {
                break;
            }
            let next = self.pending.pop_front().expect("front exists");
            bytes += next.tx.len();
            self.pending_bytes -= next.tx.len();
            txs.push(next.tx);
            replies.push((next.submitted, next.reply));
        }
        let event = match self.hg.create_event(
            self.identity.signing_key(),
            txs.clone(),
            now_ns(),
            other_parent,
        ) {
            Ok(event) => event,
            Err(err) => {
                // Put the transactions back in front, in their order.
                for (tx, (submitted, reply)) in txs.into_iter().zip(replies).rev() {
                    self.pending_bytes += tx.len();
                    self.pending.push_front(PendingTx {
                        tx,
                        submitted,
                        reply,
                    });
                }
                if matches!(err, CreateError::WaitForConsensus) {
                    tracing::debug!("event creation waits for consensus");
                } else if let CreateError::Rejected(Reject::NotInRoster { round }) = err {
                    // An admitted operator observes until its admission takes
                    // effect at a round boundary; a removed one from then on.
                    tracing::debug!(round, "not a roster member for this round; observing");
                } else {
                    tracing::warn!(error = %err, "cannot create an event");
                }
                return Ok(());
            }
        };
        let id = event.id();
        self.own_seq = Some(event.seq());
        self.last_own_event = Instant::now();
        self.track(&event);
        self.metrics.events_created.inc();
        tracing::trace!(
            seq = event.seq(),
            txs = event.transactions().len(),
            "event created"
        );
        if !replies.is_empty() {
            self.in_flight.insert(
                id,
                InFlight {
                    submitted: replies.iter().map(|(t, _)| *t).collect(),
                    txs,
                },
            );
        }
        // Durable before anyone else sees it (the writer pushes it and
        // answers the submitters after its fsync): a crash must not let us
        // sign this sequence again.
        self.undurable.insert(id);
        self.write(
            Write::Events {
                events: vec![(id.0, event.encode())],
                own_seq: Some(event.seq()),
            },
            Some(OwnEvent {
                event,
                replies: replies.into_iter().filter_map(|(_, reply)| reply).collect(),
            }),
        )?;
        self.drive_consensus(true)
    }

    /// Polls consensus until nothing more is decided, recording each round.
    fn drive_consensus(&mut self, live: bool) -> Result<(), CoreError> {
        while let Some(decided) = self.hg.poll() {
            // The observer's roster change for this round is scheduled before
            // the round is recorded: a snapshot taken in `record` must
            // already contain it (a decided round is never polled again).
            if let Some(roster) = self.observer.on_decided(&decided) {
                match self
                    .hg
                    .schedule_roster_change(decided.round_received, roster)
                {
                    Ok(effective) => tracing::info!(
                        ordered_in = decided.round_received,
                        effective,
                        "roster change scheduled"
                    ),
                    Err(err) => tracing::error!(error = %err, "roster change refused"),
                }
            }
            self.record(&decided, live)?;
            let _ = self.decided.send(Arc::new(decided));
        }
        let stats = self.hg.stats();
        self.metrics
            .last_round_created
            .set(stats.last_round_created as i64);
        self.metrics
            .last_decided_round
            .set(stats.last_decided_round as i64);
        self.metrics.held_events.set(stats.held_events as i64);
        Ok(())
    }

    fn record(&mut self, decided: &Decided, live: bool) -> Result<(), CoreError> {
        let mut order = Vec::with_capacity(decided.events.len());
        let mut txs = Vec::new();
        let now = Instant::now();
        for ordered in &decided.events {
            let event = &ordered.event;
            let first_tx = self.next_tx_position;
            for tx in event.transactions() {
                txs.push(TxRecord {
                    position: self.next_tx_position,
                    event_id: event.id().0,
                    consensus_time_ns: ordered.consensus_time_ns,
                    tx: tx.clone(),
                });
                self.next_tx_position += 1;
            }
            order.push(OrderRecord {
                position: ordered.order_index,
                event_id: event.id().0,
                creator: event.creator().0,
                round_received: ordered.round_received,
                consensus_time_ns: ordered.consensus_time_ns,
                running_hash: ordered.running_hash,
                first_tx,
                tx_count: event.transactions().len() as u32,
            });
            self.unordered_with_txs.remove(&event.id());
            self.ordered_held.insert(event.id());
            if let Some(in_flight) = self.in_flight.remove(&event.id()) {
                if live {
                    for t in in_flight.submitted {
                        self.metrics
                            .finality_latency
                            .observe(now.saturating_duration_since(t).as_secs_f64());
                    }
                }
            }
        }
        for id in &decided.pruned {
            // Pruned before being ordered: stale, it will never be ordered
            // (on any node: staleness is decided by consensus).
            self.unordered_with_txs.remove(id);
            if let Some(stale) = self.in_flight.remove(id) {
                tracing::info!(
                    event = %hex(&id.0),
                    txs = stale.txs.len(),
                    "own event went stale; submitting its transactions again"
                );
                for (tx, submitted) in stale.txs.into_iter().zip(stale.submitted).rev() {
                    self.pending_bytes += tx.len();
                    self.pending.push_front(PendingTx {
                        tx,
                        submitted,
                        reply: None,
                    });
                }
            }
        }
        // Waiting events the consensus core dropped or evicted will never be
        // ordered here: stop gossiping at full speed for them.
        let hg = &self.hg;
        self.unordered_with_txs.retain(|id| hg.knows(id));
        for id in &decided.pruned {
            // Ordered events stay on disk for catch-ups (see `catch_up`).
            if !self.ordered_held.remove(id) {
                self.pruned_since_snapshot.push(id.0);
            }
        }
        self.forget.extend(decided.discarded.iter().copied());
        self.rounds_since_snapshot += 1;
        let snapshot = if self.rounds_since_snapshot >= SNAPSHOT_EVERY_ROUNDS {
            self.rounds_since_snapshot = 0;
            Some(join_snapshot(
                &self.hg.snapshot(),
                &self.observer.snapshot(),
            ))
        } else {
            None
        };
        let (ordered_events, ordered_txs) = (order.len() as u64, txs.len() as u64);
        let pruned = if snapshot.is_some() {
            let hg = &self.hg;
            let forgotten = self.forget.drain().filter(|id| !hg.knows(id));
            let mut pruned = std::mem::take(&mut self.pruned_since_snapshot);
            pruned.extend(forgotten.map(|id| id.0));
            pruned
        } else {
            Vec::new()
        };
        let forget_ordered_through_round = snapshot.as_ref().map(|_| {
            decided
                .round_received
                .saturating_sub(self.config.disk_horizon_rounds)
        });
        self.write(
            Write::Decided {
                order,
                txs,
                snapshot,
                pruned,
                forget_ordered_through_round,
            },
            None,
        )?;
        self.metrics.rounds_decided.inc();
        self.metrics.ordered_events.inc_by(ordered_events);
        self.metrics.ordered_txs.inc_by(ordered_txs);
        self.ordered_window.push_back((now, ordered_txs));
        while self
            .ordered_window
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(5))
        {
            self.ordered_window.pop_front();
        }
        let recent: u64 = self.ordered_window.iter().map(|(_, n)| n).sum();
        self.metrics.ordered_tps.set(recent as f64 / 5.0);
        Ok(())
    }

    fn status(&self) -> CoreStatus {
        let stats = self.hg.stats();
        CoreStatus {
            node_id: crate::identity::display_id(&self.identity.id()),
            last_round_created: stats.last_round_created,
            last_decided_round: stats.last_decided_round,
            ordered_events: stats.ordered_count,
            ordered_txs: self.next_tx_position,
            held_events: stats.held_events,
            stored_events: self.store.event_count().unwrap_or(0),
            waiting_events: stats.buffered_events + stats.parked_events,
            pending_txs: self.pending.len(),
            running_hash: hex(&stats.running_hash),
            own_seq: self.own_seq,
            equivocations: self.equivocations,
        }
    }
}

/// A snapshot blob: consensus state, then the observer's, length-prefixed.
fn join_snapshot(consensus: &[u8], observer: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + consensus.len() + observer.len());
    out.extend_from_slice(&(consensus.len() as u64).to_le_bytes());
    out.extend_from_slice(consensus);
    out.extend_from_slice(observer);
    out
}

/// Splits a stored snapshot blob into (consensus, observer) state.
pub fn split_snapshot(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let consensus = bytes.get(8..8usize.checked_add(len)?)?;
    Some((consensus, &bytes[8 + len..]))
}

/// A short label for a refusal (metrics).
pub fn reject_label(reject: &Reject) -> &'static str {
    match reject {
        Reject::BadSignature => "bad_signature",
        Reject::BadMerkleRoot => "bad_merkle_root",
        Reject::UnknownCreator | Reject::NotInRoster { .. } => "not_in_roster",
        Reject::EventTooLarge { .. }
        | Reject::TooManyTransactions { .. }
        | Reject::TransactionTooLarge { .. }
        | Reject::BatchTooLarge { .. } => "too_large",
        _ => "invalid",
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
