//! The launch and the addresses the program creates, attacked by insiders
//! and strangers: no member admitted during the bootstrap can brick it, and
//! no address anyone can predict can be blocked by sending it lamports.

use dagger_client::{
    errors::DaggerError, instructions as ix, pda, InitializeArgs, PriceFloor, Request,
    RequestStatus, Vote,
};
use dagger_tests::*;
use proptest::prelude::*;
use solana_sdk::{
    native_token::LAMPORTS_PER_SOL, pubkey::Pubkey, signature::Keypair, signer::Signer,
};

/// Every vote kind one hostile member (or a coalition of admitted members)
/// could cast about the admitted roster during the bootstrap.
fn hostile_votes(net: &Network, admitted: &[usize]) -> Vec<Vote> {
    let mut votes = Vec::new();
    for &target in admitted {
        let account = net.operators[target].account();
        let nonce = net.operator(target).nonce;
        votes.push(Vote::Remove {
            operator: account,
            nonce,
            decision: [1; 32],
        });
    }
    for (target, keys) in net.operators.iter().enumerate() {
        if !admitted.contains(&target) {
            votes.push(Vote::Admit {
                operator: keys.account(),
                nonce: net.operator(target).nonce,
                decision: [2; 32],
            });
        }
    }
    votes
}

/// Drives a bootstrap of `stakes` in the admission `order`; after each
/// admission every admitted member tries every vote it could cast. None may
/// count, and the bootstrap must finish with exactly the admitted roster.
fn bootstrap_with_hostile_members(stakes: &[u64], order: &[usize]) {
    let mut net = Network::initialized();
    for &stake in stakes {
        net.register(stake);
    }
    let admin = net.admin.insecure_clone();
    let mut admitted = Vec::new();
    for &next in order {
        let node = net.operators[next].node.pubkey();
        net.chain
            .ok(&[ix::bootstrap_admit(&admin.pubkey(), &node)], &[&admin]);
        admitted.push(next);
        for vote in hostile_votes(&net, &admitted) {
            for &voter in &admitted {
                let failure = net
                    .vote(voter, vote)
                    .expect_err("a vote counted during the bootstrap")
                    .program();
                assert!(
                    failure.is(DaggerError::NotBootstrapped),
                    "{vote:?} by {voter}: {failure:?}"
                );
            }
        }
        for &member in &admitted {
            assert!(net.operator(member).is_active());
        }
    }
    net.chain
        .ok(&[ix::finish_bootstrap(&admin.pubkey())], &[&admin]);
    let config = net.config();
    assert!(config.bootstrapped);
    assert_eq!(config.active_operators as usize, order.len());
    assert_eq!(
        config.total_active_stake,
        order.iter().map(|&i| stakes[i]).sum::<u64>()
    );
}

/// The attack as reported: the first genesis member, alone in the roster,
/// votes its own removal. Its ballot is 100 % of the stake.
#[test]
fn the_first_genesis_member_cannot_remove_itself_and_brick_the_launch() {
    let mut net = Network::initialized();
    let first = net.register(MIN_STAKE);
    let second = net.register(MIN_STAKE);
    let admin = net.admin.insecure_clone();
    let node = net.operators[first].node.pubkey();
    net.chain
        .ok(&[ix::bootstrap_admit(&admin.pubkey(), &node)], &[&admin]);
    let vote = Vote::Remove {
        operator: net.operators[first].account(),
        nonce: net.operator(first).nonce,
        decision: [0; 32],
    };
    let failure = net
        .vote(first, vote)
        .expect_err("a lone bootstrap ballot")
        .program();
    assert!(failure.is(DaggerError::NotBootstrapped), "{failure:?}");
    assert!(net.operator(first).is_active());
    let node = net.operators[second].node.pubkey();
    net.chain
        .ok(&[ix::bootstrap_admit(&admin.pubkey(), &node)], &[&admin]);
    net.chain
        .ok(&[ix::finish_bootstrap(&admin.pubkey())], &[&admin]);
    assert_eq!(net.config().active_operators, 2);
}

