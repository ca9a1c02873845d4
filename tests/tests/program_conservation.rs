//! Property test: random sequences of customer, node, operator and admin
//! actions against the real program, checked against a model after every
//! step.
//!
//! The actions include partial tallies (one vote, not a quorum), roster
//! changes in the middle of a tally (an unstake or a removal starts a new
//! epoch; added stake and admissions do not), `add_stake` against the cap,
//! admissions and removals (with the removal slash), closing tallies,
//! withdrawing earnings and fees, and a treasury whose wallet was emptied.
//!
//! Invariants:
//! - lamports are conserved: across every account involved, what exists
//!   after a transaction equals what existed before minus the fee;
//! - every live escrow holds exactly rent + deposit − paid out;
//! - every stake vault holds rent + stake + earnings, the fee vault rent +
//!   collected fees, and the config's active total and epoch are what the
//!   model says;
//! - each operation succeeds exactly when the model says it may, and every
//!   tally exists (with its ballots) exactly when the model says;
//! - every payout splits into operator share + fee at the request's fee
//!   rate, as observed on-chain, and when a request finishes, deposit =
//!   released + refunded, both observed on-chain.

use std::collections::{BTreeMap, BTreeSet};

use anchor_lang::Space;
use dagger_client::{
    instructions as ix, pda, Attestation, FeeVault, Request, RequestStatus, StakeVault, Subject,
    Vote,
};
use dagger_tests::*;
use proptest::prelude::*;
use solana_pubkey::Pubkey;
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signature::Keypair, signer::Signer};

#[derive(Debug, Clone)]
enum Op {
    Create {
        customer: usize,
        price: u64,
        duration: u64,
    },
    TopUp {
        request: usize,
        seconds: u64,
    },
    Cancel {
        request: usize,
    },
    Provision {
        request: usize,
        assignee: usize,
    },
    /// One vote on a provisioning tally, which may stay partial.
    Vote {
        request: usize,
        assignee: usize,
        voter: usize,
    },
    Terminate {
        request: usize,
    },
    Claim {
        request: usize,
    },
    Close {
        request: usize,
    },
    Reclaim {
        request: usize,
    },
    CloseTally {
        request: usize,
    },
    Unstake {
        operator: usize,
    },
    AddStake {
        operator: usize,
        amount: u64,
    },
    Join,
    Admit {
        operator: usize,
    },
    Remove {
        operator: usize,
    },
    WithdrawEarnings {
        operator: usize,
    },
    WithdrawFees,
    DrainTreasury,
    Warp {
        seconds: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 1..2_000u64, 1..4_000u64)
            .prop_map(|(customer, price, duration)| Op::Create { customer, price, duration }),
        1 => (0..8usize, 1..2_000u64).prop_map(|(request, seconds)| Op::TopUp { request, seconds }),
        1 => (0..8usize).prop_map(|request| Op::Cancel { request }),
        3 => (0..8usize, 0..6usize).prop_map(|(request, assignee)| Op::Provision { request, assignee }),
        2 => (0..8usize, 0..6usize, 0..6usize)
            .prop_map(|(request, assignee, voter)| Op::Vote { request, assignee, voter }),
        1 => (0..8usize).prop_map(|request| Op::Terminate { request }),
        2 => (0..8usize).prop_map(|request| Op::Claim { request }),
        1 => (0..8usize).prop_map(|request| Op::Close { request }),
        1 => (0..8usize).prop_map(|request| Op::Reclaim { request }),
        2 => (0..8usize).prop_map(|request| Op::CloseTally { request }),
        1 => (0..6usize).prop_map(|operator| Op::Unstake { operator }),
        2 => (0..6usize, 1..5 * LAMPORTS_PER_SOL)
            .prop_map(|(operator, amount)| Op::AddStake { operator, amount }),
        1 => Just(Op::Join),
        1 => (0..6usize).prop_map(|operator| Op::Admit { operator }),
        1 => (0..6usize).prop_map(|operator| Op::Remove { operator }),
        1 => (0..6usize).prop_map(|operator| Op::WithdrawEarnings { operator }),
        1 => Just(Op::WithdrawFees),
        1 => Just(Op::DrainTreasury),
        3 => (0..1_500i64).prop_map(|seconds| Op::Warp { seconds }),
    ]
}

