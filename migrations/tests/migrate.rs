//! `dagger-migrate` and `dagger_migrations::initialize` against a local
//! chain: first run initialises, a second changes nothing, differing flags
//! are reported and only applied with `--update`, and a cluster without the
//! program gets a clear error.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::Output,
    sync::Arc,
    time::Duration,
};

use dagger_client::{ClientOptions, CommitmentConfig, DaggerClient};
use dagger_localnet::{LocalChain, LocalChainConfig};
use dagger_migrations::{defaults, initialize, Action, Difference, MigrationError, Settings};
use serde_json::Value;
use solana_sdk::{
    native_token::LAMPORTS_PER_SOL,
    pubkey::Pubkey,
    signature::{write_keypair_file, Keypair},
    signer::Signer,
};
use tempfile::TempDir;

async fn start_chain() -> LocalChain {
    LocalChain::start(LocalChainConfig {
        slot_time_ms: 50,
        ..LocalChainConfig::default()
    })
    .await
    .expect("local chain starts")
}

fn client(url: &str, ws: &str, wallet: Arc<Keypair>) -> DaggerClient {
    let cluster = dagger_client::cluster::resolve(url, Some(ws)).unwrap();
    DaggerClient::new(
        cluster,
        wallet,
        ClientOptions {
            poll_interval: Duration::from_millis(50),
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

async fn funded(chain: &LocalChain) -> Arc<Keypair> {
    let wallet = Arc::new(Keypair::new());
    let probe = client(&chain.rpc_url(), &chain.ws_url(), wallet.clone());
    let signature = probe
        .rpc()
        .request_airdrop(&wallet.pubkey(), 10 * LAMPORTS_PER_SOL)
        .await
        .unwrap();
    for _ in 0..400 {
        let confirmed = probe
            .rpc()
            .confirm_transaction_with_commitment(&signature, CommitmentConfig::confirmed())
            .await
            .unwrap()
            .value;
        if confirmed {
            return wallet;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("airdrop not confirmed");
}

fn keypair_file(dir: &TempDir, wallet: &Keypair) -> PathBuf {
    let path = dir.path().join(format!("{}.json", wallet.pubkey()));
    write_keypair_file(wallet, &path).unwrap();
    path
}

async fn migrate(url: &str, keypair: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dagger-migrate"))
        .args(["-u", url, "-k"])
        .arg(keypair)
        .args(args)
        .env_remove("DAGGER_URL")
        .env_remove("DAGGER_KEYPAIR")
        .output()
        .await
        .expect("dagger-migrate runs")
}

fn json(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.trim().lines().count(), 1, "one JSON line: {stdout}");
    serde_json::from_str(stdout.trim()).expect("JSON")
}

#[tokio::test]
async fn initialize_in_process_is_idempotent_and_updates_on_request() {
    let chain = start_chain().await;
    let admin = funded(&chain).await;
    let admin_client = client(&chain.rpc_url(), &chain.ws_url(), admin.clone());
    let treasury = Pubkey::new_unique();
    let settings = Settings {
        treasury: Some(treasury),
        min_operator_stake: Some(LAMPORTS_PER_SOL),
        protocol_fee_bps: Some(100),
        ..Settings::default()
    };

    let first = initialize(&admin_client, &settings, false).await.unwrap();
    match &first.action {
        Action::Initialized { defaulted, .. } => {
            assert_eq!(
                defaulted,
                &[
                    "unbonding_period",
                    "provisioning_timeout",
                    "max_stake_share_bps",
                    "removal_slash_bps",
                    "equivocation_slash_bps",
                    "reporter_reward_bps"
                ]
            )
        }
        other => panic!("expected Initialized, got {other:?}"),
    }
    assert_eq!(first.config.admin, admin.pubkey());
    assert_eq!(first.config.treasury, treasury);
    assert_eq!(first.config.min_operator_stake, LAMPORTS_PER_SOL);
    assert_eq!(first.config.protocol_fee_bps, 100);
    assert_eq!(first.config.unbonding_period, defaults::UNBONDING_PERIOD);
    assert_eq!(
        first.config.provisioning_timeout,
        defaults::PROVISIONING_TIMEOUT
    );
    assert_eq!(
        first.config.max_stake_share_bps,
        defaults::MAX_STAKE_SHARE_BPS
    );
    assert_eq!(first.config.removal_slash_bps, defaults::REMOVAL_SLASH_BPS);
    assert_eq!(
        first.config.equivocation_slash_bps,
        defaults::EQUIVOCATION_SLASH_BPS
    );
    assert_eq!(
        first.config.reporter_reward_bps,
        defaults::REPORTER_REWARD_BPS
    );

    let second = initialize(&admin_client, &settings, false).await.unwrap();
    assert_eq!(second.action, Action::Unchanged);
    // Settings not given are not compared.
    let fewer = initialize(&admin_client, &Settings::default(), true)
        .await
        .unwrap();
    assert_eq!(fewer.action, Action::Unchanged);

    let changed = Settings {
        protocol_fee_bps: Some(300),
        ..settings.clone()
    };
    let report = initialize(&admin_client, &changed, false).await.unwrap();
    let expected = vec![Difference {
        field: "protocol_fee_bps",
        current: "100".into(),
        wanted: "300".into(),
    }];
    assert_eq!(
        report.action,
        Action::Differs {
            differences: expected.clone()
        }
    );
    assert_eq!(report.config.protocol_fee_bps, 100, "nothing applied");

    // Only the admin may apply them.
    let stranger = funded(&chain).await;
    let error = initialize(
        &client(&chain.rpc_url(), &chain.ws_url(), stranger.clone()),
        &changed,
        true,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, MigrationError::NotAdmin { admin: a, wallet } if a == admin.pubkey() && wallet == stranger.pubkey()),
        "{error}"
    );

    // Invalid settings are refused before sending.
    let too_high = Settings {
        protocol_fee_bps: Some(5_000),
        ..Settings::default()
    };
    let error = initialize(&admin_client, &too_high, true)
        .await
        .unwrap_err();
    assert!(
        matches!(error, MigrationError::InvalidSettings(_)),
        "{error}"
    );
    assert!(error.to_string().contains("FeeTooHigh"), "{error}");

    let updated = initialize(&admin_client, &changed, true).await.unwrap();
    match &updated.action {
        Action::Updated { differences, .. } => assert_eq!(differences, &expected),
        other => panic!("expected Updated, got {other:?}"),
    }
    assert_eq!(updated.config.protocol_fee_bps, 300);
    assert_eq!(updated.config.treasury, treasury, "untouched");
    assert_eq!(
        initialize(&admin_client, &changed, true)
            .await
            .unwrap()
            .action,
        Action::Unchanged
    );
}

#[tokio::test]
async fn the_binary_initialises_reports_differences_and_updates() {
    let chain = start_chain().await;
    let dir = TempDir::new().unwrap();
    let admin = funded(&chain).await;
    let keypair = keypair_file(&dir, &admin);
    let url = chain.rpc_url();
    let treasury = Pubkey::new_unique().to_string();
    let flags = [
        "--treasury",
        treasury.as_str(),
        "--min-stake",
        "2.5",
        "--unbonding-period",
        "2d",
        "--provisioning-timeout",
        "15m",
        "--fee-bps",
        "200",
        "--max-stake-share-bps",
        "2500",
        "--removal-slash-bps",
        "1000",
        "--equivocation-slash-bps",
        "8000",
        "--reporter-reward-bps",
        "2000",
    ];

    let output = migrate(
        &url,
        &keypair,
        &[&flags[..], &["--output", "json"]].concat(),
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let report = json(&output);
    assert_eq!(report["action"], "initialized");
    assert_eq!(report["deployment"]["kind"], "builtin");
    assert_eq!(report["config"]["min_operator_stake"], 2_500_000_000u64);
    assert_eq!(report["config"]["unbonding_period"], 172_800);
    assert_eq!(report["config"]["provisioning_timeout"], 900);
    assert_eq!(report["config"]["protocol_fee_bps"], 200);
    assert_eq!(report["config"]["max_stake_share_bps"], 2_500);
    assert_eq!(report["config"]["removal_slash_bps"], 1_000);
    assert_eq!(report["config"]["equivocation_slash_bps"], 8_000);
    assert_eq!(report["config"]["reporter_reward_bps"], 2_000);
    assert_eq!(report["config"]["treasury"], treasury.as_str());
    assert_eq!(report["defaulted"].as_array().unwrap().len(), 0);

    // Again, same flags: nothing to do, and it says so.
    let output = migrate(&url, &keypair, &flags).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("nothing to do"), "{stdout}");

    // A different fee: reported, exit status 3, nothing applied.
    let mut changed = flags.to_vec();
    changed[9] = "300";
    let output = migrate(
        &url,
        &keypair,
        &[&changed[..], &["--output", "json"]].concat(),
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let report = json(&output);
    assert_eq!(report["action"], "differs");
    assert_eq!(report["differences"][0]["field"], "protocol_fee_bps");
    assert_eq!(report["differences"][0]["current"], "200");
    assert_eq!(report["differences"][0]["wanted"], "300");
    assert_eq!(report["config"]["protocol_fee_bps"], 200);
    let output = migrate(&url, &keypair, &changed).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("protocol_fee_bps: 200 on chain, 300 given"),
        "{stdout}"
    );
    assert!(stdout.contains("--update"), "{stdout}");

    // --update applies it; a further run is a no-op.
    let output = migrate(
        &url,
        &keypair,
        &[&changed[..], &["--update", "--output", "json"]].concat(),
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let report = json(&output);
    assert_eq!(report["action"], "updated");
    assert_eq!(report["config"]["protocol_fee_bps"], 300);
    let output = migrate(
        &url,
        &keypair,
        &[&changed[..], &["--update", "--output", "json"]].concat(),
    )
    .await;
    assert_eq!(json(&output)["action"], "unchanged");

    // A keypair file that does not exist.
    let output = migrate(&url, &dir.path().join("missing.json"), &[]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read keypair file"), "{stderr}");
}

/// A JSON-RPC endpoint that knows no program: `getAccountInfo` answers
/// `null`, or a plain non-executable account when `account` is set.
fn fake_rpc(account: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let request: Value = serde_json::from_slice(&body).unwrap_or_default();
            let value = if account {
                serde_json::json!({
                    "data": ["", "base64"],
                    "executable": false,
                    "lamports": 1_000_000,
                    "owner": "11111111111111111111111111111111",
                    "rentEpoch": 0,
                    "space": 0,
                })
            } else {
                Value::Null
            };
            let response = serde_json::json!({
                "jsonrpc": "2.0",
                "id": request["id"],
                "result": { "context": { "slot": 1 }, "value": value },
            })
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{response}",
                response.len()
            );
        }
    });
    url
}

#[tokio::test]
async fn a_cluster_without_the_program_gets_deploy_instructions() {
    let dir = TempDir::new().unwrap();
    let admin = Keypair::new();
    let keypair = keypair_file(&dir, &admin);

    let url = fake_rpc(false);
    let output = migrate(&url, &keypair, &[]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not deployed on"), "{stderr}");
    assert!(stderr.contains("anchor deploy"), "{stderr}");
    assert!(stderr.contains("solana program deploy"), "{stderr}");
    let output = migrate(&url, &keypair, &["--output", "json"]).await;
    assert_eq!(output.status.code(), Some(1));
    // The error shape every DAGGER binary uses.
    let error = &json(&output)["error"];
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("is not deployed"));
    assert!(error["program_error"].is_null());
    assert!(error["logs"].as_array().unwrap().is_empty());

    let error = initialize(
        &client(&url, "ws://127.0.0.1:9", Arc::new(admin.insecure_clone())),
        &Settings::default(),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, MigrationError::ProgramMissing { .. }),
        "{error}"
    );

    let url = fake_rpc(true);
    let output = migrate(&url, &keypair, &[]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not an executable program"), "{stderr}");
}
