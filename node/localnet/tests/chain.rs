//! The local chain seen from outside, through standard Solana clients only
//! (`solana-rpc-client`, `solana-pubsub-client`): the JSON-RPC surface, the
//! DAGGER program end to end, signature and blockhash enforcement, cheatcode
//! locking and the start/stop lifecycle.

mod common;

use std::{net::TcpListener, time::Duration};

use anchor_lang::{
    solana_program::{system_instruction, system_program},
    Discriminator, Space,
};
use common::*;
use dagger_client::{
    accounts::decode, errors::DaggerError, instructions as ix, pda, Capacity, Config,
    InitializeArgs, Operator, OperatorStatus, ProgramFailure, StakeVault, PROGRAM_ID,
};
use dagger_localnet::{LocalChain, LocalChainConfig, LocalnetError};
use futures_util::StreamExt;
use serde_json::json;
use solana_pubsub_client::nonblocking::pubsub_client::PubsubClient;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::{
    config::{
        CommitmentConfig, RpcAccountInfoConfig, RpcProgramAccountsConfig, RpcSendTransactionConfig,
        RpcSignatureSubscribeConfig, RpcTransactionConfig, UiAccountEncoding,
        UiTransactionEncoding,
    },
    filter::{Memcmp, RpcFilterType},
    request::RpcRequest,
    response::{OptionSerializer, RpcSignatureResult},
};
use solana_sdk::{
    account::Account,
    hash::Hash,
    native_token::LAMPORTS_PER_SOL,
    pubkey::Pubkey,
    signature::{Keypair, Signature},
    signer::Signer,
    transaction::Transaction,
};

const NOTIFICATION_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_STAKE: u64 = 10 * LAMPORTS_PER_SOL;
/// Above the rent-exempt minimum of an empty account (890 880 lamports), so
/// the new recipient account is allowed to exist.
const TRANSFER: u64 = 1_000_000;

async fn transaction_logs(rpc: &RpcClient, signature: &Signature) -> Vec<String> {
    let tx = rpc
        .get_transaction_with_config(
            signature,
            RpcTransactionConfig {
                encoding: Some(UiTransactionEncoding::Json),
                commitment: Some(CommitmentConfig::confirmed()),
                max_supported_transaction_version: Some(0),
            },
        )
        .await
        .expect("getTransaction");
    let meta = tx.transaction.meta.expect("transaction meta");
    assert!(meta.err.is_none(), "transaction failed: {:?}", meta.err);
    match meta.log_messages {
        OptionSerializer::Some(logs) => logs,
        other => panic!("no log messages: {other:?}"),
    }
}

async fn program_accounts(rpc: &RpcClient, filters: Vec<RpcFilterType>) -> Vec<(Pubkey, Account)> {
    rpc.get_program_ui_accounts_with_config(
        &PROGRAM_ID,
        RpcProgramAccountsConfig {
            filters: Some(filters),
            account_config: RpcAccountInfoConfig {
                encoding: Some(UiAccountEncoding::Base64),
                commitment: Some(CommitmentConfig::confirmed()),
                ..RpcAccountInfoConfig::default()
            },
            ..RpcProgramAccountsConfig::default()
        },
    )
    .await
    .expect("getProgramAccounts")
    .into_iter()
    .map(|(address, account)| {
        let account = account.decode::<Account>().expect("base64 account data");
        (address, account)
    })
    .collect()
}

fn discriminator<T: Discriminator>() -> RpcFilterType {
    RpcFilterType::Memcmp(Memcmp::new_raw_bytes(0, T::DISCRIMINATOR.to_vec()))
}

fn capacity() -> Capacity {
    Capacity {
        vcpus: 16,
        memory_mib: 65_536,
        disk_gib: 1_000,
        region: 1,
    }
}