/// What the model believes about one request.
#[derive(Debug, Clone)]
struct ModelRequest {
    address: Pubkey,
    customer: usize,
    price: u64,
    duration: u64,
    deposit: u64,
    paid_out: u64,
    deadline: i64,
    fee_bps: u16,
    status: RequestStatus,
    assignee: usize,
    lease_start: i64,
    ended_at: i64,
    /// Finished: accounts closed, money settled.
    closed: bool,
    /// Lamports released from the escrow to operator + fees, as observed.
    released: u64,
    /// Lamports refunded to the customer beyond the accounts' rent, as observed.
    refunded: u64,
    /// The provisioning tally closed while the request lived: its (epoch,
    /// stake voted), which the request keeps recording (cancel stays
    /// refused after a tally closed past the deadline; reclaim refunds).
    closed_provision_votes: Option<(u64, u128)>,
}

impl ModelRequest {
    fn accrual_end(&self) -> i64 {
        let paid_end = self.lease_start + self.duration as i64;
        if self.status == RequestStatus::Terminated {
            self.ended_at.min(paid_end)
        } else {
            paid_end
        }
    }
    fn accrued(&self, now: i64) -> u64 {
        if self.status == RequestStatus::Open {
            return 0;
        }
        let elapsed = (self.accrual_end().min(now) - self.lease_start).max(0) as u64;
        (elapsed * self.price).min(self.deposit)
    }
    /// A customer's close bills at least the minimum period of an active
    /// lease.
    fn billed_until(&self, now: i64) -> i64 {
        if self.status == RequestStatus::Active {
            now.max(self.lease_start + dagger_client::constants::MIN_BILLED_SECONDS)
        } else {
            now
        }
    }
    fn over(&self, now: i64) -> bool {
        match self.status {
            RequestStatus::Open => false,
            RequestStatus::Active => now >= self.accrual_end(),
            RequestStatus::Terminated => true,
        }
    }
    fn provisionable(&self, now: i64) -> bool {
        !self.closed && self.status == RequestStatus::Open && now <= self.deadline
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Active,
    Unbonding,
}

#[derive(Debug, Clone)]
struct ModelOperator {
    stake: u64,
    status: Status,
    earnings: u64,
}

/// A tally the model expects on-chain.
#[derive(Debug, Clone)]
struct ModelTally {
    epoch: u64,
    /// (voter, stake when it voted, outcome operator)
    ballots: Vec<(usize, u64, usize)>,
}

struct World {
    net: Network,
    customers: Vec<Keypair>,
    requests: Vec<ModelRequest>,
    operators: Vec<ModelOperator>,
    epoch: u64,
    fees: u64,
    tallies: BTreeMap<Pubkey, ModelTally>,
    tracked: BTreeSet<Pubkey>,
    next_id: u64,
}

impl World {
    fn new() -> World {
        let mut net = Network::with_operators(&[MIN_STAKE; 4]);
        let customers = vec![net.customer(), net.customer()];
        let mut tracked = BTreeSet::new();
        tracked.insert(pda::config().0);
        tracked.insert(pda::fee_vault().0);
        tracked.insert(net.treasury.pubkey());
        tracked.insert(net.admin.pubkey());
        for c in &customers {
            tracked.insert(c.pubkey());
        }
        let epoch = net.config().roster_epoch;
        let mut world = World {
            net,
            customers,
            requests: Vec::new(),
            operators: Vec::new(),
            epoch,
            fees: 0,
            tallies: BTreeMap::new(),
            tracked,
            next_id: 0,
        };
        for i in 0..4 {
            world.track_operator(i);
            world.operators.push(ModelOperator {
                stake: MIN_STAKE,
                status: Status::Active,
                earnings: 0,
            });
        }
        world
    }

    fn track_operator(&mut self, i: usize) {
        let op = &self.net.operators[i];
        for key in [
            op.owner.pubkey(),
            op.node.pubkey(),
            op.account(),
            pda::stake_vault(&op.account()).0,
        ] {
            self.tracked.insert(key);
        }
    }

    fn total(&self) -> u128 {
        self.tracked
            .iter()
            .map(|k| self.net.chain.lamports(k) as u128)
            .sum()
    }

