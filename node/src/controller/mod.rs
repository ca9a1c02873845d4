//! The controller: a deterministic state machine over the consensus order,
//! identical on every node because it only reads ordered transactions and
//! consensus data (running hashes, consensus timestamps).
//!
//! - A chain observation (a paid request, an operator's state) counts once
//!   nodes holding **more than 1/3 of the roster's stake** reported the same
//!   thing: then at least one honest node checked the chain.
//! - A counted request is assigned to an operator deterministically: fits
//!   capacity and region, its price meets the operator's price floor, least
//!   loaded first, ties broken by a hash of the deciding round's running hash
//!   and the operator (a seed from the order). Requests no operator accepts
//!   stay open until their deadline (the customer reclaims them).
//! - The assigned operator's own reports (VM started, failed) count at once;
//!   anybody else's are ignored.
//! - Operators seen Pending are voted in; the roster follows the operators
//!   seen Active on-chain (their stake included) and changes take effect at
//!   the consensus core's round boundary.
//!
//! The controller decides; it does no I/O. What this node must do about the
//! decisions (start VMs, post attestations, talk to new peers) is read from
//! [`Controller::duties`] and carried out by the node's executor.

pub mod txs;

use std::collections::{BTreeMap, BTreeSet};

use anchor_lang::{prelude::Pubkey, AnchorDeserialize, AnchorSerialize};
use dagger_client::{Allocation, Capacity, OperatorStatus, PriceFloor, VmSpec, Vote};
use dagger_consensus::{CreatorId, Decided, Roster};

use crate::core::{Delivery, OrderObserver};
pub use txs::NodeTx;

/// Observations not confirmed within this many rounds are forgotten (a lone
/// liar's reports cannot grow memory forever).
pub const FACT_TTL_ROUNDS: u64 = 512;

/// An assigned operator that has not reported within this many seconds of
/// consensus time is passed over and the request reassigned (its node may be
/// down). Consensus time is the same on every node, so this is deterministic.
pub const REPORT_TIMEOUT_S: i64 = 15;

/// An operator in the genesis roster (read from the chain at bootstrap).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct GenesisOperator {
    pub operator: Pubkey,
    pub nonce: u64,
    pub node_key: Pubkey,
    pub stake: u64,
    pub capacity: Capacity,
    pub address: String,
    pub price_floor: PriceFloor,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
struct OperatorView {
    nonce: u64,
    node_key: Pubkey,
    stake: u64,
    status: OperatorStatus,
    capacity: Capacity,
    address: String,
    price_floor: PriceFloor,
    allocated: Allocation,
    /// What its node announced it boots (nothing until it announces).
    images: ImagesServed,
}

/// The images a node announced.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ImagesServed {
    /// A backend that boots nothing real serves any image id.
    pub any: bool,
    pub images: BTreeSet<[u8; 32]>,
}

impl ImagesServed {
    pub fn serves(&self, image: &[u8; 32]) -> bool {
        self.any || self.images.contains(image)
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
struct RequestView {
    nonce: u64,
    spec: VmSpec,
    price_per_second: u64,
    deadline: i64,
    assigned: Option<Pubkey>,
    /// Consensus time (s) of the assignment.
    assigned_at: i64,
    excluded: BTreeSet<Pubkey>,
    report: Option<[u8; 32]>,
    /// Where the customer reaches the VM (hashes to `report`).
    endpoint: Option<String>,
    active: bool,
    vm_failed: bool,
}

/// An observation waiting for enough reporters.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
struct Fact {
    tx: NodeTx,
    reporters: BTreeSet<Pubkey>,
    first_round: u64,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, Default, PartialEq, Eq)]
struct State {
    /// The consensus roster this state last asked for: node key → stake.
    roster: BTreeMap<Pubkey, u64>,
    operators: BTreeMap<Pubkey, OperatorView>,
    requests: BTreeMap<Pubkey, RequestView>,
    facts: BTreeMap<[u8; 32], Fact>,
    last_round: u64,
    /// Consensus time (s) of the last ordered event.
    now_s: i64,
}

/// What this node should be doing, derived from the decided state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Duties {
    /// Requests assigned to this node that it has not reported on yet.
    pub provision: Vec<(Pubkey, VmSpec)>,
    /// Every lease assigned to this node that still exists (keep these VMs).
    pub leases: Vec<Pubkey>,
    /// Those of `leases` a quorum activated: their VM must be running.
    pub running: Vec<Pubkey>,
    /// Consensus time (seconds) of the last ordered event these duties
    /// reflect: far behind the wall clock, they describe the past (the node
    /// is catching up) and must not be acted on destructively.
    pub as_of_s: i64,
    /// Attestations every node posts now.
    pub votes: Vec<Vote>,
    /// The roster's nodes: (node key, gossip address), this node included.
    pub peers: Vec<(Pubkey, String)>,
    /// What consensus knows of the images this node boots (`None` while
    /// its operator is unknown): announce again when it differs.
    pub images_here: Option<ImagesServed>,
    /// What consensus knows this node calls its images (`None` while its
    /// operator is unknown).
    pub image_names_here: Option<BTreeMap<[u8; 32], String>>,
    /// Ready pooled VMs per shape, as consensus counts them for this node.
    pub warm_here: Option<BTreeMap<txs::WarmShape, u16>>,
}

