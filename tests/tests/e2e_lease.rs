//! End to end: the embedded chain, four operator nodes over QUIC, and the
//! program, driven like a customer would.

use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use dagger_client::{instructions as ix, pda, Request, RequestStatus, VmSpec};
use dagger_devnet::devnet::{Devnet, DevnetOptions};
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signature::Keypair, signer::Signer};

fn spec() -> VmSpec {
    VmSpec {
        vcpus: 2,
        memory_mib: 2_048,
        disk_gib: 20,
        region: 1,
        image_id: [5; 32],
        ssh_key: [42; 32],
    }
}

async fn devnet(dir: &tempfile::TempDir) -> Devnet {
    Devnet::start(DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        ..DevnetOptions::default()
    })
    .await
    .expect("devnet starts")
}

async fn wait_for(
    devnet: &Devnet,
    request: &Pubkey,
    within: Duration,
    done: impl Fn(Option<&Request>) -> bool,
) -> Option<Request> {
    let deadline = Instant::now() + within;
    loop {
        let current = devnet.reader.one::<Request>(request).await.unwrap();
        if done(current.as_ref()) {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "request {request} never reached the expected state: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn balance(devnet: &Devnet, key: &Pubkey) -> u64 {
    devnet.reader.rpc().get_balance(key).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pay_provision_attest_claim_close_with_exact_balances() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = devnet(&dir).await;
    let customer = Keypair::new();
    devnet
        .reader
        .airdrop(&customer.pubkey(), 100 * LAMPORTS_PER_SOL)
        .await
        .unwrap();

    let price = 1_000u64;
    let duration = 3_600u64;
    let request = devnet
        .reader
        .pay_for_vm(&customer, 1, spec(), price, duration)
        .await
        .unwrap();

    // Consensus assigns it, the operator's node provisions and reports, a
    // quorum attests: the lease becomes active.
    let active = wait_for(&devnet, &request, Duration::from_secs(90), |r| {
        r.is_some_and(|r| r.status == RequestStatus::Active)
    })
    .await
    .unwrap();
    let assigned = devnet
        .keys
        .operators
        .iter()
        .position(|op| pda::operator(&op.node.pubkey()).0 == active.assigned_operator)
        .expect("assigned to one of the devnet operators");
    let node_id = dagger_node::identity::display_id(
        &devnet.keys.operators[assigned].node.pubkey().to_bytes(),
    );
    let endpoint = format!("sim://{node_id}/{request}");
    assert_eq!(
        active.endpoint_hash,
        *blake3::hash(endpoint.as_bytes()).as_bytes()
    );

    // Let it run, then the operator claims: its share straight to its
    // wallet, the fee into the fee vault.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let owner = &devnet.keys.operators[assigned].owner;
    let fee_vault = pda::fee_vault().0;
    let (owner_before, fees_before) = (
        balance(&devnet, &owner.pubkey()).await,
        balance(&devnet, &fee_vault).await,
    );
    devnet
        .reader
        .send(
            &[ix::claim(
                &owner.pubkey(),
                &devnet.keys.operators[assigned].node.pubkey(),
                &request,
                &customer.pubkey(),
            )],
            owner,
            &[],
        )
        .await
        .unwrap();
    let after_claim = devnet
        .reader
        .one::<Request>(&request)
        .await
        .unwrap()
        .unwrap();
    let paid = after_claim.paid_out;
    assert!(paid > 0 && paid % price == 0, "paid {paid}");
    let fee = paid * 250 / 10_000;
    assert_eq!(
        balance(&devnet, &owner.pubkey()).await,
        owner_before + paid - fee - 5_000
    );
    assert_eq!(balance(&devnet, &fee_vault).await, fees_before + fee);

    // The customer ends the lease: the operator's share of what accrued
    // since goes to its stake vault (held for its owner), the fee to the fee
    // vault, everything else to the customer, and both accounts close.
    let escrow = pda::escrow(&request).0;
    let locked = balance(&devnet, &escrow).await + balance(&devnet, &request).await;
    let operator_account = pda::operator(&devnet.keys.operators[assigned].node.pubkey()).0;
    let vault = pda::stake_vault(&operator_account).0;
    let (customer_before, vault_before, fees_before) = (
        balance(&devnet, &customer.pubkey()).await,
        balance(&devnet, &vault).await,
        balance(&devnet, &fee_vault).await,
    );
    devnet
        .reader
        .send(
            &[ix::close_lease(
                &customer.pubkey(),
                &request,
                &operator_account,
            )],
            &customer,
            &[],
        )
        .await
        .unwrap();
    let to_owner = balance(&devnet, &vault).await - vault_before;
    let to_fees = balance(&devnet, &fee_vault).await - fees_before;
    let to_customer = balance(&devnet, &customer.pubkey()).await + 5_000 - customer_before;
    assert_eq!(
        to_owner + to_fees + to_customer,
        locked,
        "every lamport accounted for"
    );
    assert!(devnet
        .reader
        .one::<Request>(&request)
        .await
        .unwrap()
        .is_none());
    // Deposit = paid to the operator and the fee vault + refunded; the rest
    // of what came back is the two accounts' rent.
    let total_paid = paid + to_owner + to_fees;
    assert_eq!(total_paid % price, 0);
    let rent = locked - (active.deposit - paid);
    assert_eq!(total_paid + (to_customer - rent), active.deposit);
    devnet.stop().await;
}

/// The README's first command runs this flow (`dagger-devnet --demo`); with
/// simulated VMs there is no endpoint to reach, and the flow still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_devnet_demo_completes_with_simulated_vms() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = devnet(&dir).await;
    let steps = dagger_devnet::devnet::demo(&devnet, |_| {})
        .await
        .expect("the demo completes");
    let names: Vec<&str> = steps.iter().map(|s| s.step).collect();
    assert_eq!(names, ["funded", "paid", "active", "claimed", "closed"]);
    devnet.stop().await;
}