    fn lamports(&self, key: &Pubkey) -> u64 {
        self.net.chain.lamports(key)
    }

    fn total_active(&self) -> u64 {
        self.operators
            .iter()
            .filter(|o| o.status == Status::Active)
            .map(|o| o.stake)
            .sum()
    }

    fn is_active(&self, i: usize) -> bool {
        self.operators
            .get(i)
            .is_some_and(|o| o.status == Status::Active)
    }

    /// Sends and checks conservation; returns whether it succeeded.
    fn send(
        &mut self,
        instructions: &[solana_sdk::instruction::Instruction],
        signers: &[&Keypair],
    ) -> bool {
        let before = self.total();
        let result = self.net.chain.send(instructions, signers);
        let fee = match &result {
            Ok(meta) => meta.fee as u128,
            // A failed transaction still pays its fee.
            Err(_) => 5_000 * signers.len() as u128,
        };
        assert_eq!(self.total() + fee, before, "lamports not conserved");
        result.is_ok()
    }

    fn live(&self, index: usize) -> Option<usize> {
        if self.requests.is_empty() {
            return None;
        }
        let i = index % self.requests.len();
        (!self.requests[i].closed).then_some(i)
    }

    fn operator(&self, index: usize) -> usize {
        index % self.operators.len()
    }

    fn provision_vote(&self, r: &ModelRequest, assignee: usize) -> Vote {
        Vote::Provision {
            request: r.address,
            nonce: self.net.request(&r.address).expect("live request").nonce,
            operator: self.net.operators[assignee].account(),
            endpoint_hash: [9; 32],
        }
    }

    /// What the model predicts for one vote by `voter`: Err(()) when the
    /// program must refuse it, Ok(applied) otherwise (and it updates the
    /// tally model).
    fn predict_vote(
        &mut self,
        tally: &Pubkey,
        voter: usize,
        outcome: usize,
        subject_ok: bool,
    ) -> Result<bool, ()> {
        if !self.is_active(voter) || !subject_ok {
            return Err(());
        }
        let epoch = self.epoch;
        let entry = self.tallies.entry(*tally).or_insert(ModelTally {
            epoch,
            ballots: Vec::new(),
        });
        if entry.epoch != epoch {
            entry.epoch = epoch;
            entry.ballots.clear();
        }
        if entry.ballots.iter().any(|b| b.0 == voter) {
            return Err(());
        }
        let stake = self.operators[voter].stake;
        entry.ballots.push((voter, stake, outcome));
        let support: u128 = entry
            .ballots
            .iter()
            .filter(|b| b.2 == outcome)
            .map(|b| b.1 as u128)
            .sum();
        let total = self.total_active() as u128;
        let applied = total > 0 && 3 * support > 2 * total;
        if applied {
            self.tallies.remove(tally);
        }
        Ok(applied)
    }

    /// More than a third of the active stake voted (any outcome) to
    /// provision `r` in the current epoch.
    fn provisioning_started(&self, r: &ModelRequest) -> bool {
        let nonce = self.net.request(&r.address).expect("live request").nonce;
        let tally = pda::attestation(&dagger_client::Subject::Provision {
            request: r.address,
            nonce,
        })
        .0;
        let (epoch, voted) = match self.tallies.get(&tally) {
            Some(t) => (t.epoch, t.ballots.iter().map(|b| b.1 as u128).sum()),
            None => match r.closed_provision_votes {
                Some(recorded) => recorded,
                None => return false,
            },
        };
        epoch == self.epoch && 3 * voted > self.total_active() as u128
    }

    /// Whether operator `i` has room for one more VM of the test spec:
    /// its active, unsettled leases hold what the chain counts.
    fn has_room(&self, i: usize) -> bool {
        let held: u64 = self
            .requests
            .iter()
            .filter(|r| !r.closed && r.status == RequestStatus::Active && r.assignee == i)
            .map(|_| spec().vcpus as u64)
            .sum();
        held + spec().vcpus as u64 <= capacity().vcpus as u64
    }

