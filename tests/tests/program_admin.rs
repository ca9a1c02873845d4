//! Admin instructions: initialize, update_config, bootstrap_admit, finish_bootstrap.

use dagger_client::{
    errors::{AnchorErrorCode, DaggerError},
    instructions as ix, pda, Genesis, InitializeArgs, OperatorStatus, UpdateConfigArgs,
    UpdateOperatorArgs,
};
use dagger_tests::*;
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signer::Signer};

fn args(treasury: solana_pubkey::Pubkey) -> InitializeArgs {
    initialize_args(treasury)
}

#[test]
fn initialize_creates_the_config() {
    let net = Network::initialized();
    let config = net.config();
    assert_eq!(config.admin, net.admin.pubkey());
    assert_eq!(config.treasury, net.treasury.pubkey());
    assert_eq!(config.min_operator_stake, MIN_STAKE);
    assert_eq!(config.unbonding_period, UNBONDING_PERIOD);
    assert_eq!(config.provisioning_timeout, PROVISIONING_TIMEOUT);
    assert_eq!(config.protocol_fee_bps, FEE_BPS);
    assert_eq!(config.roster_epoch, 0);
    assert_eq!(config.total_active_stake, 0);
    assert!(!config.bootstrapped);
    assert_eq!(config.bump, pda::config().1);
}

#[test]
fn initialize_rejects_bad_settings() {
    let mut chain = TestChain::new();
    let admin = chain.funded(LAMPORTS_PER_SOL);
    let treasury = admin.pubkey();
    let cases: Vec<(InitializeArgs, DaggerError)> = vec![
        (
            InitializeArgs {
                protocol_fee_bps: 1_001,
                ..args(treasury)
            },
            DaggerError::FeeTooHigh,
        ),
        (
            InitializeArgs {
                min_operator_stake: 0,
                ..args(treasury)
            },
            DaggerError::ZeroMinimumStake,
        ),
        (
            InitializeArgs {
                unbonding_period: 0,
                ..args(treasury)
            },
            DaggerError::ZeroDuration,
        ),
        (
            InitializeArgs {
                provisioning_timeout: -5,
                ..args(treasury)
            },
            DaggerError::ZeroDuration,
        ),
        // Values that would freeze stake or stop requests are out of bounds.
        (
            InitializeArgs {
                unbonding_period: i64::MAX,
                ..args(treasury)
            },
            DaggerError::ValueOutOfBounds,
        ),
        (
            InitializeArgs {
                provisioning_timeout: i64::MAX,
                ..args(treasury)
            },
            DaggerError::ValueOutOfBounds,
        ),
        (
            InitializeArgs {
                max_stake_share_bps: 3_334,
                ..args(treasury)
            },
            DaggerError::ValueOutOfBounds,
        ),
        (
            InitializeArgs {
                removal_slash_bps: 5_001,
                ..args(treasury)
            },
            DaggerError::ValueOutOfBounds,
        ),
        (
            InitializeArgs {
                equivocation_slash_bps: 10_001,
                ..args(treasury)
            },
            DaggerError::ValueOutOfBounds,
        ),
        (
            InitializeArgs {
                reporter_reward_bps: 5_001,
                ..args(treasury)
            },
            DaggerError::ValueOutOfBounds,
        ),
        (
            InitializeArgs {
                min_operator_stake: u64::MAX,
                ..args(treasury)
            },
            DaggerError::ValueOutOfBounds,
        ),
    ];
    for (bad, expected) in cases {
        let failure = chain.fail(&[ix::initialize(&admin.pubkey(), None, bad)], &[&admin]);
        assert!(failure.is(expected), "{failure:?}");
    }
    assert!(!chain.exists(&pda::config().0));
}

#[test]
fn initialize_twice_is_refused() {
    let mut net = Network::initialized();
    let intruder = net.chain.funded(LAMPORTS_PER_SOL);
    let treasury = intruder.pubkey();
    let failure = net.chain.send(
        &[ix::initialize(&intruder.pubkey(), None, args(treasury))],
        &[&intruder],
    );
    assert!(
        failure
            .as_ref()
            .unwrap_err()
            .program()
            .is(DaggerError::AlreadyInitialized),
        "{failure:?}"
    );
    assert_eq!(net.config().admin, net.admin.pubkey());
}

