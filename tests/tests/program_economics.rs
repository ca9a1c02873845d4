//! The economic attacks on the program, each written as the attacker would:
//! draining voters through orphaned tallies, stalling quorums with
//! stake changes, taking over the roster with stake, reusing ballots across
//! request instances, and leaving accounts (and leases) stranded.

use dagger_client::{
    errors::DaggerError, instructions as ix, pda, Attestation, OperatorStatus, PriceFloor, Subject,
    Vote,
};
use dagger_tests::*;
use solana_pubkey::Pubkey;
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signer::Signer};

fn tally_of(net: &Network, subject: &Subject) -> Option<Attestation> {
    net.chain.account(&pda::attestation(subject).0)
}

/// Anyone closes the tally of `subject`; returns the transaction outcome.
fn close(net: &mut Network, subject: &Subject) -> Result<(), dagger_tests::Failure> {
    let payer = tally_of(net, subject).expect("tally exists").rent_payer;
    let anyone = net.customer();
    net.chain
        .send(&[ix::close_tally(subject, &payer)], &[&anyone])
        .map(|_| ())
}

/// The attack: pay 1 × 1, wait for the first node's vote to open the tally
/// (~0.048 SOL of rent), cancel. Before, the tally and its rent stayed
/// forever. Now anyone closes it and the voter gets its rent back; while
/// the request is pending it cannot be closed.
#[test]
fn a_cancelled_request_leaves_no_tally_and_the_voter_gets_its_rent_back() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1, 1);
    let vote = net.provision_vote(&request, 0);
    let subject = vote.subject();
    let voter = net.operators[0].node.pubkey();
    let before = net.chain.lamports(&voter);
    let meta = net.vote(0, vote).unwrap();
    let tally = pda::attestation(&subject).0;
    let rent = net.chain.lamports(&tally);
    assert_eq!(net.chain.lamports(&voter), before - meta.fee - rent);

    // Still pending: nobody may close it.
    let failure = close(&mut net, &subject).unwrap_err().program();
    assert!(failure.is(DaggerError::TallyStillOpen));
    // The rent goes to the recorded payer only.
    let anyone = net.customer();
    let failure = net
        .chain
        .fail(&[ix::close_tally(&subject, &anyone.pubkey())], &[&anyone]);
    assert!(failure.is(DaggerError::WrongAccount));

    net.chain.ok(
        &[ix::cancel_request(&customer.pubkey(), &request)],
        &[&customer],
    );
    close(&mut net, &subject).unwrap();
    assert!(!net.chain.exists(&tally));
    // The voter paid two fees in all, no rent.
    assert_eq!(net.chain.lamports(&voter), before - meta.fee);
}

/// The same orphaning through every other way a subject settles: an
/// expired request (reclaimed or not), an operator that unstakes during its
/// admission tally, a lease closed during a termination tally, and a tally
/// from an older roster epoch.
#[test]
fn every_settled_subject_frees_its_tally() {
    let mut net = Network::with_operators(&[MIN_STAKE; 5]);
    let customer = net.customer();

    // Expired: closable once the deadline passed, reclaimed or not.
    let expired = net.create_request(&customer, 1, 10, 10);
    let vote = net.provision_vote(&expired, 0);
    net.vote(0, vote).unwrap();
    net.chain.warp(PROVISIONING_TIMEOUT + 1);
    close(&mut net, &vote.subject()).unwrap();

    // An operator unstakes while its admission is being voted.
    let pending = net.register(MIN_STAKE);
    let admit = Vote::Admit {
        operator: net.operators[pending].account(),
        nonce: net.operator(pending).nonce,
        decision: [1; 32],
    };
    net.vote(1, admit).unwrap();
    assert!(close(&mut net, &admit.subject()).is_err());
    let op = &net.operators[pending];
    net.chain.ok(
        &[ix::request_unstake(&op.owner.pubkey(), &op.node.pubkey())],
        &[&op.owner],
    );
    close(&mut net, &admit.subject()).unwrap();

    // A lease closed while its termination is being voted.
    let request = net.create_request(&customer, 2, 10, 1_000);
    net.provision(&request, 2);
    let terminate = Vote::Terminate {
        request,
        nonce: net.request(&request).unwrap().nonce,
        decision: [2; 32],
    };
    net.vote(0, terminate).unwrap();
    assert!(close(&mut net, &terminate.subject()).is_err());
    net.chain.warp(5);
    net.chain.ok(
        &[ix::close_lease(
            &customer.pubkey(),
            &request,
            &net.operators[2].account(),
        )],
        &[&customer],
    );
    close(&mut net, &terminate.subject()).unwrap();

    // A tally whose ballots belong to an older epoch (stake left since).
    let open = net.create_request(&customer, 3, 10, 1_000);
    let vote = net.provision_vote(&open, 0);
    net.vote(0, vote).unwrap();
    assert!(close(&mut net, &vote.subject()).is_err());
    let op = &net.operators[4];
    net.chain.ok(
        &[ix::request_unstake(&op.owner.pubkey(), &op.node.pubkey())],
        &[&op.owner],
    );
    close(&mut net, &vote.subject()).unwrap();
}