    fn send_vote(&mut self, voter: usize, vote: Vote) -> bool {
        let node = self.net.operators[voter].node.insecure_clone();
        let rent_payer = self
            .net
            .chain
            .account::<Attestation>(&pda::attestation(&vote.subject()).0)
            .map(|a| a.rent_payer)
            .unwrap_or(node.pubkey());
        let epoch = self.net.config().roster_epoch;
        self.send(
            &[ix::attest_lease(
                &node.pubkey(),
                &rent_payer,
                epoch,
                vote,
                match vote {
                    Vote::Terminate { request, .. } => {
                        self.net.request(&request).map(|r| r.assigned_operator)
                    }
                    _ => None,
                },
            )],
            &[&node],
        )
    }

    /// Active operators vote in order until the subject is applied; each
    /// vote's acceptance and the quorum are predicted by the model.
    fn vote_to_quorum(&mut self, vote: Vote, outcome: usize, subject_ok: bool) -> bool {
        let tally = pda::attestation(&vote.subject()).0;
        self.tracked.insert(tally);
        for voter in 0..self.operators.len() {
            let already = self
                .tallies
                .get(&tally)
                .is_some_and(|t| t.epoch == self.epoch && t.ballots.iter().any(|b| b.0 == voter));
            if !self.is_active(voter) || already {
                continue;
            }
            let predicted = self.predict_vote(&tally, voter, outcome, subject_ok);
            let ok = self.send_vote(voter, vote);
            assert_eq!(ok, predicted.is_ok(), "vote by {voter} on {vote:?}");
            match predicted {
                Err(()) => return false,
                Ok(true) => {
                    assert!(!self.net.chain.exists(&tally), "applied tally closed");
                    return true;
                }
                Ok(false) => {}
            }
        }
        false
    }

