//! Turning flags into a client: URL monikers, keypair files, amounts,
//! durations and keys.

use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
pub use dagger_client::cli_support::{
    parse_duration, parse_pubkey, parse_sol, pubkey_or_keypair, read_keypair, sol,
};
use dagger_client::{ClientOptions, CommitmentConfig, DaggerClient, TxOptions};
use solana_sdk::{pubkey::Pubkey, signature::Keypair, signer::Signer};

use crate::args::{CommitmentArg, GlobalArgs};

/// What every command needs: where, as whom, and how to print.
pub struct Context {
    keypair_path: String,
    cluster: dagger_client::Cluster,
    options: ClientOptions,
    node_api: Option<String>,
}

impl Context {
    pub fn new(global: &GlobalArgs) -> Result<Context> {
        let cluster = dagger_client::cluster::resolve(&global.url, global.ws.as_deref())?;
        let commitment = match global.commitment {
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
            keypair_path: global.keypair.clone(),
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

/// 32 bytes as 64 hex characters.
pub fn parse_hash(value: &str) -> Result<[u8; 32]> {
    let invalid = || anyhow!("`{value}` is not 64 hex characters (a 32-byte hash)");
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&value[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
    }
    Ok(hash)
}

/// The ed25519 key of an OpenSSH public key file (`~` expanded).
pub fn read_ssh_key(path: &str) -> Result<[u8; 32]> {
    let file = dagger_client::cli_support::expand_tilde(path);
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the node keypair for `operator register` with a clear error.
pub fn node_keypair(path: &str) -> Result<Keypair> {
    read_keypair(path).context("the node keypair (--node-keypair) is needed to co-sign")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_64_hex_characters() {
        let hash = parse_hash(&"ab".repeat(32)).unwrap();
        assert_eq!(hash, [0xab; 32]);
        assert_eq!(hex(&hash), "ab".repeat(32));
        assert!(parse_hash(&"ab".repeat(31)).is_err());
        assert!(parse_hash(&"zz".repeat(32)).is_err());
        assert!(parse_hash(&"é".repeat(32)).is_err());
        // `from_str_radix` alone would take a sign.
        assert!(parse_hash(&"+a".repeat(32)).is_err());
    }
}
