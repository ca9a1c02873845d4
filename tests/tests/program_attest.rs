//! `attest`: stake-weighted votes, strictly-more-than-2/3 quorums applied once.

use dagger_client::{
    errors::{AnchorErrorCode, DaggerError},
    instructions as ix, pda, Attestation, OperatorStatus, RequestStatus, Vote,
};
use dagger_tests::*;
use solana_sdk::signer::Signer;

fn attestation_of(net: &Network, vote: &Vote) -> Option<Attestation> {
    net.chain.account(&pda::attestation(&vote.subject()).0)
}

#[test]
fn provisioning_applies_once_more_than_two_thirds_agree() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 2);
    let first_voter = net.operators[0].node.pubkey();
    let first_voter_before = net.chain.lamports(&first_voter);

    net.vote(0, vote).unwrap();
    net.vote(1, vote).unwrap();
    // 2 of 4 equal stakes: not yet.
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Open);
    let tally = attestation_of(&net, &vote).unwrap();
    assert_eq!(tally.ballots.len(), 2);
    assert_eq!(tally.rent_payer, first_voter);
    let tally_rent = net.chain.lamports(&pda::attestation(&vote.subject()).0);

    net.chain.warp(5);
    net.vote(2, vote).unwrap();
    let record = net.request(&request).unwrap();
    assert_eq!(record.status, RequestStatus::Active);
    assert_eq!(record.assigned_operator, net.operators[2].account());
    assert_eq!(record.endpoint_hash, [9; 32]);
    assert_eq!(record.lease_start, net.chain.now());
    // The tally closed and its rent went back to the first voter (who paid 2 fees).
    assert!(attestation_of(&net, &vote).is_none());
    assert_eq!(
        net.chain.lamports(&first_voter),
        first_voter_before - 5_000 - tally_rent + tally_rent
    );

    // A late vote is refused, and does not resurrect the tally.
    let failure = net.vote(3, vote).unwrap_err().program();
    assert!(failure.is(DaggerError::AlreadyApplied));
    assert!(attestation_of(&net, &vote).is_none());
}

#[test]
fn exactly_two_thirds_is_not_a_quorum() {
    let mut net = Network::with_operators(&[MIN_STAKE; 3]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 0);
    net.vote(0, vote).unwrap();
    net.vote(1, vote).unwrap();
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Open);
    net.vote(2, vote).unwrap();
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Active);
}

#[test]
fn votes_weigh_by_stake() {
    // 4 + 1 + 1: the big operator alone holds exactly 2/3, one more tips it.
    let mut net = Network::with_operators(&[4 * MIN_STAKE, MIN_STAKE, MIN_STAKE]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 1);
    net.vote(0, vote).unwrap();
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Open);
    net.vote(2, vote).unwrap();
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Active);

    // The two small ones alone (1/3) can never decide.
    let request = net.create_request(&customer, 2, 1_000, 3_600);
    let vote = net.provision_vote(&request, 1);
    net.vote(1, vote).unwrap();
    net.vote(2, vote).unwrap();
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Open);
}

#[test]
fn disagreeing_votes_do_not_add_up() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let honest = net.provision_vote(&request, 1);
    let liar = Vote::Provision {
        request,
        nonce: net.request(&request).unwrap().nonce,
        operator: net.operators[3].account(),
        endpoint_hash: [66; 32],
    };
    net.vote(3, liar).unwrap();
    net.vote(0, honest).unwrap();
    net.vote(1, honest).unwrap();
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Open);
    net.vote(2, honest).unwrap();
    let record = net.request(&request).unwrap();
    assert_eq!(record.status, RequestStatus::Active);
    assert_eq!(record.assigned_operator, net.operators[1].account());
    assert_eq!(record.endpoint_hash, [9; 32]);
}

#[test]
fn one_vote_per_operator_per_subject() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 0);
    net.vote(0, vote).unwrap();
    let failure = net.vote(0, vote).unwrap_err().program();
    assert!(failure.is(DaggerError::AlreadyVoted));
    // Not with another outcome either.
    let other = Vote::Provision {
        request,
        nonce: net.request(&request).unwrap().nonce,
        operator: net.operators[1].account(),
        endpoint_hash: [1; 32],
    };
    let failure = net.vote(0, other).unwrap_err().program();
    assert!(failure.is(DaggerError::AlreadyVoted));
}

#[test]
fn votes_must_name_the_current_epoch() {
    let mut net = Network::with_operators(&[MIN_STAKE; 5]);
    // An unstake starts epoch 1.
    let op = &net.operators[4];
    net.chain.ok(
        &[ix::request_unstake(&op.owner.pubkey(), &op.node.pubkey())],
        &[&op.owner],
    );
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 0);
    let epoch = net.config().roster_epoch;
    let failure = net.vote_in_epoch(0, epoch - 1, vote).unwrap_err().program();
    assert!(failure.is(DaggerError::StaleEpoch));
    let failure = net.vote_in_epoch(0, epoch + 1, vote).unwrap_err().program();
    assert!(failure.is(DaggerError::FutureEpoch));
}

