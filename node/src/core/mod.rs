//! The consensus core: a synchronous state machine ([`machine::Machine`],
//! no I/O) inside a thin async driver ([`Core`]) that owns the ledger
//! writer, so every state change happens in one place, in one order.
//!
//! Everything else (gossip, API, timers) talks to it through a
//! [`CoreHandle`]. Accepted events are persisted before they are acted on,
//! own events durably before they are pushed to peers, and each decided
//! round is recorded (and handed to an [`OrderObserver`], e.g. the
//! controller) before consensus goes on.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use dagger_consensus::{Decided, Equivocation, Event, EventId, Reject, Roster};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::{
    identity::{Identity, NodeId},
    metrics::Metrics,
    store::{Store, StoreError},
};

mod catch_up;
mod dag_view;
pub mod forward;
mod timeline;
pub use catch_up::{complete as complete_sync_answer, stored_event, CatchUpPlan, LedgerReads};
pub use dag_view::{DagEvent, DagSlice, MAX_DAG_EVENTS};
pub use forward::{Delivery, ForwardError, FORWARD_TAG};
pub use timeline::Moments;
pub mod checkpoint;
pub mod machine;
pub mod mempool;
mod recent;
mod records;
mod recovery;
mod state_sync;
mod writer;

pub use catch_up::{CATCH_UP_GAP, STATE_SYNC_MIN_LAG};
pub use checkpoint::Checkpoint;
pub use machine::{EventLookup, Machine, Now, Output, OwnEvent, SyncAnswer};
pub use mempool::SubmitId;
pub use recent::RecentOrder;
pub use records::SNAPSHOT_EVERY_ROUNDS;
pub use state_sync::{InstallError, OrderGap};
use writer::LedgerOp;

/// Sees every decided round, in order, before consensus continues, and may
/// change the roster in response (the change applies `ROSTER_DELAY` rounds
/// later, identically on every node).
pub trait OrderObserver: Send + 'static {
    /// `deliveries` are the round's transactions as the order hands them
    /// out: envelopes opened (attributed to their signers), repeats and
    /// invalid ones left out (see [`forward`]).
    fn on_decided(&mut self, decided: &Decided, deliveries: &[Delivery]) -> Option<Roster>;
    /// State to store with consensus snapshots, so a restart resumes the
    /// observer where the restored consensus resumes.
    fn snapshot(&self) -> Vec<u8>;
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String>;
}

/// An observer that keeps the genesis roster forever.
#[derive(Default)]
pub struct StaticRoster;

