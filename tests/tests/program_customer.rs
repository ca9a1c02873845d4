//! Customer instructions: create_request, top_up, cancel_request, reclaim_expired.

use dagger_client::{
    errors::{AnchorErrorCode, DaggerError},
    instructions as ix, pda, Escrow, RequestStatus, VmSpec,
};
use dagger_tests::*;
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signer::Signer};

const ESCROW_SPACE: usize = 8 + 33;

#[test]
fn create_request_pays_price_times_duration_into_escrow() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let before = net.chain.lamports(&customer.pubkey());
    let meta = net.chain.ok(
        &[ix::create_request(
            &customer.pubkey(),
            42,
            spec(),
            1_500,
            3_600,
        )],
        &[&customer],
    );
    let (request, bump) = pda::request(&customer.pubkey(), 42);
    let (escrow, escrow_bump) = pda::escrow(&request);
    let deposit = 1_500 * 3_600;
    let escrow_rent = net.chain.rent(ESCROW_SPACE);
    let request_rent = net.chain.raw_account(&request).unwrap().lamports;
    assert_eq!(net.chain.lamports(&escrow), deposit + escrow_rent);
    assert_eq!(
        before - net.chain.lamports(&customer.pubkey()),
        deposit + escrow_rent + request_rent + meta.fee
    );
    let record = net.request(&request).unwrap();
    assert_eq!(record.customer, customer.pubkey());
    assert_eq!(record.request_id, 42);
    assert_eq!(record.deposit, deposit);
    assert_eq!(record.status, RequestStatus::Open);
    assert_eq!(record.deadline, net.chain.now() + PROVISIONING_TIMEOUT);
    assert_eq!((record.bump, record.escrow_bump), (bump, escrow_bump));
    let escrow_record: Escrow = net.chain.account(&escrow).unwrap();
    assert_eq!(escrow_record.request, request);
}

#[test]
fn create_request_rejects_bad_input() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let c = customer.pubkey();
    let cases = [
        (
            ix::create_request(&c, 1, spec(), 0, 10),
            DaggerError::ZeroPrice,
        ),
        (
            ix::create_request(&c, 1, spec(), 10, 0),
            DaggerError::ZeroDuration,
        ),
        (
            ix::create_request(&c, 1, spec(), u64::MAX, 2),
            DaggerError::Overflow,
        ),
        (
            ix::create_request(&c, 1, VmSpec { vcpus: 0, ..spec() }, 10, 10),
            DaggerError::InvalidSpec,
        ),
        (
            ix::create_request(
                &c,
                1,
                VmSpec {
                    image_id: [0; 32],
                    ..spec()
                },
                10,
                10,
            ),
            DaggerError::InvalidSpec,
        ),
        (
            // No way in for the customer: refused.
            ix::create_request(
                &c,
                1,
                VmSpec {
                    ssh_key: [0; 32],
                    ..spec()
                },
                10,
                10,
            ),
            DaggerError::InvalidSpec,
        ),
    ];
    for (instruction, expected) in cases {
        let failure = net.chain.fail(&[instruction], &[&customer]);
        assert!(failure.is(expected), "{failure:?}");
    }
    assert!(!net.chain.exists(&pda::request(&c, 1).0));
}

#[test]
fn create_request_without_funds_fails_and_loses_nothing() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.chain.funded(LAMPORTS_PER_SOL);
    let before = net.chain.lamports(&customer.pubkey());
    let result = net.chain.send(
        &[ix::create_request(
            &customer.pubkey(),
            1,
            spec(),
            LAMPORTS_PER_SOL,
            10,
        )],
        &[&customer],
    );
    assert!(result.is_err());
    assert!(!net.chain.exists(&pda::request(&customer.pubkey(), 1).0));
    assert!(before - net.chain.lamports(&customer.pubkey()) <= 10_000);
}

#[test]
fn create_request_needs_a_bootstrapped_network() {
    let mut net = Network::initialized();
    let customer = net.customer();
    let failure = net.chain.fail(
        &[ix::create_request(&customer.pubkey(), 1, spec(), 10, 10)],
        &[&customer],
    );
    assert!(failure.is(DaggerError::NotBootstrapped));
}

#[test]
fn request_ids_are_unique_per_customer() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    net.create_request(&customer, 5, 10, 10);
    let again = net.chain.fail(
        &[ix::create_request(&customer.pubkey(), 5, spec(), 10, 10)],
        &[&customer],
    );
    // A clear error, not the System Program's opaque one.
    assert!(again.is(DaggerError::RequestIdInUse), "{again:?}");
    // Another customer may use the same id.
    let other = net.customer();
    net.create_request(&other, 5, 10, 10);
}

/// Anyone can send lamports to a customer's next request address; that must
/// not stop the customer from creating the request (the extra lamports end
/// up with the customer when the request closes).
#[test]
fn a_prefunded_request_address_does_not_block_creation() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let griefer = net.customer();
    let request = dagger_client::pda::request(&customer.pubkey(), 9).0;
    let escrow = dagger_client::pda::escrow(&request).0;
    for target in [request, escrow] {
        net.chain.ok(
            &[anchor_lang::solana_program::system_instruction::transfer(
                &griefer.pubkey(),
                &target,
                1_000_000,
            )],
            &[&griefer],
        );
    }
    net.create_request(&customer, 9, 10, 10);
    let record = net.request(&request).unwrap();
    assert_eq!(record.deposit, 100);
    let before = net.chain.lamports(&customer.pubkey());
    let total = net.chain.lamports(&request) + net.chain.lamports(&escrow);
    let meta = net.chain.ok(
        &[ix::cancel_request(&customer.pubkey(), &request)],
        &[&customer],
    );
    assert_eq!(
        net.chain.lamports(&customer.pubkey()),
        before + total - meta.fee
    );
}

