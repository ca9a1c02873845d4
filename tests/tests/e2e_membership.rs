//! End to end: the roster follows the chain — an operator joins by quorum,
//! another leaves by unstaking, and consensus carries on.

mod e2e;

use e2e::{funded_customer, spec};
use std::{
    net::{SocketAddr, UdpSocket},
    sync::Arc,
    time::{Duration, Instant},
};

use dagger_client::{instructions as ix, pda, Operator, OperatorStatus, Request, RequestStatus};
use dagger_devnet::devnet::{capacity, load_or_create, Devnet, DevnetOptions};
use dagger_node::{
    config::NodeConfig,
    node::{start_chain, ChainSettings},
    provisioner::SimulatedProvisioner,
};
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signer::Signer};

async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every ordered transaction a node's API reports, from position 0.
async fn ordered_txs(api: SocketAddr) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    loop {
        let page: Vec<serde_json::Value> =
            reqwest::get(format!("http://{api}/order?from={}&limit=10000", all.len()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

fn step(started: Instant, what: &str) {
    eprintln!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_joins_by_quorum_another_leaves_and_consensus_continues() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::start(DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let reader = devnet.reader.clone();
    step(started, "devnet up");

    // A fifth operator registers; it is Pending.
    let keys = dir.path().join("newcomer");
    std::fs::create_dir_all(&keys).unwrap();
    let owner = load_or_create(&keys.join("owner.json")).unwrap();
    let node_key = load_or_create(&keys.join("node.json")).unwrap();
    reader
        .airdrop(&owner.pubkey(), 100 * LAMPORTS_PER_SOL)
        .await
        .unwrap();
    reader
        .airdrop(&node_key.pubkey(), 10 * LAMPORTS_PER_SOL)
        .await
        .unwrap();
    let epoch_before = reader.config().await.unwrap().roster_epoch;
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let config = NodeConfig {
        signing_record: dagger_node::signing_record::default_path(&keys.join("node.json")),
        identity: keys.join("node.json"),
        listen,
        api: "127.0.0.1:0".parse().unwrap(),
        submit: None,
        data_dir: keys.join("data"),
        network: devnet.configs[0].network.clone(),
        stake: devnet.options.stake,
        peers: Vec::new(),
        rpc_url: Some(devnet.rpc_url()),
        ws_url: Some(devnet.ws_url()),
        disk_horizon_rounds: dagger_node::config::DEFAULT_DISK_HORIZON_ROUNDS,
        state_sync_gap_events: dagger_node::config::DEFAULT_STATE_SYNC_GAP_EVENTS,
        retention: Default::default(),
        rpc_watch_urls: Vec::new(),
        rpc_agree: 1,
        vm: dagger_node::config::VmConfig::simulated(&keys.join("data")),
        chain_poll: dagger_node::config::DEFAULT_CHAIN_INTERVAL,
        attest_interval: dagger_node::config::DEFAULT_CHAIN_INTERVAL,
        event_spacing: std::time::Duration::from_micros(
            dagger_node::config::DEFAULT_EVENT_SPACING_US,
        ),
        congestion_control: Default::default(),
    };
    std::fs::create_dir_all(&config.data_dir).unwrap();
    // It registers first and starts its node only once a quorum admitted
    // it: the node takes the genesis roster from the chain's record, not
    // from the operators active when it first starts.
    reader
        .send(
            &[ix::register_operator(
                &owner.pubkey(),
                &node_key.pubkey(),
                listen.to_string(),
                capacity(),
                devnet.options.stake,
                Default::default(),
            )],
            &owner,
            &[&node_key],
        )
        .await
        .unwrap();
    step(started, "newcomer registered (its node is not running)");
    // The nodes see it, vote it in, and the program admits it.
    let operator = pda::operator(&node_key.pubkey()).0;
    eventually("admission by a quorum", Duration::from_secs(90), || async {
        reader
            .one::<Operator>(&operator)
            .await
            .unwrap()
            .is_some_and(|op| op.status == OperatorStatus::Active)
    })
    .await;
    let config_after = reader.config().await.unwrap();
    assert_eq!(config_after.active_operators, 5);
    // Stake that joins cannot make old tallies unsafe, so the epoch stays.
    assert_eq!(config_after.roster_epoch, epoch_before);

    step(started, "newcomer admitted");
    let provisioner = SimulatedProvisioner::open(&config.data_dir, "newcomer").unwrap();
    let newcomer = start_chain(
        &config,
        ChainSettings {
            rpc_url: devnet.rpc_url(),
            ws_url: Some(devnet.ws_url()),
            poll_interval: Duration::from_millis(300),
            attest_interval: Duration::from_millis(300),
            provisioner: Arc::new(provisioner),
        },
        Default::default(),
    )
    .await
    .unwrap();

    step(started, "newcomer's node started after its admission");
    // It joins gossip: it catches up and orders what the others order.
    let reference = devnet.nodes[0].as_ref().unwrap().core.clone();
    eventually(
        "the newcomer catches up",
        Duration::from_secs(90),
        || async {
            let theirs = reference.status().await.unwrap();
            let mine = newcomer.core.status().await.unwrap();
            mine.ordered_events > 0 && mine.ordered_events + 50 >= theirs.ordered_events
        },
    )
    .await;

    step(started, "newcomer caught up");
    // Operator 3 unstakes and leaves the roster.
    let leaving = &devnet.keys.operators[3];
    reader
        .send(
            &[ix::request_unstake(
                &leaving.owner.pubkey(),
                &leaving.node.pubkey(),
            )],
            &leaving.owner,
            &[],
        )
        .await
        .unwrap();
    devnet.stop_node(3).await;
    step(started, "operator 3 unstaked and stopped");
    let config_left = reader.config().await.unwrap();
    assert_eq!(config_left.active_operators, 4);
    // Stake that leaves does: open tallies are invalidated.
    assert!(config_left.roster_epoch > epoch_before);

    // Consensus continues with the new roster: new work still gets done.
    let customer = funded_customer(&reader).await;
    let request = reader
        .pay_for_vm(&customer, 1, spec(), 1_000, 600)
        .await
        .unwrap();
    eventually(
        "a lease after the roster changes",
        Duration::from_secs(120),
        || async {
            reader
                .one::<Request>(&request)
                .await
                .unwrap()
                .is_some_and(|r| r.status == RequestStatus::Active)
        },
    )
    .await;
    step(started, "lease active under the new roster");
    // The newcomer agrees with the others on the whole order, including what
    // was ordered before it joined (it got that by catch-up).
    let reference_api = devnet.api(0).unwrap();
    eventually("the newcomer agrees", Duration::from_secs(60), || async {
        let theirs = ordered_txs(reference_api).await;
        let mine = ordered_txs(newcomer.api_addr).await;
        let common = theirs.len().min(mine.len());
        assert_eq!(theirs[..common], mine[..common], "orders diverge");
        common + 5 >= theirs.len() && common > 0
    })
    .await;
    let agreed = ordered_txs(newcomer.api_addr).await;
    step(
        started,
        &format!("orders agree on {} transactions", agreed.len()),
    );
    // It takes part as a member: transactions it carried (its reports of the
    // chain) are in the order the old members decided.
    // Its admission takes effect a fixed number of rounds after it is
    // ordered; from then on the events it creates are ordered too.
    // A transaction only the newcomer carries: the old members order it
    // once the newcomer's events count (they must hold it, by its event).
    let marker = format!("newcomer-{}", started.elapsed().as_nanos()).into_bytes();
    let hex_marker: String = marker.iter().map(|b| format!("{b:02x}")).collect();
    let carrier = newcomer.core.submit(marker).await.unwrap();
    eventually(
        "a transaction carried by the newcomer is ordered",
        Duration::from_secs(60),
        || async {
            ordered_txs(reference_api)
                .await
                .iter()
                .any(|tx| tx["tx"].as_str() == Some(hex_marker.as_str()))
        },
    )
    .await;
    let carried: serde_json::Value = reqwest::get(format!(
        "http://{reference_api}/events/{}",
        carrier
            .0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let newcomer_id = newcomer.core.status().await.unwrap().node_id;
    assert_eq!(carried["creator"].as_str(), Some(newcomer_id.as_str()));
    step(started, "the newcomer's own events are ordered");
    newcomer.stop().await;
    devnet.stop().await;
}
