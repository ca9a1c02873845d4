//! The node's side of the chain: read the program's accounts (watcher),
//! post attestations (attester), and fix the genesis roster.

pub mod attester;
pub mod rpc;
pub mod watcher;

use anchor_lang::{AnchorDeserialize, AnchorSerialize};
use dagger_client::OperatorStatus;

use crate::{controller::GenesisOperator, store::Store};
pub use rpc::{ChainError, ChainReader};

const GENESIS_KEY: &str = "genesis_roster";

/// The genesis roster: read from the chain (the Active operators once the
/// network is bootstrapped) on a node's first start, then always from its
/// ledger, so a restart never re-reads a roster that has moved on. Nodes
/// that disagree on it cannot talk: it is hashed into the network id.
pub async fn genesis(reader: &ChainReader, store: &Store) -> Result<Vec<GenesisOperator>, String> {
    if let Some(bytes) = store.meta(GENESIS_KEY).map_err(|e| e.to_string())? {
        return Vec::<GenesisOperator>::deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("stored genesis roster is corrupt: {e}"));
    }
    let config = reader.config().await.map_err(|e| e.to_string())?;
    if !config.bootstrapped {
        return Err("the network is not bootstrapped yet (run finish_bootstrap first)".into());
    }
    let mut genesis: Vec<GenesisOperator> = reader
        .operators()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|(_, op)| op.status == OperatorStatus::Active)
        .map(|(operator, op)| GenesisOperator {
            operator,
            nonce: op.nonce,
            node_key: op.node_key,
            stake: op.stake,
            capacity: op.capacity,
            address: op.address,
            price_floor: op.price_floor,
        })
        .collect();
    genesis.sort_by_key(|g| g.operator);
    if genesis.is_empty() {
        return Err("no active operators on-chain".into());
    }
    let mut bytes = Vec::new();
    genesis.serialize(&mut bytes).map_err(|e| e.to_string())?;
    store
        .set_meta(GENESIS_KEY, &bytes)
        .map_err(|e| e.to_string())?;
    Ok(genesis)
}

/// The network id for a chain-backed network: its name and genesis roster.
pub fn network_id(name: &str, genesis: &[GenesisOperator]) -> [u8; 32] {
    let mut bytes = Vec::new();
    genesis
        .serialize(&mut bytes)
        .expect("serialising into a Vec cannot fail");
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"dagger-network:");
    hasher.update(name.as_bytes());
    hasher.update(&bytes);
    *hasher.finalize().as_bytes()
}