/// Where a lease's VM is, as consensus recorded it (every node serves it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LeaseEndpoint {
    pub request: String,
    pub operator: String,
    pub node_key: String,
    pub endpoint: String,
    /// blake3 of `endpoint`: what the quorum attests on-chain.
    pub endpoint_hash: String,
    pub active: bool,
}

/// The controller. One per node; fed by the consensus core.
#[derive(Clone, Debug, Default)]
pub struct Controller {
    state: State,
    /// What each node (by node key) calls the images it boots. Encoded
    /// after the state, so snapshots from before names existed still load.
    names: BTreeMap<Pubkey, BTreeMap<[u8; 32], String>>,
    /// Ready pooled VMs per shape each node (by node key) announced, less
    /// those assigned since. Encoded after the names.
    warm: BTreeMap<Pubkey, BTreeMap<txs::WarmShape, u16>>,
}

/// An image some active operator boots, as customers choose among them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CatalogImage {
    pub id: String,
    /// What the operators serving it call it (most stake first).
    pub names: Vec<String>,
    pub operators: usize,
    /// Stake of the operators that serve it, lamports.
    pub stake: u64,
}

fn digest(tx: &NodeTx) -> [u8; 32] {
    *blake3::hash(&tx.encode()).as_bytes()
}

/// The deterministic tie-breaker: hash of the round seed and a candidate.
fn lottery(seed: &[u8; 32], operator: &Pubkey) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"DAGGER/assign");
    hasher.update(seed);
    hasher.update(operator.as_ref());
    *hasher.finalize().as_bytes()
}

/// The commitment nodes vote with for a membership or termination decision.
pub fn decision(kind: &str, subject: &Pubkey, detail: u64) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"DAGGER/decision/");
    hasher.update(kind.as_bytes());
    hasher.update(subject.as_ref());
    hasher.update(&detail.to_le_bytes());
    *hasher.finalize().as_bytes()
}

impl Controller {
    /// Starts from the genesis roster (the Active operators at bootstrap).
    pub fn new(genesis: &[GenesisOperator]) -> Controller {
        let mut state = State::default();
        for g in genesis {
            state.roster.insert(g.node_key, g.stake);
            state.operators.insert(
                g.operator,
                OperatorView {
                    nonce: g.nonce,
                    node_key: g.node_key,
                    stake: g.stake,
                    status: OperatorStatus::Active,
                    capacity: g.capacity,
                    address: g.address.clone(),
                    price_floor: g.price_floor,
                    allocated: Allocation::default(),
                    images: ImagesServed::default(),
                },
            );
        }
        Controller {
            state,
            names: BTreeMap::new(),
            warm: BTreeMap::new(),
        }
    }

    /// The consensus roster for the genesis operators.
    pub fn genesis_roster(genesis: &[GenesisOperator]) -> Result<Roster, String> {
        Roster::new(
            genesis
                .iter()
                .map(|g| (CreatorId(g.node_key.to_bytes()), g.stake)),
        )
        .map_err(|e| e.to_string())
    }

