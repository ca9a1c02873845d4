//! Lease money: claim and close_lease, exact to the lamport.

use dagger_client::{errors::DaggerError, instructions as ix, pda, Vote};
use dagger_tests::*;
use solana_pubkey::Pubkey;
use solana_sdk::{signature::Keypair, signer::Signer};

const PRICE: u64 = 1_000;
const DURATION: u64 = 3_600;

struct Lease {
    net: Network,
    customer: Keypair,
    request: Pubkey,
}

/// A provisioned lease assigned to operator 1.
fn lease() -> Lease {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, PRICE, DURATION);
    net.provision(&request, 1);
    Lease {
        net,
        customer,
        request,
    }
}

fn fee_of(amount: u64) -> u64 {
    amount * FEE_BPS as u64 / 10_000
}

impl Lease {
    fn claim_ix(&self, operator: usize) -> solana_sdk::instruction::Instruction {
        let op = &self.net.operators[operator];
        ix::claim(
            &op.owner.pubkey(),
            &op.node.pubkey(),
            &self.request,
            &self.customer.pubkey(),
            &self.net.treasury.pubkey(),
        )
    }

    fn close_ix(&self) -> solana_sdk::instruction::Instruction {
        let op = &self.net.operators[1];
        ix::close_lease(
            &self.customer.pubkey(),
            &self.request,
            &op.account(),
            &op.owner.pubkey(),
            &self.net.treasury.pubkey(),
        )
    }
}

#[test]
fn claim_pays_what_accrued_minus_the_fee() {
    let mut l = lease();
    let owner = l.net.operators[1].owner.pubkey();
    let treasury = l.net.treasury.pubkey();
    let escrow = pda::escrow(&l.request).0;
    let (owner_before, treasury_before, escrow_before) = (
        l.net.chain.lamports(&owner),
        l.net.chain.lamports(&treasury),
        l.net.chain.lamports(&escrow),
    );
    l.net.chain.warp(600);
    let signer = l.net.operators[1].owner.insecure_clone();
    let meta = l.net.chain.ok(&[l.claim_ix(1)], &[&signer]);
    let earned = 600 * PRICE;
    let fee = fee_of(earned);
    assert_eq!(
        l.net.chain.lamports(&owner),
        owner_before + earned - fee - meta.fee
    );
    assert_eq!(l.net.chain.lamports(&treasury), treasury_before + fee);
    assert_eq!(l.net.chain.lamports(&escrow), escrow_before - earned);
    assert_eq!(l.net.request(&l.request).unwrap().paid_out, earned);

    // Nothing new accrued yet: nothing to claim.
    let failure = l.net.chain.fail(&[l.claim_ix(1)], &[&signer]);
    assert!(failure.is(DaggerError::NothingToClaim));

    // Claim again later: only the difference.
    l.net.chain.warp(400);
    l.net.chain.ok(&[l.claim_ix(1)], &[&signer]);
    assert_eq!(l.net.request(&l.request).unwrap().paid_out, 1_000 * PRICE);
}

#[test]
fn claim_after_the_lease_ends_settles_and_refunds_the_rest() {
    let mut l = lease();
    // A top-up during the lease: paid time 3600 + 400.
    let customer = l.customer.insecure_clone();
    l.net.chain.ok(
        &[ix::top_up(&customer.pubkey(), &l.request, 400)],
        &[&customer],
    );
    l.net.chain.warp(10_000);
    let escrow = pda::escrow(&l.request).0;
    let owed_to_customer_rent =
        l.net.chain.lamports(&escrow) + l.net.chain.lamports(&l.request) - 4_000 * PRICE;
    let customer_before = l.net.chain.lamports(&customer.pubkey());
    let signer = l.net.operators[1].owner.insecure_clone();
    l.net.chain.ok(&[l.claim_ix(1)], &[&signer]);
    // Fully used: nothing to refund but the two accounts' rent.
    assert_eq!(
        l.net.chain.lamports(&customer.pubkey()),
        customer_before + owed_to_customer_rent
    );
    assert!(!l.net.chain.exists(&l.request) && !l.net.chain.exists(&escrow));
}

#[test]
fn a_terminated_lease_pays_up_to_termination_and_refunds_the_rest() {
    let mut l = lease();
    l.net.chain.warp(300);
    let terminate = Vote::Terminate {
        request: l.request,
        decision: [1; 32],
    };
    for index in 0..3 {
        l.net.vote(index, terminate).unwrap();
    }
    l.net.chain.warp(1_000);
    let customer = l.customer.pubkey();
    let escrow = pda::escrow(&l.request).0;
    let total = l.net.chain.lamports(&escrow) + l.net.chain.lamports(&l.request);
    let customer_before = l.net.chain.lamports(&customer);
    let owner = l.net.operators[1].owner.pubkey();
    let owner_before = l.net.chain.lamports(&owner);
    let signer = l.net.operators[1].owner.insecure_clone();
    let meta = l.net.chain.ok(&[l.claim_ix(1)], &[&signer]);
    let earned = 300 * PRICE;
    assert_eq!(
        l.net.chain.lamports(&owner),
        owner_before + earned - fee_of(earned) - meta.fee
    );
    assert_eq!(
        l.net.chain.lamports(&customer),
        customer_before + total - earned
    );
    assert!(!l.net.chain.exists(&l.request));
}

