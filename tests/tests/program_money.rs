//! Lease money: claim, close_lease, earnings and fees, exact to the lamport.

use dagger_client::{errors::DaggerError, instructions as ix, pda, UpdateConfigArgs, Vote};
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

fn fee_of(amount: u64, bps: u16) -> u64 {
    amount * bps as u64 / 10_000
}

impl Lease {
    fn claim_ix(&self, operator: usize) -> solana_sdk::instruction::Instruction {
        let op = &self.net.operators[operator];
        ix::claim(
            &op.owner.pubkey(),
            &op.node.pubkey(),
            &self.request,
            &self.customer.pubkey(),
        )
    }

    fn close_ix(&self) -> solana_sdk::instruction::Instruction {
        ix::close_lease(
            &self.customer.pubkey(),
            &self.request,
            &self.net.operators[1].account(),
        )
    }

    fn vault(&self) -> Pubkey {
        pda::stake_vault(&self.net.operators[1].account()).0
    }
}

#[test]
fn claim_pays_what_accrued_minus_the_fee() {
    let mut l = lease();
    let owner = l.net.operators[1].owner.pubkey();
    let escrow = pda::escrow(&l.request).0;
    let (owner_before, fees_before, escrow_before, vault_before) = (
        l.net.chain.lamports(&owner),
        l.net.fees_collected(),
        l.net.chain.lamports(&escrow),
        l.net.chain.lamports(&l.vault()),
    );
    l.net.chain.warp(600);
    let signer = l.net.operators[1].owner.insecure_clone();
    let meta = l.net.chain.ok(&[l.claim_ix(1)], &[&signer]);
    let earned = 600 * PRICE;
    let fee = fee_of(earned, FEE_BPS);
    assert_eq!(
        l.net.chain.lamports(&owner),
        owner_before + earned - fee - meta.fee
    );
    assert_eq!(l.net.fees_collected(), fees_before + fee);
    assert_eq!(l.net.chain.lamports(&escrow), escrow_before - earned);
    // Claiming takes the earnings out of the vault at once.
    assert_eq!(l.net.chain.lamports(&l.vault()), vault_before);
    assert_eq!(l.net.operator(1).earnings, 0);
    assert_eq!(l.net.request(&l.request).unwrap().paid_out, earned);

    // Nothing new accrued yet: nothing to claim.
    let failure = l.net.chain.fail(&[l.claim_ix(1)], &[&signer]);
    assert!(failure.is(DaggerError::NothingToClaim));

    // Claim again later: only the difference.
    l.net.chain.warp(400);
    l.net.chain.ok(&[l.claim_ix(1)], &[&signer]);
    assert_eq!(l.net.request(&l.request).unwrap().paid_out, 1_000 * PRICE);
}

/// The admin raises the fee while a lease runs: the lease keeps the fee it
/// was paid under, for what accrued before and after the change.
#[test]
fn a_fee_change_never_touches_existing_leases() {
    let mut l = lease();
    l.net.chain.warp(600);
    let admin = l.net.admin.insecure_clone();
    l.net.chain.ok(
        &[ix::update_config(
            &admin.pubkey(),
            UpdateConfigArgs {
                protocol_fee_bps: Some(1_000),
                ..Default::default()
            },
        )],
        &[&admin],
    );
    let fees_before = l.net.fees_collected();
    let signer = l.net.operators[1].owner.insecure_clone();
    l.net.chain.ok(&[l.claim_ix(1)], &[&signer]);
    assert_eq!(
        l.net.fees_collected(),
        fees_before + fee_of(600 * PRICE, FEE_BPS)
    );
    // A request paid after the change carries the new fee.
    let customer = l.customer.insecure_clone();
    let later = l.net.create_request(&customer, 2, PRICE, DURATION);
    assert_eq!(l.net.request(&later).unwrap().fee_bps, 1_000);
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
    assert_eq!(l.net.operator(1).active_leases, 1);
    l.net.chain.ok(&[l.claim_ix(1)], &[&signer]);
    // Fully used: nothing to refund but the two accounts' rent.
    assert_eq!(
        l.net.chain.lamports(&customer.pubkey()),
        customer_before + owed_to_customer_rent
    );
    assert!(!l.net.chain.exists(&l.request) && !l.net.chain.exists(&escrow));
    assert_eq!(l.net.operator(1).active_leases, 0);
}