    fn roster_total(&self) -> u64 {
        self.state.roster.values().sum()
    }

    /// Applies one decided round; `deliveries` are its transactions as the
    /// order hands them out (a forwarded report counts as its signer's).
    /// Returns a new roster when membership or stakes changed.
    pub fn apply(&mut self, decided: &Decided, deliveries: &[Delivery]) -> Option<Roster> {
        let seed = decided.running_hash;
        let before = self.state.roster.clone();
        for delivery in deliveries {
            self.state.now_s = (delivery.consensus_time_ns / 1_000_000_000) as i64;
            let reporter = Pubkey::new_from_array(delivery.author);
            if let Some(tx) = NodeTx::decode(&delivery.tx) {
                self.on_tx(reporter, tx, decided.round_received, &seed);
            }
        }
        if let Some(last) = decided.events.last() {
            self.state.now_s = (last.consensus_time_ns / 1_000_000_000) as i64;
        }
        self.expire(self.state.now_s);
        self.pass_over_silent(&seed);
        self.assign_waiting(&seed);
        self.state.last_round = decided.round_received;
        let horizon = decided.round_received.saturating_sub(FACT_TTL_ROUNDS);
        self.state.facts.retain(|_, f| f.first_round >= horizon);
        self.recompute_roster();
        if self.state.roster == before || self.state.roster.is_empty() {
            if self.state.roster.is_empty() {
                self.state.roster = before;
            }
            return None;
        }
        Roster::new(
            self.state
                .roster
                .iter()
                .map(|(k, s)| (CreatorId(k.to_bytes()), *s)),
        )
        .ok()
    }

    /// Whether `node_key` is the node of an operator consensus knows.
    fn is_operator_node(&self, node_key: &Pubkey) -> bool {
        self.state
            .operators
            .values()
            .any(|op| op.node_key == *node_key)
    }

    fn on_tx(&mut self, reporter: Pubkey, tx: NodeTx, round: u64, seed: &[u8; 32]) {
        match &tx {
            NodeTx::ProvisionReport { request, endpoint } => {
                if endpoint.len() > txs::MAX_ENDPOINT_LEN {
                    return;
                }
                if let Some(r) = self.assigned_request(request, &reporter) {
                    if !r.active {
                        r.report = Some(*blake3::hash(endpoint.as_bytes()).as_bytes());
                        r.endpoint = Some(endpoint.clone());
                    }
                }
            }
            NodeTx::PoolsReady { ready } => {
                let known = self.is_operator_node(&reporter);
                if !known || ready.len() > txs::MAX_WARM_SHAPES {
                    return;
                }
                let ready: BTreeMap<txs::WarmShape, u16> =
                    ready.iter().filter(|(_, n)| *n > 0).copied().collect();
                if ready.is_empty() {
                    self.warm.remove(&reporter);
                } else {
                    self.warm.insert(reporter, ready);
                }
            }
            NodeTx::ImageNames { names } => {
                let known = self.is_operator_node(&reporter);
                if !known
                    || names.len() > txs::MAX_IMAGES
                    || !names.iter().all(|(_, n)| txs::valid_image_name(n))
                {
                    return;
                }
                self.names.insert(reporter, names.iter().cloned().collect());
            }
            NodeTx::ImagesServed { any, images } => {
                if images.len() > txs::MAX_IMAGES {
                    return;
                }
                let served = ImagesServed {
                    any: *any,
                    images: images.iter().copied().collect(),
                };
                for op in self.state.operators.values_mut() {
                    if op.node_key == reporter {
                        op.images = served.clone();
                    }
                }
            }
            NodeTx::ProvisionFailed { request } => {
                let request = *request;
                let Some(r) = self.assigned_request(&request, &reporter) else {
                    return;
                };
                if r.active {
                    return;
                }
                self.reassign(&request, seed);
            }
            NodeTx::VmFailed { request } => {
                if let Some(r) = self.assigned_request(request, &reporter) {
                    if r.active {
                        r.vm_failed = true;
                    }
                }
            }
            // Chain observations need more than 1/3 of stake behind them.
            _ => {
                if !self.state.roster.contains_key(&reporter) || self.already_known(&tx) {
                    return;
                }
                let key = digest(&tx);
                let fact = self.state.facts.entry(key).or_insert_with(|| Fact {
                    tx: tx.clone(),
                    reporters: BTreeSet::new(),
                    first_round: round,
                });
                fact.reporters.insert(reporter);
                let backing: u64 = fact
                    .reporters
                    .iter()
                    .filter_map(|r| self.state.roster.get(r))
                    .sum();
                if 3 * backing as u128 > self.roster_total() as u128 {
                    self.state.facts.remove(&key);
                    self.confirm(tx, seed);
                }
            }
        }
    }

