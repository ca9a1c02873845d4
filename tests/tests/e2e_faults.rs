//! End to end: byzantine attestations and node crashes.

mod e2e;

use e2e::{funded_customer, node_config_file, spawn_node, spec, wait_active};
use std::time::Duration;

use dagger_client::{instructions as ix, pda, Request, RequestStatus, Vote};
use dagger_devnet::devnet::{Devnet, DevnetOptions};
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signature::Keypair, signer::Signer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_byzantine_minority_cannot_release_or_move_funds() {
    let dir = tempfile::tempdir().unwrap();
    // Node 3 is byzantine: its node stays down and its key votes lies.
    let mut devnet = Devnet::start_chain(DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let reader = devnet.reader.clone();
    let liar = devnet.keys.operators[3].node.insecure_clone();
    let liar_operator = pda::operator(&liar.pubkey()).0;
    let customer = funded_customer(&reader).await;
    let request = reader
        .pay_for_vm(&customer, 7, spec(), 1_000, 600)
        .await
        .unwrap();
    let escrow = pda::escrow(&request).0;
    let escrowed = reader.rpc().get_balance(&escrow).await.unwrap();
    let nonce = reader
        .one::<Request>(&request)
        .await
        .unwrap()
        .unwrap()
        .nonce;

    // The liar votes first: the lease for itself, at a bogus endpoint.
    let epoch = reader.config().await.unwrap().roster_epoch;
    reader
        .attest(
            &liar,
            epoch,
            Vote::Provision {
                request,
                nonce,
                operator: liar_operator,
                endpoint_hash: [0xbb; 32],
            },
        )
        .await
        .unwrap();
    let still_open = reader.one::<Request>(&request).await.unwrap().unwrap();
    assert_eq!(
        still_open.status,
        RequestStatus::Open,
        "1 of 4 cannot decide"
    );
    assert_eq!(reader.rpc().get_balance(&escrow).await.unwrap(), escrowed);

    // The honest three provision it as consensus decided. They start only
    // now: running, they could decide before the liar's vote lands, and
    // the check above would no longer test what 1 of 4 can do.
    for i in 0..3 {
        devnet.start_node(i).await.unwrap();
    }
    let active = wait_active(&devnet, &request).await;
    assert_ne!(
        active.assigned_operator, liar_operator,
        "not the liar's outcome"
    );
    assert_ne!(active.endpoint_hash, [0xbb; 32]);

    // The liar alone cannot terminate the lease either, nor claim its money.
    let epoch = reader.config().await.unwrap().roster_epoch;
    reader
        .attest(
            &liar,
            epoch,
            Vote::Terminate {
                request,
                nonce,
                decision: [1; 32],
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lease = reader.one::<Request>(&request).await.unwrap().unwrap();
    assert_eq!(lease.status, RequestStatus::Active);
    let liar_owner = devnet.keys.operators[3].owner.insecure_clone();
    let stolen = reader
        .send(
            &[ix::claim(
                &liar_owner.pubkey(),
                &liar.pubkey(),
                &request,
                &customer.pubkey(),
            )],
            &liar_owner,
            &[],
        )
        .await;
    assert!(stolen.is_err(), "only the assigned operator can claim");
    assert_eq!(
        reader
            .one::<Request>(&request)
            .await
            .unwrap()
            .unwrap()
            .paid_out,
        0,
        "nothing left the escrow"
    );
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_flow_restarts_without_double_votes_or_losses() {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::start_chain(DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    for i in [0, 2, 3] {
        devnet.start_node(i).await.unwrap();
    }
    // Node 1 is a separate process, so it can be killed with SIGKILL.
    let config = dir.path().join("node1.toml");
    let c = &devnet.configs[1];
    node_config_file(&devnet, 1, c.listen, &c.data_dir, &config);
    let log = dir.path().join("node1.log");
    let mut child = spawn_node(&config, &log);

    let reader = devnet.reader.clone();
    let customer = Keypair::new();
    reader
        .airdrop(&customer.pubkey(), 50 * LAMPORTS_PER_SOL)
        .await
        .unwrap();
    let mut requests = Vec::new();
    for id in 0..6u64 {
        reader
            .send(
                &[ix::create_request(
                    &customer.pubkey(),
                    id,
                    spec(),
                    1_000,
                    600,
                )],
                &customer,
                &[],
            )
            .await
            .unwrap();
        requests.push(pda::request(&customer.pubkey(), id).0);
        if id == 1 {
            // kill -9 in the middle of gossiping, provisioning and attesting.
            tokio::time::sleep(Duration::from_millis(300)).await;
            child.kill().unwrap();
            child.wait().unwrap();
        }
        if id == 4 {
            child = spawn_node(&config, &log);
        }
    }
    // Nothing lost: every request becomes an active lease.
    for request in &requests {
        wait_active(&devnet, request).await;
    }
    // Nothing attested twice: every tally closed exactly at its quorum (a
    // second vote in an epoch is refused by the program and would show as
    // an error in the restarted node's log), and no node saw a fork.
    for request in &requests {
        let nonce = reader.one::<Request>(request).await.unwrap().unwrap().nonce;
        let tally = pda::attestation(&dagger_client::Subject::Provision {
            request: *request,
            nonce,
        })
        .0;
        assert!(reader
            .one::<dagger_client::Attestation>(&tally)
            .await
            .unwrap()
            .is_none());
    }
    for i in [0, 2, 3] {
        let status = devnet.nodes[i]
            .as_ref()
            .unwrap()
            .core
            .status()
            .await
            .unwrap();
        assert_eq!(
            status.equivocations, 0,
            "node {i} saw a fork (a self-fork after restart?)"
        );
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("ledger recovered"), "{text}");
    assert!(!text.contains("AlreadyVoted"), "{text}");
    child.kill().unwrap();
    child.wait().unwrap();
    devnet.stop().await;
}

/// A node that lost its ledger (a wiped data dir, its key and signing
/// record kept) replays history from genesis, which knows none of today's
/// leases: it must not destroy the VMs customers pay for. And a lease whose
/// VM is gone (lost with the disk) must stop billing: the node reports it
/// failed and a quorum terminates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_ledger_keeps_leased_vms_and_a_vanished_vm_stops_billing() {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::start(DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let reader = devnet.reader.clone();
    let customer = funded_customer(&reader).await;
    let mut leases = Vec::new();
    for id in 0..2 {
        let request = reader
            .pay_for_vm(&customer, 20 + id, spec(), 1_000, 3_600)
            .await
            .unwrap();
        leases.push((request, wait_active(&devnet, &request).await));
    }
    // The node running the first lease loses its ledger.
    let (kept, lease) = leases[0].clone();
    let i = (0..devnet.keys.operators.len())
        .find(|i| {
            pda::operator(&devnet.keys.operators[*i].node.pubkey()).0 == lease.assigned_operator
        })
        .expect("assigned to a devnet operator");
    let ours: Vec<_> = leases
        .iter()
        .filter(|(_, l)| l.assigned_operator == lease.assigned_operator)
        .map(|(r, _)| *r)
        .collect();
    devnet.stop_node(i).await;
    let data = devnet.configs[i].data_dir.clone();
    for file in ["ledger.redb", "events.log"] {
        std::fs::remove_file(data.join(file)).unwrap();
    }
    devnet.start_node(i).await.unwrap();
    let reference = devnet.nodes[(i + 1) % 4].as_ref().unwrap().core.clone();
    let node = devnet.nodes[i].as_ref().unwrap().core.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (mine, theirs) = (
            node.status().await.unwrap(),
            reference.status().await.unwrap(),
        );
        if mine.last_decided_round > 0 && mine.last_decided_round + 3 >= theirs.last_decided_round {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node never caught up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Caught up, and for a while after: its VMs are all still there.
    for _ in 0..20 {
        let vms = devnet.provisioners[i].as_ref().unwrap().vms();
        for request in &ours {
            assert!(
                vms.contains(request),
                "the VM of an active lease was destroyed"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (request, _) in &leases {
        let r = reader.one::<Request>(request).await.unwrap().unwrap();
        assert_eq!(r.status, RequestStatus::Active);
    }

    // Its VM vanishes (its disk went with the ledger): the lease ends and
    // accrual stops there.
    let provisioner = devnet.provisioners[i].clone().unwrap();
    provisioner.terminate(&kept).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let ended = loop {
        let r = reader.one::<Request>(&kept).await.unwrap().unwrap();
        if r.status == RequestStatus::Terminated {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a lease whose VM is gone kept billing"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(ended.ended_at >= ended.lease_start);
    assert_eq!(
        ended.accrued(ended.ended_at + 3_600),
        ended.accrued(ended.ended_at)
    );
    // The other lease is untouched, and nobody saw a fork.
    let other = reader.one::<Request>(&leases[1].0).await.unwrap().unwrap();
    assert_eq!(other.status, RequestStatus::Active);
    for (k, n) in devnet.nodes.iter().enumerate() {
        let status = n.as_ref().unwrap().core.status().await.unwrap();
        assert_eq!(status.equivocations, 0, "node {k} saw a fork");
    }
    devnet.stop().await;
}
