//! The async client: one RPC connection, one fee-paying wallet, and the four
//! faces built on them ([`CustomerClient`], [`OperatorClient`],
//! [`NodeClient`], [`Reader`]).

use std::{ops::Deref, sync::Arc, time::Duration};

use anchor_client::{Client, Cluster, CommitmentConfig, Program};
use anchor_lang::prelude::Pubkey;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_sdk::signature::{Signature, Signer, SignerError};

use crate::{
    customer::CustomerClient, errors::ClientError, node::NodeClient, operator::OperatorClient,
    reader::Reader, tx::TransactionBuilder, tx::TxOptions, PROGRAM_ID,
};

/// A wallet the client can share between tasks.
pub type Wallet = Arc<dyn Signer + Send + Sync>;

/// A borrowed signer for one call. `Sync` keeps the SDK's futures `Send`.
pub type SignerRef<'a> = &'a (dyn Signer + Sync);

/// How the client talks to the cluster.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Commitment for reads, preflight and confirmation.
    pub commitment: CommitmentConfig,
    /// Priority fee, compute unit limit and preflight for every transaction
    /// (a [`TransactionBuilder`] can override them per transaction).
    pub tx: TxOptions,
    /// Interval between signature-status polls, and between account polls
    /// when no websocket is available.
    pub poll_interval: Duration,
    /// How long a sent transaction may take to reach `commitment`.
    pub confirm_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            commitment: CommitmentConfig::confirmed(),
            tx: TxOptions::default(),
            poll_interval: Duration::from_millis(400),
            confirm_timeout: Duration::from_secs(60),
        }
    }
}

/// anchor-client's `Program` wants `Deref<Target = impl Signer>`; a trait
/// object behind an `Arc` does not fit that, this newtype does.
#[derive(Clone)]
pub struct SharedSigner(Wallet);

impl Signer for SharedSigner {
    fn try_pubkey(&self) -> Result<Pubkey, SignerError> {
        self.0.try_pubkey()
    }

    fn try_sign_message(&self, message: &[u8]) -> Result<Signature, SignerError> {
        self.0.try_sign_message(message)
    }

    fn is_interactive(&self) -> bool {
        self.0.is_interactive()
    }
}

/// The DAGGER client. Reads go through anchor-client's [`Program`] (typed,
/// discriminator-checked account scans); transactions through
/// [`TransactionBuilder`], which adds priority fees, a funds check, its own
/// confirmation loop and program logs on failure — things anchor-client's
/// `send` does not offer.
pub struct DaggerClient {
    cluster: Cluster,
    wallet: Wallet,
    rpc: Arc<RpcClient>,
    program: Program<Arc<SharedSigner>>,
    options: ClientOptions,
}

impl DaggerClient {
    /// A client for `cluster` (see [`crate::cluster::resolve`] for `--url`
    /// style input) that signs and pays with `wallet`.
    pub fn new(
        cluster: Cluster,
        wallet: Wallet,
        options: ClientOptions,
    ) -> Result<DaggerClient, ClientError> {
        let rpc = Arc::new(RpcClient::new_with_commitment(
            cluster.url().to_string(),
            options.commitment,
        ));
        DaggerClient::with_rpc(cluster, wallet, options, rpc)
    }

    fn with_rpc(
        cluster: Cluster,
        wallet: Wallet,
        options: ClientOptions,
        rpc: Arc<RpcClient>,
    ) -> Result<DaggerClient, ClientError> {
        let signer = Arc::new(SharedSigner(wallet.clone()));
        let program = Client::new_with_options(cluster.clone(), signer, options.commitment)
            .program(PROGRAM_ID)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        Ok(DaggerClient {
            cluster,
            wallet,
            rpc,
            program,
            options,
        })
    }

    /// The same connection acting with another wallet.
    pub fn with_wallet(&self, wallet: Wallet) -> Result<DaggerClient, ClientError> {
        DaggerClient::with_rpc(
            self.cluster.clone(),
            wallet,
            self.options.clone(),
            self.rpc.clone(),
        )
    }

    /// The wallet that signs and pays (customer, operator owner or admin).
    pub fn wallet(&self) -> Pubkey {
        self.wallet.pubkey()
    }

    pub(crate) fn wallet_signer(&self) -> SignerRef<'_> {
        self.wallet.deref()
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The nonblocking Solana RPC client, for anything the SDK does not wrap.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// anchor-client's program handle.
    pub fn program(&self) -> &Program<Arc<SharedSigner>> {
        &self.program
    }

    /// Asks the cluster's faucet (local and test clusters) for `lamports`
    /// and waits until `to` holds them.
    pub async fn airdrop(&self, to: &Pubkey, lamports: u64) -> Result<(), ClientError> {
        let before = self.rpc.get_balance(to).await.map_err(Box::new)?;
        self.rpc
            .request_airdrop(to, lamports)
            .await
            .map_err(Box::new)?;
        let started = std::time::Instant::now();
        let patience = std::time::Duration::from_secs(20);
        while started.elapsed() < patience {
            let now = self.rpc.get_balance(to).await.map_err(Box::new)?;
            if now >= before.saturating_add(lamports) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(ClientError::Timeout {
            what: format!("an airdrop of {lamports} lamports to {to}"),
            after: patience,
        })
    }

    /// A transaction paid by this client's wallet.
    pub fn transaction(&self) -> TransactionBuilder<'_> {
        TransactionBuilder::new(self)
    }

    /// Request VMs and pay for them, as this client's wallet.
    pub fn customer(&self) -> CustomerClient<'_> {
        CustomerClient::new(self)
    }

    /// Register and run an operator, as its owner wallet (this client's).
    pub fn operator(&self) -> OperatorClient<'_> {
        OperatorClient::new(self)
    }

    /// What an operator node sends: attestations, signed by its node key.
    pub fn node(&self) -> NodeClient<'_> {
        NodeClient::new(self)
    }

    /// Typed reads and filtered scans of the program's accounts.
    pub fn reader(&self) -> Reader<'_> {
        Reader::new(self)
    }
}

impl std::fmt::Debug for DaggerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaggerClient")
            .field("url", &self.cluster.url())
            .field("ws_url", &self.cluster.ws_url())
            .field("wallet", &self.wallet.pubkey())
            .field("options", &self.options)
            .finish()
    }
}