    /// A request whose assigned operator's node is `reporter`.
    fn assigned_request(
        &mut self,
        request: &Pubkey,
        reporter: &Pubkey,
    ) -> Option<&mut RequestView> {
        let r = self.state.requests.get(request)?;
        let operator = r.assigned?;
        let node_key = self.state.operators.get(&operator)?.node_key;
        if &node_key != reporter {
            return None;
        }
        self.state.requests.get_mut(request)
    }

    /// Observations already reflected in the state need no new quorum.
    fn already_known(&self, tx: &NodeTx) -> bool {
        match tx {
            // The same instance is known; a new instance at a reused
            // address replaces the old one once confirmed.
            NodeTx::RequestSeen { request, nonce, .. } => self
                .state
                .requests
                .get(request)
                .is_some_and(|r| r.nonce == *nonce),
            NodeTx::LeaseActive { request, .. } => {
                self.state.requests.get(request).is_none_or(|r| r.active)
            }
            NodeTx::RequestGone { request } => !self.state.requests.contains_key(request),
            NodeTx::OperatorSeen {
                operator,
                nonce,
                node_key,
                stake,
                status,
                capacity,
                address,
                price_floor,
            } => self.state.operators.get(operator).is_some_and(|op| {
                op.nonce == *nonce
                    && op.node_key == *node_key
                    && op.stake == *stake
                    && op.status == *status
                    && op.capacity == *capacity
                    && op.address == *address
                    && op.price_floor == *price_floor
            }),
            _ => false,
        }
    }

    fn confirm(&mut self, tx: NodeTx, seed: &[u8; 32]) {
        match tx {
            NodeTx::RequestSeen {
                request,
                nonce,
                spec,
                price_per_second,
                deadline,
                ..
            } => {
                // An older instance at this address is gone.
                self.release(&request);
                self.state.requests.insert(
                    request,
                    RequestView {
                        nonce,
                        spec,
                        price_per_second,
                        deadline,
                        assigned: None,
                        assigned_at: 0,
                        excluded: BTreeSet::new(),
                        report: None,
                        endpoint: None,
                        active: false,
                        vm_failed: false,
                    },
                );
                self.try_assign(&request, seed);
            }
            NodeTx::LeaseActive { request, .. } => {
                if let Some(r) = self.state.requests.get_mut(&request) {
                    r.active = true;
                }
            }
            NodeTx::RequestGone { request } => self.release(&request),
            NodeTx::OperatorSeen {
                operator,
                nonce,
                node_key,
                stake,
                status,
                capacity,
                address,
                price_floor,
            } => {
                let (allocated, images) = self
                    .state
                    .operators
                    .get(&operator)
                    .filter(|op| op.node_key == node_key)
                    .map(|op| (op.allocated, op.images.clone()))
                    .unwrap_or_default();
                self.state.operators.insert(
                    operator,
                    OperatorView {
                        nonce,
                        node_key,
                        stake,
                        status,
                        capacity,
                        address,
                        price_floor,
                        allocated,
                        images,
                    },
                );
            }
            NodeTx::ProvisionReport { .. }
            | NodeTx::ProvisionFailed { .. }
            | NodeTx::VmFailed { .. }
            | NodeTx::ImagesServed { .. }
            | NodeTx::ImageNames { .. }
            | NodeTx::PoolsReady { .. } => {}
        }
    }

