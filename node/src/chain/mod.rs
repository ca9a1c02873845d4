//! The node's side of the chain: read the program's accounts (watcher),
//! post attestations (attester), and fix the genesis roster.

pub mod attester;
pub mod client;
pub mod slasher;
pub mod watcher;

use anchor_lang::{AnchorDeserialize, AnchorSerialize};
use dagger_client::{pda, Genesis};

use crate::{controller::GenesisOperator, store::Store};
pub use client::{ChainError, ChainReader};

const GENESIS_KEY: &str = "genesis_roster";

/// The genesis roster as the program recorded it (`bootstrap_admit`, final
/// at `finish_bootstrap`), whenever this node first starts: before or
/// after its operator was admitted, however the roster moved on since.
/// The node keeps a copy in its ledger and refuses to start if the chain's
/// record changed (a reopened bootstrap is a new network): its ledger
/// belongs to another network. Returns the roster and the network id the
/// program fixed at `finish_bootstrap` (which every event signature
/// covers, and which `report_equivocation` checks evidence against).
pub async fn genesis(
    reader: &ChainReader,
    store: &Store,
) -> Result<(Vec<GenesisOperator>, [u8; 32]), String> {
    let (on_chain, network_id) = chain_genesis(reader).await?;
    match store.meta(GENESIS_KEY).map_err(|e| e.to_string())? {
        Some(bytes) => {
            let stored = Vec::<GenesisOperator>::deserialize(&mut bytes.as_slice())
                .map_err(|e| format!("stored genesis roster is corrupt: {e}"))?;
            if stored != on_chain {
                return Err(genesis_mismatch(&stored, &on_chain));
            }
            Ok((stored, network_id))
        }
        None => {
            let mut bytes = Vec::new();
            on_chain.serialize(&mut bytes).map_err(|e| e.to_string())?;
            store
                .set_meta(GENESIS_KEY, &bytes)
                .map_err(|e| e.to_string())?;
            Ok((on_chain, network_id))
        }
    }
}

/// The finished genesis record on chain, in a canonical order, and the
/// network id.
async fn chain_genesis(reader: &ChainReader) -> Result<(Vec<GenesisOperator>, [u8; 32]), String> {
    let config = reader.config().await.map_err(|e| e.to_string())?;
    let record = reader
        .one::<Genesis>(&pda::genesis().0)
        .await
        .map_err(|e| e.to_string())?;
    let record = match record {
        Some(record) if config.bootstrapped && record.finished => record,
        _ => {
            return Err(
                "the network is not bootstrapped yet: the admin admits the genesis operators \
                 (bootstrap_admit) and then runs finish_bootstrap"
                    .into(),
            )
        }
    };
    let mut genesis: Vec<GenesisOperator> = record
        .members
        .into_iter()
        .map(|m| GenesisOperator {
            operator: m.operator,
            nonce: m.nonce,
            node_key: m.node_key,
            stake: m.stake,
            capacity: m.capacity,
            address: m.address,
            price_floor: m.price_floor,
        })
        .collect();
    genesis.sort_by_key(|g| g.operator);
    if genesis.is_empty() {
        return Err("the recorded genesis roster is empty".into());
    }
    Ok((genesis, config.network_id))
}

fn genesis_mismatch(stored: &[GenesisOperator], on_chain: &[GenesisOperator]) -> String {
    let keys = |g: &[GenesisOperator]| {
        g.iter()
            .map(|o| o.node_key.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "this node's ledger belongs to a network whose genesis roster was [{}], but the \
         program now records [{}] (its bootstrap was reopened: a new network). Move the data \
         directory away (or point data_dir elsewhere) to join the current network",
        keys(stored),
        keys(on_chain)
    )
}