#[test]
fn claims_by_anyone_but_the_assigned_operator_fail() {
    let mut l = lease();
    l.net.chain.warp(60);
    // Another operator's owner, with its own operator account.
    let other = l.net.operators[2].owner.insecure_clone();
    let failure = l.net.chain.fail(&[l.claim_ix(2)], &[&other]);
    assert!(failure.is(DaggerError::WrongAccount));
    // A stranger naming the assigned operator.
    let stranger = l.net.customer();
    let op = &l.net.operators[1];
    let instruction = ix::claim(
        &stranger.pubkey(),
        &op.node.pubkey(),
        &l.request,
        &l.customer.pubkey(),
        &l.net.treasury.pubkey(),
    );
    let failure = l.net.chain.fail(&[instruction], &[&stranger]);
    assert!(failure.is(DaggerError::Unauthorized));
}

#[test]
fn claim_checks_treasury_and_customer_accounts() {
    let mut l = lease();
    l.net.chain.warp(60);
    let fake_treasury = l.net.customer();
    let op = &l.net.operators[1];
    let signer = op.owner.insecure_clone();
    let instruction = ix::claim(
        &op.owner.pubkey(),
        &op.node.pubkey(),
        &l.request,
        &l.customer.pubkey(),
        &fake_treasury.pubkey(),
    );
    let failure = l.net.chain.fail(&[instruction], &[&signer]);
    assert!(failure.is(DaggerError::WrongTreasury));
    let instruction = ix::claim(
        &op.owner.pubkey(),
        &op.node.pubkey(),
        &l.request,
        &fake_treasury.pubkey(),
        &l.net.treasury.pubkey(),
    );
    let failure = l.net.chain.fail(&[instruction], &[&signer]);
    assert!(failure.is(DaggerError::WrongAccount));
}

#[test]
fn claim_on_an_open_request_fails() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, PRICE, DURATION);
    let op = &net.operators[0];
    // An open request has no assigned operator yet.
    let instruction = ix::claim(
        &op.owner.pubkey(),
        &op.node.pubkey(),
        &request,
        &customer.pubkey(),
        &net.treasury.pubkey(),
    );
    let signer = op.owner.insecure_clone();
    let failure = net.chain.fail(&[instruction], &[&signer]);
    assert!(failure.is(DaggerError::WrongAccount));
}

#[test]
fn close_lease_pays_accrued_and_refunds_the_rest() {
    let mut l = lease();
    l.net.chain.warp(900);
    let customer = l.customer.insecure_clone();
    let owner = l.net.operators[1].owner.pubkey();
    let treasury = l.net.treasury.pubkey();
    let escrow = pda::escrow(&l.request).0;
    let locked = l.net.chain.lamports(&escrow) + l.net.chain.lamports(&l.request);
    let (customer_before, owner_before, treasury_before) = (
        l.net.chain.lamports(&customer.pubkey()),
        l.net.chain.lamports(&owner),
        l.net.chain.lamports(&treasury),
    );
    let meta = l.net.chain.ok(&[l.close_ix()], &[&customer]);
    let earned = 900 * PRICE;
    let fee = fee_of(earned);
    assert_eq!(l.net.chain.lamports(&owner), owner_before + earned - fee);
    assert_eq!(l.net.chain.lamports(&treasury), treasury_before + fee);
    assert_eq!(
        l.net.chain.lamports(&customer.pubkey()),
        customer_before + locked - earned - meta.fee
    );
    assert!(!l.net.chain.exists(&l.request) && !l.net.chain.exists(&escrow));
}

#[test]
fn close_lease_errors() {
    let mut l = lease();
    let stranger = l.net.customer();
    let op = &l.net.operators[1];
    let instruction = ix::close_lease(
        &stranger.pubkey(),
        &l.request,
        &op.account(),
        &op.owner.pubkey(),
        &l.net.treasury.pubkey(),
    );
    let failure = l.net.chain.fail(&[instruction], &[&stranger]);
    assert!(failure.is(DaggerError::Unauthorized));

    // Paying someone other than the assigned operator's wallet is refused.
    let customer = l.customer.insecure_clone();
    let instruction = ix::close_lease(
        &customer.pubkey(),
        &l.request,
        &op.account(),
        &stranger.pubkey(),
        &l.net.treasury.pubkey(),
    );
    let failure = l.net.chain.fail(&[instruction], &[&customer]);
    assert!(failure.is(DaggerError::WrongAccount));
    let other_operator = &l.net.operators[2];
    let instruction = ix::close_lease(
        &customer.pubkey(),
        &l.request,
        &other_operator.account(),
        &other_operator.owner.pubkey(),
        &l.net.treasury.pubkey(),
    );
    let failure = l.net.chain.fail(&[instruction], &[&customer]);
    assert!(failure.is(DaggerError::WrongAccount));

    // An open request is cancelled, not closed.
    let open = l.net.create_request(&customer, 2, PRICE, DURATION);
    let op = &l.net.operators[1];
    let instruction = ix::close_lease(
        &customer.pubkey(),
        &open,
        &op.account(),
        &op.owner.pubkey(),
        &l.net.treasury.pubkey(),
    );
    let failure = l.net.chain.fail(&[instruction], &[&customer]);
    assert!(failure.is(DaggerError::WrongAccount) || failure.is(DaggerError::LeaseNotActive));
}