/// Stake leaving the active set (here an unstake) starts a new epoch: the
/// ballots cast before no longer count, so a departed voter's stake never
/// helps a quorum.
#[test]
fn stake_leaving_restarts_the_tally() {
    let mut net = Network::with_operators(&[MIN_STAKE; 5]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 0);
    let old_epoch = net.config().roster_epoch;
    net.vote(0, vote).unwrap();
    net.vote(4, vote).unwrap();

    let op = &net.operators[4];
    net.chain.ok(
        &[ix::request_unstake(&op.owner.pubkey(), &op.node.pubkey())],
        &[&op.owner],
    );
    let failure = net.vote_in_epoch(2, old_epoch, vote).unwrap_err().program();
    assert!(failure.is(DaggerError::StaleEpoch));

    net.vote(2, vote).unwrap();
    let tally = attestation_of(&net, &vote).unwrap();
    assert_eq!(tally.roster_epoch, old_epoch + 1);
    assert_eq!(tally.ballots.len(), 1);
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Open);
    // Earlier voters may vote again in the new epoch: 3 of the 4 left.
    net.vote(0, vote).unwrap();
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Open);
    net.vote(1, vote).unwrap();
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Active);
}

#[test]
fn only_active_operators_vote() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let pending = net.register(MIN_STAKE);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 0);
    let failure = net.vote(pending, vote).unwrap_err().program();
    assert!(failure.is(DaggerError::OperatorNotActive));

    // A key that never registered has no operator account at all.
    let stranger = net.chain.funded(solana_sdk::native_token::LAMPORTS_PER_SOL);
    let instruction = ix::attest(
        &stranger.pubkey(),
        &stranger.pubkey(),
        net.config().roster_epoch,
        vote,
    );
    let failure = net.chain.fail(&[instruction], &[&stranger]);
    assert!(failure.is_anchor(AnchorErrorCode::AccountNotInitialized));
}

#[test]
fn provisioning_checks_the_request_and_assignee() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let pending = net.register(MIN_STAKE);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);

    // Assigning to a pending operator is refused.
    let to_pending = net.provision_vote(&request, pending);
    let failure = net.vote(0, to_pending).unwrap_err().program();
    assert!(failure.is(DaggerError::OperatorNotActive));

    // After the deadline no quorum can activate it.
    net.chain.warp(PROVISIONING_TIMEOUT + 1);
    let vote = net.provision_vote(&request, 0);
    let failure = net.vote(0, vote).unwrap_err().program();
    assert!(failure.is(DaggerError::RequestExpired));
}

#[test]
fn the_subject_accounts_must_match_the_vote() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let other = net.create_request(&customer, 2, 1_000, 3_600);
    let vote = net.provision_vote(&request, 0);
    let node = net.operators[0].node.insecure_clone();
    let epoch = net.config().roster_epoch;

    // Index of the `request` account in `attest`'s account list.
    const REQUEST_SLOT: usize = 5;
    let mut swapped = ix::attest(&node.pubkey(), &node.pubkey(), epoch, vote);
    swapped.accounts[REQUEST_SLOT].pubkey = other;
    let failure = net.chain.fail(&[swapped], &[&node]);
    assert!(failure.is(DaggerError::SubjectMismatch));

    let mut missing = ix::attest(&node.pubkey(), &node.pubkey(), epoch, vote);
    missing.accounts[REQUEST_SLOT].pubkey = dagger::ID;
    missing.accounts[REQUEST_SLOT].is_writable = false;
    let failure = net.chain.fail(&[missing], &[&node]);
    assert!(failure.is(DaggerError::MissingSubjectAccount));

    // The assigned operator account passed must be the one voted for.
    let mut wrong_assignee = ix::attest(
        &node.pubkey(),
        &node.pubkey(),
        epoch,
        net.provision_vote(&request, 1),
    );
    const ASSIGNED_SLOT: usize = 7;
    wrong_assignee.accounts[ASSIGNED_SLOT].pubkey = net.operators[2].account();
    let failure = net.chain.fail(&[wrong_assignee], &[&node]);
    assert!(failure.is(DaggerError::AssignedOperatorMismatch));
}

#[test]
fn the_rent_payer_must_be_the_first_voter() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 0);
    net.vote(0, vote).unwrap();
    let node = net.operators[1].node.insecure_clone();
    let instruction = ix::attest(
        &node.pubkey(),
        &node.pubkey(),
        net.config().roster_epoch,
        vote,
    );
    let failure = net.chain.fail(&[instruction], &[&node]);
    assert!(failure.is(DaggerError::WrongAccount));
}

