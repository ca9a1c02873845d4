//! Operator instructions: register_operator, add_stake, update_operator,
//! request_unstake, withdraw_stake.

use dagger_client::{
    errors::{AnchorErrorCode, DaggerError},
    instructions as ix, pda, Capacity, OperatorStatus, PriceFloor, StakeVault, UpdateOperatorArgs,
};
use dagger_tests::*;
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signer::Signer};

#[test]
fn register_moves_stake_into_the_vault() {
    let mut net = Network::initialized();
    let owner = net.chain.funded(100 * LAMPORTS_PER_SOL);
    let node = net.chain.funded(LAMPORTS_PER_SOL);
    let before = net.chain.lamports(&owner.pubkey());
    let meta = net.chain.ok(
        &[ix::register_operator(
            &owner.pubkey(),
            &node.pubkey(),
            "10.0.0.1:7000".into(),
            capacity(),
            MIN_STAKE,
            PriceFloor::default(),
        )],
        &[&owner, &node],
    );
    let (operator, bump) = pda::operator(&node.pubkey());
    let (vault, vault_bump) = pda::stake_vault(&operator);
    let vault_rent = net.chain.rent(8 + 33);
    let operator_rent = net.chain.raw_account(&operator).unwrap().lamports;
    // The node key's record (it outlives the operator: the key is retired
    // when the operator leaves) costs its rent once.
    let record_rent = net
        .chain
        .rent(8 + <dagger_client::NodeKeyRecord as anchor_lang::Space>::INIT_SPACE);
    assert_eq!(
        net.chain.lamports(&pda::node_key_record(&node.pubkey()).0),
        record_rent
    );
    assert_eq!(net.chain.lamports(&vault), MIN_STAKE + vault_rent);
    assert_eq!(
        before - net.chain.lamports(&owner.pubkey()),
        MIN_STAKE + vault_rent + operator_rent + record_rent + meta.fee
    );
    let record: dagger_client::Operator = net.chain.account(&operator).unwrap();
    assert_eq!(record.owner, owner.pubkey());
    assert_eq!(record.node_key, node.pubkey());
    assert_eq!(record.stake, MIN_STAKE);
    assert_eq!(record.status, OperatorStatus::Pending);
    assert_eq!(record.address, "10.0.0.1:7000");
    assert_eq!((record.bump, record.vault_bump), (bump, vault_bump));
    let vault_record: StakeVault = net.chain.account(&vault).unwrap();
    assert_eq!(vault_record.operator, operator);
    // Pending operators do not count yet.
    assert_eq!(net.config().total_active_stake, 0);
}

#[test]
fn register_rejects_bad_input() {
    let mut net = Network::initialized();
    let owner = net.chain.funded(100 * LAMPORTS_PER_SOL);
    let node = net.chain.funded(LAMPORTS_PER_SOL);
    let register = |address: &str, capacity: Capacity, stake: u64| {
        ix::register_operator(
            &owner.pubkey(),
            &node.pubkey(),
            address.into(),
            capacity,
            stake,
            PriceFloor::default(),
        )
    };
    let cases = [
        (
            register("a:1", capacity(), MIN_STAKE - 1),
            DaggerError::InsufficientStake,
        ),
        (
            register("", capacity(), MIN_STAKE),
            DaggerError::InvalidAddress,
        ),
        (
            register(&"x".repeat(65), capacity(), MIN_STAKE),
            DaggerError::InvalidAddress,
        ),
        (
            register(
                "a:1",
                Capacity {
                    vcpus: 0,
                    ..capacity()
                },
                MIN_STAKE,
            ),
            DaggerError::InvalidCapacity,
        ),
        (
            register(
                "a:1",
                Capacity {
                    memory_mib: 0,
                    ..capacity()
                },
                MIN_STAKE,
            ),
            DaggerError::InvalidCapacity,
        ),
    ];
    for (instruction, expected) in cases {
        let failure = net.chain.fail(&[instruction], &[&owner, &node]);
        assert!(failure.is(expected), "{failure:?}");
    }
    assert!(!net.chain.exists(&pda::operator(&node.pubkey()).0));
}

#[test]
fn register_needs_the_node_key_signature() {
    let mut net = Network::initialized();
    let owner = net.chain.funded(100 * LAMPORTS_PER_SOL);
    let node = net.chain.funded(LAMPORTS_PER_SOL);
    let mut instruction = ix::register_operator(
        &owner.pubkey(),
        &node.pubkey(),
        "a:1".into(),
        capacity(),
        MIN_STAKE,
        PriceFloor::default(),
    );
    // Claim someone else's node identity without holding its key.
    instruction.accounts[1].is_signer = false;
    let failure = net.chain.fail(&[instruction], &[&owner]);
    assert!(failure.is_anchor(AnchorErrorCode::AccountNotSigner));
}