impl OrderObserver for StaticRoster {
    fn on_decided(&mut self, _decided: &Decided, _deliveries: &[Delivery]) -> Option<Roster> {
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
    /// Transactions admitted and not yet ordered (waiting for an own event
    /// or carried by one), at most; then `POST /tx` says busy (429)...
    pub max_pending_txs: usize,
    /// ...and their bytes.
    pub max_pending_bytes: usize,
    /// An idle node still creates an event this often, so consensus on
    /// earlier events completes.
    pub idle_event_interval: Duration,
    /// A busy node signs at most one event per this interval: events that
    /// arrive meanwhile are answered together (coalescing).
    pub min_event_spacing: Duration,
    /// Ordered events stay on disk this many decided rounds, so peers that
    /// fell behind can catch up from this node; older ones are deleted.
    pub disk_horizon_rounds: u64,
    /// A peer asking for a catch-up from further behind than this many
    /// ordered events (before this node's newest checkpoint) is told to
    /// take a state sync: replaying that much costs it longer than
    /// installing a vouched state ([`catch_up`]).
    pub state_sync_gap: u64,
    /// ...and whose position the order passed more than this long ago
    /// (consensus time): a peer that merely lags is left to replay.
    pub state_sync_min_lag: Duration,
    /// How long an envelope of forwarded transactions stays valid (see
    /// [`forward`]); one that expires undelivered is sealed again. At most
    /// half of [`forward::MAX_FORWARD_WINDOW_NS`].
    pub forward_window: Duration,
    /// The signing record (slashing protection, `crate::signing_record`);
    /// `None` signs unguarded (tests that drive bare cores).
    pub signing_record: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored consensus snapshot is unusable: {0}")]
    Snapshot(String),
    #[error(transparent)]
    Record(#[from] crate::signing_record::RecordError),
    #[error(
        "ledger says this node signed sequence {stored} but only {replayed} is on disk; \
         refusing to sign again (it could fork itself)"
    )]
    SelfForkGuard { stored: u64, replayed: String },
    #[error("the node is shutting down")]
    Closed,
    #[error("state sync: {0}")]
    Install(#[from] InstallError),
    #[error("forwarded transactions refused: {0}")]
    Forward(ForwardError),
}

/// First bytes of every report of the node's own components (chain facts,
/// provisioning reports, VM failures, served images; see
/// `controller::txs::NodeTx`). Consensus attributes a report to the creator
/// of the event carrying it, so only the node's components may submit such
/// transactions ([`CoreHandle::report`]); [`CoreHandle::submit`] refuses
/// them.
pub const REPORT_TAG: &[u8; 4] = b"DGT3";

/// Whether clients may not submit `tx` (see [`SubmitError::Reserved`]).
fn is_reserved(tx: &[u8]) -> bool {
    tx.starts_with(REPORT_TAG) || forward::is_envelope(tx)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    #[error("transaction is empty")]
    Empty,
    /// Starts with [`REPORT_TAG`] or [`FORWARD_TAG`]: node reports (chain
    /// facts, provisioning, failures, images) are signed only by the node's
    /// own components, and envelopes of forwarded transactions only by
    /// nodes; neither is taken from outside.
    #[error(
        "transactions starting with the node-report or envelope tag are reserved for the nodes themselves"
    )]
    Reserved,
    #[error("transaction is {size} bytes, limit {max}")]
    TooLarge { size: usize, max: usize },
    #[error("{0} transactions already wait to be ordered here; try again later")]
    Busy(usize),
    #[error("{0} bytes of transactions already wait to be ordered here; try again later")]
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
    /// This node's transactions ordered through envelopes its peers
    /// carried (its own events had gone stale), since it started.
    pub forwarded_txs: u64,
    pub running_hash: String,
    pub own_seq: Option<u64>,
    pub equivocations: u64,
    /// Round of a state installed by state sync whose consensus has not yet
    /// been seen to match the peers' (the node takes no on-chain action
    /// until it has).
    pub unverified_install: Option<u64>,
    /// Birth round of the oldest parent that waiting events lack (sent with
    /// pulls: a peer that pruned that round says this node is behind).
    pub oldest_missing_parent: Option<u64>,
    /// The first few of those parents (ids, hex): what to ask peers about
    /// when a node waits.
    pub missing_parents: Vec<String>,
}

/// Where a node stands, for a state sync: its ordered count and running
/// hash, and whether own events of it wait for consensus.
#[derive(Clone, Copy, Debug)]
pub struct SyncPosition {
    pub ordered: u64,
    pub running_hash: [u8; 32],
    pub waiting_own_events: bool,
}

enum Command {
    Receive {
        events: Vec<Event>,
        /// Pushed (answered with an own event) rather than pulled.
        pushed: bool,
        reply: oneshot::Sender<ReceiveSummary>,
    },
    SyncAnswer {
        tips: Vec<EventId>,
        ordered: u64,
        missing: Vec<(EventId, u64)>,
        max_events: usize,
        in_flight: Option<Duration>,
        reply: oneshot::Sender<SyncAnswer>,
    },
    SyncPosition {
        reply: oneshot::Sender<SyncPosition>,
    },
    VerifyState {
        blob: Arc<Vec<u8>>,
        checkpoint: Checkpoint,
        reply: oneshot::Sender<Result<(), InstallError>>,
    },
    Install {
        blob: Arc<Vec<u8>>,
        checkpoint: Checkpoint,
        gap: Option<OrderGap>,
        reply: oneshot::Sender<Result<(), CoreError>>,
    },
    Checkpoints {
        reply: oneshot::Sender<Vec<Checkpoint>>,
    },
    Verified,
    Roster {
        reply: oneshot::Sender<Vec<(NodeId, u64)>>,
    },
    Tips {
        reply: oneshot::Sender<Vec<EventId>>,
    },
    MissingParents {
        reply: oneshot::Sender<Vec<(EventId, u64)>>,
    },
    AfterSync {
        peer: NodeId,
    },
    Forward {
        peer: NodeId,
        envelope: Vec<u8>,
        reply: oneshot::Sender<Result<(), ForwardError>>,
    },
    Heartbeat,
    Submit {
        tx: Vec<u8>,
        own: bool,
        reply: oneshot::Sender<Result<EventId, SubmitError>>,
    },
    SubmitBatch {
        txs: Vec<Vec<u8>>,
        replies: Vec<oneshot::Sender<Result<EventId, SubmitError>>>,
    },
    Status {
        reply: oneshot::Sender<CoreStatus>,
    },
    Event {
        id: EventId,
        reply: oneshot::Sender<EventLookup>,
    },
    HasWork {
        reply: oneshot::Sender<bool>,
    },
    Evidence {
        reply: oneshot::Sender<Vec<Equivocation>>,
    },
    Dag {
        after: u64,
        also: std::collections::HashSet<EventId>,
        reply: oneshot::Sender<DagSlice>,
    },
    /// Stop even though other handles are still alive (the API, a test).
    Shutdown,
}

