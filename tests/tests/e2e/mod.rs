//! Shared by the end-to-end tests (`mod e2e;` in each).

use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use dagger_client::{Request, RequestStatus, VmSpec};
use dagger_devnet::devnet::{Devnet, DevnetOptions};
use dagger_node::chain::ChainReader;
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signature::Keypair, signer::Signer};

/// The embedded chain and `nodes` devnet nodes (of the default four
/// operators), ledgers in `dir`.
#[allow(dead_code)] // not every end-to-end test starts its nodes this way
pub async fn devnet_with_nodes(dir: &std::path::Path, nodes: usize) -> Devnet {
    let mut devnet = Devnet::start_chain(DevnetOptions {
        data_dir: dir.to_path_buf(),
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    for i in 0..nodes {
        devnet.start_node(i).await.unwrap();
    }
    devnet
}

/// `GET url` as JSON (a test's reading of a node's API).
#[allow(dead_code)] // only the tests that read a node's API use it
pub async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// A small VM every devnet operator can host.
pub fn spec() -> VmSpec {
    VmSpec {
        vcpus: 1,
        memory_mib: 1_024,
        disk_gib: 10,
        region: 1,
        image_id: [4; 32],
        ssh_key: [42; 32],
    }
}

/// A new customer wallet holding 10 SOL.
pub async fn funded_customer(reader: &ChainReader) -> Keypair {
    let customer = Keypair::new();
    reader
        .airdrop(&customer.pubkey(), 10 * LAMPORTS_PER_SOL)
        .await
        .unwrap();
    customer
}

/// Waits (up to 90 s) until `request` is an active lease; on timeout prints
/// every node's status and the request before failing.
#[allow(dead_code)] // not every e2e test binary waits for leases this way
pub async fn wait_active(devnet: &Devnet, request: &Pubkey) -> Request {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(r) = devnet.reader.one::<Request>(request).await.unwrap() {
            if r.status == RequestStatus::Active {
                return r;
            }
        }
        if Instant::now() > deadline {
            for (i, node) in devnet.nodes.iter().enumerate() {
                if let Some(node) = node {
                    eprintln!("node {i}: {:?}", node.core.status().await);
                }
            }
            eprintln!("request: {:?}", devnet.reader.one::<Request>(request).await);
            panic!("request {request} never became active");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A binary of this workspace, built next to the test (`cargo test
/// --workspace` builds them all).
#[allow(dead_code)] // only the tests that run processes use it
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(bin.exists(), "build it first: {}", bin.display());
    bin
}

/// Writes a config file that runs devnet node `i`'s identity as a separate
/// `dagger-node run` process, listening on `listen` with its ledger in
/// `data_dir`, against the devnet's chain.
#[allow(dead_code)] // only the tests that run node processes use it
pub fn node_config_file(
    devnet: &Devnet,
    i: usize,
    listen: std::net::SocketAddr,
    data_dir: &std::path::Path,
    path: &std::path::Path,
) {
    let c = &devnet.configs[i];
    std::fs::write(
        path,
        format!(
            "identity = {:?}\nlisten = \"{listen}\"\napi = \"127.0.0.1:0\"\ndata_dir = {:?}\nnetwork = \"{}\"\nrpc_url = \"{}\"\nws_url = \"{}\"\nprovisioner = \"simulated\"\n",
            c.identity.display().to_string(),
            data_dir.display().to_string(),
            c.network,
            devnet.rpc_url(),
            devnet.ws_url(),
        ),
    )
    .unwrap();
}

/// Starts `dagger-node run --config <config>`, its log appended to `log`.
#[allow(dead_code)] // only the tests that run node processes use it
pub fn spawn_node(config: &std::path::Path, log: &std::path::Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    std::process::Command::new(binary("dagger-node"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}
