//! A local chain with DAGGER initialised through the SDK, operators
//! registered and admitted, and a way to provision leases by attesting the
//! way operator nodes would.

#![allow(dead_code)] // each test binary uses a different subset

use std::{sync::Arc, time::Duration};

use dagger_client::{
    instructions as ix, pda, AttestOutcome, ClientOptions, CommitmentConfig, DaggerClient,
    InitializeArgs, Vote,
};
use dagger_localnet::{LocalChain, LocalChainConfig};
use solana_sdk::{
    native_token::LAMPORTS_PER_SOL, pubkey::Pubkey, signature::Keypair, signer::Signer,
};

/// Short slots so confirmations take milliseconds.
pub const SLOT_MS: u64 = 50;
pub const MIN_STAKE: u64 = LAMPORTS_PER_SOL;
pub const FEE_BPS: u16 = 250;

/// Settings a test network is initialised with.
#[derive(Clone, Copy)]
pub struct Settings {
    pub unbonding_period: i64,
    pub provisioning_timeout: i64,
    pub operators: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            unbonding_period: 3600,
            provisioning_timeout: 600,
            operators: 1,
        }
    }
}

pub async fn start_chain() -> LocalChain {
    LocalChain::start(LocalChainConfig {
        slot_time_ms: SLOT_MS,
        ..LocalChainConfig::default()
    })
    .await
    .expect("local chain starts")
}

pub fn options() -> ClientOptions {
    ClientOptions {
        commitment: CommitmentConfig::confirmed(),
        poll_interval: Duration::from_millis(SLOT_MS),
        confirm_timeout: Duration::from_secs(20),
        ..ClientOptions::default()
    }
}

pub fn client(chain: &LocalChain, wallet: Arc<Keypair>) -> DaggerClient {
    let cluster = dagger_client::cluster::resolve(&chain.rpc_url(), Some(&chain.ws_url()))
        .expect("chain URLs");
    DaggerClient::new(cluster, wallet, options()).expect("client")
}

/// A new wallet with `sol` SOL from `requestAirdrop`, confirmed.
pub async fn funded(chain: &LocalChain, sol: u64) -> Arc<Keypair> {
    let wallet = Arc::new(Keypair::new());
    let probe = client(chain, wallet.clone());
    let rpc = probe.rpc();
    let signature = rpc
        .request_airdrop(&wallet.pubkey(), sol * LAMPORTS_PER_SOL)
        .await
        .expect("airdrop accepted");
    for _ in 0..400 {
        if rpc
            .confirm_transaction_with_commitment(&signature, CommitmentConfig::confirmed())
            .await
            .expect("airdrop status")
            .value
        {
            return wallet;
        }
        tokio::time::sleep(Duration::from_millis(SLOT_MS)).await;
    }
    panic!("airdrop {signature} not confirmed");
}

/// The same operator capacity and VM spec as the program tests.
pub use dagger_tests::{capacity, spec};

pub struct OperatorKeys {
    pub owner: Arc<Keypair>,
    pub node: Arc<Keypair>,
}

impl OperatorKeys {
    /// The Operator account.
    pub fn account(&self) -> Pubkey {
        pda::operator(&self.node.pubkey()).0
    }
}

/// A chain with the config initialised by `admin`, `settings.operators`
/// operators registered, admitted and bootstrapped.
pub struct Network {
    pub chain: LocalChain,
    pub admin: Arc<Keypair>,
    pub treasury: Pubkey,
    pub operators: Vec<OperatorKeys>,
}

impl Network {
    pub async fn start(settings: Settings) -> Network {
        let chain = start_chain().await;
        let admin = funded(&chain, 100).await;
        let treasury = funded(&chain, 1).await.pubkey();
        let admin_client = client(&chain, admin.clone());
        admin_client
            .transaction()
            .instruction(ix::initialize(
                &admin.pubkey(),
                None,
                InitializeArgs {
                    treasury,
                    min_operator_stake: MIN_STAKE,
                    unbonding_period: settings.unbonding_period,
                    provisioning_timeout: settings.provisioning_timeout,
                    protocol_fee_bps: FEE_BPS,
                    max_stake_share_bps: 3_000,
                    removal_slash_bps: 500,
                    equivocation_slash_bps: 5_000,
                    reporter_reward_bps: 1_000,
                },
            ))
            .send()
            .await
            .expect("initialize");
        let mut network = Network {
            chain,
            admin,
            treasury,
            operators: Vec::new(),
        };
        for index in 0..settings.operators {
            let keys = network.register_operator(index).await;
            admin_client
                .transaction()
                .instruction(ix::bootstrap_admit(
                    &network.admin.pubkey(),
                    &keys.node.pubkey(),
                ))
                .send()
                .await
                .expect("bootstrap_admit");
            network.operators.push(keys);
        }
        if settings.operators > 0 {
            admin_client
                .transaction()
                .instruction(ix::finish_bootstrap(&network.admin.pubkey()))
                .send()
                .await
                .expect("finish_bootstrap");
        }
        network
    }

    /// Registers a new operator (pending) through the SDK's operator face.
    pub async fn register_operator(&self, index: usize) -> OperatorKeys {
        let owner = funded(&self.chain, 10).await;
        let node = funded(&self.chain, 1).await;
        self.client(owner.clone())
            .operator()
            .register(
                &*node,
                format!("127.0.0.1:{}", 9000 + index),
                capacity(),
                MIN_STAKE,
                Default::default(),
            )
            .await
            .expect("register operator");
        OperatorKeys { owner, node }
    }

    pub fn client(&self, wallet: Arc<Keypair>) -> DaggerClient {
        client(&self.chain, wallet)
    }

    /// Every operator's node votes to provision `request` on operator 0,
    /// as nodes do once consensus ordered the provisioning report.
    pub async fn provision(&self, request: &Pubkey) {
        let nonce = self
            .client(self.admin.clone())
            .reader()
            .request(request)
            .await
            .expect("request exists")
            .nonce;
        let vote = Vote::Provision {
            request: *request,
            nonce,
            operator: self.operators[0].account(),
            endpoint_hash: [9; 32],
        };
        for keys in &self.operators {
            let outcome = self
                .client(keys.node.clone())
                .node()
                .attest(&*keys.node, vote)
                .await
                .expect("attest");
            if let AttestOutcome::Recorded { decided: true, .. } = outcome {
                return;
            }
        }
        panic!("no quorum after every operator voted");
    }
}