#[test]
fn a_terminated_lease_pays_up_to_termination_and_refunds_the_rest() {
    let mut l = lease();
    l.net.chain.warp(300);
    let terminate = Vote::Terminate {
        request: l.request,
        nonce: l.net.request(&l.request).unwrap().nonce,
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
        owner_before + earned - fee_of(earned, FEE_BPS) - meta.fee
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
    );
    let failure = l.net.chain.fail(&[instruction], &[&stranger]);
    assert!(failure.is(DaggerError::NotOwner));
}

#[test]
fn claim_checks_the_customer_account() {
    let mut l = lease();
    l.net.chain.warp(60);
    let someone = l.net.customer();
    let op = &l.net.operators[1];
    let signer = op.owner.insecure_clone();
    let instruction = ix::claim(
        &op.owner.pubkey(),
        &op.node.pubkey(),
        &l.request,
        &someone.pubkey(),
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
    );
    let signer = op.owner.insecure_clone();
    let failure = net.chain.fail(&[instruction], &[&signer]);
    assert!(failure.is(DaggerError::WrongAccount));
}

#[test]
fn close_lease_pays_accrued_into_the_vault_and_refunds_the_rest() {
    let mut l = lease();
    l.net.chain.warp(900);
    let customer = l.customer.insecure_clone();
    let escrow = pda::escrow(&l.request).0;
    let locked = l.net.chain.lamports(&escrow) + l.net.chain.lamports(&l.request);
    let (customer_before, vault_before, fees_before) = (
        l.net.chain.lamports(&customer.pubkey()),
        l.net.chain.lamports(&l.vault()),
        l.net.fees_collected(),
    );
    let meta = l.net.chain.ok(&[l.close_ix()], &[&customer]);
    let earned = 900 * PRICE;
    let fee = fee_of(earned, FEE_BPS);
    assert_eq!(
        l.net.chain.lamports(&l.vault()),
        vault_before + earned - fee
    );
    assert_eq!(l.net.operator(1).earnings, earned - fee);
    assert_eq!(l.net.fees_collected(), fees_before + fee);
    assert_eq!(
        l.net.chain.lamports(&customer.pubkey()),
        customer_before + locked - earned - meta.fee
    );
    assert!(!l.net.chain.exists(&l.request) && !l.net.chain.exists(&escrow));
    assert_eq!(l.net.operator(1).active_leases, 0);

    // The owner takes its earnings when it likes.
    let owner = l.net.operators[1].owner.insecure_clone();
    let node = l.net.operators[1].node.pubkey();
    let owner_before = l.net.chain.lamports(&owner.pubkey());
    let meta = l
        .net
        .chain
        .ok(&[ix::withdraw_earnings(&owner.pubkey(), &node)], &[&owner]);
    assert_eq!(
        l.net.chain.lamports(&owner.pubkey()),
        owner_before + earned - fee - meta.fee
    );
    assert_eq!(l.net.chain.lamports(&l.vault()), vault_before);
    let failure = l
        .net
        .chain
        .fail(&[ix::withdraw_earnings(&owner.pubkey(), &node)], &[&owner]);
    assert!(failure.is(DaggerError::NothingToWithdraw));
}