#[test]
fn update_config_changes_only_given_fields() {
    let mut net = Network::initialized();
    let new_treasury = net.chain.funded(LAMPORTS_PER_SOL).pubkey();
    let admin = &net.admin;
    net.chain.ok(
        &[ix::update_config(
            &admin.pubkey(),
            UpdateConfigArgs {
                treasury: Some(new_treasury),
                protocol_fee_bps: Some(500),
                ..Default::default()
            },
        )],
        &[admin],
    );
    let config = net.config();
    assert_eq!(config.treasury, new_treasury);
    assert_eq!(config.protocol_fee_bps, 500);
    assert_eq!(config.min_operator_stake, MIN_STAKE);
    assert_eq!(config.admin, net.admin.pubkey());
}

/// The admin key moves in two steps: a proposal changes nothing until the
/// proposed key signs, so a typo cannot lose the admin.
#[test]
fn the_admin_key_moves_in_two_steps() {
    let mut net = Network::initialized();
    let successor = net.chain.funded(LAMPORTS_PER_SOL);
    let typo = net.chain.funded(LAMPORTS_PER_SOL);
    let admin = net.admin.insecure_clone();
    // Only the admin proposes.
    let failure = net.chain.fail(
        &[ix::propose_admin(&successor.pubkey(), &successor.pubkey())],
        &[&successor],
    );
    assert!(failure.is(DaggerError::Unauthorized));
    // Nobody accepts before a proposal.
    let failure = net
        .chain
        .fail(&[ix::accept_admin(&successor.pubkey())], &[&successor]);
    assert!(failure.is(DaggerError::NotPendingAdmin));
    net.chain.ok(
        &[ix::propose_admin(&admin.pubkey(), &typo.pubkey())],
        &[&admin],
    );
    // A wrong proposal is simply replaced; the admin is unchanged meanwhile.
    assert_eq!(net.config().admin, admin.pubkey());
    net.chain.ok(
        &[ix::propose_admin(&admin.pubkey(), &successor.pubkey())],
        &[&admin],
    );
    let failure = net
        .chain
        .fail(&[ix::accept_admin(&typo.pubkey())], &[&typo]);
    assert!(failure.is(DaggerError::NotPendingAdmin));
    net.chain
        .ok(&[ix::accept_admin(&successor.pubkey())], &[&successor]);
    let config = net.config();
    assert_eq!(config.admin, successor.pubkey());
    assert_eq!(config.pending_admin, solana_pubkey::Pubkey::default());
    let failure = net.chain.fail(
        &[ix::update_config(
            &admin.pubkey(),
            UpdateConfigArgs::default(),
        )],
        &[&admin],
    );
    assert!(failure.is(DaggerError::Unauthorized));
    net.chain.ok(
        &[ix::update_config(
            &successor.pubkey(),
            UpdateConfigArgs::default(),
        )],
        &[&successor],
    );
}

/// A treasury that is not a wallet (a sysvar, a program) is refused, at
/// initialization and on update.
#[test]
fn the_treasury_must_be_a_wallet() {
    let mut chain = TestChain::new();
    let admin = chain.funded(LAMPORTS_PER_SOL);
    for bad in [
        <anchor_lang::prelude::Clock as anchor_lang::solana_program::sysvar::SysvarId>::id(),
        dagger::ID,
        pda::config().0,
    ] {
        let failure = chain.fail(
            &[ix::initialize(&admin.pubkey(), None, args(bad))],
            &[&admin],
        );
        assert!(
            failure.is(DaggerError::InvalidTreasury),
            "{bad}: {failure:?}"
        );
    }
    let mut net = Network::initialized();
    let admin = net.admin.insecure_clone();
    for bad in [
        <anchor_lang::prelude::Rent as anchor_lang::solana_program::sysvar::SysvarId>::id(),
        dagger::ID,
        pda::fee_vault().0,
    ] {
        let failure = net.chain.fail(
            &[ix::update_config(
                &admin.pubkey(),
                UpdateConfigArgs {
                    treasury: Some(bad),
                    ..Default::default()
                },
            )],
            &[&admin],
        );
        assert!(
            failure.is(DaggerError::InvalidTreasury),
            "{bad}: {failure:?}"
        );
    }
    assert_eq!(net.config().treasury, net.treasury.pubkey());
}