    fn apply(&mut self, op: &Op) {
        let now = self.net.chain.now();
        match *op {
            Op::Warp { seconds } => self.net.chain.warp(seconds),
            Op::Create {
                customer,
                price,
                duration,
            } => {
                let id = self.next_id;
                self.next_id += 1;
                let signer = self.customers[customer].insecure_clone();
                let address = pda::request(&signer.pubkey(), id).0;
                self.tracked.insert(address);
                self.tracked.insert(pda::escrow(&address).0);
                let ok = self.send(
                    &[ix::create_request(
                        &signer.pubkey(),
                        id,
                        spec(),
                        price,
                        duration,
                    )],
                    &[&signer],
                );
                assert!(ok, "create with funds and valid args must succeed");
                self.requests.push(ModelRequest {
                    address,
                    customer,
                    price,
                    duration,
                    deposit: price * duration,
                    paid_out: 0,
                    deadline: now + PROVISIONING_TIMEOUT,
                    fee_bps: FEE_BPS,
                    status: RequestStatus::Open,
                    assignee: 0,
                    lease_start: 0,
                    ended_at: 0,
                    closed: false,
                    released: 0,
                    refunded: 0,
                    closed_provision_votes: None,
                });
            }
            Op::TopUp { request, seconds } => {
                let Some(i) = self.live(request) else { return };
                let r = self.requests[i].clone();
                let allowed = match r.status {
                    RequestStatus::Open => true,
                    RequestStatus::Active => !r.over(now),
                    RequestStatus::Terminated => false,
                };
                let signer = self.customers[r.customer].insecure_clone();
                let ok = self.send(
                    &[ix::top_up(&signer.pubkey(), &r.address, seconds)],
                    &[&signer],
                );
                assert_eq!(ok, allowed, "top_up {r:?}");
                if ok {
                    let r = &mut self.requests[i];
                    r.duration += seconds;
                    r.deposit += seconds * r.price;
                }
            }
            Op::Cancel { request } => {
                let Some(i) = self.live(request) else { return };
                let r = self.requests[i].clone();
                let signer = self.customers[r.customer].insecure_clone();
                let before = self.lamports(&signer.pubkey());
                let rent = self.lamports(&r.address) + self.lamports(&pda::escrow(&r.address).0)
                    - r.deposit;
                let started = r.status == RequestStatus::Open && self.provisioning_started(&r);
                let result = self.net.chain.send(
                    &[ix::cancel_request(&signer.pubkey(), &r.address)],
                    &[&signer],
                );
                assert_eq!(
                    result.is_ok(),
                    r.status == RequestStatus::Open && !started,
                    "cancel {r:?} (provisioning started: {started})"
                );
                if let Ok(meta) = result {
                    let back = self.lamports(&signer.pubkey()) + meta.fee - before;
                    let r = &mut self.requests[i];
                    r.closed = true;
                    r.refunded = back - rent;
                }
            }
            Op::Reclaim { request } => {
                let Some(i) = self.live(request) else { return };
                let r = self.requests[i].clone();
                let customer = self.customers[r.customer].pubkey();
                let keeper = self.net.operators[0].node.insecure_clone();
                let before = self.lamports(&customer);
                let rent = self.lamports(&r.address) + self.lamports(&pda::escrow(&r.address).0)
                    - r.deposit;
                let ok = self.send(&[ix::reclaim_expired(&r.address, &customer)], &[&keeper]);
                assert_eq!(
                    ok,
                    r.status == RequestStatus::Open && now > r.deadline,
                    "reclaim {r:?}"
                );
                if ok {
                    let back = self.lamports(&customer) - before;
                    let r = &mut self.requests[i];
                    r.closed = true;
                    r.refunded = back - rent;
                }
            }
            Op::Provision { request, assignee } => {
                let Some(i) = self.live(request) else { return };
                let assignee = self.operator(assignee);
                let r = self.requests[i].clone();
                let subject_ok =
                    r.provisionable(now) && self.is_active(assignee) && self.has_room(assignee);
                let vote = self.provision_vote(&r, assignee);
                if self.vote_to_quorum(vote, assignee, subject_ok) {
                    let r = &mut self.requests[i];
                    r.status = RequestStatus::Active;
                    r.assignee = assignee;
                    r.lease_start = now;
                }
            }
            Op::Vote {
                request,
                assignee,
                voter,
            } => {
                let Some(i) = self.live(request) else { return };
                let (assignee, voter) = (self.operator(assignee), self.operator(voter));
                let r = self.requests[i].clone();
                let subject_ok =
                    r.provisionable(now) && self.is_active(assignee) && self.has_room(assignee);
                let vote = self.provision_vote(&r, assignee);
                let tally = pda::attestation(&vote.subject()).0;
                self.tracked.insert(tally);
                let mut saved = self.tallies.clone();
                let predicted = self.predict_vote(&tally, voter, assignee, subject_ok);
                if predicted.is_err() {
                    // A refused vote leaves the tally as it was.
                    std::mem::swap(&mut self.tallies, &mut saved);
                }
                let ok = self.send_vote(voter, vote);
                assert_eq!(ok, predicted.is_ok(), "single vote by {voter} on {r:?}");
                if predicted == Ok(true) {
                    let r = &mut self.requests[i];
                    r.status = RequestStatus::Active;
                    r.assignee = assignee;
                    r.lease_start = now;
                }
            }
            Op::Terminate { request } => {
                let Some(i) = self.live(request) else { return };
                let r = self.requests[i].clone();
                let subject_ok = r.status == RequestStatus::Active && !r.over(now);
                let nonce = self.net.request(&r.address).expect("live").nonce;
                let vote = Vote::Terminate {
                    request: r.address,
                    nonce,
                    decision: [1; 32],
                };
                if self.vote_to_quorum(vote, usize::MAX, subject_ok) {
                    let r = &mut self.requests[i];
                    r.status = RequestStatus::Terminated;
                    r.ended_at = now;
                }
            }
            Op::CloseTally { request } => {
                if self.requests.is_empty() {
                    return;
                }
                let r = self.requests[request % self.requests.len()].clone();
                let Some(on_chain) = self.net.request(&r.address) else {
                    // Gone: look for a leftover tally of its last instance.
                    return self.close_leftover(&r);
                };
                let subject = Subject::Provision {
                    request: r.address,
                    nonce: on_chain.nonce,
                };
                let tally = pda::attestation(&subject).0;
                let Some(model) = self.tallies.get(&tally).cloned() else {
                    return;
                };
                let allowed = model.epoch < self.epoch || !r.provisionable(now);
                let payer = self
                    .net
                    .chain
                    .account::<Attestation>(&tally)
                    .expect("model says it exists")
                    .rent_payer;
                let anyone = self.customers[1].insecure_clone();
                let ok = self.send(&[ix::close_tally(&subject, &payer)], &[&anyone]);
                assert_eq!(ok, allowed, "close tally of {r:?} {model:?}");
                if ok {
                    self.tallies.remove(&tally);
                    let voted = model.ballots.iter().map(|b| b.1 as u128).sum();
                    let i = request % self.requests.len();
                    self.requests[i].closed_provision_votes = Some((model.epoch, voted));
                }
            }
            Op::Claim { request } => {
                let Some(i) = self.live(request) else { return };
                let r = self.requests[i].clone();
                let due = r.accrued(now) - r.paid_out;
                let over = r.over(now);
                let allowed = r.status != RequestStatus::Open && (due > 0 || over);
                let op = &self.net.operators[r.assignee];
                let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
                let customer = self.customers[r.customer].pubkey();
                let escrow = pda::escrow(&r.address).0;
                let fee_vault = pda::fee_vault().0;
                let escrow_before = self.lamports(&escrow);
                let locked_rent =
                    self.lamports(&r.address) + escrow_before - (r.deposit - r.paid_out);
                let (customer_before, owner_before, fees_before) = (
                    self.lamports(&customer),
                    self.lamports(&owner.pubkey()),
                    self.lamports(&fee_vault),
                );
                let result = self.net.chain.send(
                    &[ix::claim(&owner.pubkey(), &node, &r.address, &customer)],
                    &[&owner],
                );
                assert_eq!(result.is_ok(), allowed, "claim {r:?} due {due} over {over}");
                if let Ok(meta) = result {
                    let to_owner = self.lamports(&owner.pubkey()) + meta.fee - owner_before;
                    let fee = self.lamports(&fee_vault) - fees_before;
                    let earnings = self.operators[r.assignee].earnings;
                    // Observed: the owner got the new share and any earnings
                    // held before; the fee is the request's rate of `due`.
                    assert_eq!(to_owner + fee, due + earnings, "claim split");
                    assert_eq!(fee, (due as u128 * r.fee_bps as u128 / 10_000) as u64);
                    self.fees += fee;
                    self.operators[r.assignee].earnings = 0;
                    let r = &mut self.requests[i];
                    r.paid_out += due;
                    r.released += due;
                    if over {
                        r.closed = true;
                        let back = self.net.chain.lamports(&customer) - customer_before;
                        r.refunded = back - locked_rent;
                    } else {
                        assert_eq!(escrow_before - self.net.chain.lamports(&escrow), due);
                    }
                }
            }
            Op::Close { request } => {
                let Some(i) = self.live(request) else { return };
                let r = self.requests[i].clone();
                let allowed = r.status != RequestStatus::Open;
                let operator = self.net.operators[r.assignee].account();
                let vault = pda::stake_vault(&operator).0;
                let fee_vault = pda::fee_vault().0;
                let signer = self.customers[r.customer].insecure_clone();
                let locked_rent = self.lamports(&r.address)
                    + self.lamports(&pda::escrow(&r.address).0)
                    - (r.deposit - r.paid_out);
                let (vault_before, fees_before, customer_before) = (
                    self.lamports(&vault),
                    self.lamports(&fee_vault),
                    self.lamports(&signer.pubkey()),
                );
                let result = self.net.chain.send(
                    &[ix::close_lease(&signer.pubkey(), &r.address, &operator)],
                    &[&signer],
                );
                assert_eq!(result.is_ok(), allowed, "close {r:?}");
                if let Ok(meta) = result {
                    let due = r.accrued(r.billed_until(now)) - r.paid_out;
                    let share = self.lamports(&vault) - vault_before;
                    let fee = self.lamports(&fee_vault) - fees_before;
                    assert_eq!(share + fee, due, "close released what accrued");
                    assert_eq!(fee, (due as u128 * r.fee_bps as u128 / 10_000) as u64);
                    self.fees += fee;
                    self.operators[r.assignee].earnings += share;
                    let back = self.lamports(&signer.pubkey()) + meta.fee - customer_before;
                    let r = &mut self.requests[i];
                    r.paid_out += due;
                    r.released += due;
                    r.closed = true;
                    r.refunded = back - locked_rent;
                }
            }
            Op::Unstake { operator } => {
                let i = self.operator(operator);
                let op = &self.net.operators[i];
                let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
                let status = self.operators[i].status;
                let ok = self.send(&[ix::request_unstake(&owner.pubkey(), &node)], &[&owner]);
                assert_eq!(ok, status != Status::Unbonding, "unstake {i}");
                if ok {
                    if status == Status::Active {
                        self.epoch += 1;
                    }
                    self.operators[i].status = Status::Unbonding;
                }
            }
            Op::AddStake { operator, amount } => {
                let i = self.operator(operator);
                let op = &self.net.operators[i];
                let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
                let m = self.operators[i].clone();
                let allowed = match m.status {
                    Status::Unbonding => false,
                    Status::Pending => true,
                    Status::Active => {
                        let total = self.total_active() as u128 + amount as u128;
                        (m.stake as u128 + amount as u128) * 10_000
                            <= MAX_STAKE_SHARE_BPS as u128 * total
                    }
                };
                // The owner can always afford it (an empty wallet is not
                // what this op tests).
                self.net.chain.airdrop(&owner.pubkey(), amount);
                let ok = self.send(&[ix::add_stake(&owner.pubkey(), &node, amount)], &[&owner]);
                assert_eq!(ok, allowed, "add_stake {amount} to {i} {m:?}");
                if ok {
                    // No new epoch: open tallies keep their ballots.
                    self.operators[i].stake += amount;
                }
            }
            Op::Join => {
                if self.operators.len() >= 6 {
                    return;
                }
                let i = self.net.register(MIN_STAKE);
                self.track_operator(i);
                self.operators.push(ModelOperator {
                    stake: MIN_STAKE,
                    status: Status::Pending,
                    earnings: 0,
                });
            }
            Op::Admit { operator } => {
                let i = self.operator(operator);
                let m = self.operators[i].clone();
                let total = self.total_active() as u128 + m.stake as u128;
                let within_cap = m.stake as u128 * 10_000 <= MAX_STAKE_SHARE_BPS as u128 * total;
                let subject = self.net.operators[i].account();
                let nonce = self.net.operator(i).nonce;
                let vote = Vote::Admit {
                    operator: subject,
                    nonce,
                    decision: [2; 32],
                };
                let subject_ok = m.status == Status::Pending;
                // The cap is checked when the quorum applies it: votes that
                // would apply it are refused, so the tally stays partial.
                if !within_cap && subject_ok {
                    return;
                }
                if self.vote_to_quorum(vote, usize::MAX - 1, subject_ok) {
                    self.operators[i].status = Status::Active;
                }
            }
            Op::Remove { operator } => {
                let i = self.operator(operator);
                let m = self.operators[i].clone();
                let subject = self.net.operators[i].account();
                let nonce = self.net.operator(i).nonce;
                let vote = Vote::Remove {
                    operator: subject,
                    nonce,
                    decision: [3; 32],
                };
                let vault = pda::stake_vault(&subject).0;
                let vault_before = self.lamports(&vault);
                if self.vote_to_quorum(vote, usize::MAX - 2, m.status == Status::Active) {
                    let slash = (m.stake as u128 * REMOVAL_SLASH_BPS as u128 / 10_000) as u64;
                    assert_eq!(vault_before - self.lamports(&vault), slash, "slash");
                    self.fees += slash;
                    self.operators[i].stake -= slash;
                    self.operators[i].status = Status::Unbonding;
                    self.epoch += 1;
                }
            }
            Op::WithdrawEarnings { operator } => {
                let i = self.operator(operator);
                let op = &self.net.operators[i];
                let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
                let earnings = self.operators[i].earnings;
                let before = self.lamports(&owner.pubkey());
                let result = self
                    .net
                    .chain
                    .send(&[ix::withdraw_earnings(&owner.pubkey(), &node)], &[&owner]);
                assert_eq!(result.is_ok(), earnings > 0, "withdraw earnings of {i}");
                if let Ok(meta) = result {
                    assert_eq!(self.lamports(&owner.pubkey()) + meta.fee - before, earnings);
                    self.operators[i].earnings = 0;
                }
            }
            Op::WithdrawFees => {
                let admin = self.net.admin.insecure_clone();
                let treasury = self.net.treasury.pubkey();
                // A drained treasury wallet refuses credits below its rent.
                let rent = self.net.chain.rent(0);
                let treasury_ok = self.lamports(&treasury) > 0 || self.fees >= rent;
                let ok = self.send(
                    &[ix::withdraw_fees(&admin.pubkey(), &treasury, 0)],
                    &[&admin],
                );
                assert_eq!(
                    ok,
                    self.fees > 0 && treasury_ok,
                    "withdraw fees {}",
                    self.fees
                );
                if ok {
                    self.fees = 0;
                }
            }
            Op::DrainTreasury => {
                let treasury = self.net.treasury.insecure_clone();
                let all = self.lamports(&treasury.pubkey());
                if all <= 5_000 {
                    return;
                }
                let sink = self.net.admin.pubkey();
                let ok = self.send(
                    &[anchor_lang::solana_program::system_instruction::transfer(
                        &treasury.pubkey(),
                        &sink,
                        all - 5_000,
                    )],
                    &[&treasury],
                );
                assert!(ok);
            }
        }
    }

