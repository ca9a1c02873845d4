//! End to end, on a running devnet: the economic attacks on the on-chain
//! quorum do not work. An operator spamming `add_stake` does not stop
//! requests from going active; a tally left behind by a cancelled request
//! is closed by the node that paid for it, which gets its rent back; and
//! requests only go to operators whose price floor they meet.

mod e2e;

use std::time::{Duration, Instant};

use dagger_client::{
    instructions as ix, pda, Attestation, PriceFloor, Request, RequestStatus, UpdateOperatorArgs,
    Vote,
};
use dagger_devnet::devnet::{Devnet, DevnetOptions};
use e2e::{funded_customer, spec};
use solana_sdk::signer::Signer;

async fn wait_until(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stake_spam_orphaned_tallies_and_price_floors_on_a_running_devnet() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let reader = devnet.reader.clone();
    let customer = funded_customer(&reader).await;

    // 1. Operator 3 calls add_stake every 400 ms (1 lamport; it stays under
    // the cap). Before, each call started a new roster epoch and restarted
    // every tally; now a request still goes active within seconds.
    let epoch = reader.config().await.unwrap().roster_epoch;
    let spammer = devnet.keys.operators[3].owner.insecure_clone();
    let spammer_node = devnet.keys.operators[3].node.pubkey();
    let spam_reader = reader.clone();
    let spam = tokio::spawn(async move {
        let mut sent = 0u32;
        loop {
            let add = ix::add_stake(&spammer.pubkey(), &spammer_node, 1);
            if spam_reader.send(&[add], &spammer, &[]).await.is_ok() {
                sent += 1;
            }
            if sent >= 200 {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    });
    let paid = Instant::now();
    let request = reader
        .pay_for_vm(&customer, 1, spec(), 1_000, 600)
        .await
        .unwrap();
    wait_until(
        "activation under add_stake spam",
        Duration::from_secs(30),
        async || {
            reader
                .one::<Request>(&request)
                .await
                .unwrap()
                .is_some_and(|r| r.status == RequestStatus::Active)
        },
    )
    .await;
    let took = paid.elapsed();
    spam.abort();
    assert_eq!(reader.config().await.unwrap().roster_epoch, epoch);
    assert!(
        reader
            .one::<dagger_client::Operator>(
                &pda::operator(&devnet.keys.operators[3].node.pubkey()).0
            )
            .await
            .unwrap()
            .unwrap()
            .stake
            > devnet.options.stake,
        "the spam landed"
    );
    eprintln!("active {took:?} after paying, under add_stake spam");

    // 2. Every operator raises its price floor above what the next request
    // pays: consensus assigns it to nobody (no node votes on it).
    let high = PriceFloor {
        per_vcpu: 1_000_000,
        per_memory_gib: 0,
        per_disk_gib: 0,
    };
    for op in &devnet.keys.operators {
        let update = ix::update_operator(
            &op.owner.pubkey(),
            &op.node.pubkey(),
            UpdateOperatorArgs {
                price_floor: Some(high),
                ..Default::default()
            },
        );
        reader.send(&[update], &op.owner, &[]).await.unwrap();
    }
    // Let the nodes see the new floors through consensus.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cheap = reader
        .pay_for_vm(&customer, 2, spec(), 1_000, 600)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let record = reader.one::<Request>(&cheap).await.unwrap().unwrap();
    assert_eq!(
        record.status,
        RequestStatus::Open,
        "nobody accepts that price"
    );

    // 3. A node votes first to terminate the running lease, opening the
    // tally and paying its rent; the customer closes the lease right after.
    // The node's attester closes the orphaned tally and gets the rent back.
    // (A provisioning vote for the cheap request is refused now: the
    // program checks the assignee's price floor.)
    let voter = devnet.keys.operators[0].node.insecure_clone();
    let refused = reader
        .attest(
            &voter,
            reader.config().await.unwrap().roster_epoch,
            Vote::Provision {
                request: cheap,
                nonce: record.nonce,
                operator: pda::operator(&voter.pubkey()).0,
                endpoint_hash: [7; 32],
            },
        )
        .await;
    assert!(
        refused.is_err(),
        "a vote below the assignee's floor counted"
    );
    let before = reader.rpc().get_balance(&voter.pubkey()).await.unwrap();
    let lease = reader.one::<Request>(&request).await.unwrap().unwrap();
    let vote = Vote::Terminate {
        request,
        nonce: lease.nonce,
        decision: [7; 32],
    };
    let epoch = reader.config().await.unwrap().roster_epoch;
    reader.attest(&voter, epoch, vote).await.unwrap();
    let tally = pda::attestation(&vote.subject()).0;
    assert!(reader.one::<Attestation>(&tally).await.unwrap().is_some());
    let rent = reader.rpc().get_balance(&tally).await.unwrap();
    assert!(rent > 40_000_000, "the tally holds its rent: {rent}");
    reader
        .send(
            &[ix::close_lease(
                &customer.pubkey(),
                &request,
                &lease.assigned_operator,
            )],
            &customer,
            &[],
        )
        .await
        .unwrap();
    wait_until(
        "the orphaned tally to close",
        Duration::from_secs(30),
        async || reader.one::<Attestation>(&tally).await.unwrap().is_none(),
    )
    .await;
    // The voter paid the vote's and the close's fees, and nothing else.
    let after = reader.rpc().get_balance(&voter.pubkey()).await.unwrap();
    assert!(
        before - after <= 20_000,
        "node key lost {} lamports (tally rent {rent})",
        before - after
    );
    devnet.stop().await;
}
