//! `report_equivocation`: anyone proves with two signed headers that an
//! operator's node key equivocated; the program checks the Ed25519
//! precompile instructions before it through the instructions sysvar,
//! slashes, removes, pays the reporter and records the pair.

use anchor_lang::Space;
use dagger_client::{
    errors::DaggerError,
    evidence::{Evidence, SignedHeader},
    instructions as ix, pda, EquivocationRecord, OperatorStatus,
};
use dagger_event_header::{signing_message, CreatorId, EventHeader, EventId, ParentRef};
use dagger_tests::*;
use ed25519_dalek::{Signer as _, SigningKey};
use proptest::prelude::*;
use solana_sdk::{
    instruction::Instruction, native_token::LAMPORTS_PER_SOL, signature::Keypair, signer::Signer,
};

const STAKE: u64 = 100 * LAMPORTS_PER_SOL;

fn dalek(node: &Keypair) -> SigningKey {
    SigningKey::from_keypair_bytes(&node.to_bytes()).expect("a Solana keypair is an ed25519 key")
}

fn header(key: &SigningKey, seq: u64, birth_round: u64, created_at_ns: u64) -> EventHeader {
    EventHeader {
        creator: CreatorId(key.verifying_key().to_bytes()),
        seq,
        birth_round,
        self_parent: (seq > 0).then_some(ParentRef {
            id: EventId([seq as u8; 32]),
            birth_round: birth_round.saturating_sub(1).max(1),
        }),
        other_parent: Some(ParentRef {
            id: EventId([0xee; 32]),
            birth_round,
        }),
        created_at_ns,
        txs_root: [0; 32],
        tx_count: 0,
    }
}

fn sign(key: &SigningKey, network_id: &[u8; 32], header: &EventHeader) -> SignedHeader {
    SignedHeader {
        header: header.encode().to_vec(),
        signature: key
            .sign(&signing_message(network_id, &header.id()))
            .to_bytes(),
    }
}

/// Two events of operator `index` at the same sequence number: a fork.
fn fork(net: &Network, index: usize) -> Evidence {
    let key = dalek(&net.operators[index].node);
    let network_id = net.config().network_id;
    Evidence {
        first: sign(&key, &network_id, &header(&key, 7, 3, 1)),
        second: sign(&key, &network_id, &header(&key, 7, 3, 2)),
    }
}

fn report(net: &Network, reporter: &Keypair, evidence: &Evidence, node: usize) -> Vec<Instruction> {
    ix::report_equivocation(
        &reporter.pubkey(),
        &net.operators[node].node.pubkey(),
        &net.config().network_id,
        &evidence.first,
        &evidence.second,
    )
}

fn balances(net: &Network, accounts: &[solana_pubkey::Pubkey]) -> Vec<u64> {
    accounts.iter().map(|a| net.chain.lamports(a)).collect()
}