#[test]
fn update_config_rejects_strangers_and_bad_values() {
    let mut net = Network::initialized();
    let stranger = net.chain.funded(LAMPORTS_PER_SOL);
    let failure = net.chain.fail(
        &[ix::update_config(
            &stranger.pubkey(),
            UpdateConfigArgs {
                protocol_fee_bps: Some(0),
                ..Default::default()
            },
        )],
        &[&stranger],
    );
    assert!(failure.is(DaggerError::Unauthorized));
    let admin = &net.admin;
    let failure = net.chain.fail(
        &[ix::update_config(
            &admin.pubkey(),
            UpdateConfigArgs {
                protocol_fee_bps: Some(10_000),
                ..Default::default()
            },
        )],
        &[admin],
    );
    assert!(failure.is(DaggerError::FeeTooHigh));
    let failure = net.chain.fail(
        &[ix::update_config(
            &admin.pubkey(),
            UpdateConfigArgs {
                min_operator_stake: Some(0),
                ..Default::default()
            },
        )],
        &[admin],
    );
    assert!(failure.is(DaggerError::ZeroMinimumStake));
    for bad in [
        UpdateConfigArgs {
            unbonding_period: Some(i64::MAX),
            ..Default::default()
        },
        UpdateConfigArgs {
            provisioning_timeout: Some(i64::MAX),
            ..Default::default()
        },
        UpdateConfigArgs {
            max_stake_share_bps: Some(9_000),
            ..Default::default()
        },
        UpdateConfigArgs {
            removal_slash_bps: Some(10_000),
            ..Default::default()
        },
        UpdateConfigArgs {
            equivocation_slash_bps: Some(u16::MAX),
            ..Default::default()
        },
        UpdateConfigArgs {
            reporter_reward_bps: Some(10_000),
            ..Default::default()
        },
    ] {
        let failure = net
            .chain
            .fail(&[ix::update_config(&admin.pubkey(), bad)], &[admin]);
        assert!(failure.is(DaggerError::ValueOutOfBounds), "{failure:?}");
    }
    assert_eq!(net.config().protocol_fee_bps, FEE_BPS);
}

/// When every operator has left, no quorum can ever admit anyone again.
/// After the recovery delay the admin may reopen the bootstrap; while any
/// stake is active, or before the delay, it may not.
#[test]
fn the_admin_can_reopen_the_bootstrap_only_after_everyone_left() {
    let mut net = Network::with_operators(&[MIN_STAKE; 2]);
    let admin = net.admin.insecure_clone();
    let failure = net
        .chain
        .fail(&[ix::reopen_bootstrap(&admin.pubkey())], &[&admin]);
    assert!(failure.is(DaggerError::RecoveryNotAllowed));
    for i in 0..2 {
        let op = &net.operators[i];
        let owner = op.owner.insecure_clone();
        let node = op.node.pubkey();
        net.chain
            .ok(&[ix::request_unstake(&owner.pubkey(), &node)], &[&owner]);
    }
    let config = net.config();
    assert_eq!(config.total_active_stake, 0);
    assert!(config.zero_stake_since > 0);
    let failure = net
        .chain
        .fail(&[ix::reopen_bootstrap(&admin.pubkey())], &[&admin]);
    assert!(failure.is(DaggerError::RecoveryNotAllowed));
    net.chain.warp(dagger::constants::RECOVERY_DELAY);
    let stranger = net.chain.funded(LAMPORTS_PER_SOL);
    let failure = net
        .chain
        .fail(&[ix::reopen_bootstrap(&stranger.pubkey())], &[&stranger]);
    assert!(failure.is(DaggerError::Unauthorized));
    net.chain
        .ok(&[ix::reopen_bootstrap(&admin.pubkey())], &[&admin]);
    assert!(!net.config().bootstrapped);
    // A new genesis roster, then quorums again.
    let a = net.register(MIN_STAKE);
    let node = net.operators[a].node.pubkey();
    net.chain
        .ok(&[ix::bootstrap_admit(&admin.pubkey(), &node)], &[&admin]);
    net.chain
        .ok(&[ix::finish_bootstrap(&admin.pubkey())], &[&admin]);
    let config = net.config();
    assert!(config.bootstrapped);
    assert_eq!(config.total_active_stake, MIN_STAKE);
    assert_eq!(config.zero_stake_since, 0);
}

