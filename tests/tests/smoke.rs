use dagger_client::{instructions as ix, pda, RequestStatus};
use dagger_tests::*;
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signer::Signer};

#[test]
fn full_flow_smoke() {
    let mut net = Network::with_operators(&[MIN_STAKE, MIN_STAKE, MIN_STAKE, MIN_STAKE]);
    let config = net.config();
    assert!(config.bootstrapped);
    assert_eq!(config.active_operators, 4);
    let customer = net.customer();
    let request = net.create_request(&customer, 1, 1_000, 3_600);
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Open);
    net.provision(&request, 0);
    assert_eq!(net.request(&request).unwrap().status, RequestStatus::Active);
    net.chain.warp(100);
    let op = &net.operators[0];
    let treasury = net.treasury.pubkey();
    net.chain.ok(
        &[ix::claim(
            &op.owner.pubkey(),
            &op.node.pubkey(),
            &request,
            &customer.pubkey(),
            &treasury,
        )],
        &[&op.owner],
    );
    let _ = LAMPORTS_PER_SOL;
    let _ = pda::config();
}