#[test]
fn a_fork_slashes_exactly_the_configured_amounts_and_removes_the_operator() {
    let mut net = Network::with_operators(&[STAKE, STAKE, STAKE, STAKE]);
    let reporter = net.chain.funded(LAMPORTS_PER_SOL);
    let evidence = fork(&net, 3);
    let operator = net.operators[3].account();
    let vault = pda::stake_vault(&operator).0;
    let record = pda::evidence(&evidence.hash()).0;
    let watched = [reporter.pubkey(), vault, pda::fee_vault().0, record];
    let before = balances(&net, &watched);
    let config_before = net.config();

    let instructions = report(&net, &reporter, &evidence, 3);
    // Two full headers (both parents named) fit one transaction packet.
    assert_eq!(evidence.first.header.len(), dagger_event_header::HEADER_MAX);
    let message = solana_sdk::message::Message::new(&instructions, Some(&reporter.pubkey()));
    let size = 1 + 64 + message.serialize().len();
    assert!(
        size <= 1232,
        "the report is {size} bytes, a packet holds 1232"
    );
    net.chain.ok(&instructions, &[&reporter]);

    let slashed = STAKE / 2; // EQUIVOCATION_SLASH_BPS = 5000
    let reward = slashed / 10; // REPORTER_REWARD_BPS = 1000
    let after = balances(&net, &watched);
    let rent = net.chain.rent(8 + EquivocationRecord::INIT_SPACE);
    assert_eq!(
        after[1],
        before[1] - slashed,
        "the stake vault pays the slash"
    );
    assert_eq!(
        after[2],
        before[2] + slashed - reward,
        "the rest to the fee vault"
    );
    assert_eq!(after[3], rent, "the record holds exactly its rent");
    // One transaction signature and two precompile signatures.
    let fee = 3 * 5_000;
    assert_eq!(after[0], before[0] + reward - rent - fee);
    assert_eq!(
        before.iter().sum::<u64>(),
        after.iter().sum::<u64>() + fee,
        "lamports are conserved"
    );

    let slashed_operator = net.operator(3);
    assert_eq!(slashed_operator.stake, STAKE - slashed);
    assert_eq!(slashed_operator.slashed, slashed);
    assert_eq!(slashed_operator.status, OperatorStatus::Unbonding);
    assert_eq!(slashed_operator.equivocation, evidence.hash());
    let config = net.config();
    assert_eq!(
        config.total_active_stake,
        config_before.total_active_stake - STAKE
    );
    assert_eq!(config.active_operators, config_before.active_operators - 1);
    assert_eq!(config.roster_epoch, config_before.roster_epoch + 1);
    let stored: EquivocationRecord = net.chain.account(&record).expect("record");
    assert_eq!(stored.operator, operator);
    assert_eq!(stored.reporter, reporter.pubkey());
    assert_eq!(stored.slashed, slashed);
    assert_eq!(stored.reporter_reward, reward);
    assert_eq!(stored.first, evidence.first.id().0);

    // A removed operator's vote no longer counts.
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 600);
    let vote = net.provision_vote(&request, 0);
    let refused = net.vote(3, vote).unwrap_err().program();
    assert!(refused.is(DaggerError::OperatorNotActive), "{refused:?}");
    // And the other three still make quorums.
    net.provision(&request, 0);
}

#[test]
fn a_pair_counts_once_in_either_order_and_an_operator_pays_once() {
    let mut net = Network::with_operators(&[STAKE, STAKE, STAKE, STAKE]);
    let reporter = net.chain.funded(LAMPORTS_PER_SOL);
    let evidence = fork(&net, 1);
    let instructions = report(&net, &reporter, &evidence, 1);
    net.chain.ok(&instructions, &[&reporter]);

    let swapped = Evidence {
        first: evidence.second.clone(),
        second: evidence.first.clone(),
    };
    for pair in [&evidence, &swapped] {
        let instructions = report(&net, &reporter, pair, 1);
        let failure = net.chain.fail(&instructions, &[&reporter]);
        assert!(
            failure.is(DaggerError::EvidenceAlreadyReported),
            "{failure:?}"
        );
    }
    let key = dalek(&net.operators[1].node);
    let network_id = net.config().network_id;
    let another = Evidence {
        first: sign(&key, &network_id, &header(&key, 9, 4, 1)),
        second: sign(&key, &network_id, &header(&key, 9, 4, 2)),
    };
    let instructions = report(&net, &reporter, &another, 1);
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(failure.is(DaggerError::AlreadySlashed), "{failure:?}");
    assert_eq!(net.operator(1).stake, STAKE / 2);
}

