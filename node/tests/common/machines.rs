//! Machines driven without sockets or tasks: real redb ledgers whose
//! writes the harness commits (or loses, when a node crashes first), the
//! node's sync protocol between them, and state sync from the others'
//! ledgers. Shared by `core_crash.rs` and `machine_sim.rs`.
#![allow(dead_code)]

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use dagger_consensus::{CreatorId, Roster};
use dagger_node::{
    core::{
        Checkpoint, CoreConfig, CoreError, InstallError, Machine, Now, OrderGap, Output, OwnEvent,
        StaticRoster, SubmitId,
    },
    identity::Identity,
    metrics::Metrics,
    net::state_sync::all_vouched,
    store::{Store, TxRecord, Write},
};
use ed25519_dalek::SigningKey;

pub struct Disk {
    pub store: Arc<Store>,
    _dir: tempfile::TempDir,
}

pub struct Peer {
    pub identity: Identity,
    pub disk: Disk,
    pub machine: Option<Machine>,
    /// Writes handed out and not committed yet, in order.
    pub queued: VecDeque<(Write, Option<OwnEvent>)>,
    /// Envelopes of forwarded transactions to send to the peers.
    pub forwards: Vec<Vec<u8>>,
    next_submit: u64,
    /// Submission id -> transaction, until acknowledged.
    waiting: HashMap<SubmitId, Vec<u8>>,
}

pub struct Net {
    pub peers: Vec<Peer>,
    config: CoreConfig,
    pub clock: Now,
    pub acknowledged: HashSet<Vec<u8>>,
    submitted: u64,
    /// A peer said this node is behind what it keeps.
    pub behind: Vec<bool>,
    /// State syncs performed.
    pub installs: usize,
    /// At most this many events in one pull's answer (half of them
    /// catch-up from the ledger, as a node's answer).
    pub max_events_per_pull: usize,
}

fn config(
    genesis: Roster,
    disk_horizon_rounds: u64,
    timing: Timing,
    (state_sync_gap, state_sync_min_lag): (u64, Duration),
) -> CoreConfig {
    CoreConfig {
        consensus: dagger_consensus::Config {
            network_id: [7; 32],
            limits: Default::default(),
        },
        genesis,
        max_pending_txs: 10_000,
        max_pending_bytes: 1 << 24,
        idle_event_interval: timing.idle,
        min_event_spacing: timing.spacing,
        disk_horizon_rounds,
        state_sync_gap,
        state_sync_min_lag,
        // Shorter than a node's: a restart holds what waits to be
        // forwarded this long (in the harness's virtual time).
        forward_window: Duration::from_secs(2),
        signing_record: None,
    }
}

/// How often the machines sign events.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// With nothing to do, an event at most this often.
    pub idle: Duration,
    /// Least time between two own events.
    pub spacing: Duration,
}

impl Timing {
    /// As fast as the scripted harness steps (10 ms a step).
    pub const FAST: Timing = Timing {
        idle: Duration::from_millis(5),
        spacing: Duration::ZERO,
    };
}

impl Net {
    /// `nodes` machines with equal stakes, started.
    pub fn new(nodes: usize, disk_horizon_rounds: u64) -> Net {
        Net::with_timing(nodes, disk_horizon_rounds, Timing::FAST)
    }

    /// [`Net::new`] with the machines' event timing.
    pub fn with_timing(nodes: usize, disk_horizon_rounds: u64, timing: Timing) -> Net {
        Net::with_state_sync(
            nodes,
            disk_horizon_rounds,
            timing,
            dagger_node::config::DEFAULT_STATE_SYNC_GAP_EVENTS,
            dagger_node::core::STATE_SYNC_MIN_LAG,
        )
    }

    /// [`Net::with_timing`] where a peer more than `state_sync_gap`
    /// ordered events behind is told to take a state sync however recently
    /// the order passed its position (runs here span seconds of virtual
    /// time, a node's minimum lag is 10 s).
    pub fn with_state_sync_gap(
        nodes: usize,
        disk_horizon_rounds: u64,
        timing: Timing,
        state_sync_gap: u64,
    ) -> Net {
        Net::with_state_sync(
            nodes,
            disk_horizon_rounds,
            timing,
            state_sync_gap,
            Duration::ZERO,
        )
    }