#[test]
fn a_quorum_admits_a_pending_operator() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let newcomer = net.register(MIN_STAKE);
    let vote = Vote::Admit {
        operator: net.operators[newcomer].account(),
        nonce: net.operator(newcomer).nonce,
        decision: [3; 32],
    };
    let epoch = net.config().roster_epoch;
    for index in 0..3 {
        net.vote(index, vote).unwrap();
    }
    assert_eq!(net.operator(newcomer).status, OperatorStatus::Active);
    let config = net.config();
    assert_eq!(config.total_active_stake, 5 * MIN_STAKE);
    assert_eq!(config.active_operators, 5);
    // Stake joining does not start a new epoch (open tallies stay valid).
    assert_eq!(config.roster_epoch, epoch);
    let again = net.vote(3, vote).unwrap_err().program();
    assert!(again.is(DaggerError::AlreadyApplied));
}

#[test]
fn admission_needs_bootstrap_and_enough_stake() {
    // Before bootstrap only the admin admits.
    let mut net = Network::initialized();
    let a = net.register(MIN_STAKE);
    let node_a = net.operators[a].node.pubkey();
    let admin = &net.admin;
    net.chain
        .ok(&[ix::bootstrap_admit(&admin.pubkey(), &node_a)], &[admin]);
    let b = net.register(MIN_STAKE);
    let vote = Vote::Admit {
        operator: net.operators[b].account(),
        nonce: net.operator(b).nonce,
        decision: [0; 32],
    };
    let failure = net.vote(a, vote).unwrap_err().program();
    assert!(failure.is(DaggerError::NotBootstrapped));

    let admin = &net.admin;
    net.chain
        .ok(&[ix::finish_bootstrap(&admin.pubkey())], &[admin]);
    net.chain.ok(
        &[ix::update_config(
            &admin.pubkey(),
            dagger_client::UpdateConfigArgs {
                min_operator_stake: Some(2 * MIN_STAKE),
                ..Default::default()
            },
        )],
        &[admin],
    );
    let failure = net.vote(a, vote).unwrap_err().program();
    assert!(failure.is(DaggerError::InsufficientStake));
}

#[test]
fn a_quorum_removes_an_operator_even_with_its_own_vote() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let target = net.operators[3].account();
    let vote = Vote::Remove {
        operator: target,
        nonce: net.operator(3).nonce,
        decision: [4; 32],
    };
    let epoch = net.config().roster_epoch;
    let vault = pda::stake_vault(&target).0;
    let vault_before = net.chain.lamports(&vault);
    let fees_before = net.fees_collected();
    // The removed operator votes on itself (its own account is the subject).
    net.vote(3, vote).unwrap();
    net.vote(0, vote).unwrap();
    assert_eq!(net.operator(3).status, OperatorStatus::Active);
    net.vote(1, vote).unwrap();
    let removed = net.operator(3);
    assert_eq!(removed.status, OperatorStatus::Unbonding);
    assert_eq!(removed.removals, 1);
    // Removal costs the configured share of the stake, to the fee vault.
    let slash = MIN_STAKE * REMOVAL_SLASH_BPS as u64 / 10_000;
    assert_eq!(removed.slashed, slash);
    assert_eq!(removed.stake, MIN_STAKE - slash);
    assert_eq!(net.chain.lamports(&vault), vault_before - slash);
    assert_eq!(net.fees_collected(), fees_before + slash);
    assert_eq!(removed.withdrawable_at, net.chain.now() + UNBONDING_PERIOD);
    let config = net.config();
    assert_eq!(config.total_active_stake, 3 * MIN_STAKE);
    assert_eq!(config.active_operators, 3);
    assert_eq!(config.roster_epoch, epoch + 1);
    // A removed operator no longer votes.
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 10, 10);
    let failure = net
        .vote(3, net.provision_vote(&request, 0))
        .unwrap_err()
        .program();
    assert!(failure.is(DaggerError::OperatorNotActive));
}

#[test]
fn a_quorum_terminates_a_failed_lease() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let terminate = Vote::Terminate {
        request,
        nonce: net.request(&request).unwrap().nonce,
        decision: [5; 32],
    };
    let failure = net.vote(0, terminate).unwrap_err().program();
    assert!(failure.is(DaggerError::LeaseNotActive));

    net.provision(&request, 0);
    net.chain.warp(120);
    for index in 0..3 {
        net.vote(index, terminate).unwrap();
    }
    let record = net.request(&request).unwrap();
    assert_eq!(record.status, RequestStatus::Terminated);
    assert_eq!(record.ended_at, net.chain.now());
    // Accrual stopped at termination.
    assert_eq!(record.accrued(net.chain.now() + 10_000), 120 * 1_000);
    let failure = net.vote(3, terminate).unwrap_err().program();
    assert!(failure.is(DaggerError::AlreadyApplied));
}

#[test]
fn a_finished_lease_cannot_be_terminated() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 100);
    net.provision(&request, 0);
    net.chain.warp(100);
    let failure = net
        .vote(
            0,
            Vote::Terminate {
                request,
                nonce: net.request(&request).unwrap().nonce,
                decision: [0; 32],
            },
        )
        .unwrap_err()
        .program();
    assert!(failure.is(DaggerError::LeaseEnded));
}