#[test]
fn pairs_that_prove_nothing_are_refused_by_name() {
    let mut net = Network::with_operators(&[STAKE, STAKE, STAKE, STAKE]);
    let reporter = net.chain.funded(LAMPORTS_PER_SOL);
    let network_id = net.config().network_id;
    let key = dalek(&net.operators[0].node);
    let other = dalek(&net.operators[1].node);
    let parent = header(&key, 7, 3, 1);
    let child = EventHeader {
        seq: 8,
        self_parent: Some(ParentRef {
            id: parent.id(),
            birth_round: 3,
        }),
        ..header(&key, 8, 3, 2)
    };
    let cases = [
        (
            Evidence {
                first: sign(&key, &network_id, &parent),
                second: sign(&other, &network_id, &header(&other, 7, 3, 2)),
            },
            DaggerError::DifferentCreators,
        ),
        (
            Evidence {
                first: sign(&key, &network_id, &parent),
                second: sign(&key, &network_id, &child),
            },
            DaggerError::NotAConflict,
        ),
        (
            Evidence {
                first: sign(&key, &network_id, &parent),
                second: sign(&key, &network_id, &parent),
            },
            DaggerError::SameEvent,
        ),
    ];
    for (evidence, expected) in cases {
        let mut instructions = report(&net, &reporter, &evidence, 0);
        // Each signature check with the key that signed that header, so
        // the precompile passes and the program gets to judge the pair.
        let signer = EventHeader::decode(&evidence.second.header)
            .unwrap()
            .creator;
        instructions[1] = solana_ed25519_program::new_ed25519_instruction_with_signature(
            &signing_message(&network_id, &evidence.second.id()),
            &evidence.second.signature,
            &signer.0,
        );
        let failure = net.chain.fail(&instructions, &[&reporter]);
        assert!(failure.is(expected), "{expected:?}: {failure:?}");
    }

    let honest = fork(&net, 0);
    let mut truncated = honest.clone();
    truncated.second.header.pop();
    let mut instructions = report(&net, &reporter, &honest, 0);
    instructions[2] = report(&net, &reporter, &truncated, 0)[2].clone();
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(failure.is(DaggerError::MalformedHeader), "{failure:?}");

    // Operator 0's evidence against operator 2's account.
    let evidence = fork(&net, 0);
    let mut instructions = report(&net, &reporter, &evidence, 0);
    let wrong = report(&net, &reporter, &evidence, 2);
    instructions[2] = wrong[2].clone();
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(failure.is(DaggerError::CreatorNotOperator), "{failure:?}");
    assert_eq!(net.operator(0).stake, STAKE);
    assert_eq!(net.operator(2).stake, STAKE);
}