/// The operator empties its owner wallet so a small payout to it would
/// fail the rent check and block `close_lease`: payouts go to the stake
/// vault, so the customer leaves anyway.
#[test]
fn an_operator_with_an_empty_wallet_cannot_block_the_customers_exit() {
    let mut l = lease();
    let owner = l.net.operators[1].owner.insecure_clone();
    let everything = l.net.chain.lamports(&owner.pubkey());
    let sink = Keypair::new();
    l.net.chain.ok(
        &[anchor_lang::solana_program::system_instruction::transfer(
            &owner.pubkey(),
            &sink.pubkey(),
            everything - 5_000,
        )],
        &[&owner],
    );
    assert_eq!(l.net.chain.lamports(&owner.pubkey()), 0);
    // One second of a cheap lease: a payout far below rent exemption.
    l.net.chain.warp(1);
    let customer = l.customer.insecure_clone();
    l.net.chain.ok(&[l.close_ix()], &[&customer]);
    assert!(!l.net.chain.exists(&l.request));
}

#[test]
fn close_lease_errors() {
    let mut l = lease();
    let stranger = l.net.customer();
    let op = &l.net.operators[1];
    let instruction = ix::close_lease(&stranger.pubkey(), &l.request, &op.account());
    let failure = l.net.chain.fail(&[instruction], &[&stranger]);
    assert!(failure.is(DaggerError::NotCustomer));

    // Naming another operator than the assigned one is refused.
    let customer = l.customer.insecure_clone();
    let other_operator = &l.net.operators[2];
    let instruction = ix::close_lease(&customer.pubkey(), &l.request, &other_operator.account());
    let failure = l.net.chain.fail(&[instruction], &[&customer]);
    assert!(failure.is(DaggerError::WrongAccount));

    // An open request is cancelled, not closed.
    let open = l.net.create_request(&customer, 2, PRICE, DURATION);
    let op = &l.net.operators[1];
    let instruction = ix::close_lease(&customer.pubkey(), &open, &op.account());
    let failure = l.net.chain.fail(&[instruction], &[&customer]);
    assert!(failure.is(DaggerError::WrongAccount) || failure.is(DaggerError::LeaseNotActive));
}

/// Fees collect in the program's fee vault and only the admin sends them,
/// to the configured treasury; the vault keeps its rent.
#[test]
fn fees_are_withdrawn_by_the_admin_to_the_treasury() {
    let mut l = lease();
    l.net.chain.warp(3_600);
    let signer = l.net.operators[1].owner.insecure_clone();
    l.net.chain.ok(&[l.claim_ix(1)], &[&signer]);
    let fees = l.net.fees_collected();
    assert_eq!(fees, fee_of(3_600 * PRICE, FEE_BPS));
    let admin = l.net.admin.insecure_clone();
    let treasury = l.net.treasury.pubkey();
    let stranger = l.net.customer();
    let failure = l.net.chain.fail(
        &[ix::withdraw_fees(&stranger.pubkey(), &treasury, 0)],
        &[&stranger],
    );
    assert!(failure.is(DaggerError::Unauthorized));
    let failure = l.net.chain.fail(
        &[ix::withdraw_fees(&admin.pubkey(), &stranger.pubkey(), 0)],
        &[&admin],
    );
    assert!(failure.is(DaggerError::WrongTreasury));
    let failure = l.net.chain.fail(
        &[ix::withdraw_fees(&admin.pubkey(), &treasury, fees + 1)],
        &[&admin],
    );
    assert!(failure.is(DaggerError::NothingToWithdraw));
    let before = l.net.chain.lamports(&treasury);
    l.net.chain.ok(
        &[ix::withdraw_fees(&admin.pubkey(), &treasury, 0)],
        &[&admin],
    );
    assert_eq!(l.net.chain.lamports(&treasury), before + fees);
    assert_eq!(l.net.fees_collected(), 0);
    let failure = l.net.chain.fail(
        &[ix::withdraw_fees(&admin.pubkey(), &treasury, 0)],
        &[&admin],
    );
    assert!(failure.is(DaggerError::NothingToWithdraw));
}