/// The attack: an active operator calls `add_stake` with 1 lamport between
/// every vote. Before, every call started a new epoch and wiped the tally,
/// so nothing ever reached a quorum. Now added stake leaves open tallies
/// alone and the quorum forms.
#[test]
fn adding_stake_between_votes_does_not_stall_a_quorum() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 0);
    let epoch = net.config().roster_epoch;
    let griefer = &net.operators[3];
    let (owner, node) = (griefer.owner.insecure_clone(), griefer.node.pubkey());
    for voter in 0..3 {
        net.chain
            .ok(&[ix::add_stake(&owner.pubkey(), &node, 1)], &[&owner]);
        net.chain.warp(1);
        net.vote(voter, vote).unwrap();
    }
    assert_eq!(net.config().roster_epoch, epoch);
    assert_eq!(
        net.request(&request).unwrap().status,
        dagger_client::RequestStatus::Active
    );
}

/// Ballots weigh what the voter held when it voted: stake added afterwards
/// does not raise its ballot (so added stake can only make a quorum harder,
/// never easier, which is why it needs no new epoch), while the total it is
/// measured against grows at once.
#[test]
fn ballots_weigh_what_the_voter_held_when_it_voted() {
    let mut net = Network::with_operators(&[MIN_STAKE; 5]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 0);
    net.vote(0, vote).unwrap();
    let op = &net.operators[0];
    let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
    let add = 2 * LAMPORTS_PER_SOL;
    net.chain
        .ok(&[ix::add_stake(&owner.pubkey(), &node, add)], &[&owner]);
    let tally = tally_of(&net, &vote.subject()).unwrap();
    assert_eq!(tally.ballots[0].stake, MIN_STAKE);
    assert_eq!(net.config().total_active_stake, 5 * MIN_STAKE + add);
    // Recorded 30 of 52 after three ballots (no quorum), 40 after four.
    net.vote(1, vote).unwrap();
    net.vote(2, vote).unwrap();
    assert_eq!(
        net.request(&request).unwrap().status,
        dagger_client::RequestStatus::Open
    );
    net.vote(3, vote).unwrap();
    assert_eq!(
        net.request(&request).unwrap().status,
        dagger_client::RequestStatus::Active
    );
}

/// The attack: one operator adds stake until it alone holds more than 2/3.
/// The cap (30 % by default) stops it far below a third, and admissions are
/// capped the same way.
#[test]
fn no_operator_can_grow_past_the_cap() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let op = &net.operators[0];
    let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
    net.chain.airdrop(&owner.pubkey(), 1_000 * LAMPORTS_PER_SOL);
    // From 25 %: at most s with s / (s + 30) <= 0.3, i.e. s <= 12.857 SOL.
    let failure = net.chain.fail(
        &[ix::add_stake(&owner.pubkey(), &node, 3 * LAMPORTS_PER_SOL)],
        &[&owner],
    );
    assert!(failure.is(DaggerError::StakeCapExceeded));
    let failure = net.chain.fail(
        &[ix::add_stake(
            &owner.pubkey(),
            &node,
            500 * LAMPORTS_PER_SOL,
        )],
        &[&owner],
    );
    assert!(failure.is(DaggerError::StakeCapExceeded));
    net.chain.ok(
        &[ix::add_stake(&owner.pubkey(), &node, 2 * LAMPORTS_PER_SOL)],
        &[&owner],
    );
    let config = net.config();
    let share = net.operator(0).stake as f64 / config.total_active_stake as f64;
    assert!(share <= 0.3, "{share}");

    // A newcomer whose stake would exceed the cap is not admitted: the
    // vote that would apply it is refused.
    let whale = net.register(100 * MIN_STAKE);
    let admit = Vote::Admit {
        operator: net.operators[whale].account(),
        nonce: net.operator(whale).nonce,
        decision: [0; 32],
    };
    net.vote(0, admit).unwrap();
    net.vote(1, admit).unwrap();
    let failure = net.vote(2, admit).unwrap_err().program();
    assert!(failure.is(DaggerError::StakeCapExceeded));
    assert_eq!(net.operator(whale).status, OperatorStatus::Pending);
}