    /// [`Net::with_timing`] with the state-sync trigger: more than
    /// `state_sync_gap` ordered events behind a checkpoint, at a position
    /// the order passed more than `state_sync_min_lag` ago.
    pub fn with_state_sync(
        nodes: usize,
        disk_horizon_rounds: u64,
        timing: Timing,
        state_sync_gap: u64,
        state_sync_min_lag: Duration,
    ) -> Net {
        let identities: Vec<Identity> = (0..nodes)
            .map(|i| Identity::from_signing_key(SigningKey::from_bytes(&[i as u8 + 1; 32])))
            .collect();
        let genesis =
            Roster::new(identities.iter().map(|i| (CreatorId(i.id()), 1))).expect("roster");
        let config = config(
            genesis,
            disk_horizon_rounds,
            timing,
            (state_sync_gap, state_sync_min_lag),
        );
        let clock = Now {
            instant: Instant::now(),
            unix_ns: 1_700_000_000_000_000_000,
        };
        let mut net = Net {
            peers: Vec::new(),
            config,
            clock,
            acknowledged: HashSet::new(),
            submitted: 0,
            behind: vec![false; nodes],
            installs: 0,
            max_events_per_pull: 4_096,
        };
        for identity in identities {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Arc::new(Store::open(dir.path()).expect("store"));
            net.peers.push(Peer {
                identity,
                disk: Disk { store, _dir: dir },
                machine: None,
                queued: VecDeque::new(),
                forwards: Vec::new(),
                next_submit: 0,
                waiting: HashMap::new(),
            });
        }
        for i in 0..nodes {
            net.start(i);
        }
        net
    }

    pub fn n(&self) -> usize {
        self.peers.len()
    }

    /// Opens node `i` from its ledger, as `Core::open` does: replay's
    /// repairs are committed before anything else happens.
    pub fn start(&mut self, i: usize) {
        let peer = &mut self.peers[i];
        let recovered = peer.disk.store.recover().expect("recover");
        let mut machine = Machine::recover(
            peer.identity.clone(),
            self.config.clone(),
            Arc::new(Metrics::default()),
            Box::new(StaticRoster),
            peer.disk.store.clone(),
            recovered,
            self.clock,
        )
        .expect("machine recovers");
        let mut repairs = Vec::new();
        while let Some(output) = machine.poll_output() {
            if let Output::Persist { write, .. } = output {
                repairs.push(*write);
            }
        }
        if !repairs.is_empty() {
            peer.disk.store.commit(&repairs, true).expect("repairs");
        }
        peer.machine = Some(machine);
    }

    /// Loses everything not committed and stops the node.
    pub fn crash(&mut self, i: usize) {
        let peer = &mut self.peers[i];
        peer.machine = None;
        peer.queued.clear();
        peer.forwards.clear();
        peer.waiting.clear();
    }

    pub fn up(&self, i: usize) -> bool {
        self.peers[i].machine.is_some()
    }

    /// Moves node `i`'s outputs to its write queue.
    pub fn collect(&mut self, i: usize) {
        let peer = &mut self.peers[i];
        let Some(machine) = peer.machine.as_mut() else {
            return;
        };
        while let Some(output) = machine.poll_output() {
            match output {
                Output::Persist { write, own } => peer.queued.push_back((*write, own)),
                Output::Forward(envelope) => peer.forwards.push(envelope),
                _ => {}
            }
        }
    }

    /// Commits the first `count` queued writes of node `i` in one
    /// transaction; own events among them become visible and acknowledge
    /// their submitters.
    /// Returns the index (in this commit) of the first own event.
    pub fn commit(&mut self, i: usize, count: usize) -> Option<usize> {
        self.collect(i);
        let peer = &mut self.peers[i];
        let count = count.min(peer.queued.len());
        if count == 0 {
            return None;
        }
        let batch: Vec<_> = peer.queued.drain(..count).collect();
        let writes: Vec<Write> = batch.iter().map(|(w, _)| w.clone()).collect();
        let durable = batch.iter().any(|(_, own)| own.is_some());
        peer.disk.store.commit(&writes, durable).expect("commit");
        let first_own = batch.iter().position(|(_, own)| own.is_some());
        for (_, own) in batch {
            if let Some(OwnEvent { event, submitters }) = own {
                for id in submitters {
                    if let Some(tx) = peer.waiting.remove(&id) {
                        self.acknowledged.insert(tx);
                    }
                }
                if let Some(machine) = peer.machine.as_mut() {
                    machine.on_durable(&event.id());
                }
            }
        }
        first_own
    }

    pub fn commit_all(&mut self, i: usize) {
        self.commit(i, usize::MAX);
    }

    pub fn tick(&mut self) {
        self.clock.instant += Duration::from_millis(10);
        self.clock.unix_ns += 10_000_000;
    }

    /// Submits a new transaction to node `i` (if it is up) and returns it.
    pub fn submit(&mut self, i: usize) -> Option<Vec<u8>> {
        let clock = self.clock;
        self.submitted += 1;
        let tx = format!("tx-{}-{}", i, self.submitted).into_bytes();
        let peer = &mut self.peers[i];
        let machine = peer.machine.as_mut()?;
        let id = SubmitId(peer.next_submit);
        peer.next_submit += 1;
        machine.submit(tx.clone(), id, clock).expect("admitted");
        peer.waiting.insert(id, tx.clone());
        Some(tx)
    }

