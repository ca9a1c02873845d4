//! The `dagger` binary end to end against a local chain: keypair files in a
//! temporary directory, `--url`/`--ws` pointing at the chain, JSON output
//! parsed, exit codes and error messages checked.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::{path::PathBuf, process::Output};

use common::*;
use dagger_client::{pda, RequestStatus};
use dagger_localnet::LocalChain;
use serde_json::Value;
use solana_sdk::{
    pubkey::Pubkey,
    signature::{write_keypair_file, Keypair},
    signer::Signer,
};
use tempfile::TempDir;

const IMAGE: &str = "0707070707070707070707070707070707070707070707070707070707070707";

/// The binary, pointed at one chain, acting with one keypair file.
struct Cli {
    rpc: String,
    ws: String,
    keypair: PathBuf,
    /// `HOME` of the commands: holds `.ssh/id_ed25519.pub`.
    home: PathBuf,
}

/// The SSH key the tests' `HOME` holds.
const SSH_KEY: [u8; 32] = [9; 32];

impl Cli {
    fn new(chain: &LocalChain, dir: &TempDir, wallet: &Keypair) -> Cli {
        let keypair = dir.path().join(format!("{}.json", wallet.pubkey()));
        write_keypair_file(wallet, &keypair).expect("keypair file");
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(
            home.join(".ssh/id_ed25519.pub"),
            dagger_client::ssh::format_public_key(&SSH_KEY) + " customer@test\n",
        )
        .unwrap();
        Cli {
            rpc: chain.rpc_url(),
            ws: chain.ws_url(),
            keypair,
            home,
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dagger"));
        command
            .args(["-u", &self.rpc, "--ws", &self.ws, "-k"])
            .arg(&self.keypair)
            .args(args)
            .env_remove("DAGGER_URL")
            .env_remove("DAGGER_KEYPAIR")
            .env("HOME", &self.home)
            .kill_on_drop(true);
        command
    }

    async fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("dagger runs")
    }