#[test]
fn every_admission_order_of_four_survives_hostile_members() {
    let stakes = [MIN_STAKE, 2 * MIN_STAKE, 3 * MIN_STAKE, MIN_STAKE];
    let mut order: Vec<usize> = (0..stakes.len()).collect();
    // Heap's algorithm: all 24 orders.
    fn permute(k: usize, order: &mut Vec<usize>, stakes: &[u64]) {
        if k == 1 {
            bootstrap_with_hostile_members(stakes, order);
            return;
        }
        for i in 0..k {
            permute(k - 1, order, stakes);
            let j = if k.is_multiple_of(2) { i } else { 0 };
            order.swap(j, k - 1);
        }
    }
    let n = order.len();
    permute(n, &mut order, &stakes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// Random roster sizes, stakes and orders, with some registered
    /// operators never admitted.
    #[test]
    fn random_bootstraps_survive_hostile_members(
        stakes in prop::collection::vec(1u64..5, 1..6),
        seed in any::<u64>(),
    ) {
        let stakes: Vec<u64> = stakes.into_iter().map(|s| s * MIN_STAKE).collect();
        let mut order: Vec<usize> = (0..stakes.len()).collect();
        let mut state = seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let admitted = 1 + (seed as usize % stakes.len());
        bootstrap_with_hostile_members(&stakes, &order[..admitted]);
    }
}

/// Sends the rent of an empty account (and more) to `address`.
fn prefund(net: &mut Network, address: &Pubkey) {
    let griefer = net.chain.funded(LAMPORTS_PER_SOL);
    for amount in [890_880, 1] {
        net.chain.ok(
            &[anchor_lang::solana_program::system_instruction::transfer(
                &griefer.pubkey(),
                address,
                amount,
            )],
            &[&griefer],
        );
    }
}

#[test]
fn a_prefunded_config_or_fee_vault_does_not_block_initialize() {
    for targets in [
        vec![pda::config().0],
        vec![pda::fee_vault().0],
        vec![pda::config().0, pda::fee_vault().0],
    ] {
        let mut chain = TestChain::new();
        let admin = chain.funded(100 * LAMPORTS_PER_SOL);
        let treasury = chain.funded(LAMPORTS_PER_SOL);
        let mut net = Network {
            chain,
            admin,
            treasury,
            operators: Vec::new(),
        };
        for target in &targets {
            prefund(&mut net, target);
        }
        let admin = net.admin.insecure_clone();
        net.chain.ok(
            &[ix::initialize(
                &admin.pubkey(),
                None,
                initialize_args(net.treasury.pubkey()),
            )],
            &[&admin],
        );
        assert_eq!(net.config().admin, admin.pubkey());
        // The pre-funded lamports are not fees: only what lies above the
        // vault's rent is (and the griefer's gift is that).
        let a = net.register(MIN_STAKE);
        let node = net.operators[a].node.pubkey();
        net.chain
            .ok(&[ix::bootstrap_admit(&admin.pubkey(), &node)], &[&admin]);
        net.chain
            .ok(&[ix::finish_bootstrap(&admin.pubkey())], &[&admin]);
        // A second initialize is still refused.
        let failure = net.chain.fail(
            &[ix::initialize(
                &admin.pubkey(),
                None,
                initialize_args(net.treasury.pubkey()),
            )],
            &[&admin],
        );
        assert!(failure.is(DaggerError::AlreadyInitialized), "{failure:?}");
    }
}

#[test]
fn a_prefunded_operator_stake_vault_or_key_record_does_not_block_registration() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    for target in 0..3 {
        let owner = net.chain.funded(MIN_STAKE + 10 * LAMPORTS_PER_SOL);
        let node = Keypair::new();
        let operator = pda::operator(&node.pubkey()).0;
        let vault = pda::stake_vault(&operator).0;
        let record = pda::node_key_record(&node.pubkey()).0;
        prefund(&mut net, [&operator, &vault, &record][target]);
        let gift = net.chain.lamports(&vault);
        net.chain.ok(
            &[ix::register_operator(
                &owner.pubkey(),
                &node.pubkey(),
                "127.0.0.1:9999".into(),
                capacity(),
                MIN_STAKE,
                PriceFloor::default(),
            )],
            &[&owner, &node],
        );
        let record: dagger_client::Operator = net.chain.account(&operator).unwrap();
        assert_eq!(record.stake, MIN_STAKE);
        assert_eq!(record.node_key, node.pubkey());
        // The stake counted is what the owner staked: a gift to the vault
        // is not stake (it stays with the vault until it closes).
        assert!(net.chain.lamports(&vault) >= MIN_STAKE + gift);
        // Registering the same key again is still refused.
        let failure = net.chain.fail(
            &[ix::register_operator(
                &owner.pubkey(),
                &node.pubkey(),
                "127.0.0.1:9999".into(),
                capacity(),
                MIN_STAKE,
                PriceFloor::default(),
            )],
            &[&owner, &node],
        );
        assert!(failure.is(DaggerError::NodeKeyInUse), "{failure:?}");
    }
}