    /// A request whose accounts closed may leave a partial tally behind:
    /// anyone closes it, and its rent goes back to the node that paid it.
    fn close_leftover(&mut self, r: &ModelRequest) {
        let leftovers: Vec<Pubkey> = self
            .tallies
            .keys()
            .copied()
            .filter(|t| {
                self.net
                    .chain
                    .account::<Attestation>(t)
                    .is_some_and(|a| a.subject.key() == &r.address)
            })
            .collect();
        for tally in leftovers {
            let account: Attestation = self.net.chain.account(&tally).expect("exists");
            let anyone = self.customers[0].insecure_clone();
            let ok = self.send(
                &[ix::close_tally(&account.subject, &account.rent_payer)],
                &[&anyone],
            );
            assert!(ok, "a tally whose request is gone is closable");
            self.tallies.remove(&tally);
        }
    }

    fn check(&self) {
        for r in &self.requests {
            let escrow = pda::escrow(&r.address).0;
            if r.closed {
                assert!(
                    !self.net.chain.exists(&r.address),
                    "closed request still exists"
                );
                assert!(
                    !self.net.chain.exists(&escrow),
                    "closed escrow still exists"
                );
                assert_eq!(
                    r.released + r.refunded,
                    r.deposit,
                    "deposit settled exactly once: {r:?}"
                );
                continue;
            }
            let on_chain: Request = self.net.chain.account(&r.address).expect("live request");
            assert_eq!(on_chain.status, r.status);
            assert_eq!(on_chain.deposit, r.deposit);
            assert_eq!(on_chain.paid_out, r.paid_out);
            assert_eq!(on_chain.duration, r.duration);
            assert!(on_chain.paid_out <= on_chain.deposit);
            let escrow_rent = self.net.chain.rent(8 + 33);
            assert_eq!(
                self.net.chain.lamports(&escrow),
                escrow_rent + r.deposit - r.paid_out,
                "escrow holds rent + deposit − paid out"
            );
        }
        let vault_rent = self.net.chain.rent(8 + StakeVault::INIT_SPACE);
        for (i, m) in self.operators.iter().enumerate() {
            let account = self.net.operators[i].account();
            let op = self.net.operator(i);
            assert_eq!(
                (op.stake, op.earnings),
                (m.stake, m.earnings),
                "operator {i}"
            );
            assert_eq!(
                self.net.chain.lamports(&pda::stake_vault(&account).0),
                vault_rent + m.stake + m.earnings,
                "stake vault of {i} holds rent + stake + earnings"
            );
        }
        let fee_rent = self.net.chain.rent(8 + FeeVault::INIT_SPACE);
        assert_eq!(
            self.net.chain.lamports(&pda::fee_vault().0),
            fee_rent + self.fees,
            "fee vault holds rent + collected fees"
        );
        let config = self.net.config();
        assert_eq!(config.total_active_stake, self.total_active());
        assert_eq!(config.roster_epoch, self.epoch);
        for (tally, model) in &self.tallies {
            let account: Attestation = self
                .net
                .chain
                .account(tally)
                .expect("the model expects this tally");
            if model.epoch == account.roster_epoch {
                assert_eq!(account.ballots.len(), model.ballots.len());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn lamports_are_conserved_and_escrows_pay_once(ops in proptest::collection::vec(op(), 1..40)) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op);
            world.check();
        }
    }
}