impl Command {
    fn kind(&self) -> &'static str {
        match self {
            Command::Receive { .. } => "receive",
            Command::SyncAnswer { .. } => "sync_answer",
            Command::SyncPosition { .. } => "sync_position",
            Command::VerifyState { .. } => "verify_state",
            Command::Install { .. } => "install",
            Command::Checkpoints { .. } => "checkpoints",
            Command::Verified => "verified",
            Command::Roster { .. } => "roster",
            Command::Tips { .. } => "tips",
            Command::MissingParents { .. } => "missing_parents",
            Command::AfterSync { .. } => "after_sync",
            Command::Forward { .. } => "forward",
            Command::Heartbeat => "heartbeat",
            Command::Submit { .. } => "submit",
            Command::SubmitBatch { .. } => "submit_batch",
            Command::Status { .. } => "status",
            Command::Event { .. } => "event",
            Command::HasWork { .. } => "has_work",
            Command::Evidence { .. } => "evidence",
            Command::Dag { .. } => "dag",
            Command::Shutdown => "shutdown",
        }
    }
}

/// Cheap, cloneable access to the core task.
#[derive(Clone)]
pub struct CoreHandle {
    tx: mpsc::Sender<Command>,
    own_events: broadcast::Sender<Event>,
    forwards: broadcast::Sender<Arc<Vec<u8>>>,
    decided: broadcast::Sender<Arc<Decided>>,
    fatal: watch::Receiver<Option<String>>,
    recent: Arc<std::sync::RwLock<RecentOrder>>,
    ordered: watch::Receiver<u64>,
    pub node_id: NodeId,
    /// What events are signed for (gossip checks signatures before they
    /// reach the core, in parallel).
    pub network_id: [u8; 32],
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
    /// Inserts events a pull brought (in the order given).
    pub async fn receive(&self, events: Vec<Event>) -> Result<ReceiveSummary, CoreError> {
        let pushed = false;
        ask!(self, Receive { events, pushed })
    }

    /// Inserts events a peer pushed; news is answered with an own event.
    pub async fn receive_push(&self, events: Vec<Event>) -> Result<ReceiveSummary, CoreError> {
        let pushed = true;
        ask!(self, Receive { events, pushed })
    }

    /// The events a peer with these tips is missing, parents first.
    pub async fn sync_answer(
        &self,
        tips: Vec<EventId>,
        ordered: u64,
        missing: Vec<(EventId, u64)>,
        max_events: usize,
        in_flight: Option<Duration>,
    ) -> Result<SyncAnswer, CoreError> {
        ask!(
            self,
            SyncAnswer {
                tips,
                ordered,
                missing,
                max_events,
                in_flight
            }
        )
    }

    /// The parents this node's waiting events lack, oldest first (sent
    /// with pulls).
    pub async fn missing_parents(&self) -> Result<Vec<(EventId, u64)>, CoreError> {
        ask!(self, MissingParents {})
    }

    /// Where this node stands in the order (state sync).
    pub async fn sync_position(&self) -> Result<SyncPosition, CoreError> {
        ask!(self, SyncPosition {})
    }

