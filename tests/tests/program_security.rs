//! One negative test per Sealevel attack class (DESIGN.md §2): signer,
//! owner, type cosplay, reinitialisation, arbitrary CPI, duplicate mutable
//! accounts, bump canonicalisation, PDA sharing, closing, sysvar address.

use anchor_lang::{prelude::Clock, solana_program::system_instruction};
use dagger_client::{
    constants::REQUEST_SEED,
    errors::{AnchorErrorCode, DaggerError},
    instructions as ix, pda, Vote,
};
use dagger_tests::*;
use solana_pubkey::Pubkey;
use solana_sdk::{account::Account, native_token::LAMPORTS_PER_SOL, signer::Signer};

#[test]
fn missing_signer_is_refused() {
    let mut net = Network::initialized();
    let payer = net.chain.funded(LAMPORTS_PER_SOL);
    // The admin is named but does not sign; someone else pays the fee.
    let mut instruction = ix::update_config(&net.admin.pubkey(), Default::default());
    instruction.accounts[0].is_signer = false;
    let failure = net.chain.fail(&[instruction], &[&payer]);
    assert!(failure.is_anchor(AnchorErrorCode::AccountNotSigner));

    let index = net.register(MIN_STAKE);
    let op = &net.operators[index];
    let mut instruction = ix::request_unstake(&op.owner.pubkey(), &op.node.pubkey());
    instruction.accounts[0].is_signer = false;
    let failure = net.chain.fail(&[instruction], &[&payer]);
    assert!(failure.is_anchor(AnchorErrorCode::AccountNotSigner));
}

#[test]
fn accounts_owned_by_another_program_are_refused() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let real = net.create_request(&customer, 1, 1_000, 1_000);
    // A byte-for-byte copy of a real request, owned by some other program,
    // naming the attacker as customer of a huge deposit.
    let attacker = net.customer();
    let mut data = net.chain.raw_account(&real).unwrap().data;
    data[8..40].copy_from_slice(attacker.pubkey().as_ref());
    let forged = Pubkey::new_unique();
    net.chain
        .svm
        .set_account(
            forged,
            Account {
                lamports: LAMPORTS_PER_SOL,
                data,
                owner: Pubkey::new_unique(),
                executable: false,
                rent_epoch: 0,
            },
        )
        .unwrap();
    let failure = net.chain.fail(
        &[ix::cancel_request(&attacker.pubkey(), &forged)],
        &[&attacker],
    );
    assert!(failure.is_anchor(AnchorErrorCode::AccountOwnedByWrongProgram));
}

#[test]
fn one_account_type_cannot_pose_as_another() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 1_000);
    // An Escrow (owned by the program, right size class) passed as a Request.
    let escrow = pda::escrow(&request).0;
    let failure = net
        .chain
        .fail(&[ix::top_up(&customer.pubkey(), &escrow, 10)], &[&customer]);
    assert!(failure.is_anchor(AnchorErrorCode::AccountDiscriminatorMismatch));
    // An Operator passed as a Request.
    let operator = net.operators[0].account();
    let failure = net.chain.fail(
        &[ix::cancel_request(&customer.pubkey(), &operator)],
        &[&customer],
    );
    assert!(failure.is_anchor(AnchorErrorCode::AccountDiscriminatorMismatch));
}

#[test]
fn initialized_accounts_cannot_be_initialized_again() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let before = net.chain.raw_account(&pda::config().0).unwrap().data;
    let intruder = net.chain.funded(LAMPORTS_PER_SOL);
    let instruction = ix::initialize(
        &intruder.pubkey(),
        None,
        dagger_client::InitializeArgs {
            treasury: intruder.pubkey(),
            min_operator_stake: 1,
            unbonding_period: 3_600,
            provisioning_timeout: 60,
            protocol_fee_bps: 1_000,
            max_stake_share_bps: 3_000,
            removal_slash_bps: 0,
            equivocation_slash_bps: 5_000,
            reporter_reward_bps: 0,
        },
    );
    let failure = net.chain.fail(&[instruction], &[&intruder]);
    assert!(failure.is(DaggerError::AlreadyInitialized), "{failure:?}");
    assert_eq!(
        net.chain.raw_account(&pda::config().0).unwrap().data,
        before
    );
}