/// The attack: cancel a request that has ballots and create it again with
/// the same id, in one transaction, so the old ballots count for the new
/// request. Tallies are bound to the request instance: the new one starts
/// from nothing, and a vote naming the old instance is refused.
#[test]
fn ballots_never_count_for_a_recreated_request() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 7, 1_000, 3_600);
    let old_vote = net.provision_vote(&request, 0);
    // One ballot (a quarter of the stake: cancelling is still allowed).
    net.vote(0, old_vote).unwrap();
    net.chain.ok(
        &[
            ix::cancel_request(&customer.pubkey(), &request),
            ix::create_request(&customer.pubkey(), 7, spec(), 1_000, 3_600),
        ],
        &[&customer],
    );
    let new_vote = net.provision_vote(&request, 0);
    assert_ne!(old_vote.nonce(), new_vote.nonce());
    // Two more votes on the old instance would have been a quorum.
    let failure = net.vote(2, old_vote).unwrap_err().program();
    assert!(failure.is(DaggerError::SubjectMismatch));
    net.vote(2, new_vote).unwrap();
    assert_eq!(
        net.request(&request).unwrap().status,
        dagger_client::RequestStatus::Open
    );
    assert_eq!(
        tally_of(&net, &new_vote.subject()).unwrap().ballots.len(),
        1
    );
    // The old tally is orphaned: anyone frees it.
    close(&mut net, &old_vote.subject()).unwrap();
    net.vote(0, new_vote).unwrap();
    net.vote(1, new_vote).unwrap();
    assert_eq!(
        net.request(&request).unwrap().status,
        dagger_client::RequestStatus::Active
    );
}

/// An operator cannot pull its stake vault (where lease payouts go) out
/// from under a running lease; once everything is settled it withdraws,
/// closes its account (rent back); its node key stays retired.
#[test]
fn operators_close_their_accounts_once_nothing_is_owed() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 10, 100_000);
    net.provision(&request, 1);
    let op = &net.operators[1];
    let (owner, node) = (op.owner.insecure_clone(), op.node.insecure_clone());
    net.chain.ok(
        &[ix::request_unstake(&owner.pubkey(), &node.pubkey())],
        &[&owner],
    );
    net.chain.warp(UNBONDING_PERIOD);
    let failure = net.chain.fail(
        &[ix::close_operator(&owner.pubkey(), &node.pubkey())],
        &[&owner],
    );
    assert!(failure.is(DaggerError::OperatorNotExited));
    let failure = net.chain.fail(
        &[ix::withdraw_stake(&owner.pubkey(), &node.pubkey())],
        &[&owner],
    );
    assert!(failure.is(DaggerError::LeasesOutstanding));
    // The customer leaves; the operator's share lands in its vault.
    net.chain.ok(
        &[ix::close_lease(
            &customer.pubkey(),
            &request,
            &net.operators[1].account(),
        )],
        &[&customer],
    );
    let earnings = net.operator(1).earnings;
    assert!(earnings > 0);
    let stranger = net.customer();
    let failure = net.chain.fail(
        &[ix::close_operator(&stranger.pubkey(), &node.pubkey())],
        &[&stranger],
    );
    assert!(failure.is(DaggerError::NotOwner));
    let vault = pda::stake_vault(&net.operators[1].account()).0;
    let account = net.operators[1].account();
    let (vault_balance, account_rent) = (net.chain.lamports(&vault), net.chain.lamports(&account));
    let before = net.chain.lamports(&owner.pubkey());
    let m1 = net.chain.ok(
        &[ix::withdraw_stake(&owner.pubkey(), &node.pubkey())],
        &[&owner],
    );
    let m2 = net.chain.ok(
        &[ix::close_operator(&owner.pubkey(), &node.pubkey())],
        &[&owner],
    );
    assert_eq!(
        net.chain.lamports(&owner.pubkey()),
        before + vault_balance + account_rent - m1.fee - m2.fee
    );
    assert!(!net.chain.exists(&account));
    // The node key stays retired: evidence it signed can never meet a
    // second registration.
    let failure = net.chain.fail(
        &[ix::register_operator(
            &owner.pubkey(),
            &node.pubkey(),
            "a:1".into(),
            capacity(),
            MIN_STAKE,
            PriceFloor::default(),
        )],
        &[&owner, &node],
    );
    assert!(failure.is(DaggerError::NodeKeyRetired), "{failure:?}");
    let _ = Pubkey::default();
}

/// The price floor is on-chain, set at registration and by update, and a
/// request meets it only when its price covers every unit it asks for.
#[test]
fn operators_publish_a_price_floor() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let op = &net.operators[0];
    let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
    let floor = PriceFloor {
        per_vcpu: 10,
        per_memory_gib: 3,
        per_disk_gib: 1,
    };
    net.chain.ok(
        &[ix::update_operator(
            &owner.pubkey(),
            &node,
            dagger_client::UpdateOperatorArgs {
                price_floor: Some(floor),
                ..Default::default()
            },
        )],
        &[&owner],
    );
    let record = net.operator(0);
    assert_eq!(record.price_floor, floor);
    // 2 vCPU, 4096 MiB, 40 GiB: 20 + 12 + 40 = 72 lamports per second.
    assert_eq!(floor.min_price(&spec()), 72);
    assert!(floor.accepts(&spec(), 72));
    assert!(!floor.accepts(&spec(), 71));
    // A started GiB counts whole.
    let odd = dagger_client::VmSpec {
        memory_mib: 1025,
        ..spec()
    };
    assert_eq!(floor.min_price(&odd), 20 + 6 + 40);
}
