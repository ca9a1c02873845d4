//! Property test: random sequences of customer, node and operator actions
//! against the real program, checked against a model after every step.
//!
//! Invariants:
//! - lamports are conserved: across every account involved, what exists
//!   after a transaction equals what existed before minus the fee;
//! - every live escrow holds exactly rent + deposit − paid out (it never goes
//!   negative and never pays twice);
//! - each operation succeeds exactly when the model says it is allowed, and
//!   leaves the request in the state the model predicts;
//! - when a request finishes, deposit = paid to operator + fee + refund.

use std::collections::BTreeSet;

use dagger_client::{instructions as ix, pda, Request, RequestStatus, Vote};
use dagger_tests::*;
use proptest::prelude::*;
use solana_pubkey::Pubkey;
use solana_sdk::{signature::Keypair, signer::Signer};

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
    Unstake {
        operator: usize,
    },
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
        3 => (0..8usize, 0..4usize).prop_map(|(request, assignee)| Op::Provision { request, assignee }),
        1 => (0..8usize).prop_map(|request| Op::Terminate { request }),
        2 => (0..8usize).prop_map(|request| Op::Claim { request }),
        1 => (0..8usize).prop_map(|request| Op::Close { request }),
        1 => (0..8usize).prop_map(|request| Op::Reclaim { request }),
        1 => (0..4usize).prop_map(|operator| Op::Unstake { operator }),
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
    status: RequestStatus,
    assignee: usize,
    lease_start: i64,
    ended_at: i64,
    /// Finished: accounts closed, money settled.
    closed: bool,
    /// Lamports released from the escrow to operator + treasury, as observed.
    released: u64,
    /// Lamports refunded to the customer beyond the accounts' rent, as observed.
    refunded: u64,
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
    fn over(&self, now: i64) -> bool {
        match self.status {
            RequestStatus::Open => false,
            RequestStatus::Active => now >= self.accrual_end(),
            RequestStatus::Terminated => true,
        }
    }
}

struct World {
    net: Network,
    customers: Vec<Keypair>,
    requests: Vec<ModelRequest>,
    active: [bool; 4],
    tracked: BTreeSet<Pubkey>,
    next_id: u64,
}