#[test]
fn a_second_voter_does_not_reinitialize_the_tally() {
    // The tally is init-if-needed: later voters must find it, never reset it.
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 10, 10);
    let vote = net.provision_vote(&request, 0);
    net.vote(0, vote).unwrap();
    net.vote(1, vote).unwrap();
    let tally: dagger_client::Attestation = net
        .chain
        .account(&pda::attestation(&vote.subject()).0)
        .unwrap();
    assert_eq!(tally.ballots.len(), 2);
    assert_eq!(tally.rent_payer, net.operators[0].node.pubkey());
}

#[test]
fn a_fake_system_program_is_refused() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let mut instruction = ix::create_request(&customer.pubkey(), 1, spec(), 10, 10);
    let fake_program = net.operators[0].account();
    let last = instruction.accounts.len() - 1;
    instruction.accounts[last].pubkey = fake_program;
    let failure = net.chain.fail(&[instruction], &[&customer]);
    assert!(failure.is_anchor(AnchorErrorCode::InvalidProgramId));
}

#[test]
fn the_same_mutable_account_cannot_fill_two_roles() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let node = net.operators[3].node.insecure_clone();
    let voter = net.operators[3].account();
    let vote = Vote::Remove {
        operator: voter,
        nonce: net.operator(3).nonce,
        decision: [0; 32],
    };
    let mut instruction = ix::attest(
        &node.pubkey(),
        &node.pubkey(),
        net.config().roster_epoch,
        vote,
    );
    // The builder passes a self-removal once; pass the voter again as the subject.
    const SUBJECT_OPERATOR_SLOT: usize = 6;
    instruction.accounts[SUBJECT_OPERATOR_SLOT].pubkey = voter;
    instruction.accounts[SUBJECT_OPERATOR_SLOT].is_writable = true;
    let failure = net.chain.fail(&[instruction], &[&node]);
    assert!(failure.is_anchor(AnchorErrorCode::ConstraintDuplicateMutableAccount));
}

#[test]
fn only_canonical_bumps_are_accepted() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let id = 7u64;
    let (canonical, canonical_bump) = pda::request(&customer.pubkey(), id);
    let non_canonical = (0..canonical_bump)
        .rev()
        .find_map(|bump| {
            Pubkey::create_program_address(
                &[
                    REQUEST_SEED,
                    customer.pubkey().as_ref(),
                    &id.to_le_bytes(),
                    &[bump],
                ],
                &dagger::ID,
            )
            .ok()
        })
        .expect("some lower bump is off-curve");
    assert_ne!(non_canonical, canonical);
    let mut instruction = ix::create_request(&customer.pubkey(), id, spec(), 10, 10);
    instruction.accounts[2].pubkey = non_canonical;
    instruction.accounts[3].pubkey = pda::escrow(&non_canonical).0;
    let failure = net.chain.fail(&[instruction], &[&customer]);
    assert!(failure.is_anchor(AnchorErrorCode::ConstraintSeeds));
}