#[test]
fn signature_checks_must_verify_exactly_the_key_and_the_messages() {
    let mut net = Network::with_operators(&[STAKE, STAKE, STAKE, STAKE]);
    let reporter = net.chain.funded(LAMPORTS_PER_SOL);
    let network_id = net.config().network_id;
    let key = dalek(&net.operators[2].node);
    let evidence = fork(&net, 2);
    let honest = report(&net, &reporter, &evidence, 2);

    // Signed under another network id: the precompile accepts the signature,
    // the program refuses the network.
    let elsewhere = Evidence {
        first: sign(&key, &[7; 32], &header(&key, 7, 3, 1)),
        second: sign(&key, &[7; 32], &header(&key, 7, 3, 2)),
    };
    let mut instructions = ix::report_equivocation(
        &reporter.pubkey(),
        &net.operators[2].node.pubkey(),
        &[7; 32],
        &elsewhere.first,
        &elsewhere.second,
    );
    instructions[2] = report(&net, &reporter, &elsewhere, 2)[2].clone();
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(
        failure.is(DaggerError::SignatureCheckWrongNetwork),
        "{failure:?}"
    );

    // The first check verifies the reporter's own key over the same message.
    let mallory = SigningKey::from_bytes(&[42; 32]);
    let message = signing_message(&network_id, &evidence.first.id());
    let mut instructions = honest.clone();
    instructions[0] = solana_ed25519_program::new_ed25519_instruction_with_signature(
        &message,
        &mallory.sign(&message).to_bytes(),
        &mallory.verifying_key().to_bytes(),
    );
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(
        failure.is(DaggerError::SignatureCheckWrongKey),
        "{failure:?}"
    );

    // The second check verifies the operator's signature of another event.
    let unrelated = sign(&key, &network_id, &header(&key, 30, 9, 5));
    let mut instructions = honest.clone();
    instructions[1] = solana_ed25519_program::new_ed25519_instruction_with_signature(
        &signing_message(&network_id, &unrelated.id()),
        &unrelated.signature,
        &key.verifying_key().to_bytes(),
    );
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(
        failure.is(DaggerError::SignatureCheckWrongMessage),
        "{failure:?}"
    );

    // Both checks swapped: each verifies the other header.
    let mut instructions = honest.clone();
    instructions.swap(0, 1);
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(
        failure.is(DaggerError::SignatureCheckWrongMessage),
        "{failure:?}"
    );

    // The second check points its offsets into the first instruction.
    let mut instructions = honest.clone();
    let first_data = &honest[0].data;
    let offsets = solana_ed25519_program::Ed25519SignatureOffsets {
        signature_offset: u16::from_le_bytes([first_data[2], first_data[3]]),
        signature_instruction_index: 0,
        public_key_offset: u16::from_le_bytes([first_data[6], first_data[7]]),
        public_key_instruction_index: 0,
        message_data_offset: u16::from_le_bytes([first_data[10], first_data[11]]),
        message_data_size: u16::from_le_bytes([first_data[12], first_data[13]]),
        message_instruction_index: 0,
    };
    let mut pointing = solana_ed25519_program::offsets_to_ed25519_instruction(&[offsets]);
    pointing.data.extend_from_slice(&honest[1].data[16..]);
    instructions[1] = pointing;
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(
        failure.is(DaggerError::SignatureCheckElsewhere),
        "{failure:?}"
    );

    // No signature checks, one, or something else in their place.
    let failure = net.chain.fail(&honest[2..], &[&reporter]);
    assert!(
        failure.is(DaggerError::MissingSignatureCheck),
        "{failure:?}"
    );
    let failure = net.chain.fail(&honest[1..], &[&reporter]);
    assert!(
        failure.is(DaggerError::MissingSignatureCheck),
        "{failure:?}"
    );
    let mut instructions = honest.clone();
    instructions[0] = anchor_lang::solana_program::system_instruction::transfer(
        &reporter.pubkey(),
        &reporter.pubkey(),
        1,
    );
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(
        failure.is(DaggerError::MissingSignatureCheck),
        "{failure:?}"
    );

    // Two signatures in one check instruction are not what the program reads.
    let mut instructions = honest.clone();
    instructions[1].data[0] = 2;
    assert!(net.chain.send(&instructions, &[&reporter]).is_err());

    // A forged signature: the precompile fails the whole transaction.
    let mut forged = evidence.clone();
    forged.second.signature[0] ^= 1;
    let instructions = report(&net, &reporter, &forged, 2);
    let failure = net.chain.send(&instructions, &[&reporter]).unwrap_err();
    assert!(
        !matches!(
            failure.error,
            solana_sdk::transaction::TransactionError::InstructionError(2, _)
        ),
        "the program never ran: {:?}",
        failure.error
    );

    assert_eq!(net.operator(2).stake, STAKE, "nothing was slashed");
    // The honest report still goes through afterwards.
    net.chain.ok(&honest, &[&reporter]);
}

/// The evidence record's address is public (the pair's hash): lamports
/// sent there first do not stop the report.
#[test]
fn a_prefunded_evidence_address_does_not_block_the_report() {
    let mut net = Network::with_operators(&[STAKE, STAKE, STAKE, STAKE]);
    let reporter = net.chain.funded(LAMPORTS_PER_SOL);
    let evidence = fork(&net, 2);
    net.chain
        .airdrop(&pda::evidence(&evidence.hash()).0, 1_000_000);
    net.chain
        .ok(&report(&net, &reporter, &evidence, 2), &[&reporter]);
    assert_eq!(net.operator(2).stake, STAKE / 2);
    let record: EquivocationRecord = net
        .chain
        .account(&pda::evidence(&evidence.hash()).0)
        .unwrap();
    assert_eq!(record.reporter, reporter.pubkey());
}