    /// Takes the request away from its operator (which is not asked again)
    /// and assigns it to the next candidate.
    fn reassign(&mut self, request: &Pubkey, seed: &[u8; 32]) {
        let Some(r) = self.state.requests.get_mut(request) else {
            return;
        };
        let spec = r.spec;
        r.report = None;
        r.endpoint = None;
        if let Some(operator) = r.assigned.take() {
            r.excluded.insert(operator);
            if let Some(op) = self.state.operators.get_mut(&operator) {
                op.allocated.sub(Allocation::of(&spec));
            }
        }
        self.try_assign(request, seed);
    }

    /// Assigned operators that stayed silent too long lose the request.
    fn pass_over_silent(&mut self, seed: &[u8; 32]) {
        let now = self.state.now_s;
        let silent: Vec<Pubkey> = self
            .state
            .requests
            .iter()
            .filter(|(_, r)| {
                r.assigned.is_some()
                    && r.report.is_none()
                    && !r.active
                    && now - r.assigned_at > REPORT_TIMEOUT_S
            })
            .map(|(k, _)| *k)
            .collect();
        for request in silent {
            self.reassign(&request, seed);
        }
    }

    fn release(&mut self, request: &Pubkey) {
        if let Some(r) = self.state.requests.remove(request) {
            if let Some(operator) = r.assigned {
                if let Some(op) = self.state.operators.get_mut(&operator) {
                    op.allocated.sub(Allocation::of(&r.spec));
                }
            }
        }
    }

    /// Requests nobody provisioned by their deadline are dropped: the
    /// customer reclaims them on-chain.
    fn expire(&mut self, now_s: i64) {
        let expired: Vec<Pubkey> = self
            .state
            .requests
            .iter()
            .filter(|(_, r)| !r.active && r.deadline < now_s)
            .map(|(k, _)| *k)
            .collect();
        for request in expired {
            self.release(&request);
        }
    }

    fn assign_waiting(&mut self, seed: &[u8; 32]) {
        let waiting: Vec<Pubkey> = self
            .state
            .requests
            .iter()
            .filter(|(_, r)| r.assigned.is_none() && !r.active)
            .map(|(k, _)| *k)
            .collect();
        for request in waiting {
            self.try_assign(&request, seed);
        }
    }

    fn try_assign(&mut self, request: &Pubkey, seed: &[u8; 32]) {
        let Some(r) = self.state.requests.get(request) else {
            return;
        };
        if r.assigned.is_some() {
            return;
        }
        let need = Allocation::of(&r.spec);
        let shape = txs::WarmShape::of(&r.spec);
        let warm = |op: &OperatorView| {
            self.warm
                .get(&op.node_key)
                .and_then(|ready| ready.get(&shape))
                .is_some_and(|n| *n > 0)
        };
        let chosen = self
            .state
            .operators
            .iter()
            .filter(|(key, op)| {
                op.status == OperatorStatus::Active
                    && self.state.roster.contains_key(&op.node_key)
                    && !r.excluded.contains(key)
                    && dagger_client::Offer {
                        capacity: &op.capacity,
                        price_floor: &op.price_floor,
                        allocated: &op.allocated,
                    }
                    .takes(&r.spec, r.price_per_second)
                    .is_ok()
                    && op.images.serves(&r.spec.image_id)
            })
            .min_by_key(|(key, op)| {
                // Load as parts per million of vCPU capacity, then a ready
                // VM of this shape (the customer skips the boot), then the
                // lottery. Load comes first: an operator claiming warm VMs
                // it lacks wins only ties.
                let load = op.allocated.vcpus * 1_000_000 / (op.capacity.vcpus as u64).max(1);
                (load, !warm(op), lottery(seed, key))
            })
            .map(|(key, _)| *key);
        if let Some(operator) = chosen {
            if let Some(op) = self.state.operators.get_mut(&operator) {
                op.allocated.add(need);
                // That warm VM is spoken for until the node says otherwise.
                if let Some(n) = self
                    .warm
                    .get_mut(&op.node_key)
                    .and_then(|ready| ready.get_mut(&shape))
                {
                    *n = n.saturating_sub(1);
                }
            }
            let now = self.state.now_s;
            if let Some(r) = self.state.requests.get_mut(request) {
                r.assigned = Some(operator);
                r.assigned_at = now;
            }
        }
    }