#[test]
fn one_requests_escrow_cannot_serve_another() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let cheap = net.create_request(&customer, 1, 1, 10);
    let rich = net.create_request(&customer, 2, 1_000_000, 1_000);
    // Cancel the cheap request but point at the rich request's escrow.
    let mut instruction = ix::cancel_request(&customer.pubkey(), &cheap);
    let escrow = pda::escrow(&cheap).0;
    let slot = instruction
        .accounts
        .iter()
        .position(|m| m.pubkey == escrow)
        .expect("the escrow is named");
    instruction.accounts[slot].pubkey = pda::escrow(&rich).0;
    let failure = net.chain.fail(&[instruction], &[&customer]);
    assert!(failure.is_anchor(AnchorErrorCode::ConstraintSeeds));

    // Likewise stake vaults are bound to their operator.
    let other = net.register(MIN_STAKE);
    let op = &net.operators[other];
    let owner = op.owner.insecure_clone();
    let mut instruction = ix::add_stake(&owner.pubkey(), &op.node.pubkey(), 1);
    instruction.accounts[3].pubkey = pda::stake_vault(&net.operators[0].account()).0;
    let failure = net.chain.fail(&[instruction], &[&owner]);
    assert!(failure.is_anchor(AnchorErrorCode::ConstraintSeeds));
}

#[test]
fn closed_accounts_cannot_be_revived() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 1_000);
    let escrow = pda::escrow(&request).0;
    // Close, refund rent to the closed address, then try to use it, all in one transaction.
    let result = net.chain.send(
        &[
            ix::cancel_request(&customer.pubkey(), &request),
            system_instruction::transfer(&customer.pubkey(), &request, LAMPORTS_PER_SOL),
            ix::top_up(&customer.pubkey(), &request, 10),
        ],
        &[&customer],
    );
    let failure = result.unwrap_err();
    let (index, program_failure) =
        dagger_client::ProgramFailure::from_transaction_error(&failure.error).unwrap();
    assert_eq!(index, 2);
    assert!(program_failure.is_anchor(AnchorErrorCode::AccountOwnedByWrongProgram));
    // The whole transaction rolled back: the request is still there, intact.
    assert!(net.request(&request).is_some());
    assert!(net.chain.exists(&escrow));

    // Closed for real: zero data, owned by the System Program.
    net.chain.ok(
        &[ix::cancel_request(&customer.pubkey(), &request)],
        &[&customer],
    );
    assert!(net
        .chain
        .svm
        .get_account(&escrow)
        .is_none_or(|a| a.data.is_empty()));
    let failure = net.chain.fail(
        &[ix::cancel_request(&customer.pubkey(), &request)],
        &[&customer],
    );
    assert!(failure.is_anchor(AnchorErrorCode::AccountNotInitialized));
}

#[test]
fn a_forged_clock_is_refused() {
    let mut net = Network::with_operators(&[MIN_STAKE]);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 1_000);
    // A "clock" that says the deadline passed long ago.
    let mut clock: Clock = net.chain.svm.get_sysvar();
    clock.unix_timestamp += 1_000_000;
    let forged = Pubkey::new_unique();
    net.chain
        .svm
        .set_account(
            forged,
            Account {
                lamports: LAMPORTS_PER_SOL,
                data: bincode_clock(&clock),
                owner: solana_sdk::sysvar::ID,
                executable: false,
                rent_epoch: 0,
            },
        )
        .unwrap();
    let keeper = net.customer();
    let mut instruction = ix::reclaim_expired(&request, &customer.pubkey());
    let last = instruction.accounts.len() - 1;
    instruction.accounts[last].pubkey = forged;
    let failure = net.chain.fail(&[instruction], &[&keeper]);
    assert!(failure.is_anchor(AnchorErrorCode::AccountSysvarMismatch));
}

/// The Clock sysvar's account layout: five little-endian 64-bit fields.
fn bincode_clock(clock: &Clock) -> Vec<u8> {
    let mut data = Vec::with_capacity(40);
    data.extend_from_slice(&clock.slot.to_le_bytes());
    data.extend_from_slice(&clock.epoch_start_timestamp.to_le_bytes());
    data.extend_from_slice(&clock.epoch.to_le_bytes());
    data.extend_from_slice(&clock.leader_schedule_epoch.to_le_bytes());
    data.extend_from_slice(&clock.unix_timestamp.to_le_bytes());
    data
}
