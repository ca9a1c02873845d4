//! End to end: money goes back to the customer without any operator.

mod e2e;

use e2e::{funded_customer, spec};
use std::time::Duration;

use dagger_client::{instructions as ix, Request};
use dagger_devnet::devnet::{Devnet, DevnetOptions};
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signature::Keypair, signer::Signer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_before_provisioning_and_reclaim_after_the_deadline_with_all_nodes_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::start(DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        provisioning_timeout: 10,
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    // Every node goes down: nobody can provision anything now.
    for i in 0..devnet.nodes.len() {
        devnet.stop_node(i).await;
    }
    let reader = devnet.reader.clone();
    let customer = funded_customer(&reader).await;
    let start = reader.rpc().get_balance(&customer.pubkey()).await.unwrap();

    // Cancel while open: everything back but the two transaction fees.
    let request = reader
        .pay_for_vm(&customer, 1, spec(), 1_000, 600)
        .await
        .unwrap();
    reader
        .send(
            &[ix::cancel_request(&customer.pubkey(), &request)],
            &customer,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        reader.rpc().get_balance(&customer.pubkey()).await.unwrap(),
        start - 10_000
    );
    assert!(reader.one::<Request>(&request).await.unwrap().is_none());

    // Reclaim after the deadline, sent by a stranger: the customer gets it all back.
    let before = reader.rpc().get_balance(&customer.pubkey()).await.unwrap();
    let request = reader
        .pay_for_vm(&customer, 2, spec(), 1_000, 600)
        .await
        .unwrap();
    let keeper = Keypair::new();
    reader
        .airdrop(&keeper.pubkey(), LAMPORTS_PER_SOL)
        .await
        .unwrap();
    let early = reader
        .send(
            &[ix::reclaim_expired(&request, &customer.pubkey())],
            &keeper,
            &[],
        )
        .await;
    assert!(early.is_err(), "the deadline has not passed yet");
    tokio::time::sleep(Duration::from_secs(12)).await;
    reader
        .send(
            &[ix::reclaim_expired(&request, &customer.pubkey())],
            &keeper,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        reader.rpc().get_balance(&customer.pubkey()).await.unwrap(),
        before - 5_000
    );
    assert!(reader.one::<Request>(&request).await.unwrap().is_none());
    devnet.stop().await;
}