    /// Node `a` pulls from node `b`, then may create an event.
    pub fn pull(&mut self, a: usize, b: usize) {
        if a == b || !self.up(a) || !self.up(b) {
            return;
        }
        let clock = self.clock;
        let (tips, status, missing) = {
            let m = self.peers[a].machine.as_ref().expect("up");
            (m.tips(), m.status(), m.missing_parents())
        };
        let (events, behind) = self.peers[b].machine.as_mut().expect("up").sync_answer_now(
            &tips,
            status.ordered_events,
            &missing,
            self.max_events_per_pull,
        );
        self.behind[a] |= behind;
        let peer_id = self.peers[b].identity.id();
        let m = self.peers[a].machine.as_mut().expect("up");
        let summary = m.receive(events, clock);
        assert!(
            summary.fault().is_none(),
            "an honest peer's events were refused: {:?}",
            summary.fault()
        );
        m.after_sync(peer_id, clock);
    }

    /// Node `i` loses its ledger (a new, empty one replaces it).
    pub fn lose_disk(&mut self, i: usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        self.peers[i].disk = Disk { store, _dir: dir };
    }

    /// What `net::state_sync` does, with the others' ledgers as the peers:
    /// the newest checkpoint vouched for by more than a third of the stake,
    /// that round's stored state from a voucher, the ordered ids of the
    /// gap if own events wait, then install.
    pub fn state_sync(&mut self, i: usize) {
        let Some(machine) = self.peers[i].machine.as_ref() else {
            return;
        };
        let answers: Vec<([u8; 32], Vec<Checkpoint>)> = (0..self.n())
            .filter(|&j| j != i)
            .map(|j| {
                let list = self.peers[j]
                    .disk
                    .store
                    .checkpoints(64)
                    .expect("checkpoints");
                (self.peers[j].identity.id(), list)
            })
            .collect();
        // Newest first, the first voucher that still stores that state (a
        // voucher keeps only its latest), as `net::state_sync` tries them.
        let decided = machine.status().last_decided_round;
        let found = all_vouched(&machine.roster(), &answers)
            .into_iter()
            .filter(|(checkpoint, _)| checkpoint.round > decided)
            .find_map(|(checkpoint, vouchers)| {
                self.peers
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| vouchers.contains(&p.identity.id()))
                    .find_map(|(j, p)| {
                        let (blob, stored) = p.disk.store.state().ok()??;
                        (stored == checkpoint).then_some((j, blob, checkpoint))
                    })
            });
        let Some((voucher, blob, checkpoint)) = found else {
            return;
        };
        let (ordered, running_hash, waiting) = machine.sync_position();
        let gap = waiting.then(|| self.order_gap(voucher, (ordered, running_hash), &checkpoint));
        match self.peers[i]
            .machine
            .as_mut()
            .unwrap()
            .install(&blob, &checkpoint, gap.as_ref())
        {
            Ok(()) => self.installs += 1,
            // Close enough behind that own events may still be ordered:
            // the node keeps replaying, as a real one does.
            Err(CoreError::Install(InstallError::OwnEventLive { .. })) => {}
            Err(err) => panic!("a vouched state did not install: {err}"),
        }
    }

    /// What a state sync fetches beside the state: the ids `voucher`
    /// ordered from a node's position `from` (with its running hash) up to
    /// `checkpoint`.
    pub fn order_gap(
        &self,
        voucher: usize,
        (from, from_hash): (u64, [u8; 32]),
        checkpoint: &Checkpoint,
    ) -> OrderGap {
        OrderGap {
            from,
            from_hash,
            ids: self.peers[voucher]
                .disk
                .store
                .order_ids(from, (checkpoint.ordered - from) as usize)
                .expect("the voucher has the order"),
        }
    }

    pub fn heartbeat(&mut self, i: usize) {
        let clock = self.clock;
        if let Some(m) = self.peers[i].machine.as_mut() {
            m.heartbeat(clock);
        }
    }

    pub fn order_base(&self, i: usize) -> Option<Checkpoint> {
        self.peers[i].disk.store.order_base().expect("read base")
    }

    /// One past the last ordered transaction on disk.
    pub fn tx_end(&self, i: usize) -> u64 {
        self.ordered_txs(i).last().map_or(0, |r| r.position + 1)
    }

    pub fn ordered_txs(&self, i: usize) -> Vec<TxRecord> {
        self.peers[i]
            .disk
            .store
            .txs_from(0, usize::MAX)
            .expect("read txs")
    }
}