#[test]
fn top_up_extends_open_and_running_requests() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 100, 1_000);
    let escrow = pda::escrow(&request).0;
    let escrow_before = net.chain.lamports(&escrow);
    net.chain.ok(
        &[ix::top_up(&customer.pubkey(), &request, 500)],
        &[&customer],
    );
    let record = net.request(&request).unwrap();
    assert_eq!(record.duration, 1_500);
    assert_eq!(record.deposit, 150_000);
    assert_eq!(net.chain.lamports(&escrow), escrow_before + 50_000);

    net.provision(&request, 0);
    net.chain.warp(1_000);
    net.chain.ok(
        &[ix::top_up(&customer.pubkey(), &request, 100)],
        &[&customer],
    );
    assert_eq!(net.request(&request).unwrap().duration, 1_600);

    // Once the paid time is used up the lease is over and cannot be extended.
    net.chain.warp(600);
    let failure = net.chain.fail(
        &[ix::top_up(&customer.pubkey(), &request, 100)],
        &[&customer],
    );
    assert!(failure.is(DaggerError::LeaseEnded));
}

#[test]
fn top_up_errors() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 100, 1_000);
    let failure = net
        .chain
        .fail(&[ix::top_up(&customer.pubkey(), &request, 0)], &[&customer]);
    assert!(failure.is(DaggerError::ZeroDuration));
    let failure = net.chain.fail(
        &[ix::top_up(&customer.pubkey(), &request, u64::MAX)],
        &[&customer],
    );
    assert!(failure.is(DaggerError::Overflow));
    let stranger = net.customer();
    let failure = net.chain.fail(
        &[ix::top_up(&stranger.pubkey(), &request, 10)],
        &[&stranger],
    );
    assert!(failure.is(DaggerError::NotCustomer));
}

#[test]
fn cancel_refunds_everything_while_open() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let before = net.chain.lamports(&customer.pubkey());
    let create_fee = 5_000;
    let request = net.create_request(&customer, 1, 1_000, 10_000);
    let meta = net.chain.ok(
        &[ix::cancel_request(&customer.pubkey(), &request)],
        &[&customer],
    );
    // Deposit and both accounts' rent come back; only the two fees are gone.
    assert_eq!(
        net.chain.lamports(&customer.pubkey()),
        before - create_fee - meta.fee
    );
    assert!(!net.chain.exists(&request));
    assert!(!net.chain.exists(&pda::escrow(&request).0));
}

#[test]
fn cancel_errors() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 10_000);
    let stranger = net.customer();
    let failure = net.chain.fail(
        &[ix::cancel_request(&stranger.pubkey(), &request)],
        &[&stranger],
    );
    assert!(failure.is(DaggerError::NotCustomer));
    net.provision(&request, 0);
    let failure = net.chain.fail(
        &[ix::cancel_request(&customer.pubkey(), &request)],
        &[&customer],
    );
    assert!(failure.is(DaggerError::RequestNotOpen));
}

#[test]
fn anyone_reclaims_an_expired_request_for_the_customer() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 10_000);
    let keeper = net.chain.funded(LAMPORTS_PER_SOL);

    net.chain.warp(PROVISIONING_TIMEOUT);
    let failure = net.chain.fail(
        &[ix::reclaim_expired(&request, &customer.pubkey())],
        &[&keeper],
    );
    assert!(failure.is(DaggerError::DeadlineNotReached));

    net.chain.warp(1);
    let wrong_customer = net.customer();
    let failure = net.chain.fail(
        &[ix::reclaim_expired(&request, &wrong_customer.pubkey())],
        &[&keeper],
    );
    assert!(failure.is(DaggerError::WrongAccount));

    let escrow = pda::escrow(&request).0;
    let owed = net.chain.lamports(&escrow) + net.chain.lamports(&request);
    let before = net.chain.lamports(&customer.pubkey());
    net.chain.ok(
        &[ix::reclaim_expired(&request, &customer.pubkey())],
        &[&keeper],
    );
    assert_eq!(net.chain.lamports(&customer.pubkey()), before + owed);
    assert!(!net.chain.exists(&request) && !net.chain.exists(&escrow));

    // A second reclaim finds nothing.
    let failure = net.chain.fail(
        &[ix::reclaim_expired(&request, &customer.pubkey())],
        &[&keeper],
    );
    assert!(failure.is_anchor(AnchorErrorCode::AccountNotInitialized));
}

#[test]
fn reclaim_cannot_take_a_provisioned_lease() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 10_000);
    net.provision(&request, 0);
    net.chain.warp(PROVISIONING_TIMEOUT + 1);
    let keeper = net.chain.funded(LAMPORTS_PER_SOL);
    let failure = net.chain.fail(
        &[ix::reclaim_expired(&request, &customer.pubkey())],
        &[&keeper],
    );
    assert!(failure.is(DaggerError::RequestNotOpen));
}