/// Operator `index`, unbonding, waits out the period, withdraws, closes
/// its account, and registers its node key again: refused for good.
fn leave_and_try_to_return(net: &mut Network, index: usize) {
    let owner = net.operators[index].owner.insecure_clone();
    let node = net.operators[index].node.insecure_clone();
    net.chain.warp(UNBONDING_PERIOD + 1);
    net.chain.ok(
        &[ix::withdraw_stake(&owner.pubkey(), &node.pubkey())],
        &[&owner],
    );
    net.chain.ok(
        &[ix::close_operator(&owner.pubkey(), &node.pubkey())],
        &[&owner],
    );
    let failure = net.chain.fail(
        &[ix::register_operator(
            &owner.pubkey(),
            &node.pubkey(),
            "10.0.0.9:7000".into(),
            capacity(),
            STAKE,
            dagger_client::PriceFloor::default(),
        )],
        &[&owner, &node],
    );
    assert!(failure.is(DaggerError::NodeKeyRetired), "{failure:?}");
}

/// Events A, B, C by one key: (A, B) slashes the registration; the key
/// can never register again, so (A, C) has no second registration to
/// punish, and events of a past life cannot reach a new one.
#[test]
fn one_offence_is_punished_once_and_a_node_key_serves_one_registration() {
    let mut net = Network::with_operators(&[STAKE, STAKE, STAKE, STAKE]);
    let reporter = net.chain.funded(LAMPORTS_PER_SOL);
    let key = dalek(&net.operators[3].node);
    let network_id = net.config().network_id;
    let a = sign(&key, &network_id, &header(&key, 7, 3, 1));
    let b = sign(&key, &network_id, &header(&key, 7, 3, 2));
    let c = sign(&key, &network_id, &header(&key, 7, 3, 3));
    let ab = Evidence {
        first: a.clone(),
        second: b,
    };
    net.chain.ok(&report(&net, &reporter, &ab, 3), &[&reporter]);
    // It leaves (unbonding already: the slash removed it) and tries to
    // come back with the same key.
    leave_and_try_to_return(&mut net, 3);
    // (A, C) finds no operator to punish.
    let ac = Evidence {
        first: a,
        second: c,
    };
    let failure = net
        .chain
        .send(&report(&net, &reporter, &ac, 3), &[&reporter]);
    assert!(failure.is_err(), "a second punishment for one key");
}

/// The same for an operator that left without offending: its past life's
/// events can never slash anyone, because the key cannot come back.
#[test]
fn an_honest_operator_that_left_cannot_be_slashed_for_its_past_life() {
    let mut net = Network::with_operators(&[STAKE, STAKE, STAKE, STAKE]);
    let owner = net.operators[2].owner.insecure_clone();
    let node = net.operators[2].node.pubkey();
    net.chain
        .ok(&[ix::request_unstake(&owner.pubkey(), &node)], &[&owner]);
    leave_and_try_to_return(&mut net, 2);
    // A new key registers and is never exposed to the old key's events.
    net.register(STAKE);
}

/// The offender's own owner wallet and node key cannot report it and
/// recover part of the slash; anyone else can.
#[test]
fn the_offender_cannot_collect_its_own_reward() {
    let mut net = Network::with_operators(&[STAKE, STAKE, STAKE, STAKE]);
    let evidence = fork(&net, 0);
    let owner = net.operators[0].owner.insecure_clone();
    let node = net.operators[0].node.insecure_clone();
    for offender in [&owner, &node] {
        let failure = net
            .chain
            .fail(&report(&net, offender, &evidence, 0), &[offender]);
        assert!(failure.is(DaggerError::ReporterIsOffender), "{failure:?}");
    }
    assert_eq!(net.operator(0).stake, STAKE);
    let stranger = net.chain.funded(LAMPORTS_PER_SOL);
    net.chain
        .ok(&report(&net, &stranger, &evidence, 0), &[&stranger]);
    assert_eq!(net.operator(0).stake, STAKE / 2);
}