/// Every tally address is predictable from public data (the subject and its
/// nonce); pre-funding one must not stop the quorum from deciding.
#[test]
fn prefunded_tallies_do_not_block_any_vote_kind() {
    let mut net = Network::with_operators(&[MIN_STAKE, MIN_STAKE, MIN_STAKE, MIN_STAKE]);
    let customer = net.customer();

    // Provisioning.
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let vote = net.provision_vote(&request, 0);
    prefund(&mut net, &pda::attestation(&vote.subject()).0);
    net.provision(&request, 0);
    let record: Request = net.request(&request).unwrap();
    assert_eq!(record.status, RequestStatus::Active);

    // Termination.
    let vote = Vote::Terminate {
        request,
        nonce: record.nonce,
        decision: [3; 32],
    };
    prefund(&mut net, &pda::attestation(&vote.subject()).0);
    for voter in 0..3 {
        net.vote(voter, vote).unwrap();
    }
    assert_eq!(
        net.request(&request).unwrap().status,
        RequestStatus::Terminated
    );

    // Admission.
    let newcomer = net.register(MIN_STAKE);
    let vote = Vote::Admit {
        operator: net.operators[newcomer].account(),
        nonce: net.operator(newcomer).nonce,
        decision: [4; 32],
    };
    prefund(&mut net, &pda::attestation(&vote.subject()).0);
    for voter in 0..3 {
        net.vote(voter, vote).unwrap();
    }
    assert!(net.operator(newcomer).is_active());

    // Removal: an operator cannot make itself unremovable.
    let vote = Vote::Remove {
        operator: net.operators[3].account(),
        nonce: net.operator(3).nonce,
        decision: [5; 32],
    };
    prefund(&mut net, &pda::attestation(&vote.subject()).0);
    for voter in 0..4 {
        if net.operator(3).is_active() {
            net.vote(voter, vote).unwrap();
        }
    }
    assert!(!net.operator(3).is_active());
}

/// Walking away free: once more than a third of the stake voted to
/// provision (an honest operator is booting the VM), the request cannot be
/// cancelled; the deadline still returns everything if no lease starts.
#[test]
fn a_request_cannot_be_cancelled_once_provisioning_has_started() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    // One vote of four equal stakes (a lone, possibly byzantine voter)
    // does not lock the customer in.
    let early = net.create_request(&customer, 1, 100, 1_000);
    let vote = net.provision_vote(&early, 0);
    net.vote(0, vote).unwrap();
    net.chain.ok(
        &[ix::cancel_request(&customer.pubkey(), &early)],
        &[&customer],
    );
    // Two of four: provisioning is under way.
    let late = net.create_request(&customer, 2, 100, 1_000);
    let vote = net.provision_vote(&late, 0);
    for voter in 0..2 {
        net.vote(voter, vote).unwrap();
    }
    let failure = net.chain.fail(
        &[ix::cancel_request(&customer.pubkey(), &late)],
        &[&customer],
    );
    assert!(failure.is(DaggerError::ProvisioningStarted), "{failure:?}");
    assert_eq!(net.request(&late).unwrap().status, RequestStatus::Open);
    // The network never finishes: after the deadline the customer gets
    // every lamport back.
    net.chain.warp(PROVISIONING_TIMEOUT + 1);
    let before = net.chain.lamports(&customer.pubkey());
    let deposit = net.request(&late).unwrap().deposit;
    net.chain.ok(
        &[ix::reclaim_expired(&late, &customer.pubkey())],
        &[&customer],
    );
    assert!(net.chain.lamports(&customer.pubkey()) > before + deposit - 10_000);
}

/// A lease closed in its first second still pays the operator for booting
/// it: `MIN_BILLED_SECONDS`, never more than was paid for.
#[test]
fn a_lease_closed_at_once_bills_the_minimum_period() {
    let min = dagger_client::constants::MIN_BILLED_SECONDS as u64;
    for (price, duration) in [(1_000u64, 3_600u64), (1_000, 5)] {
        let mut net = Network::with_operators(&[MIN_STAKE; 4]);
        let customer = net.customer();
        let request = net.create_request(&customer, 1, price, duration);
        net.provision(&request, 2);
        let vault = pda::stake_vault(&net.operators[2].account()).0;
        let (vault_before, fees_before) = (net.chain.lamports(&vault), net.fees_collected());
        net.chain.ok(
            &[ix::close_lease(
                &customer.pubkey(),
                &request,
                &net.operators[2].account(),
            )],
            &[&customer],
        );
        let released =
            net.chain.lamports(&vault) - vault_before + net.fees_collected() - fees_before;
        assert_eq!(released, price * min.min(duration));
    }
}

