//! Prints, per user flow, the transactions it takes and the rent-exempt
//! lamports each account locks, measured by running the flows against the
//! program in LiteSVM. `cargo run -p dagger-tests --example rent_report`

use anchor_lang::Space;
use dagger_client::{
    instructions as ix, pda, Attestation, Config, Escrow, Operator, Request, StakeVault,
};
use dagger_tests::*;
use solana_sdk::signer::Signer;

fn row(chain: &TestChain, name: &str, space: usize) {
    let rent = chain.rent(space);
    println!("| {name} | {space} | {rent} | {:.6} |", rent as f64 / 1e9);
}

fn main() {
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    println!("## Accounts\n");
    println!("| account | bytes | rent-exempt lamports | SOL |");
    println!("|---|---|---|---|");
    row(&net.chain, "Config", 8 + Config::INIT_SPACE);
    row(&net.chain, "Operator", 8 + Operator::INIT_SPACE);
    row(&net.chain, "StakeVault", 8 + StakeVault::INIT_SPACE);
    row(
        &net.chain,
        "NodeKeyRecord",
        8 + dagger_client::NodeKeyRecord::INIT_SPACE,
    );
    row(&net.chain, "Request", 8 + Request::INIT_SPACE);
    row(&net.chain, "Escrow", 8 + Escrow::INIT_SPACE);
    row(&net.chain, "Attestation", 8 + Attestation::INIT_SPACE);
    row(
        &net.chain,
        "EquivocationRecord",
        8 + dagger_client::EquivocationRecord::INIT_SPACE,
    );

    println!("\n## Flows (4 operators of equal stake; a quorum is 3 of 4)\n");
    println!("| flow | transactions | accounts created (rent locked) | accounts closed (rent returned) |");
    println!("|---|---|---|---|");

    // Request: one transaction, two accounts.
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    let locked = net.chain.lamports(&request) + net.chain.rent(8 + Escrow::INIT_SPACE);
    println!("| request a VM | 1 | Request + Escrow ({locked}) | — |");

    let tally = net.chain.rent(8 + Attestation::INIT_SPACE);
    // Attest to quorum.
    let vote = net.provision_vote(&request, 0);
    let mut votes = 0;
    while net.request(&request).unwrap().status == dagger_client::RequestStatus::Open {
        net.vote(votes, vote).expect("vote");
        votes += 1;
    }
    println!("| attest to quorum (provision) | {votes} attest | Attestation ({tally}, first voter) | Attestation at quorum |");

    // Claim, then close.
    net.chain.warp(600);
    let op = &net.operators[0];
    let (owner, node) = (op.owner.insecure_clone(), op.node.pubkey());
    net.chain.ok(
        &[ix::claim(
            &owner.pubkey(),
            &node,
            &request,
            &customer.pubkey(),
        )],
        &[&owner],
    );
    println!("| claim (lease running) | 1 | — | — |");
    let op = &net.operators[0];
    let returned = net.chain.lamports(&request) + net.chain.rent(8 + Escrow::INIT_SPACE);
    net.chain.ok(
        &[ix::close_lease(&customer.pubkey(), &request, &op.account())],
        &[&customer],
    );
    assert!(!net.chain.exists(&request) && !net.chain.exists(&pda::escrow(&request).0));
    println!("| close lease | 1 | — | Request + Escrow ({returned}, to the customer) |");

    // Register: one transaction; the operator's two accounts stay while it is registered.
    let mut net = Network::with_operators(&[MIN_STAKE; 4]);
    let index = net.register(MIN_STAKE);
    let operator = net.operators[index].account();
    let locked = net.chain.lamports(&operator)
        + net.chain.rent(8 + StakeVault::INIT_SPACE)
        + net.chain.rent(8 + dagger_client::NodeKeyRecord::INIT_SPACE);
    println!(
        "| register operator | 1 | Operator + StakeVault + NodeKeyRecord ({locked}) | — (vault on withdraw) |"
    );

    // Admission after bootstrap: a quorum of attest transactions.
    let vote = dagger_client::Vote::Admit {
        operator,
        nonce: net.operator(index).nonce,
        decision: [0; 32],
    };
    let mut votes = 0;
    while net.operator(index).status != dagger_client::OperatorStatus::Active {
        net.vote(votes, vote).expect("vote");
        votes += 1;
    }
    println!("| admit by quorum | {votes} attest | Attestation ({tally}, first voter) | Attestation at quorum |");
}
