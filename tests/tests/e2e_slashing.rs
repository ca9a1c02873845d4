//! End to end: an operator runs two copies of its node with one key (the
//! classic way to equivocate: both sign events at the same positions). The
//! honest nodes detect the forks, report the evidence on-chain on their
//! own, the operator is slashed and leaves the roster, and leases keep
//! going active without it. The `dagger slash` CLI then finds the pair (or
//! its operator) already dealt with, and refuses a tampered one before
//! paying anything.

mod e2e;

use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use dagger_client::{
    evidence::Evidence, pda, Config, EquivocationRecord, Operator, OperatorStatus,
};
use e2e::{
    binary, devnet_with_nodes, funded_customer, get_json, node_config_file, spawn_node, spec,
    wait_active,
};
use solana_sdk::signer::Signer;

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn status(api: std::net::SocketAddr) -> serde_json::Value {
    get_json(&format!("http://{api}/status")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_that_equivocates_is_slashed_and_removed_and_leases_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = devnet_with_nodes(dir.path(), 4).await;
    let reader = devnet.reader.clone();
    let customer = funded_customer(&reader).await;
    let first = reader
        .pay_for_vm(&customer, 1, spec(), 1_000, 600)
        .await
        .unwrap();
    wait_active(&devnet, &first).await;

    // The byzantine operator starts a second node with node 3's key and
    // an empty ledger, listening elsewhere. Beside the running node it is
    // refused: one process at a time uses a signing record (two would
    // overwrite each other's reservations, or one would stop on a failed
    // write and leave no fork to find).
    let twin_config = dir.path().join("twin.toml");
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    node_config_file(&devnet, 3, listen, &dir.path().join("twin"), &twin_config);
    let refused_log = dir.path().join("refused.log");
    let refused = spawn_node(&twin_config, &refused_log).wait().unwrap();
    let log = std::fs::read_to_string(&refused_log).unwrap();
    assert!(!refused.success(), "{log}");
    assert!(log.contains("is in use by another process"), "{log}");
    // So it takes a copy of the record along, as to another machine.
    let record = dagger_node::signing_record::default_path(&devnet.configs[3].identity);
    let twin_record = dir.path().join("twin-record");
    std::fs::copy(&record, &twin_record).unwrap();
    let mut config = std::fs::read_to_string(&twin_config).unwrap();
    config.push_str(&format!(
        "signing_record = {:?}\n",
        twin_record.display().to_string()
    ));
    std::fs::write(&twin_config, config).unwrap();
    let mut twin = spawn_node(&twin_config, &dir.path().join("twin.log"));

    let byzantine = devnet.keys.operators[3].node.pubkey();
    let operator_address = pda::operator(&byzantine).0;
    let stake = devnet.options.stake;
    let deadline = Instant::now() + Duration::from_secs(120);
    let slashed: Operator = loop {
        let operator = reader
            .one::<Operator>(&operator_address)
            .await
            .unwrap()
            .unwrap();
        if operator.equivocation != [0; 32] {
            break operator;
        }
        if Instant::now() > deadline {
            let _ = twin.kill();
            let log = std::fs::read_to_string(dir.path().join("twin.log")).unwrap_or_default();
            for i in 0..3 {
                eprintln!(
                    "node {i}: {:?}",
                    devnet.nodes[i].as_ref().unwrap().core.status().await
                );
            }
            panic!(
                "node 3 was never slashed; twin log tail:\n{}",
                &log[log.len().saturating_sub(4000)..]
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    twin.kill().unwrap();
    twin.wait().unwrap();

    // Slashed by the documented share, out of the active set, reported by
    // one of the honest nodes, which earned the reward.
    let config: Config = reader.config().await.unwrap();
    let expected = (stake as u128 * config.equivocation_slash_bps as u128 / 10_000) as u64;
    assert_eq!(slashed.stake, stake - expected);
    assert_eq!(slashed.slashed, expected);
    assert_eq!(slashed.status, OperatorStatus::Unbonding);
    assert_eq!(config.active_operators, 3);
    assert_eq!(config.total_active_stake, 3 * stake);
    let record = reader
        .one::<EquivocationRecord>(&pda::evidence(&slashed.equivocation).0)
        .await
        .unwrap()
        .expect("the pair is on record");
    let honest: Vec<Pubkey> = (0..3)
        .map(|i| devnet.keys.operators[i].node.pubkey())
        .collect();
    assert!(
        honest.contains(&record.reporter),
        "reported by {}",
        record.reporter
    );
    assert_eq!(
        record.reporter_reward,
        (expected as u128 * config.reporter_reward_bps as u128 / 10_000) as u64
    );

    // The honest nodes hold the proof and serve it; it checks against the
    // network id the program recorded.
    let api = devnet.api(0).unwrap();
    let served = get_json(&format!("http://{api}/evidence")).await;
    let served = served.as_array().expect("a list of pairs");
    assert!(!served.is_empty());
    let evidence: Evidence = serde_json::from_value(served[0].clone()).unwrap();
    let checked = evidence.check(&config.network_id).unwrap();
    assert_eq!(checked.node_key, byzantine);
    assert_eq!(served[0]["creator"], byzantine.to_string());

    // The honest nodes take node 3 out of their roster (ordered through
    // consensus from what the chain shows), and leases go on without it.
    let deadline = Instant::now() + Duration::from_secs(60);
    // (`roster` counts the node itself.)
    while status(api).await["chain"]["roster"] != 3 {
        assert!(Instant::now() < deadline, "node 3 never left the roster");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for id in 2..5u64 {
        let request = reader
            .pay_for_vm(&customer, id, spec(), 1_000, 600)
            .await
            .unwrap();
        let lease = wait_active(&devnet, &request).await;
        assert_ne!(lease.assigned_operator, operator_address);
    }

    // The CLI: the served pair (or its operator) was already dealt with; a tampered one is
    // refused before anything is sent.
    let wallet = dir.path().join("reporter.json");
    let reporter = solana_sdk::signature::Keypair::new();
    reader
        .airdrop(
            &reporter.pubkey(),
            solana_sdk::native_token::LAMPORTS_PER_SOL,
        )
        .await
        .unwrap();
    std::fs::write(
        &wallet,
        serde_json::to_string(&reporter.to_bytes().to_vec()).unwrap(),
    )
    .unwrap();
    let file = dir.path().join("evidence.json");
    std::fs::write(&file, serde_json::to_string(&served).unwrap()).unwrap();
    let cli = |file: &std::path::Path| {
        std::process::Command::new(binary("dagger"))
            .args(["--url", &devnet.rpc_url(), "--keypair"])
            .arg(&wallet)
            .args(["--output", "json", "slash", "--evidence"])
            .arg(file)
            .output()
            .unwrap()
    };
    let output = cli(&file);
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // Node 0 may hold another of the twin's forks than the pair a node
    // reported: that pair is new to the chain, but its operator already paid.
    let expected = if evidence.hash() == slashed.equivocation {
        "already_reported"
    } else {
        "already_slashed"
    };
    assert_eq!(report["reports"][0]["outcome"], expected);

    let mut tampered = evidence.clone();
    tampered.second.signature[5] ^= 1;
    std::fs::write(&file, serde_json::to_string(&tampered).unwrap()).unwrap();
    let balance = reader.rpc().get_balance(&reporter.pubkey()).await.unwrap();
    let output = cli(&file);
    assert!(!output.status.success());
    // With `--output json` the error is a JSON object on stdout.
    let error: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("second signature does not verify"),
        "{message}"
    );
    assert_eq!(
        reader.rpc().get_balance(&reporter.pubkey()).await.unwrap(),
        balance,
        "nothing was paid for a bad pair"
    );
    std::fs::write(&file, "{\"first\": 1}").unwrap();
    let output = cli(&file);
    assert!(!output.status.success());
    let error: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("is not of the form"), "{message}");

    devnet.stop().await;
}