#[test]
fn register_with_insufficient_funds_fails_cleanly() {
    let mut net = Network::initialized();
    let owner = net.chain.funded(MIN_STAKE / 2);
    let node = net.chain.funded(LAMPORTS_PER_SOL);
    let before = net.chain.lamports(&owner.pubkey());
    let result = net.chain.send(
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
    assert!(result.is_err());
    assert!(!net.chain.exists(&pda::operator(&node.pubkey()).0));
    // Only the transaction fee was charged.
    assert!(before - net.chain.lamports(&owner.pubkey()) <= 10_000);
}

#[test]
fn the_same_node_key_cannot_register_twice() {
    let mut net = Network::initialized();
    let index = net.register(MIN_STAKE);
    let node = net.operators[index].node.insecure_clone();
    let owner = net.chain.funded(100 * LAMPORTS_PER_SOL);
    let result = net.chain.send(
        &[ix::register_operator(
            &owner.pubkey(),
            &node.pubkey(),
            "b:2".into(),
            capacity(),
            MIN_STAKE,
            PriceFloor::default(),
        )],
        &[&owner, &node],
    );
    assert!(result.is_err());
    assert_eq!(
        net.operator(index).owner,
        net.operators[index].owner.pubkey()
    );
}

#[test]
fn add_stake_on_pending_and_active_operators() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let pending = net.register(MIN_STAKE);
    let epoch = net.config().roster_epoch;
    let op = &net.operators[pending];
    net.chain.ok(
        &[ix::add_stake(&op.owner.pubkey(), &op.node.pubkey(), 5)],
        &[&op.owner],
    );
    assert_eq!(net.operator(pending).stake, MIN_STAKE + 5);
    // Pending stake is not part of the roster.
    assert_eq!(net.config().roster_epoch, epoch);
    assert_eq!(net.config().total_active_stake, 4 * MIN_STAKE);

    let op = &net.operators[0];
    net.chain.ok(
        &[ix::add_stake(&op.owner.pubkey(), &op.node.pubkey(), 7)],
        &[&op.owner],
    );
    let config = net.config();
    assert_eq!(config.total_active_stake, 4 * MIN_STAKE + 7);
    // Stake joining starts no new epoch: open tallies are not restarted.
    assert_eq!(config.roster_epoch, epoch);
    let vault = pda::stake_vault(&net.operators[0].account()).0;
    assert_eq!(
        net.chain.lamports(&vault),
        MIN_STAKE + 7 + net.chain.rent(8 + 33)
    );
}

#[test]
fn add_stake_errors() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let op = &net.operators[0];
    let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
    let failure = net
        .chain
        .fail(&[ix::add_stake(&owner.pubkey(), &node, 0)], &[&owner]);
    assert!(failure.is(DaggerError::ZeroAmount));
    let stranger = net.chain.funded(10 * LAMPORTS_PER_SOL);
    let failure = net
        .chain
        .fail(&[ix::add_stake(&stranger.pubkey(), &node, 1)], &[&stranger]);
    assert!(failure.is(DaggerError::NotOwner));
    net.chain
        .ok(&[ix::request_unstake(&owner.pubkey(), &node)], &[&owner]);
    let failure = net
        .chain
        .fail(&[ix::add_stake(&owner.pubkey(), &node, 1)], &[&owner]);
    assert!(failure.is(DaggerError::InvalidOperatorStatus));
}

#[test]
fn update_operator_changes_address_and_capacity() {
    let mut net = Network::initialized();
    let index = net.register(MIN_STAKE);
    let op = &net.operators[index];
    let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
    let new_capacity = Capacity {
        vcpus: 64,
        ..capacity()
    };
    net.chain.ok(
        &[ix::update_operator(
            &owner.pubkey(),
            &node,
            UpdateOperatorArgs {
                address: Some("new:9".into()),
                capacity: Some(new_capacity),
                price_floor: None,
            },
        )],
        &[&owner],
    );
    let record = net.operator(index);
    assert_eq!(record.address, "new:9");
    assert_eq!(record.capacity, new_capacity);
    net.chain.ok(
        &[ix::update_operator(
            &owner.pubkey(),
            &node,
            UpdateOperatorArgs::default(),
        )],
        &[&owner],
    );
    assert_eq!(net.operator(index).address, "new:9");

    let failure = net.chain.fail(
        &[ix::update_operator(
            &owner.pubkey(),
            &node,
            UpdateOperatorArgs {
                address: Some(String::new()),
                capacity: None,
                price_floor: None,
            },
        )],
        &[&owner],
    );
    assert!(failure.is(DaggerError::InvalidAddress));
    let failure = net.chain.fail(
        &[ix::update_operator(
            &owner.pubkey(),
            &node,
            UpdateOperatorArgs {
                capacity: Some(Capacity {
                    disk_gib: 0,
                    ..capacity()
                }),
                ..Default::default()
            },
        )],
        &[&owner],
    );
    assert!(failure.is(DaggerError::InvalidCapacity));
    let stranger = net.chain.funded(LAMPORTS_PER_SOL);
    let failure = net.chain.fail(
        &[ix::update_operator(
            &stranger.pubkey(),
            &node,
            UpdateOperatorArgs {
                address: Some("x:1".into()),
                ..Default::default()
            },
        )],
        &[&stranger],
    );
    assert!(failure.is(DaggerError::NotOwner));
}