/// Sends a transaction the chain must not execute. With preflight the RPC
/// call must fail with `reason`. Without preflight a cluster may answer with
/// the signature and drop the transaction later, so acceptance is allowed
/// there; callers check afterwards that nothing landed.
async fn refused(rpc: &RpcClient, tx: &Transaction, skip_preflight: bool, reason: &str) {
    let sent = rpc
        .send_transaction_with_config(
            tx,
            RpcSendTransactionConfig {
                skip_preflight,
                ..RpcSendTransactionConfig::default()
            },
        )
        .await;
    match sent {
        Err(err) => {
            let text = err.to_string();
            assert!(text.contains(reason), "refused for another reason: {text}");
        }
        Ok(signature) => assert!(
            skip_preflight,
            "preflight accepted {signature}, expected `{reason}`"
        ),
    }
}

/// Lets a few slots pass, so anything the chain accepted would be confirmed.
async fn let_slots_pass(rpc: &RpcClient, slots: u64) {
    let target = rpc.get_slot().await.expect("getSlot") + slots;
    wait_for_slot(rpc, target).await;
}

async fn wait_for_slot(rpc: &RpcClient, slot: u64) {
    while rpc.get_slot().await.expect("getSlot") < slot {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_standard_client_transfers_reads_and_subscribes() {
    let chain = start_chain().await;
    let rpc = client(&chain);
    rpc.get_health().await.expect("getHealth");
    let first_slot = rpc.get_slot().await.expect("getSlot");

    let payer = funded(&rpc, 10).await;
    assert_eq!(
        rpc.get_balance(&payer.pubkey()).await.expect("getBalance"),
        10 * LAMPORTS_PER_SOL
    );

    let recipient = Pubkey::new_unique();
    let pubsub = PubsubClient::new(&chain.ws_url()).await.expect("websocket");
    let (mut account_updates, account_unsubscribe) = pubsub
        .account_subscribe(
            &recipient,
            Some(RpcAccountInfoConfig {
                encoding: Some(UiAccountEncoding::Base64),
                commitment: Some(CommitmentConfig::confirmed()),
                ..RpcAccountInfoConfig::default()
            }),
        )
        .await
        .expect("accountSubscribe");

    let blockhash = rpc.get_latest_blockhash().await.expect("blockhash");
    let tx = Transaction::new_signed_with_payer(
        &[system_instruction::transfer(
            &payer.pubkey(),
            &recipient,
            TRANSFER,
        )],
        Some(&payer.pubkey()),
        &[&payer],
        blockhash,
    );
    let signature = tx.signatures[0];
    let (mut signature_updates, signature_unsubscribe) = pubsub
        .signature_subscribe(
            &signature,
            Some(RpcSignatureSubscribeConfig {
                commitment: Some(CommitmentConfig::confirmed()),
                enable_received_notification: Some(false),
            }),
        )
        .await
        .expect("signatureSubscribe");
    assert_eq!(
        rpc.send_transaction(&tx).await.expect("sendTransaction"),
        signature
    );

    let notification = tokio::time::timeout(NOTIFICATION_TIMEOUT, signature_updates.next())
        .await
        .expect("signature notification in time")
        .expect("signature stream open");
    match notification.value {
        RpcSignatureResult::ProcessedSignature(result) => {
            assert!(result.err.is_none(), "{:?}", result.err)
        }
        other => panic!("unexpected signature notification {other:?}"),
    }
    let update = tokio::time::timeout(NOTIFICATION_TIMEOUT, account_updates.next())
        .await
        .expect("account notification in time")
        .expect("account stream open");
    assert_eq!(update.value.lamports, TRANSFER);
    signature_unsubscribe().await;
    account_unsubscribe().await;
    drop((signature_updates, account_updates));
    pubsub.shutdown().await.expect("websocket closes");

    confirm(&rpc, &signature).await;
    let account = rpc.get_account(&recipient).await.expect("getAccountInfo");
    assert_eq!(account.lamports, TRANSFER);
    assert_eq!(account.owner, system_program::ID);
    assert_eq!(
        rpc.get_balance(&payer.pubkey()).await.expect("getBalance"),
        10 * LAMPORTS_PER_SOL - TRANSFER - 5_000,
        "transfer plus one signature's fee"
    );

    let status = rpc
        .get_signature_statuses(&[signature])
        .await
        .expect("getSignatureStatuses")
        .value
        .remove(0)
        .expect("status known");
    assert!(status.err.is_none());
    assert!(status.slot >= first_slot);
    assert!(status.satisfies_commitment(CommitmentConfig::confirmed()));

    let logs = transaction_logs(&rpc, &signature).await;
    let system = system_program::ID;
    assert!(
        logs.contains(&format!("Program {system} invoke [1]")),
        "{logs:?}"
    );
    assert!(
        logs.contains(&format!("Program {system} success")),
        "{logs:?}"
    );

    assert!(
        rpc.get_slot().await.expect("getSlot") > first_slot,
        "slots advance"
    );
    chain.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_dagger_program_runs_end_to_end_over_rpc() {
    let chain = start_chain().await;
    let rpc = client(&chain);

    let program = rpc.get_account(&PROGRAM_ID).await.expect("program account");
    assert!(
        program.executable,
        "dagger is loaded as an executable program"
    );

    let admin = funded(&rpc, 100).await;
    let treasury = funded(&rpc, 1).await;
    let initialized = send_ok(
        &rpc,
        &[ix::initialize(
            &admin.pubkey(),
            None,
            InitializeArgs {
                treasury: treasury.pubkey(),
                min_operator_stake: MIN_STAKE,
                unbonding_period: 7 * 24 * 3600,
                provisioning_timeout: 600,
                protocol_fee_bps: 250,
                max_stake_share_bps: 3_000,
                removal_slash_bps: 500,
                equivocation_slash_bps: 5_000,
                reporter_reward_bps: 1_000,
            },
        )],
        &[&admin],
    )
    .await;
    // The runtime's log lines for the program and for its CPI (creating the
    // config account) reach the transaction's logs. Anchor's `msg!` does not:
    // natively it prints to stdout.
    let logs = transaction_logs(&rpc, &initialized).await;
    let system = system_program::ID;
    for line in [
        format!("Program {PROGRAM_ID} invoke [1]"),
        format!("Program {system} invoke [2]"),
        format!("Program {system} success"),
        format!("Program {PROGRAM_ID} success"),
    ] {
        assert!(logs.contains(&line), "no `{line}` in {logs:?}");
    }

    let mut operators = Vec::new();
    for i in 0..2u16 {
        let owner = funded(&rpc, 20).await;
        let node = Keypair::new();
        send_ok(
            &rpc,
            &[ix::register_operator(
                &owner.pubkey(),
                &node.pubkey(),
                format!("127.0.0.1:{}", 9000 + i),
                capacity(),
                MIN_STAKE,
                Default::default(),
            )],
            &[&owner, &node],
        )
        .await;
        operators.push((owner, node));
    }

    // A program error comes back through RPC as the program's error code.
    let owner = funded(&rpc, 20).await;
    let node = Keypair::new();
    let blockhash = rpc.get_latest_blockhash().await.expect("blockhash");
    let too_little = Transaction::new_signed_with_payer(
        &[ix::register_operator(
            &owner.pubkey(),
            &node.pubkey(),
            "127.0.0.1:9100".into(),
            capacity(),
            MIN_STAKE - 1,
            Default::default(),
        )],
        Some(&owner.pubkey()),
        &[&owner, &node],
        blockhash,
    );
    let error = rpc
        .send_transaction(&too_little)
        .await
        .expect_err("stake below the minimum is refused");
    let tx_error = error.get_transaction_error().expect("a transaction error");
    let (index, failure) =
        ProgramFailure::from_transaction_error(&tx_error).expect("an instruction error");
    assert_eq!(index, 0);
    assert!(
        matches!(
            failure,
            ProgramFailure::Dagger(DaggerError::InsufficientStake)
        ),
        "{failure:?}"
    );

    // getProgramAccounts, filtered the way the node's watcher will filter.
    let found = program_accounts(&rpc, vec![discriminator::<Operator>()]).await;
    assert_eq!(found.len(), 2, "one Operator account per registration");
    for (owner, node) in &operators {
        let (address, account) = found
            .iter()
            .find(|(address, _)| *address == pda::operator(&node.pubkey()).0)
            .expect("operator PDA listed");
        assert_eq!(account.owner, PROGRAM_ID);
        let operator: Operator = decode(&account.data).expect("decodes as Operator");
        assert_eq!(operator.owner, owner.pubkey());
        assert_eq!(operator.node_key, node.pubkey());
        assert_eq!(operator.stake, MIN_STAKE);
        assert_eq!(operator.status, OperatorStatus::Pending);
        let vault = rpc
            .get_account(&pda::stake_vault(address).0)
            .await
            .expect("stake vault");
        decode::<StakeVault>(&vault.data).expect("decodes as StakeVault");
        assert!(vault.lamports >= MIN_STAKE);
    }

    let operator_size = (8 + Operator::INIT_SPACE) as u64;
    let sized = program_accounts(
        &rpc,
        vec![
            RpcFilterType::DataSize(operator_size),
            discriminator::<Operator>(),
        ],
    )
    .await;
    assert_eq!(sized.len(), 2);
    let wrong_size = program_accounts(
        &rpc,
        vec![
            RpcFilterType::DataSize(operator_size + 1),
            discriminator::<Operator>(),
        ],
    )
    .await;
    assert!(wrong_size.is_empty());

    // Operator layout: discriminator (8), owner (32), node_key (32).
    let first_node = operators[0].1.pubkey();
    let by_node = program_accounts(
        &rpc,
        vec![
            discriminator::<Operator>(),
            RpcFilterType::Memcmp(Memcmp::new_base58_encoded(40, first_node.as_ref())),
        ],
    )
    .await;
    assert_eq!(by_node.len(), 1);
    assert_eq!(by_node[0].0, pda::operator(&first_node).0);

    let configs = program_accounts(&rpc, vec![discriminator::<Config>()]).await;
    assert_eq!(configs.len(), 1);
    assert_eq!(configs[0].0, pda::config().0);
    let config: Config = decode(&configs[0].1.data).expect("decodes as Config");
    assert_eq!(config.admin, admin.pubkey());
    assert_eq!(config.treasury, treasury.pubkey());
    assert_eq!(config.min_operator_stake, MIN_STAKE);

    chain.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn forged_and_missing_signatures_are_rejected() {
    let chain = start_chain().await;
    let rpc = client(&chain);
    let payer = funded(&rpc, 5).await;
    let sender = funded(&rpc, 5).await;
    let recipient = Pubkey::new_unique();
    let blockhash = rpc.get_latest_blockhash().await.expect("blockhash");
    let transfer = [system_instruction::transfer(
        &payer.pubkey(),
        &recipient,
        LAMPORTS_PER_SOL,
    )];

    // The fee payer's signature made by another key over the same message.
    let mut forged =
        Transaction::new_signed_with_payer(&transfer, Some(&payer.pubkey()), &[&payer], blockhash);
    forged.signatures[0] = Keypair::new().sign_message(&forged.message_data());
    // A second signer (not the fee payer) whose signature is left empty.
    let mut unsigned_sender = Transaction::new_signed_with_payer(
        &[system_instruction::transfer(
            &sender.pubkey(),
            &recipient,
            LAMPORTS_PER_SOL,
        )],
        Some(&payer.pubkey()),
        &[&payer, &sender],
        blockhash,
    );
    unsigned_sender.signatures[1] = Signature::default();

    for tx in [&forged, &unsigned_sender] {
        for skip_preflight in [false, true] {
            refused(&rpc, tx, skip_preflight, "signature verification").await;
        }
    }

    let_slots_pass(&rpc, 3).await;
    let statuses = rpc
        .get_signature_statuses(&[forged.signatures[0], unsigned_sender.signatures[0]])
        .await
        .expect("getSignatureStatuses")
        .value;
    assert_eq!(statuses, vec![None, None], "neither transaction landed");
    assert_eq!(rpc.get_balance(&recipient).await.expect("getBalance"), 0);
    assert_eq!(
        rpc.get_balance(&payer.pubkey()).await.expect("getBalance"),
        5 * LAMPORTS_PER_SOL,
        "no fee charged"
    );

    // Control: the same transfer, properly signed, goes through.
    send_ok(&rpc, &transfer, &[&payer]).await;
    assert_eq!(
        rpc.get_balance(&recipient).await.expect("getBalance"),
        LAMPORTS_PER_SOL
    );
    chain.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn unknown_and_expired_blockhashes_are_rejected() {
    // Short slots so 150 of them (a blockhash's lifetime) pass in seconds.
    let chain = start_chain_with(LocalChainConfig {
        slot_time_ms: 10,
        ..LocalChainConfig::default()
    })
    .await;
    let rpc = client(&chain);
    let payer = funded(&rpc, 5).await;
    let recipient = Pubkey::new_unique();
    let transfer = [system_instruction::transfer(
        &payer.pubkey(),
        &recipient,
        1_000_000,
    )];
    let signed_with = |blockhash: Hash| {
        Transaction::new_signed_with_payer(&transfer, Some(&payer.pubkey()), &[&payer], blockhash)
    };

    let unknown = signed_with(Hash::new_unique());
    for skip_preflight in [false, true] {
        refused(&rpc, &unknown, skip_preflight, "Blockhash not found").await;
    }

    let (old, _) = rpc
        .get_latest_blockhash_with_commitment(CommitmentConfig::confirmed())
        .await
        .expect("blockhash");
    let issued_at = rpc.get_slot().await.expect("getSlot");
    let is_valid = |hash: Hash| {
        let rpc = &rpc;
        async move {
            rpc.is_blockhash_valid(&hash, CommitmentConfig::confirmed())
                .await
                .expect("isBlockhashValid")
        }
    };
    // Not early: a blockhash lives 150 slots; 120 leaves room for the
    // confirmed-commitment lag and RPC round trips at 10 ms slots.
    wait_for_slot(&rpc, issued_at + 120).await;
    assert!(is_valid(old).await, "blockhash expired within 120 slots");
    // But it does expire.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while is_valid(old).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "blockhash never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expired = signed_with(old);
    for skip_preflight in [false, true] {
        refused(&rpc, &expired, skip_preflight, "Blockhash not found").await;
    }

    let_slots_pass(&rpc, 3).await;
    let statuses = rpc
        .get_signature_statuses(&[unknown.signatures[0], expired.signatures[0]])
        .await
        .expect("getSignatureStatuses")
        .value;
    assert_eq!(statuses, vec![None, None], "neither transaction landed");
    assert_eq!(
        rpc.get_balance(&payer.pubkey()).await.expect("getBalance"),
        5 * LAMPORTS_PER_SOL,
        "no fee charged"
    );

    // Control: the same transfer with a current blockhash goes through.
    send_ok(&rpc, &transfer, &[&payer]).await;
    assert_eq!(
        rpc.get_balance(&recipient).await.expect("getBalance"),
        1_000_000
    );
    chain.shutdown().await.expect("clean shutdown");
}

/// `surfnet_setAccount` with a given `lamports`, through the raw JSON-RPC.
async fn set_lamports_cheatcode(
    rpc: &RpcClient,
    account: &Pubkey,
    lamports: u64,
) -> Result<(), String> {
    rpc.send::<serde_json::Value>(
        RpcRequest::Custom {
            method: "surfnet_setAccount",
        },
        json!([account.to_string(), { "lamports": lamports }]),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn cheatcodes_are_locked_unless_asked_for() {
    let target = Pubkey::new_unique();

    let locked = start_chain().await;
    let rpc = client(&locked);
    let error = set_lamports_cheatcode(&rpc, &target, 42)
        .await
        .expect_err("surfnet_setAccount refused");
    assert!(error.contains("disabled"), "{error}");
    let reenable = rpc
        .send::<serde_json::Value>(
            RpcRequest::Custom {
                method: "surfnet_enableCheatcode",
            },
            json!([["surfnet_setAccount"]]),
        )
        .await;
    assert!(reenable.is_err(), "the lock cannot be lifted over RPC");
    assert_eq!(rpc.get_balance(&target).await.expect("getBalance"), 0);
    locked.shutdown().await.expect("clean shutdown");

    // Control: with cheatcodes asked for, the same call works.
    let open = start_chain_with(LocalChainConfig {
        slot_time_ms: FAST_SLOT_MS,
        cheatcodes: true,
        ..LocalChainConfig::default()
    })
    .await;
    let rpc = client(&open);
    set_lamports_cheatcode(&rpc, &target, 42)
        .await
        .expect("surfnet_setAccount allowed");
    assert_eq!(rpc.get_balance(&target).await.expect("getBalance"), 42);
    open.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn startup_airdrops_fund_the_listed_wallets() {
    let wallet = Pubkey::new_unique();
    let chain = start_chain_with(LocalChainConfig {
        slot_time_ms: FAST_SLOT_MS,
        airdrop: vec![wallet],
        airdrop_lamports: 7 * LAMPORTS_PER_SOL,
        ..LocalChainConfig::default()
    })
    .await;
    let rpc = client(&chain);
    assert_eq!(
        rpc.get_balance(&wallet).await.expect("getBalance"),
        7 * LAMPORTS_PER_SOL
    );
    chain.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn shutdown_frees_the_ports_for_a_restart() {
    let chain = start_chain().await;
    let (rpc_addr, ws_addr) = (chain.rpc_addr(), chain.ws_addr());
    let rpc = client(&chain);
    let wallet = funded(&rpc, 1).await;

    // Clients still connected (a keep-alive HTTP pool, a live websocket
    // subscription) must not hold the chain up.
    let pubsub = PubsubClient::new(&chain.ws_url()).await.expect("websocket");
    let (slots, _unsubscribe) = pubsub.slot_subscribe().await.expect("slotSubscribe");
    chain.shutdown().await.expect("clean shutdown");
    assert!(
        rpc.get_slot().await.is_err(),
        "nothing answers on the old port"
    );
    drop(slots);

    let restarted = start_chain_with(LocalChainConfig {
        rpc_port: Some(rpc_addr.port()),
        ws_port: Some(ws_addr.port()),
        slot_time_ms: FAST_SLOT_MS,
        ..LocalChainConfig::default()
    })
    .await;
    assert_eq!(
        (restarted.rpc_addr(), restarted.ws_addr()),
        (rpc_addr, ws_addr)
    );
    let rpc = client(&restarted);
    rpc.get_health().await.expect("getHealth");
    assert_eq!(
        rpc.get_balance(&wallet.pubkey()).await.expect("getBalance"),
        0,
        "a restarted chain starts from genesis"
    );
    PubsubClient::new(&restarted.ws_url())
        .await
        .expect("websocket on the reused port")
        .shutdown()
        .await
        .expect("websocket closes");

    // Dropping the handle stops the chain as well.
    drop(restarted);
    TcpListener::bind(rpc_addr).expect("RPC port free after drop");
    TcpListener::bind(ws_addr).expect("websocket port free after drop");
}

#[tokio::test]
async fn bad_addresses_are_typed_errors() {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("address").port();
    let error = LocalChain::start(LocalChainConfig {
        rpc_port: Some(port),
        ..LocalChainConfig::default()
    })
    .await
    .expect_err("a busy port is refused");
    assert!(
        matches!(&error, LocalnetError::AddressUnavailable { addr, .. } if addr.port() == port),
        "{error:?}"
    );

    let error = LocalChain::start(LocalChainConfig {
        rpc_port: Some(18_899),
        ws_port: Some(18_899),
        ..LocalChainConfig::default()
    })
    .await
    .expect_err("one port for both servers is refused");
    assert!(
        matches!(error, LocalnetError::InvalidConfig(_)),
        "{error:?}"
    );
}