    /// Runs with `--output json`, expects success and one JSON object.
    async fn json(&self, args: &[&str]) -> Value {
        let output = self.output(&[args, &["--output", "json"]].concat()).await;
        assert!(
            output.status.success(),
            "dagger {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        parse_one_object(&output.stdout)
    }

    /// Runs with `--output json`, expects failure and an `error` object.
    async fn json_error(&self, args: &[&str]) -> Value {
        let output = self.output(&[args, &["--output", "json"]].concat()).await;
        assert_eq!(output.status.code(), Some(1), "dagger {args:?} should fail");
        parse_one_object(&output.stdout)["error"].clone()
    }
}

fn parse_one_object(stdout: &[u8]) -> Value {
    let text = String::from_utf8(stdout.to_vec()).expect("UTF-8 output");
    assert_eq!(text.trim().lines().count(), 1, "one line of JSON: {text}");
    let value: Value = serde_json::from_str(text.trim()).expect("valid JSON");
    assert!(value.is_object(), "{value}");
    value
}

fn pubkey(value: &Value) -> Pubkey {
    value.as_str().expect("a string").parse().expect("a pubkey")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_customer_rents_a_vm_with_the_cli() {
    let net = Network::start(Settings::default()).await;
    let dir = TempDir::new().unwrap();
    let wallet = funded(&net.chain, 10).await;
    let cli = Cli::new(&net.chain, &dir, &wallet);

    let config = cli.json(&["config", "show"]).await;
    assert_eq!(pubkey(&config["admin"]), net.admin.pubkey());
    assert_eq!(pubkey(&config["treasury"]), net.treasury);
    assert_eq!(config["protocol_fee_bps"], FEE_BPS);
    assert_eq!(config["active_operators"], 1);
    let (stdout, _) = text(&cli.output(&["config", "show"]).await);
    assert!(
        stdout.contains("Protocol fee:           250 bps"),
        "{stdout}"
    );

    // Request without waiting, then watch it become active.
    let spec_args = [
        "--vcpus",
        "2",
        "--memory-mib",
        "4096",
        "--disk-gib",
        "40",
        "--image",
        IMAGE,
        "--price",
        "1000",
        "--duration",
        "1h",
    ];
    let created = cli
        .json(&[&["vm", "request"], &spec_args[..]].concat())
        .await;
    let request = pubkey(&created["request"]);
    assert_eq!(created["deposit_lamports"], 3_600_000);
    assert_eq!(created["status"], "open");
    assert_eq!(
        request,
        pda::request(&wallet.pubkey(), created["request_id"].as_u64().unwrap()).0
    );
    let status = cli.json(&["vm", "status", &request.to_string()]).await;
    assert_eq!(status["status"], "open");
    assert_eq!(status["spec"]["image_id"], IMAGE);
    // The default key file went on-chain.
    let on_chain = net
        .client(wallet.clone())
        .reader()
        .request(&request)
        .await
        .unwrap();
    assert_eq!(on_chain.spec.ssh_key, SSH_KEY);

    let waiting = cli
        .command(&[
            "vm",
            "status",
            &request.to_string(),
            "--wait",
            "--timeout",
            "30s",
            "--output",
            "json",
        ])
        .output();
    let (output, ()) = tokio::join!(waiting, async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        net.provision(&request).await;
    });
    let output = output.unwrap();
    assert!(output.status.success(), "{:?}", text(&output));
    let active = parse_one_object(&output.stdout);
    assert_eq!(active["status"], "active");
    assert_eq!(
        pubkey(&active["assigned_operator"]),
        net.operators[0].account()
    );
    assert_eq!(active["timings"]["watch_method"], "websocket");

    // `vm request --wait` in one go, provisioned while the CLI waits.
    let waiting = cli
        .command(
            &[
                &["vm", "request"],
                &spec_args[..],
                &["--wait", "--timeout", "30s", "--output", "json"],
            ]
            .concat(),
        )
        .output();
    let provision_next = async {
        // The CLI picks the request id; find the request once it exists.
        loop {
            let requests = net
                .client(wallet.clone())
                .reader()
                .requests(dagger_client::RequestFilter {
                    customer: Some(wallet.pubkey()),
                    status: Some(RequestStatus::Open),
                })
                .await
                .unwrap();
            if let Some((address, _)) = requests.first() {
                net.provision(address).await;
                return *address;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let (output, provisioned) = tokio::join!(waiting, provision_next);
    let output = output.unwrap();
    assert!(output.status.success(), "{:?}", text(&output));
    let waited = parse_one_object(&output.stdout);
    assert_eq!(pubkey(&waited["request"]), provisioned);
    assert_eq!(waited["status"], "active");
    assert!(
        waited["timings"]["active_ms"].as_u64().unwrap()
            >= waited["timings"]["paid_ms"].as_u64().unwrap()
    );

    let mine = cli
        .json(&["requests", "list", "--customer", "--status", "active"])
        .await;
    assert_eq!(mine["count"], 2);
    let all = cli.json(&["requests", "list", "--status", "open"]).await;
    assert_eq!(all["count"], 0);

    let topped = cli
        .json(&["vm", "top-up", &request.to_string(), "--duration", "30m"])
        .await;
    assert_eq!(topped["request"]["duration_seconds"], 5_400);
    assert!(topped["signature"].is_string());
    // A priority fee: 200 000 CU × 5 000 µlamports = 1 000 lamports more.
    let rpc = net.client(wallet.clone());
    let before = rpc.rpc().get_balance(&wallet.pubkey()).await.unwrap();
    cli.json(&[
        "vm",
        "top-up",
        &request.to_string(),
        "--duration",
        "10",
        "--priority-fee",
        "5000",
        "--compute-unit-limit",
        "200000",
    ])
    .await;
    let after = rpc.rpc().get_balance(&wallet.pubkey()).await.unwrap();
    assert_eq!(before - after, 10 * 1_000 + 5_000 + 1_000);
    let closed = cli.json(&["vm", "close", &request.to_string()]).await;
    assert_eq!(closed["closed"], true);
    let gone = cli
        .json_error(&["vm", "status", &request.to_string()])
        .await;
    assert!(
        gone["message"].as_str().unwrap().contains("not found"),
        "{gone}"
    );

    // An open request can be cancelled; text output says so.
    let created = cli
        .json(&[&["vm", "request"], &spec_args[..]].concat())
        .await;
    let output = cli
        .output(&["vm", "cancel", created["request"].as_str().unwrap()])
        .await;
    let (stdout, _) = text(&output);
    assert!(output.status.success());
    assert!(stdout.contains("deposit was refunded"), "{stdout}");
}

#[tokio::test]
async fn an_operator_runs_a_node_with_the_cli() {
    let net = Network::start(Settings::default()).await;
    let dir = TempDir::new().unwrap();
    let owner = funded(&net.chain, 10).await;
    let cli = Cli::new(&net.chain, &dir, &owner);
    let node = Keypair::new();
    let node_file = dir.path().join("node.json");
    write_keypair_file(&node, &node_file).unwrap();
    let node_file = node_file.to_str().unwrap();
    let node_key = node.pubkey().to_string();

    let registered = cli
        .json(&[
            "operator",
            "register",
            "--node-keypair",
            node_file,
            "--address",
            "127.0.0.1:9400",
            "--vcpus",
            "8",
            "--memory-mib",
            "16384",
            "--disk-gib",
            "200",
            "--region",
            "2",
            "--stake",
            "1.5",
        ])
        .await;
    assert_eq!(registered["node_key"], node_key);
    assert_eq!(registered["stake_lamports"], 1_500_000_000u64);

    let pending = cli
        .json(&["operators", "list", "--owner", "--status", "pending"])
        .await;
    assert_eq!(pending["count"], 1);
    assert_eq!(pending["operators"][0]["node_key"], node_key);
    let active = cli.json(&["operators", "list", "--status", "active"]).await;
    assert_eq!(active["count"], 1);
    assert_eq!(
        pubkey(&active["operators"][0]["node_key"]),
        net.operators[0].node.pubkey()
    );

    // --node takes a pubkey or the keypair file.
    cli.json(&[
        "operator",
        "add-stake",
        "--node",
        node_file,
        "--amount",
        "0.5",
    ])
    .await;
    cli.json(&[
        "operator",
        "update",
        "--node",
        &node_key,
        "--address",
        "10.1.1.1:9400",
        "--vcpus",
        "12",
    ])
    .await;
    // The price floor: set by update, quoted to customers.
    cli.json(&[
        "operator",
        "update",
        "--node",
        &node_key,
        "--price-per-vcpu",
        "7",
    ])
    .await;
    let quote = cli
        .json(&[
            "vm",
            "quote",
            "--vcpus",
            "2",
            "--memory-mib",
            "1024",
            "--disk-gib",
            "10",
        ])
        .await;
    // Only active operators are quoted (this one is pending): the genesis
    // operator, whose floor is 0.
    assert_eq!(quote["quotes"].as_array().unwrap().len(), 1);
    assert_eq!(quote["cheapest_price_per_second"], "0");
    let holder = Cli::new(&net.chain, &dir, &net.operators[0].owner);
    holder
        .json(&[
            "operator",
            "update",
            "--node",
            &net.operators[0].node.pubkey().to_string(),
            "--price-per-vcpu",
            "3",
            "--price-per-disk-gib",
            "1",
        ])
        .await;
    let quote = cli
        .json(&[
            "vm",
            "quote",
            "--vcpus",
            "2",
            "--memory-mib",
            "1024",
            "--disk-gib",
            "10",
        ])
        .await;
    assert_eq!(quote["cheapest_price_per_second"], "16");
    let none = cli
        .json(&[
            "vm",
            "quote",
            "--vcpus",
            "2",
            "--memory-mib",
            "1024",
            "--disk-gib",
            "10",
            "--region",
            "9",
        ])
        .await;
    assert!(none["quotes"].as_array().unwrap().is_empty());
    let shown = cli.json(&["operator", "show", "--node", &node_key]).await;
    assert_eq!(shown["price_floor"]["per_vcpu"], 7);
    assert_eq!(shown["stake_lamports"], 2_000_000_000u64);
    assert_eq!(shown["network_address"], "10.1.1.1:9400");
    assert_eq!(shown["capacity"]["vcpus"], 12);
    assert_eq!(shown["capacity"]["memory_mib"], 16_384, "kept");
    assert_eq!(shown["status"], "pending");

    let unstaked = cli
        .json(&["operator", "unstake", "--node", &node_key])
        .await;
    assert_eq!(unstaked["status"], "unbonding");

    // Withdrawing before the unbonding period ends: the program's error,
    // by name, with the transaction's logs.
    let error = cli
        .json_error(&["operator", "withdraw", "--node", &node_key])
        .await;
    assert_eq!(error["program_error"]["name"], "UnbondingNotFinished");
    assert_eq!(error["program_error"]["code"], 6017);
    let logs = error["logs"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l.as_str().unwrap().contains("failed: custom program error")),
        "{error}"
    );
    let output = cli
        .output(&["operator", "withdraw", "--node", &node_key])
        .await;
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("UnbondingNotFinished: The unbonding period has not ended yet"),
        "{stderr}"
    );
    assert!(stderr.contains("Program logs:"), "{stderr}");

    // Claim on a lease this operator does not hold is refused too.
    let customer = net.client(funded(&net.chain, 10).await);
    let created = customer
        .customer()
        .create_request(spec(), 1_000, 3_600)
        .await
        .unwrap();
    net.provision(&created.request).await;
    let error = cli
        .json_error(&[
            "operator",
            "claim",
            "--node",
            &node_key,
            "--request",
            &created.request.to_string(),
        ])
        .await;
    assert_eq!(error["program_error"]["name"], "WrongAccount");

    // The lease's own operator claims it.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let claimed = holder
        .json(&[
            "operator",
            "claim",
            "--node",
            &net.operators[0].node.pubkey().to_string(),
            "--request",
            &created.request.to_string(),
        ])
        .await;
    assert_eq!(claimed["lease_settled"], false);
    assert!(claimed["signature"].is_string());
}

#[tokio::test]
async fn cli_errors_are_clear() {
    let net = Network::start(Settings::default()).await;
    let dir = TempDir::new().unwrap();
    let poor = funded(&net.chain, 1).await;
    let cli = Cli::new(&net.chain, &dir, &poor);

    // A keypair file that does not exist.
    let missing = dir.path().join("nobody.json");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dagger"))
        .args(["-u", &net.chain.rpc_url(), "-k"])
        .arg(&missing)
        .args(["vm", "cancel", &Pubkey::new_unique().to_string()])
        .output()
        .await
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("cannot read keypair file"), "{stderr}");
    assert!(stderr.contains("solana-keygen new"), "{stderr}");
    // Reads do not need one.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dagger"))
        .args(["-u", &net.chain.rpc_url(), "-k"])
        .arg(&missing)
        .args(["config", "show", "--output", "json"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{:?}", text(&output));
    assert_eq!(
        pubkey(&parse_one_object(&output.stdout)["admin"]),
        net.admin.pubkey()
    );

    // No SSH key, or not an ed25519 one: refused before paying anything.
    let request = |key: &str| {
        [
            "vm",
            "request",
            "--vcpus",
            "1",
            "--memory-mib",
            "512",
            "--disk-gib",
            "1",
            "--image",
            IMAGE,
            "--price",
            "10",
            "--duration",
            "1m",
            "--ssh-key",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(std::iter::once(key.to_string()))
        .collect::<Vec<String>>()
    };
    let absent = dir.path().join("absent.pub");
    let args = request(absent.to_str().unwrap());
    let output = cli
        .output(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("ssh-keygen -t ed25519"), "{stderr}");
    let rsa = dir.path().join("rsa.pub");
    std::fs::write(&rsa, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ me@host\n").unwrap();
    let args = request(rsa.to_str().unwrap());
    let output = cli
        .output(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("not an ssh-ed25519 public key"), "{stderr}");

    // A URL that is neither a moniker nor http(s).
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dagger"))
        .args(["-u", "mainnet", "config", "show"])
        .output()
        .await
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("moniker"), "{stderr}");

    // An unknown request is reported as such.
    let unknown = Pubkey::new_unique();
    let error = cli
        .json_error(&["vm", "status", &unknown.to_string()])
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("request {unknown} not found")),
        "{error}"
    );
    assert!(error["program_error"].is_null());

    // Bad values are usage errors (exit 2, from clap, naming the argument)
    // before anything connects.
    for (args, expected) in [
        (
            vec!["vm", "top-up", "not-a-key", "--duration", "1h"],
            "not a valid base58",
        ),
        (
            vec![
                "vm",
                "request",
                "--vcpus",
                "1",
                "--memory-mib",
                "1",
                "--disk-gib",
                "1",
                "--image",
                "ab/c",
                "--price",
                "1",
                "--duration",
                "1h",
            ],
            "64 hex characters",
        ),
        (
            vec![
                "vm",
                "request",
                "--vcpus",
                "1",
                "--memory-mib",
                "1",
                "--disk-gib",
                "1",
                "--image",
                IMAGE,
                "--price",
                "1",
                "--duration",
                "1 week",
            ],
            "not a duration",
        ),
        (
            vec![
                "operator",
                "add-stake",
                "--node",
                "nowhere.json",
                "--amount",
                "1.5e3",
            ],
            "not an amount of SOL",
        ),
    ] {
        let output = cli
            .output(&[&args[..], &["--output", "json"]].concat())
            .await;
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.contains("invalid value"), "{args:?}: {stderr}");
    }
    // An image named, not given by id: a node's catalog resolves it, and a
    // node that cannot be reached is said so.
    let error = cli
        .json_error(&[
            "--node-api",
            "http://127.0.0.1:1",
            "vm",
            "request",
            "--vcpus",
            "1",
            "--memory-mib",
            "128",
            "--disk-gib",
            "1",
            "--image",
            "debian",
            "--price",
            "1",
            "--duration",
            "1h",
        ])
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1/images"),
        "{error}"
    );
    // A node that is neither a key nor a keypair file: found when read.
    let error = cli
        .json_error(&[
            "operator",
            "add-stake",
            "--node",
            "nowhere.json",
            "--amount",
            "1",
        ])
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("neither a base58 public key nor a keypair file"),
        "{error}"
    );

    // Not enough SOL: refused before sending.
    let error = cli
        .json_error(&[
            "vm",
            "request",
            "--vcpus",
            "1",
            "--memory-mib",
            "1",
            "--disk-gib",
            "1",
            "--image",
            IMAGE,
            "--price",
            "1000000",
            "--duration",
            "1d",
        ])
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("insufficient funds: {}", poor.pubkey())),
        "{error}"
    );

    // Waiting that fails after paying still names the paid request.
    let error = cli
        .json_error(&[
            "vm",
            "request",
            "--vcpus",
            "1",
            "--memory-mib",
            "1",
            "--disk-gib",
            "1",
            "--image",
            IMAGE,
            "--price",
            "1",
            "--duration",
            "60",
            "--wait",
            "--timeout",
            "1s",
        ])
        .await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("was paid (signature"), "{message}");
    assert!(message.contains("timed out after 1s"), "{message}");
    let paid: Pubkey = message.split_whitespace().nth(1).unwrap().parse().unwrap();
    let status = cli.json(&["vm", "status", &paid.to_string()]).await;
    assert_eq!(status["status"], "open");

    // Someone else's request: the program refuses, logs attached.
    let owner = funded(&net.chain, 10).await;
    let created = net
        .client(owner)
        .customer()
        .create_request(spec(), 1_000, 60)
        .await
        .unwrap();
    let error = cli
        .json_error(&["vm", "cancel", &created.request.to_string()])
        .await;
    assert_eq!(error["program_error"]["name"], "NotCustomer");
    assert!(!error["logs"].as_array().unwrap().is_empty());
}