#[test]
fn pending_unbonding_and_exited_operators() {
    let mut net = Network::with_operators(&[STAKE, STAKE, STAKE, STAKE]);
    let reporter = net.chain.funded(LAMPORTS_PER_SOL);
    // A registered operator that was never admitted.
    let pending = net.register(STAKE);
    let before = net.config();
    let instructions = report(&net, &reporter, &fork(&net, pending), pending);
    net.chain.ok(&instructions, &[&reporter]);
    assert_eq!(net.operator(pending).status, OperatorStatus::Unbonding);
    assert_eq!(net.operator(pending).stake, STAKE / 2);
    let after = net.config();
    assert_eq!(after.total_active_stake, before.total_active_stake);
    assert_eq!(after.roster_epoch, before.roster_epoch, "no roster change");

    // An operator that already left is still liable while it unbonds...
    let owner = &net.operators[1].owner;
    let node = net.operators[1].node.pubkey();
    net.chain
        .ok(&[ix::request_unstake(&owner.pubkey(), &node)], &[owner]);
    let withdrawable_at = net.operator(1).withdrawable_at;
    let before = net.config();
    let instructions = report(&net, &reporter, &fork(&net, 1), 1);
    net.chain.ok(&instructions, &[&reporter]);
    assert_eq!(net.operator(1).stake, STAKE / 2);
    assert_eq!(net.operator(1).withdrawable_at, withdrawable_at);
    assert_eq!(net.config().total_active_stake, before.total_active_stake);

    // ...but not once its stake is gone.
    let owner = &net.operators[2].owner;
    let node = net.operators[2].node.pubkey();
    net.chain
        .ok(&[ix::request_unstake(&owner.pubkey(), &node)], &[owner]);
    net.chain.warp(UNBONDING_PERIOD + 1);
    let owner = &net.operators[2].owner;
    net.chain
        .ok(&[ix::withdraw_stake(&owner.pubkey(), &node)], &[owner]);
    let instructions = report(&net, &reporter, &fork(&net, 2), 2);
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(failure.is(DaggerError::NothingToSlash), "{failure:?}");
}

#[test]
fn nothing_can_be_reported_before_the_network_exists() {
    let mut net = Network::initialized();
    let index = net.register(STAKE);
    let reporter = net.chain.funded(LAMPORTS_PER_SOL);
    let instructions = report(&net, &reporter, &fork(&net, index), index);
    let failure = net.chain.fail(&instructions, &[&reporter]);
    assert!(failure.is(DaggerError::NotBootstrapped), "{failure:?}");
}

#[test]
fn the_network_id_is_fixed_at_finish_bootstrap_and_changes_with_the_roster() {
    let a = Network::with_operators(&[STAKE, STAKE, STAKE]);
    let b = Network::with_operators(&[STAKE, STAKE, STAKE]);
    let id = a.config().network_id;
    assert_ne!(id, [0; 32]);
    assert_ne!(
        id,
        b.config().network_id,
        "other operators, another network"
    );
    let unfinished = Network::initialized();
    assert_eq!(unfinished.config().network_id, [0; 32]);
}

/// The kinds of header pairs a creator can sign, conflicting or not.
#[derive(Debug, Clone, Copy)]
enum PairKind {
    Fork,
    BornEarlier,
    LyingChild,
    HonestChild,
    FarApartInOrder,
}