    /// Checks a peer's state against a vouched checkpoint.
    pub async fn verify_state(
        &self,
        blob: Arc<Vec<u8>>,
        checkpoint: Checkpoint,
    ) -> Result<Result<(), InstallError>, CoreError> {
        ask!(self, VerifyState { blob, checkpoint })
    }

    /// Installs a peer's state (see [`Machine::install`]).
    pub async fn install(
        &self,
        blob: Arc<Vec<u8>>,
        checkpoint: Checkpoint,
        gap: Option<OrderGap>,
    ) -> Result<(), CoreError> {
        ask!(
            self,
            Install {
                blob,
                checkpoint,
                gap
            }
        )?
    }

    /// This node's latest checkpoints, newest first.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, CoreError> {
        ask!(self, Checkpoints {})
    }

    /// The installed state proved to compute what the peers compute.
    pub async fn verified(&self) -> Result<(), CoreError> {
        self.tx
            .send(Command::Verified)
            .await
            .map_err(|_| CoreError::Closed)
    }

    /// The roster in force for the next round to decide: node id, stake.
    pub async fn roster(&self) -> Result<Vec<(NodeId, u64)>, CoreError> {
        ask!(self, Roster {})
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

    /// An envelope of forwarded transactions `peer` sealed: carried in an
    /// own event if it checks out (see [`forward`]).
    pub async fn receive_forward(&self, peer: NodeId, envelope: Vec<u8>) -> Result<(), CoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Forward {
                peer,
                envelope,
                reply,
            })
            .await
            .map_err(|_| CoreError::Closed)?;
        rx.await
            .map_err(|_| CoreError::Closed)?
            .map_err(CoreError::Forward)
    }

    /// Lets an idle node create an event now and then.
    pub async fn heartbeat(&self) -> Result<(), CoreError> {
        self.tx
            .send(Command::Heartbeat)
            .await
            .map_err(|_| CoreError::Closed)
    }

    /// Queues a client transaction; resolves with the id of the own event
    /// carrying it. One starting with [`REPORT_TAG`] is refused (only
    /// [`CoreHandle::report`] takes those), as is one starting with
    /// [`FORWARD_TAG`] (only peers send envelopes, and only their own).
    pub async fn submit(&self, tx: Vec<u8>) -> Result<EventId, SubmitError> {
        if is_reserved(&tx) {
            return Err(SubmitError::Reserved);
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Submit {
                tx,
                own: false,
                reply,
            })
            .await
            .map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)?
    }

    /// Queues a report of this node's own components (it must start with
    /// [`REPORT_TAG`]) in their own lane, ahead of client transactions;
    /// resolves with the id of the own event carrying it.
    pub async fn report(&self, tx: Vec<u8>) -> Result<EventId, SubmitError> {
        if !tx.starts_with(REPORT_TAG) {
            return Err(SubmitError::Empty);
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Submit {
                tx,
                own: true,
                reply,
            })
            .await
            .map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)?
    }

    /// Queues many transactions in one step; each result is what
    /// [`CoreHandle::submit`] would have answered for it.
    pub async fn submit_batch(&self, txs: Vec<Vec<u8>>) -> Vec<Result<EventId, SubmitError>> {
        let (replies, receivers): (Vec<_>, Vec<_>) = txs.iter().map(|_| oneshot::channel()).unzip();
        if self
            .tx
            .send(Command::SubmitBatch { txs, replies })
            .await
            .is_err()
        {
            return receivers.iter().map(|_| Err(SubmitError::Closed)).collect();
        }
        let mut results = Vec::with_capacity(receivers.len());
        for rx in receivers {
            results.push(rx.await.unwrap_or(Err(SubmitError::Closed)));
        }
        results
    }

    /// The position of the next transaction to be ordered, as soon as
    /// consensus decides (a long poll of `/order` waits on it).
    pub fn ordered_watch(&self) -> watch::Receiver<u64> {
        self.ordered.clone()
    }

    /// Recently ordered transactions from `from`, straight from memory;
    /// `None` if `from` is older than what memory keeps (read the ledger).
    pub fn recent_order(
        &self,
        from: u64,
        limit: crate::store::PageLimit,
    ) -> Option<Vec<crate::store::TxRecord>> {
        self.recent
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .page(from, limit)
    }

    pub async fn status(&self) -> Result<CoreStatus, CoreError> {
        ask!(self, Status {})
    }

    /// An event the core holds in memory (see [`EventLookup`]).
    pub async fn event(&self, id: EventId) -> Result<EventLookup, CoreError> {
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

    /// The held DAG for the explorer: events inserted from cursor `after`
    /// on, and those of `also` still held (see [`Machine::dag`]).
    pub async fn dag(
        &self,
        after: u64,
        also: std::collections::HashSet<EventId>,
    ) -> Result<DagSlice, CoreError> {
        ask!(self, Dag { after, also })
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

    /// Envelopes of this node's forwarded transactions, for the peers.
    pub fn forwards(&self) -> broadcast::Receiver<Arc<Vec<u8>>> {
        self.forwards.subscribe()
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

/// The async driver around the [`Machine`]: feeds it commands and the
/// writer's durability reports, and carries its outputs to the ledger
/// writer and to subscribers.
pub struct Core {
    commands: mpsc::Receiver<Command>,
    durable: mpsc::UnboundedReceiver<EventId>,
    machine: Machine,
    ledger: Option<std::sync::mpsc::Sender<LedgerOp>>,
    writer: Option<std::thread::JoinHandle<()>>,
    replies: HashMap<SubmitId, writer::Reply>,
    next_submit: u64,
    decided: broadcast::Sender<Arc<Decided>>,
    forwards: broadcast::Sender<Arc<Vec<u8>>>,
    recent: Arc<std::sync::RwLock<RecentOrder>>,
    ordered: watch::Sender<u64>,
    /// The signing record: where it lives, what it holds (`None` until it
    /// is first written when it was lost), for which key and network.
    record: Option<RecordFile>,
}

/// The signing record as the core keeps it.
struct RecordFile {
    /// Held while the core may sign: no other process uses this record.
    _lock: crate::signing_record::RecordLock,
    path: std::path::PathBuf,
    record: Option<crate::signing_record::SigningRecord>,
    node_key: String,
    network: [u8; 32],
}

impl RecordFile {
    fn store(&mut self, entry: crate::signing_record::Entry) -> Result<(), CoreError> {
        use crate::signing_record::SigningRecord;
        let record = match &mut self.record {
            Some(record) => record,
            None => self
                .record
                .insert(SigningRecord::create_fresh(&self.path, &self.node_key)?),
        };
        record.store(&self.network, entry)?;
        Ok(())
    }
}

impl Core {
    /// Rebuilds the core from the ledger (snapshot plus the events accepted
    /// after it), writes back what replay found missing, and returns it
    /// with its handle.
    pub fn open(
        identity: Identity,
        store: Arc<Store>,
        config: CoreConfig,
        metrics: Arc<Metrics>,
        observer: Box<dyn OrderObserver>,
    ) -> Result<(Core, CoreHandle), CoreError> {
        let recovered = store.recover()?;
        let network_id = config.consensus.network_id;
        let record_path = config.signing_record.clone();
        let mut machine = Machine::recover(
            identity.clone(),
            config,
            metrics,
            observer,
            store.clone(),
            recovered,
            Now::system(),
        )?;
        let record = match record_path {
            None => None,
            Some(path) => {
                let node_key = crate::identity::display_id(&identity.id());
                let lock = crate::signing_record::RecordLock::acquire(
                    &path,
                    crate::signing_record::LOCK_WAIT,
                )?;
                let record = crate::signing_record::SigningRecord::open(&path, &node_key)?;
                machine.resume_signing(record.as_ref().map(|r| r.entry(&network_id)));
                Some(RecordFile {
                    _lock: lock,
                    path,
                    record,
                    node_key,
                    network: network_id,
                })
            }
        };
        // Records a crash lost, re-derived by replay: durable before
        // anything new happens.
        let mut repairs = Vec::new();
        while let Some(output) = machine.poll_output() {
            if let Output::Persist { write, .. } = output {
                repairs.push(*write);
            }
        }
        if !repairs.is_empty() {
            tracing::info!(writes = repairs.len(), "rewriting what replay re-derived");
            store.commit(&repairs, true)?;
        }
        let (own_events, _) = broadcast::channel(1024);
        let (forwards, _) = broadcast::channel(256);
        let (decided, _) = broadcast::channel(256);
        let (tx, rx) = mpsc::channel(1024);
        let (durable_tx, durable) = mpsc::unbounded_channel();
        let (fatal_tx, fatal) = watch::channel(None);
        let next_tx = machine.status().ordered_txs;
        let recent = Arc::new(std::sync::RwLock::new(RecentOrder::starting_at(next_tx)));
        let (ordered_tx, ordered) = watch::channel(next_tx);
        let (ledger, writer) = writer::spawn(
            store,
            writer::Reports {
                own_events: own_events.clone(),
                durable: durable_tx,
                fatal: fatal_tx,
            },
        );
        let core = Core {
            commands: rx,
            durable,
            machine,
            ledger: Some(ledger),
            writer: Some(writer),
            replies: HashMap::new(),
            next_submit: 0,
            decided: decided.clone(),
            forwards: forwards.clone(),
            recent: recent.clone(),
            ordered: ordered_tx,
            record,
        };
        let handle = CoreHandle {
            tx,
            own_events,
            forwards,
            decided,
            fatal,
            recent,
            ordered,
            node_id: identity.id(),
            network_id,
        };
        Ok((core, handle))
    }

    /// Runs the core until every handle is dropped or one asks it to stop.
    pub async fn run(mut self) {
        loop {
            let deadline = self.machine.poll_timeout();
            let command = tokio::select! {
                biased;
                Some(id) = self.durable.recv() => {
                    self.machine.on_durable(&id);
                    continue;
                }
                command = self.commands.recv() => command,
                _ = sleep_until_some(deadline) => {
                    self.machine.handle_timeout(Now::system());
                    if let Err(err) = self.flush() {
                        tracing::error!(error = %err, "core stopped");
                        break;
                    }
                    continue;
                }
            };
            let Some(command) = command else { break };
            if matches!(command, Command::Shutdown) {
                break;
            }
            let started = Instant::now();
            let kind = command.kind();
            self.handle(command);
            if let Err(err) = self.flush() {
                tracing::error!(error = %err, "core stopped");
                break;
            }
            let took = started.elapsed();
            if took > Duration::from_millis(5) {
                tracing::debug!(
                    command = kind,
                    took_ms = took.as_millis() as u64,
                    "slow core command"
                );
            }
        }
        // Let the writer finish what is queued, then wait for it.
        self.ledger = None;
        if let Some(writer) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
        // A clean stop: the record names exactly the last own event, so a
        // restart continues the chain without a jump.
        if let (Some(file), Some(entry)) = (self.record.as_mut(), self.machine.exact_record()) {
            match file.store(entry) {
                Ok(()) => tracing::info!(seq = entry.seq, "signing record closed exactly"),
                Err(err) => tracing::error!(error = %err, "cannot close the signing record"),
            }
        }
    }

    /// Carries the machine's outputs out, in order.
    fn flush(&mut self) -> Result<(), CoreError> {
        while let Some(output) = self.machine.poll_output() {
            match output {
                Output::Persist { write, own } => {
                    self.note_order(&write);
                    let own = own.map(|own| writer::OwnEvent {
                        replies: own
                            .submitters
                            .iter()
                            .filter_map(|id| self.replies.remove(id))
                            .collect(),
                        event: own.event,
                    });
                    self.ledger
                        .as_ref()
                        .ok_or(CoreError::Closed)?
                        .send(LedgerOp { write: *write, own })
                        .map_err(|_| CoreError::Closed)?;
                }
                Output::Decided(decided) => {
                    let _ = self.decided.send(decided);
                }
                Output::Forward(envelope) => {
                    let _ = self.forwards.send(Arc::new(envelope));
                }
                Output::Record(entry) => {
                    // Synchronously, before the own event after it is
                    // handed to the writer (which sends it once durable).
                    if let Some(file) = self.record.as_mut() {
                        file.store(entry)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Decided transactions become readable at once (see `recent`).
    fn note_order(&self, write: &crate::store::Write) {
        use crate::store::Write;
        let recent = || self.recent.write().unwrap_or_else(|p| p.into_inner());
        let next = match write {
            Write::Decided { txs, .. } if !txs.is_empty() => {
                let mut recent = recent();
                recent.extend(txs);
                recent.next()
            }
            Write::Install { checkpoint, .. } => {
                let mut recent = recent();
                *recent = RecentOrder::starting_at(checkpoint.next_tx);
                recent.next()
            }
            // Events, and rounds without transactions, change nothing here.
            _ => return,
        };
        self.ordered.send_replace(next);
    }

    fn submit(&mut self, tx: Vec<u8>, own: bool, reply: writer::Reply, now: Now) {
        let id = SubmitId(self.next_submit);
        self.next_submit += 1;
        let admitted = if own {
            self.machine.report(tx, id, now)
        } else {
            self.machine.submit(tx, id, now)
        };
        match admitted {
            Ok(()) => {
                self.replies.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn handle(&mut self, command: Command) {
        let now = Now::system();
        match command {
            Command::Receive {
                events,
                pushed,
                reply,
            } => {
                let summary = if pushed {
                    self.machine.receive_push(events, now)
                } else {
                    self.machine.receive(events, now)
                };
                let _ = reply.send(summary);
            }
            Command::SyncAnswer {
                tips,
                ordered,
                missing,
                max_events,
                in_flight,
                reply,
            } => {
                let _ = reply.send(self.machine.sync_answer(
                    &tips,
                    ordered,
                    &missing,
                    max_events,
                    in_flight,
                    Now::system(),
                ));
            }
            Command::MissingParents { reply } => {
                let mut missing = self.machine.missing_parents();
                missing.truncate(crate::net::wire::MAX_MISSING);
                let _ = reply.send(missing);
            }
            Command::SyncPosition { reply } => {
                let (ordered, running_hash, waiting_own_events) = self.machine.sync_position();
                let _ = reply.send(SyncPosition {
                    ordered,
                    running_hash,
                    waiting_own_events,
                });
            }
            Command::VerifyState {
                blob,
                checkpoint,
                reply,
            } => {
                let _ = reply.send(self.machine.verify_state(&blob, &checkpoint));
            }
            Command::Install {
                blob,
                checkpoint,
                gap,
                reply,
            } => {
                let _ = reply.send(self.machine.install(&blob, &checkpoint, gap.as_ref()));
            }
            Command::Checkpoints { reply } => {
                let _ = reply.send(self.machine.recent_checkpoints());
            }
            Command::Verified => self.machine.verified(),
            Command::Roster { reply } => {
                let _ = reply.send(self.machine.roster());
            }
            Command::Tips { reply } => {
                let _ = reply.send(self.machine.tips());
            }
            Command::AfterSync { peer } => self.machine.after_sync(peer, now),
            Command::Forward {
                peer,
                envelope,
                reply,
            } => {
                let _ = reply.send(self.machine.receive_forward(peer, envelope, now));
            }
            Command::Heartbeat => self.machine.heartbeat(now),
            Command::Submit { tx, own, reply } => {
                self.submit(tx, own, reply, now);
                self.machine.submitted(now);
            }
            Command::SubmitBatch { txs, replies } => {
                for (tx, reply) in txs.into_iter().zip(replies) {
                    if is_reserved(&tx) {
                        let _ = reply.send(Err(SubmitError::Reserved));
                        continue;
                    }
                    self.submit(tx, false, reply, now);
                }
                self.machine.submitted(now);
            }
            Command::Status { reply } => {
                let _ = reply.send(self.machine.status());
            }
            Command::Event { id, reply } => {
                let _ = reply.send(self.machine.event(&id));
            }
            Command::HasWork { reply } => {
                let _ = reply.send(self.machine.has_work());
            }
            Command::Evidence { reply } => {
                let _ = reply.send(self.machine.evidence());
            }
            Command::Dag { after, also, reply } => {
                let _ = reply.send(self.machine.dag(after, &also));
            }
            // Handled by `run`, which stops the loop.
            Command::Shutdown => {}
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
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

/// Lower-case hex, as every id and hash is shown.
pub fn hex(bytes: &[u8]) -> String {
    // `hex::encode` collects chars one by one; `/order` encodes every
    // transaction it serves, which showed in profiles.
    let mut out = vec![0u8; bytes.len() * 2];
    ::hex::encode_to_slice(bytes, &mut out).expect("twice the length");
    String::from_utf8(out).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests;