impl World {
    fn new() -> World {
        let mut net = Network::with_operators(&[MIN_STAKE; 4]);
        let customers = vec![net.customer(), net.customer()];
        let mut tracked = BTreeSet::new();
        tracked.insert(pda::config().0);
        tracked.insert(net.treasury.pubkey());
        for op in &net.operators {
            tracked.insert(op.owner.pubkey());
            tracked.insert(op.node.pubkey());
            tracked.insert(op.account());
            tracked.insert(pda::stake_vault(&op.account()).0);
        }
        for c in &customers {
            tracked.insert(c.pubkey());
        }
        World {
            net,
            customers,
            requests: Vec::new(),
            active: [true; 4],
            tracked,
            next_id: 0,
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
                    status: RequestStatus::Open,
                    assignee: 0,
                    lease_start: 0,
                    ended_at: 0,
                    closed: false,
                    released: 0,
                    refunded: 0,
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
                let ok = self.send(
                    &[ix::cancel_request(&signer.pubkey(), &r.address)],
                    &[&signer],
                );
                assert_eq!(ok, r.status == RequestStatus::Open, "cancel {r:?}");
                if ok {
                    let r = &mut self.requests[i];
                    r.closed = true;
                    r.refunded = r.deposit;
                }
            }
            Op::Reclaim { request } => {
                let Some(i) = self.live(request) else { return };
                let r = self.requests[i].clone();
                let customer = self.customers[r.customer].pubkey();
                let keeper = self.net.operators[0].node.insecure_clone();
                let ok = self.send(&[ix::reclaim_expired(&r.address, &customer)], &[&keeper]);
                assert_eq!(
                    ok,
                    r.status == RequestStatus::Open && now > r.deadline,
                    "reclaim {r:?}"
                );
                if ok {
                    let r = &mut self.requests[i];
                    r.closed = true;
                    r.refunded = r.deposit;
                }
            }
            Op::Provision { request, assignee } => {
                let Some(i) = self.live(request) else { return };
                let r = self.requests[i].clone();
                let allowed =
                    r.status == RequestStatus::Open && now <= r.deadline && self.active[assignee];
                let vote = self.net.provision_vote(&r.address, assignee);
                self.tracked.insert(pda::attestation(&vote.subject()).0);
                let applied = self.vote_to_quorum(vote);
                assert_eq!(applied, allowed, "provision {r:?}");
                if applied {
                    let r = &mut self.requests[i];
                    r.status = RequestStatus::Active;
                    r.assignee = assignee;
                    r.lease_start = now;
                }
            }
            Op::Terminate { request } => {
                let Some(i) = self.live(request) else { return };
                let r = self.requests[i].clone();
                let allowed = r.status == RequestStatus::Active && !r.over(now);
                let vote = Vote::Terminate {
                    request: r.address,
                    decision: [1; 32],
                };
                self.tracked.insert(pda::attestation(&vote.subject()).0);
                let applied = self.vote_to_quorum(vote);
                assert_eq!(applied, allowed, "terminate {r:?}");
                if applied {
                    let r = &mut self.requests[i];
                    r.status = RequestStatus::Terminated;
                    r.ended_at = now;
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
                let treasury = self.net.treasury.pubkey();
                let escrow = pda::escrow(&r.address).0;
                let escrow_before = self.lamports(&escrow);
                let locked_rent =
                    self.lamports(&r.address) + escrow_before - (r.deposit - r.paid_out);
                let customer_before = self.lamports(&customer);
                let ok = self.send(
                    &[ix::claim(
                        &owner.pubkey(),
                        &node,
                        &r.address,
                        &customer,
                        &treasury,
                    )],
                    &[&owner],
                );
                assert_eq!(ok, allowed, "claim {r:?} due {due} over {over}");
                if ok {
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
                let op = &self.net.operators[r.assignee];
                let (operator, owner) = (op.account(), op.owner.pubkey());
                let signer = self.customers[r.customer].insecure_clone();
                let treasury = self.net.treasury.pubkey();
                let (owner_before, treasury_before) =
                    (self.lamports(&owner), self.lamports(&treasury));
                let ok = self.send(
                    &[ix::close_lease(
                        &signer.pubkey(),
                        &r.address,
                        &operator,
                        &owner,
                        &treasury,
                    )],
                    &[&signer],
                );
                assert_eq!(ok, allowed, "close {r:?}");
                if ok {
                    let due = r.accrued(now) - r.paid_out;
                    let released = (self.lamports(&owner) - owner_before)
                        + (self.lamports(&treasury) - treasury_before);
                    assert_eq!(released, due, "close released what accrued");
                    let r = &mut self.requests[i];
                    r.paid_out += due;
                    r.released += due;
                    r.closed = true;
                    r.refunded = r.deposit - r.paid_out;
                }
            }
            Op::Unstake { operator } => {
                let op = &self.net.operators[operator];
                let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
                let ok = self.send(&[ix::request_unstake(&owner.pubkey(), &node)], &[&owner]);
                assert_eq!(ok, self.active[operator], "unstake {operator}");
                self.active[operator] = false;
            }
        }
    }

    /// Active operators vote in order until the subject is applied. Returns
    /// whether a quorum applied it (false when every vote was refused).
    fn vote_to_quorum(&mut self, vote: Vote) -> bool {
        let mut accepted = 0;
        for index in 0..4 {
            if !self.active[index] {
                continue;
            }
            let node = self.net.operators[index].node.insecure_clone();
            let epoch = self.net.config().roster_epoch;
            let rent_payer = self
                .net
                .chain
                .account::<dagger_client::Attestation>(&pda::attestation(&vote.subject()).0)
                .map(|a| a.rent_payer)
                .unwrap_or(node.pubkey());
            let ok = self.send(
                &[ix::attest(&node.pubkey(), &rent_payer, epoch, vote)],
                &[&node],
            );
            if !ok {
                assert_eq!(accepted, 0, "a vote was refused after others were accepted");
                return false;
            }
            accepted += 1;
            let applied = !self.net.chain.exists(&pda::attestation(&vote.subject()).0);
            if applied {
                return true;
            }
        }
        false
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
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn lamports_are_conserved_and_escrows_pay_once(ops in proptest::collection::vec(op(), 1..40)) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op);
            world.check();
        }
    }
}