#[test]
fn bootstrap_admits_genesis_roster() {
    let mut net = Network::initialized();
    let a = net.register(MIN_STAKE);
    let b = net.register(3 * MIN_STAKE);
    for index in [a, b] {
        let node = net.operators[index].node.pubkey();
        let admin = &net.admin;
        net.chain
            .ok(&[ix::bootstrap_admit(&admin.pubkey(), &node)], &[admin]);
    }
    let config = net.config();
    assert_eq!(config.total_active_stake, 4 * MIN_STAKE);
    assert_eq!(config.active_operators, 2);
    // Stake joining starts no new epoch.
    assert_eq!(config.roster_epoch, 0);
    assert_eq!(net.operator(a).status, OperatorStatus::Active);

    // Admitting twice is refused.
    let node = net.operators[a].node.pubkey();
    let admin = &net.admin;
    let failure = net
        .chain
        .fail(&[ix::bootstrap_admit(&admin.pubkey(), &node)], &[admin]);
    assert!(failure.is(DaggerError::InvalidOperatorStatus));

    net.chain
        .ok(&[ix::finish_bootstrap(&admin.pubkey())], &[admin]);
    assert!(net.config().bootstrapped);
}

#[test]
fn bootstrap_rules() {
    let mut net = Network::initialized();
    let admin_key = net.admin.pubkey();
    // Nothing admitted yet: bootstrap cannot finish.
    let failure = net
        .chain
        .fail(&[ix::finish_bootstrap(&admin_key)], &[&net.admin]);
    assert!(failure.is(DaggerError::EmptyRoster));

    let a = net.register(MIN_STAKE);
    let node_a = net.operators[a].node.pubkey();
    let stranger = net.chain.funded(LAMPORTS_PER_SOL);
    let failure = net.chain.fail(
        &[ix::bootstrap_admit(&stranger.pubkey(), &node_a)],
        &[&stranger],
    );
    assert!(failure.is(DaggerError::Unauthorized));
    let failure = net
        .chain
        .fail(&[ix::finish_bootstrap(&stranger.pubkey())], &[&stranger]);
    assert!(failure.is(DaggerError::Unauthorized));

    // Raising the minimum makes an under-staked pending operator ineligible.
    net.chain.ok(
        &[ix::update_config(
            &admin_key,
            UpdateConfigArgs {
                min_operator_stake: Some(2 * MIN_STAKE),
                ..Default::default()
            },
        )],
        &[&net.admin],
    );
    let failure = net
        .chain
        .fail(&[ix::bootstrap_admit(&admin_key, &node_a)], &[&net.admin]);
    assert!(failure.is(DaggerError::InsufficientStake));
    let b = net.register(2 * MIN_STAKE);
    let node_b = net.operators[b].node.pubkey();
    net.chain
        .ok(&[ix::bootstrap_admit(&admin_key, &node_b)], &[&net.admin]);
    net.chain
        .ok(&[ix::finish_bootstrap(&admin_key)], &[&net.admin]);

    // After bootstrap the admin has no say over membership, and it cannot finish twice.
    let failure = net
        .chain
        .fail(&[ix::bootstrap_admit(&admin_key, &node_a)], &[&net.admin]);
    assert!(failure.is(DaggerError::AlreadyBootstrapped));
    let failure = net
        .chain
        .fail(&[ix::finish_bootstrap(&admin_key)], &[&net.admin]);
    assert!(failure.is(DaggerError::AlreadyBootstrapped));
}

#[test]
fn bootstrap_admit_of_unknown_node_key_fails() {
    let mut net = Network::initialized();
    let unknown = solana_pubkey::Pubkey::new_unique();
    let admin = &net.admin;
    let failure = net
        .chain
        .fail(&[ix::bootstrap_admit(&admin.pubkey(), &unknown)], &[admin]);
    assert!(failure.is_anchor(AnchorErrorCode::AccountNotInitialized));
}