fn pair(key: &SigningKey, kind: PairKind, seq: u64, round: u64) -> (EventHeader, EventHeader) {
    let a = header(key, seq, round, 1);
    let b = match kind {
        PairKind::Fork => header(key, seq, round, 2),
        PairKind::BornEarlier => header(key, seq + 5, round - 1, 2),
        PairKind::LyingChild => EventHeader {
            self_parent: Some(ParentRef {
                id: a.id(),
                birth_round: round + 1,
            }),
            ..header(key, seq + 1, round + 1, 2)
        },
        PairKind::HonestChild => EventHeader {
            self_parent: Some(ParentRef {
                id: a.id(),
                birth_round: round,
            }),
            ..header(key, seq + 1, round + 1, 2)
        },
        PairKind::FarApartInOrder => header(key, seq + 5, round + 2, 2),
    };
    (a, b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the stake and the settings, a valid pair moves exactly the
    /// documented amounts and conserves lamports; a pair that can lie on
    /// one honest chain moves nothing.
    #[test]
    fn slashing_is_exact_and_conserves_lamports(
        stake in MIN_STAKE..20_000 * LAMPORTS_PER_SOL,
        slash_bps in dagger_client::constants::MIN_EQUIVOCATION_SLASH_BPS..=10_000,
        reward_bps in 0u16..=5_000,
        kind in prop_oneof![
            Just(PairKind::Fork),
            Just(PairKind::BornEarlier),
            Just(PairKind::LyingChild),
            Just(PairKind::HonestChild),
            Just(PairKind::FarApartInOrder),
        ],
        seq in 1u64..1_000_000,
        round in 2u64..1_000_000,
        swap in any::<bool>(),
    ) {
        let mut net = Network::with_operators(&[stake, stake, stake, stake]);
        let admin = &net.admin;
        net.chain.ok(
            &[ix::update_config(
                &admin.pubkey(),
                dagger_client::UpdateConfigArgs {
                    equivocation_slash_bps: Some(slash_bps),
                    reporter_reward_bps: Some(reward_bps),
                    ..Default::default()
                },
            )],
            &[admin],
        );
        let reporter = net.chain.funded(LAMPORTS_PER_SOL);
        let key = dalek(&net.operators[3].node);
        let network_id = net.config().network_id;
        let (a, b) = pair(&key, kind, seq, round);
        let (a, b) = if swap { (b, a) } else { (a, b) };
        let evidence = Evidence {
            first: sign(&key, &network_id, &a),
            second: sign(&key, &network_id, &b),
        };
        let operator = net.operators[3].account();
        let watched = [
            reporter.pubkey(),
            pda::stake_vault(&operator).0,
            pda::fee_vault().0,
            pda::evidence(&evidence.hash()).0,
        ];
        let before = balances(&net, &watched);
        let instructions = report(&net, &reporter, &evidence, 3);
        let result = net.chain.send(&instructions, &[&reporter]);
        let after = balances(&net, &watched);
        let conflicting = !matches!(kind, PairKind::HonestChild | PairKind::FarApartInOrder);
        prop_assert_eq!(evidence.check(&network_id).is_ok(), conflicting);
        if conflicting {
            prop_assert!(result.is_ok(), "{:?}", result.err());
            let slashed = (stake as u128 * slash_bps as u128 / 10_000) as u64;
            let reward = (slashed as u128 * reward_bps as u128 / 10_000) as u64;
            prop_assert_eq!(after[1], before[1] - slashed);
            prop_assert_eq!(after[2], before[2] + slashed - reward);
            prop_assert_eq!(before.iter().sum::<u64>(), after.iter().sum::<u64>() + 15_000);
            prop_assert_eq!(net.operator(3).stake, stake - slashed);
        } else {
            let failure = result.unwrap_err().program();
            prop_assert!(failure.is(DaggerError::NotAConflict), "{:?}", failure);
            prop_assert_eq!(&after[1..3], &before[1..3]);
        }
    }
}