    fn recompute_roster(&mut self) {
        self.state.roster = self
            .state
            .operators
            .values()
            .filter(|op| op.status == OperatorStatus::Active && op.stake > 0)
            .map(|op| (op.node_key, op.stake))
            .collect();
    }

    /// What node `me` should be doing now.
    pub fn duties(&self, me: &Pubkey) -> Duties {
        let mut duties = Duties {
            as_of_s: self.state.now_s,
            ..Duties::default()
        };
        for (request, r) in &self.state.requests {
            let assigned_to_me = r
                .assigned
                .and_then(|op| self.state.operators.get(&op))
                .is_some_and(|op| &op.node_key == me);
            if assigned_to_me {
                duties.leases.push(*request);
                if r.active {
                    duties.running.push(*request);
                }
                if r.report.is_none() && !r.active {
                    duties.provision.push((*request, r.spec));
                }
            }
            if let (Some(operator), Some(endpoint_hash), false) = (r.assigned, r.report, r.active) {
                duties.votes.push(Vote::Provision {
                    request: *request,
                    nonce: r.nonce,
                    operator,
                    endpoint_hash,
                });
            }
            if r.active && r.vm_failed {
                duties.votes.push(Vote::Terminate {
                    request: *request,
                    nonce: r.nonce,
                    decision: decision("terminate", request, 0),
                });
            }
        }
        for (operator, op) in &self.state.operators {
            if op.status == OperatorStatus::Pending {
                duties.votes.push(Vote::Admit {
                    operator: *operator,
                    nonce: op.nonce,
                    decision: decision("admit", operator, op.stake),
                });
            }
            if self.state.roster.contains_key(&op.node_key) {
                duties.peers.push((op.node_key, op.address.clone()));
            }
            if &op.node_key == me && op.status == OperatorStatus::Active {
                duties.images_here = Some(op.images.clone());
                duties.image_names_here = Some(self.names.get(me).cloned().unwrap_or_default());
                let mut warm = self.warm.get(me).cloned().unwrap_or_default();
                warm.retain(|_, n| *n > 0);
                duties.warm_here = Some(warm);
            }
        }
        duties
    }