/// The genesis roster is recorded as it is admitted and stays as it was
/// at `finish_bootstrap`, whatever the operators do afterwards; until
/// then admitted stake is frozen; a reopened bootstrap starts a new
/// generation; money sent to the record's address beforehand changes
/// nothing.
#[test]
fn the_genesis_roster_is_recorded_on_chain() {
    let mut net = Network::initialized();
    let admin = net.admin.insecure_clone();
    // Someone funds the record's address first: admitting still works.
    net.chain.airdrop(&pda::genesis().0, LAMPORTS_PER_SOL / 100);
    let a = net.register(MIN_STAKE);
    let b = net.register(2 * MIN_STAKE);
    let pending = net.register(MIN_STAKE);
    for index in [a, b] {
        let node = net.operators[index].node.pubkey();
        net.chain
            .ok(&[ix::bootstrap_admit(&admin.pubkey(), &node)], &[&admin]);
    }
    let genesis: Genesis = net.chain.account(&pda::genesis().0).expect("recorded");
    assert!(!genesis.finished);
    assert_eq!(genesis.generation, 0);
    assert_eq!(genesis.members.len(), 2);
    assert_eq!(genesis.members[1].node_key, net.operators[b].node.pubkey());
    assert_eq!(genesis.members[1].stake, 2 * MIN_STAKE);
    assert_eq!(genesis.members[1].operator, net.operators[b].account());
    let rent = net.chain.rent(Genesis::space(2));
    assert!(net.chain.lamports(&pda::genesis().0) >= rent);

    // Admitted stake is frozen until the bootstrap finishes; pending stake is not.
    let (owner_a, node_a) = (
        net.operators[a].owner.insecure_clone(),
        net.operators[a].node.pubkey(),
    );
    let failure = net.chain.fail(
        &[ix::add_stake(&owner_a.pubkey(), &node_a, MIN_STAKE)],
        &[&owner_a],
    );
    assert!(failure.is(DaggerError::GenesisFrozen));
    let failure = net.chain.fail(
        &[ix::request_unstake(&owner_a.pubkey(), &node_a)],
        &[&owner_a],
    );
    assert!(failure.is(DaggerError::GenesisFrozen));
    let owner_p = net.operators[pending].owner.insecure_clone();
    let node_p = net.operators[pending].node.pubkey();
    net.chain.airdrop(&owner_p.pubkey(), 2 * MIN_STAKE);
    net.chain.ok(
        &[ix::add_stake(&owner_p.pubkey(), &node_p, MIN_STAKE)],
        &[&owner_p],
    );

    net.chain
        .ok(&[ix::finish_bootstrap(&admin.pubkey())], &[&admin]);
    let finished: Genesis = net.chain.account(&pda::genesis().0).unwrap();
    assert!(finished.finished);
    assert_eq!(finished.members, genesis.members);
    // Operators change afterwards; the record does not.
    net.chain.ok(
        &[ix::update_operator(
            &owner_a.pubkey(),
            &node_a,
            UpdateOperatorArgs {
                address: Some("10.9.9.9:7000".into()),
                ..Default::default()
            },
        )],
        &[&owner_a],
    );
    net.chain.ok(
        &[ix::request_unstake(&owner_a.pubkey(), &node_a)],
        &[&owner_a],
    );
    let after: Genesis = net.chain.account(&pda::genesis().0).unwrap();
    assert_eq!(after.members, genesis.members);

    // Everyone leaves; a reopened bootstrap records a new generation.
    let owner_b = net.operators[b].owner.insecure_clone();
    let node_b = net.operators[b].node.pubkey();
    net.chain.ok(
        &[ix::request_unstake(&owner_b.pubkey(), &node_b)],
        &[&owner_b],
    );
    net.chain.warp(dagger::constants::RECOVERY_DELAY);
    net.chain
        .ok(&[ix::reopen_bootstrap(&admin.pubkey())], &[&admin]);
    net.chain
        .ok(&[ix::bootstrap_admit(&admin.pubkey(), &node_p)], &[&admin]);
    let next: Genesis = net.chain.account(&pda::genesis().0).unwrap();
    assert_eq!(next.generation, 1);
    assert!(!next.finished);
    assert_eq!(next.members.len(), 1);
    assert_eq!(next.members[0].node_key, node_p);
    assert_eq!(next.members[0].stake, 2 * MIN_STAKE);
}
