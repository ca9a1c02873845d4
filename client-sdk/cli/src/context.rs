//! Turning flags into a client: URL monikers, keypair files, amounts,
//! durations and keys.

use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
pub use dagger_cli::{parse_pubkey, pubkey_or_keypair, read_keypair, sol};
use dagger_client::{ClientOptions, CommitmentConfig, DaggerClient, TxOptions};
use solana_sdk::{pubkey::Pubkey, signature::Keypair, signer::Signer};

use crate::args::{CommitmentArg, GlobalArgs};
use clap::ValueEnum;

/// What every command needs: where, as whom, and how to print.
pub struct Context {
    keypair_path: String,
    cluster: dagger_client::Cluster,
    options: ClientOptions,
    node_api: Option<String>,
}

impl Context {
    pub fn new(global: &GlobalArgs) -> Result<Context> {
        let file = SolanaConfig::find(global.config.as_deref())?;
        let from_file = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let (url, ws) = match (&global.url, file.as_ref().and_then(|f| from_file(&f.url))) {
            (Some(url), _) => (url.clone(), global.ws.clone()),
            (None, Some(url)) => (
                url,
                global
                    .ws
                    .clone()
                    .or_else(|| file.as_ref().and_then(|f| from_file(&f.websocket_url))),
            ),
            (None, None) => ("l".to_string(), global.ws.clone()),
        };
        let cluster = dagger_client::cluster::resolve(&url, ws.as_deref())?;
        let commitment = match global.commitment {
            Some(commitment) => commitment,
            None => match file.as_ref().and_then(|f| from_file(&f.commitment)) {
                Some(name) => CommitmentArg::from_str(&name, true).map_err(|_| {
                    anyhow!(
                        "the Solana CLI config file says commitment `{name}`; expected \
                         processed, confirmed or finalized"
                    )
                })?,
                None => CommitmentArg::Confirmed,
            },
        };
        let keypair_path = global
            .keypair
            .clone()
            .or_else(|| file.as_ref().and_then(|f| from_file(&f.keypair_path)))
            .unwrap_or_else(|| "~/.config/solana/id.json".to_string());
        let commitment = match commitment {
            CommitmentArg::Processed => CommitmentConfig::processed(),
            CommitmentArg::Confirmed => CommitmentConfig::confirmed(),
            CommitmentArg::Finalized => CommitmentConfig::finalized(),
        };
        let options = ClientOptions {
            commitment,
            tx: TxOptions {
                compute_unit_price: global.priority_fee,
                compute_unit_limit: global.compute_unit_limit,
                skip_preflight: false,
            },
            ..ClientOptions::default()
        };
        Ok(Context {
            keypair_path,
            cluster,
            options,
            node_api: global.node_api.clone(),
        })
    }

    /// The node API to ask where VMs are: `--node-api`, or for a localhost
    /// cluster the devnet's first node.
    pub fn node_api(&self) -> Result<String> {
        if let Some(api) = &self.node_api {
            return Ok(api.clone());
        }
        let url = self.cluster.url();
        if url.contains("127.0.0.1") || url.contains("localhost") {
            return Ok("http://127.0.0.1:8910".to_string());
        }
        Err(anyhow!(
            "which node should say where the VM is? pass --node-api http://HOST:PORT (any \
             DAGGER node's API) or set DAGGER_NODE_API"
        ))
    }

    pub fn rpc_url(&self) -> &str {
        self.cluster.url()
    }

    /// The `--keypair` wallet; an error says how to get one.
    pub fn wallet(&self) -> Result<Arc<Keypair>> {
        read_keypair(&self.keypair_path).map(Arc::new)
    }

    /// A client acting as the `--keypair` wallet.
    pub fn client(&self) -> Result<DaggerClient> {
        Ok(DaggerClient::new(
            self.cluster.clone(),
            self.wallet()?,
            self.options.clone(),
        )?)
    }

    /// A client for reads: no keypair file is needed, nothing is signed.
    pub fn reader(&self) -> Result<DaggerClient> {
        let wallet = self.wallet().unwrap_or_else(|_| Arc::new(Keypair::new()));
        Ok(DaggerClient::new(
            self.cluster.clone(),
            wallet,
            self.options.clone(),
        )?)
    }

    /// `me` stands for the `--keypair` wallet, anything else is a pubkey.
    pub fn pubkey_or_me(&self, value: &str) -> Result<Pubkey> {
        if value == "me" {
            return Ok(self.wallet()?.pubkey());
        }
        parse_pubkey(value)
    }
}

/// The settings `dagger` takes from the Solana CLI's config file (it
/// holds more; other keys are ignored, as the Solana CLI does).
#[derive(Debug, Default, serde::Deserialize)]
struct SolanaConfig {
    #[serde(rename = "json_rpc_url", default)]
    url: Option<String>,
    #[serde(default)]
    websocket_url: Option<String>,
    #[serde(default)]
    keypair_path: Option<String>,
    #[serde(default)]
    commitment: Option<String>,
}

/// Where `solana config set` writes.
pub const SOLANA_CONFIG_FILE: &str = "~/.config/solana/cli/config.yml";

impl SolanaConfig {
    /// `--config FILE` must exist and parse; the Solana CLI's default file
    /// is read when it exists.
    fn find(explicit: Option<&str>) -> Result<Option<SolanaConfig>> {
        let (path, required) = match explicit {
            Some(path) => (path, true),
            None => (SOLANA_CONFIG_FILE, false),
        };
        let file = dagger_cli::expand_tilde(path);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(anyhow!(
                    "cannot read the Solana CLI config file {}: {e}",
                    file.display()
                ))
            }
        };
        let config = serde_yaml::from_str(&text).with_context(|| {
            format!(
                "{} is not a Solana CLI config file (YAML with json_rpc_url, keypair_path, \
                 commitment)",
                file.display()
            )
        })?;
        Ok(Some(config))
    }
}

/// The ed25519 key of an OpenSSH public key file (`~` expanded).
pub fn read_ssh_key(path: &str) -> Result<[u8; 32]> {
    let file = dagger_cli::expand_tilde(path);
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read the SSH public key {} (create one with `ssh-keygen -t ed25519`, or \
             pass --ssh-key)",
            file.display()
        )
    })?;
    dagger_client::ssh::parse_public_key(&text)
        .with_context(|| format!("{} is not a usable key", file.display()))
}

pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// Reads the node keypair for `operator register` with a clear error.
pub fn node_keypair(path: &str) -> Result<Keypair> {
    read_keypair(path).context("the node keypair (--node-keypair) is needed to co-sign")
}
