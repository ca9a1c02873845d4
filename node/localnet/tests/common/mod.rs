//! Shared helpers: a fast-slot chain and a standard `solana-rpc-client`.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::{Duration, Instant};

use dagger_localnet::{LocalChain, LocalChainConfig};
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::config::CommitmentConfig;
use solana_sdk::{
    instruction::Instruction,
    native_token::LAMPORTS_PER_SOL,
    signature::{Keypair, Signature},
    signer::Signer,
    transaction::Transaction,
};

/// Slots short enough that confirmation takes a few milliseconds.
pub const FAST_SLOT_MS: u64 = 50;

pub async fn start_chain() -> LocalChain {
    start_chain_with(LocalChainConfig {
        slot_time_ms: FAST_SLOT_MS,
        ..LocalChainConfig::default()
    })
    .await
}

pub async fn start_chain_with(config: LocalChainConfig) -> LocalChain {
    let started = Instant::now();
    let chain = LocalChain::start(config).await.expect("chain starts");
    eprintln!(
        "chain ready in {:?} at {}",
        started.elapsed(),
        chain.rpc_url()
    );
    chain
}

pub fn client(chain: &LocalChain) -> RpcClient {
    RpcClient::new_with_commitment(chain.rpc_url(), CommitmentConfig::confirmed())
}

/// A new wallet funded through `requestAirdrop`, confirmed.
pub async fn funded(rpc: &RpcClient, sol: u64) -> Keypair {
    let wallet = Keypair::new();
    let signature = rpc
        .request_airdrop(&wallet.pubkey(), sol * LAMPORTS_PER_SOL)
        .await
        .expect("airdrop accepted");
    confirm(rpc, &signature).await;
    wallet
}

/// Waits (up to 10 s) until `signature` is confirmed and succeeded.
pub async fn confirm(rpc: &RpcClient, signature: &Signature) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = rpc
            .get_signature_statuses(&[*signature])
            .await
            .expect("getSignatureStatuses")
            .value
            .remove(0);
        if let Some(status) = status {
            if let Some(err) = status.err {
                panic!("{signature} failed: {err:?}");
            }
            if status.satisfies_commitment(CommitmentConfig::confirmed()) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{signature} not confirmed within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Signs with `signers` (the first pays), sends, and waits for confirmation.
pub async fn send_ok(
    rpc: &RpcClient,
    instructions: &[Instruction],
    signers: &[&Keypair],
) -> Signature {
    let blockhash = rpc.get_latest_blockhash().await.expect("blockhash");
    let tx = Transaction::new_signed_with_payer(
        instructions,
        Some(&signers[0].pubkey()),
        signers,
        blockhash,
    );
    let signature = rpc
        .send_transaction(&tx)
        .await
        .unwrap_or_else(|e| panic!("transaction rejected: {e}"));
    confirm(rpc, &signature).await;
    signature
}