    /// The images active operators boot, with what they call them: the
    /// catalog customers pick from by name. Only operators' own
    /// announcements count, and a name is only a label: the id is what is
    /// paid for and checked.
    pub fn catalog(&self) -> Vec<CatalogImage> {
        let mut images: BTreeMap<[u8; 32], (usize, u64, BTreeMap<String, u64>)> = BTreeMap::new();
        for op in self.state.operators.values() {
            if op.status != OperatorStatus::Active || op.images.any {
                continue;
            }
            let names = self.names.get(&op.node_key);
            for id in &op.images.images {
                let entry = images.entry(*id).or_default();
                entry.0 += 1;
                entry.1 = entry.1.saturating_add(op.stake);
                if let Some(name) = names.and_then(|n| n.get(id)) {
                    let stake = entry.2.entry(name.clone()).or_default();
                    *stake = stake.saturating_add(op.stake);
                }
            }
        }
        let mut out: Vec<CatalogImage> = images
            .into_iter()
            .map(|(id, (operators, stake, names))| {
                let mut names: Vec<(String, u64)> = names.into_iter().collect();
                names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                CatalogImage {
                    id: crate::core::hex(&id),
                    names: names.into_iter().map(|(n, _)| n).collect(),
                    operators,
                    stake,
                }
            })
            .collect();
        out.sort_by(|a, b| b.stake.cmp(&a.stake).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Where the VM of every provisioned request is, as reported by its
    /// operator's node (hashing to what the quorum attests on-chain).
    pub fn endpoints(&self) -> BTreeMap<Pubkey, LeaseEndpoint> {
        self.state
            .requests
            .iter()
            .filter_map(|(request, r)| {
                let endpoint = r.endpoint.clone()?;
                let operator = r.assigned?;
                let node_key = self.state.operators.get(&operator)?.node_key;
                Some((
                    *request,
                    LeaseEndpoint {
                        request: request.to_string(),
                        operator: operator.to_string(),
                        node_key: node_key.to_string(),
                        endpoint_hash: r.report.map(|h| crate::core::hex(&h))?,
                        endpoint,
                        active: r.active,
                    },
                ))
            })
            .collect()
    }

    /// The roster this controller last asked for.
    pub fn roster_members(&self) -> Vec<(Pubkey, u64)> {
        self.state.roster.iter().map(|(k, s)| (*k, *s)).collect()
    }

    pub fn last_round(&self) -> u64 {
        self.state.last_round
    }

    /// Counts for a status view: (operators, open or active requests, active leases).
    pub fn counts(&self) -> (usize, usize, usize) {
        let leases = self.state.requests.values().filter(|r| r.active).count();
        (
            self.state.operators.len(),
            self.state.requests.len(),
            leases,
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.state
            .serialize(&mut out)
            .expect("serialising into a Vec cannot fail");
        self.names
            .serialize(&mut out)
            .expect("serialising into a Vec cannot fail");
        self.warm
            .serialize(&mut out)
            .expect("serialising into a Vec cannot fail");
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Controller, String> {
        let mut slice = bytes;
        let state = State::deserialize(&mut slice).map_err(|e| e.to_string())?;
        // Sections added after the state over time: absent in older
        // snapshots.
        let names = if slice.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::deserialize(&mut slice).map_err(|e| e.to_string())?
        };
        let warm = if slice.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::deserialize(&mut slice).map_err(|e| e.to_string())?
        };
        if !slice.is_empty() {
            return Err("trailing bytes after the controller state".into());
        }
        Ok(Controller { state, names, warm })
    }
}

/// The controller as the core's order observer, publishing this node's
/// duties after every decided round.
pub struct ControllerObserver {
    controller: Controller,
    me: Pubkey,
    duties: tokio::sync::watch::Sender<(u64, Duties)>,
    endpoints: Endpoints,
    catalog: ImageCatalog,
}

/// Lease endpoints as of the last decided round, for the API.
pub type Endpoints = std::sync::Arc<std::sync::RwLock<BTreeMap<Pubkey, LeaseEndpoint>>>;

/// The image catalog as of the last decided round, for the API.
pub type ImageCatalog = std::sync::Arc<std::sync::RwLock<Vec<CatalogImage>>>;

impl ControllerObserver {
    pub fn new(
        controller: Controller,
        me: Pubkey,
    ) -> (
        ControllerObserver,
        tokio::sync::watch::Receiver<(u64, Duties)>,
    ) {
        let initial = (controller.last_round(), controller.duties(&me));
        let (duties, rx) = tokio::sync::watch::channel(initial);
        let endpoints = Endpoints::new(std::sync::RwLock::new(controller.endpoints()));
        let catalog = ImageCatalog::new(std::sync::RwLock::new(controller.catalog()));
        (
            ControllerObserver {
                controller,
                me,
                duties,
                endpoints,
                catalog,
            },
            rx,
        )
    }

    /// The lease endpoints this observer keeps current.
    pub fn endpoints(&self) -> Endpoints {
        self.endpoints.clone()
    }

    /// The image catalog this observer keeps current.
    pub fn catalog(&self) -> ImageCatalog {
        self.catalog.clone()
    }

    fn publish(&self, round: u64) {
        let _ = self.duties.send((round, self.controller.duties(&self.me)));
        let fresh = self.controller.endpoints();
        let mut shared = self.endpoints.write().unwrap_or_else(|p| p.into_inner());
        if *shared != fresh {
            *shared = fresh;
        }
        drop(shared);
        let fresh = self.controller.catalog();
        let mut shared = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        if *shared != fresh {
            *shared = fresh;
        }
    }
}

impl OrderObserver for ControllerObserver {
    fn on_decided(&mut self, decided: &Decided, deliveries: &[Delivery]) -> Option<Roster> {
        let roster = self.controller.apply(decided, deliveries);
        self.publish(decided.round_received);
        roster
    }

    fn snapshot(&self) -> Vec<u8> {
        self.controller.encode()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.controller = Controller::decode(bytes)?;
        self.publish(self.controller.last_round());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