#[test]
fn unstake_leaves_the_roster_at_once_and_withdraws_after_unbonding() {
    let mut net = Network::with_operators(&[MIN_STAKE, 2 * MIN_STAKE]);
    let epoch = net.config().roster_epoch;
    let op = &net.operators[1];
    let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
    net.chain
        .ok(&[ix::request_unstake(&owner.pubkey(), &node)], &[&owner]);
    let config = net.config();
    assert_eq!(config.total_active_stake, MIN_STAKE);
    assert_eq!(config.active_operators, 1);
    assert_eq!(config.roster_epoch, epoch + 1);
    let record = net.operator(1);
    assert_eq!(record.status, OperatorStatus::Unbonding);
    assert_eq!(record.withdrawable_at, net.chain.now() + UNBONDING_PERIOD);

    // Twice is refused.
    let failure = net
        .chain
        .fail(&[ix::request_unstake(&owner.pubkey(), &node)], &[&owner]);
    assert!(failure.is(DaggerError::InvalidOperatorStatus));

    // Too early.
    net.chain.warp(UNBONDING_PERIOD - 1);
    let failure = net
        .chain
        .fail(&[ix::withdraw_stake(&owner.pubkey(), &node)], &[&owner]);
    assert!(failure.is(DaggerError::UnbondingNotFinished));

    // Someone else cannot take it.
    net.chain.warp(1);
    let stranger = net.chain.funded(LAMPORTS_PER_SOL);
    let failure = net.chain.fail(
        &[ix::withdraw_stake(&stranger.pubkey(), &node)],
        &[&stranger],
    );
    assert!(failure.is(DaggerError::NotOwner));

    let vault = pda::stake_vault(&net.operators[1].account()).0;
    let vault_balance = net.chain.lamports(&vault);
    let before = net.chain.lamports(&owner.pubkey());
    let meta = net
        .chain
        .ok(&[ix::withdraw_stake(&owner.pubkey(), &node)], &[&owner]);
    assert_eq!(
        net.chain.lamports(&owner.pubkey()),
        before + vault_balance - meta.fee
    );
    assert!(!net.chain.exists(&vault));
    let record = net.operator(1);
    assert_eq!(record.status, OperatorStatus::Exited);
    assert_eq!(record.stake, 0);

    // Exited: nothing more to withdraw or update.
    let failure = net
        .chain
        .send(&[ix::withdraw_stake(&owner.pubkey(), &node)], &[&owner]);
    assert!(failure.is_err());
    let failure = net.chain.fail(
        &[ix::update_operator(
            &owner.pubkey(),
            &node,
            UpdateOperatorArgs {
                address: Some("a:1".into()),
                capacity: None,
                price_floor: None,
            },
        )],
        &[&owner],
    );
    assert!(failure.is(DaggerError::InvalidOperatorStatus));
}

#[test]
fn withdraw_needs_unbonding_first() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let op = &net.operators[0];
    let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
    let failure = net
        .chain
        .fail(&[ix::withdraw_stake(&owner.pubkey(), &node)], &[&owner]);
    assert!(failure.is(DaggerError::InvalidOperatorStatus));
}

#[test]
fn pending_operator_can_leave_without_touching_the_roster() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let pending = net.register(MIN_STAKE);
    let epoch = net.config().roster_epoch;
    let op = &net.operators[pending];
    net.chain.ok(
        &[ix::request_unstake(&op.owner.pubkey(), &op.node.pubkey())],
        &[&op.owner],
    );
    assert_eq!(net.config().roster_epoch, epoch);
    assert_eq!(net.config().total_active_stake, MIN_STAKE);
    assert_eq!(net.operator(pending).status, OperatorStatus::Unbonding);
}

#[test]
fn unstake_by_a_stranger_is_refused() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let node = net.operators[0].node.pubkey();
    let stranger = net.chain.funded(LAMPORTS_PER_SOL);
    let failure = net.chain.fail(
        &[ix::request_unstake(&stranger.pubkey(), &node)],
        &[&stranger],
    );
    assert!(failure.is(DaggerError::NotOwner));
}