/// A quorum cannot assign a lease against the assignee's offer: below its
/// price floor, or in another region.
#[test]
fn provisioning_votes_respect_the_assignees_offer() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    // Operator 1 asks 100 lamports per vCPU-second; the request pays 10.
    net.update_operator(
        1,
        dagger_client::UpdateOperatorArgs {
            price_floor: Some(PriceFloor {
                per_vcpu: 100,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    // Operator 2 serves region 9 only.
    net.update_operator(
        2,
        dagger_client::UpdateOperatorArgs {
            capacity: Some(dagger_client::Capacity {
                region: 9,
                ..capacity()
            }),
            ..Default::default()
        },
    );
    let request = net.create_request(&customer, 1, 10, 1_000);
    for (assignee, error) in [
        (1, DaggerError::BelowPriceFloor),
        (2, DaggerError::WrongRegion),
    ] {
        let vote = net.provision_vote(&request, assignee);
        for voter in 0..4 {
            let failure = net.vote(voter, vote).unwrap_err().program();
            assert!(failure.is(error), "{failure:?}");
        }
    }
    // Operator 3 takes it.
    net.provision(&request, 3);
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Active);
}

fn bounded_args(treasury: Pubkey, unbonding_period: i64, slash_bps: u16) -> InitializeArgs {
    InitializeArgs {
        unbonding_period,
        equivocation_slash_bps: slash_bps,
        ..initialize_args(treasury)
    }
}

/// The deterrent cannot be switched off: no zero equivocation slash, and
/// no unbonding period shorter than evidence needs to land — except on a
/// local cluster (this runtime loads the program as a builtin), whose
/// floor is a few seconds; the public floor is checked in the program's
/// unit tests, where the deployment kind can be chosen.
#[test]
fn the_slash_and_the_unbonding_period_have_floors() {
    let mut chain = TestChain::new();
    let admin = chain.funded(100 * LAMPORTS_PER_SOL);
    let treasury = chain.funded(LAMPORTS_PER_SOL).pubkey();
    let local_min = dagger_client::constants::LOCAL_MIN_UNBONDING_PERIOD;
    for (unbonding, slash) in [
        (local_min - 1, EQUIVOCATION_SLASH_BPS),
        (UNBONDING_PERIOD, 0),
    ] {
        let failure = chain.fail(
            &[ix::initialize(
                &admin.pubkey(),
                None,
                bounded_args(treasury, unbonding, slash),
            )],
            &[&admin],
        );
        assert!(failure.is(DaggerError::ValueOutOfBounds), "{failure:?}");
    }
    chain.ok(
        &[ix::initialize(
            &admin.pubkey(),
            None,
            bounded_args(treasury, local_min, EQUIVOCATION_SLASH_BPS),
        )],
        &[&admin],
    );
    let config: dagger_client::Config = chain.account(&pda::config().0).unwrap();
    assert!(config.local_cluster);
    for args in [
        dagger_client::UpdateConfigArgs {
            equivocation_slash_bps: Some(0),
            ..Default::default()
        },
        dagger_client::UpdateConfigArgs {
            unbonding_period: Some(local_min - 1),
            ..Default::default()
        },
    ] {
        let failure = chain.fail(&[ix::update_config(&admin.pubkey(), args)], &[&admin]);
        assert!(failure.is(DaggerError::ValueOutOfBounds), "{failure:?}");
    }
}

/// A quorum cannot assign an operator more than its capacity: what its
/// active leases hold is on-chain, given back when a lease is terminated
/// or settled.
#[test]
fn provisioning_votes_respect_the_capacity_left() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    // Operator 1 offers room for two VMs of the test spec (2 vCPUs each).
    net.update_operator(
        1,
        dagger_client::UpdateOperatorArgs {
            capacity: Some(dagger_client::Capacity {
                vcpus: 4,
                ..capacity()
            }),
            ..Default::default()
        },
    );
    let first = net.create_request(&customer, 1, 1_000, 3_600);
    let second = net.create_request(&customer, 2, 1_000, 3_600);
    let third = net.create_request(&customer, 3, 1_000, 3_600);
    net.provision(&first, 1);
    net.provision(&second, 1);
    assert_eq!(net.operator(1).allocated.vcpus, 4);
    let vote = net.provision_vote(&third, 1);
    let failure = net.vote(0, vote).unwrap_err().program();
    assert!(failure.is(DaggerError::CapacityExceeded), "{failure:?}");
    // A quorum terminates the first lease: its room is free at once.
    let terminate = Vote::Terminate {
        request: first,
        nonce: net.request(&first).unwrap().nonce,
        decision: [1; 32],
    };
    for voter in [0, 2, 3] {
        net.vote(voter, terminate).unwrap();
    }
    assert_eq!(net.operator(1).allocated.vcpus, 2);
    net.provision(&third, 1);
    assert_eq!(net.operator(1).allocated.vcpus, 4);
    // Settling the terminated lease gives nothing back twice; settling an
    // active one gives its room back.
    for request in [first, second] {
        net.chain.ok(
            &[ix::close_lease(
                &customer.pubkey(),
                &request,
                &net.operators[1].account(),
            )],
            &[&customer],
        );
    }
    assert_eq!(net.operator(1).allocated.vcpus, 2);
}