/// Like `solana` and `spl-token`: with no `-u`/`-k`/`--commitment`, the
/// Solana CLI config file decides (the default one under `HOME`, or
/// `-C FILE`); flags override it; a broken file is a clear error.
#[tokio::test]
async fn the_solana_cli_config_file_is_honoured() {
    let net = Network::start(Settings::default()).await;
    let dir = TempDir::new().unwrap();
    let wallet = funded(&net.chain, 2).await;
    let keypair = dir.path().join("wallet.json");
    write_keypair_file(&wallet, &keypair).unwrap();
    let home = dir.path().join("home");
    let config_dir = home.join(".config/solana/cli");
    std::fs::create_dir_all(&config_dir).unwrap();
    let yaml = format!(
        "---\njson_rpc_url: \"{}\"\nwebsocket_url: \"{}\"\nkeypair_path: {}\naddress_labels:\n  \"11111111111111111111111111111111\": System Program\ncommitment: confirmed\n",
        net.chain.rpc_url(),
        net.chain.ws_url(),
        keypair.display()
    );
    std::fs::write(config_dir.join("config.yml"), &yaml).unwrap();
    let dagger = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dagger"));
        command
            .args(args)
            .env_remove("DAGGER_URL")
            .env_remove("DAGGER_KEYPAIR")
            .env("HOME", &home)
            .kill_on_drop(true);
        command.output()
    };

    // The default file: the URL and the wallet come from it.
    let output = dagger(&["config", "show", "--output", "json"])
        .await
        .unwrap();
    assert!(output.status.success(), "{:?}", text(&output));
    assert_eq!(
        pubkey(&parse_one_object(&output.stdout)["admin"]),
        net.admin.pubkey()
    );
    let output = dagger(&["operators", "list", "--owner", "me", "--output", "json"])
        .await
        .unwrap();
    assert!(output.status.success(), "{:?}", text(&output));

    // A flag wins over the file: a cluster where nothing listens fails.
    let output = dagger(&["-u", "http://127.0.0.1:9", "config", "show"])
        .await
        .unwrap();
    assert!(!output.status.success());

    // -C names another file; it must exist and parse.
    let other = dir.path().join("other.yml");
    std::fs::write(&other, &yaml).unwrap();
    let output = dagger(&["-C", other.to_str().unwrap(), "config", "show"])
        .await
        .unwrap();
    assert!(output.status.success(), "{:?}", text(&output));
    let output = dagger(&["-C", "/nonexistent/config.yml", "config", "show"])
        .await
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot read the Solana CLI config file"),
        "{stderr}"
    );
    std::fs::write(&other, "json_rpc_url: [unclosed").unwrap();
    let output = dagger(&["-C", other.to_str().unwrap(), "config", "show"])
        .await
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("is not a Solana CLI config file"),
        "{stderr}"
    );
    std::fs::write(
        &other,
        yaml.replace("commitment: confirmed", "commitment: soon"),
    )
    .unwrap();
    let output = dagger(&["-C", other.to_str().unwrap(), "config", "show"])
        .await
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(stderr.contains("commitment `soon`"), "{stderr}");
}

/// `dagger completions <shell>` prints a script naming the commands, with
/// no cluster or wallet needed; an unknown shell is a usage error.
#[tokio::test]
async fn completion_scripts_need_no_cluster() {
    for shell in ["bash", "zsh", "fish"] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dagger"))
            .args(["-u", "http://127.0.0.1:9", "completions", shell])
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{shell}: {:?}", text(&output));
        let (stdout, _) = text(&output);
        assert!(stdout.contains("slash") && stdout.contains("vm"), "{shell}");
    }
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dagger"))
        .args(["completions", "tcsh"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
