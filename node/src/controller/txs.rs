//! The transactions nodes put into the DAG about the chain and their own
//! work. Encoded with borsh behind a magic prefix, so anything else in the
//! order (clients' opaque transactions) is simply not a `NodeTx`.

use anchor_lang::{prelude::Pubkey, AnchorDeserialize, AnchorSerialize};
use dagger_client::{Capacity, OperatorStatus, PriceFloor, VmSpec};

/// Prefix of every node transaction (and its format version): the core's
/// reserved report tag, which only the node's own components can submit.
pub const MAGIC: &[u8; 4] = crate::core::REPORT_TAG;

/// What a node observed on-chain or did, in consensus order on every node.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub enum NodeTx {
    /// A paid, open request (as read from its account).
    RequestSeen {
        request: Pubkey,
        /// The request's instance number (an address can be reused).
        nonce: u64,
        spec: VmSpec,
        price_per_second: u64,
        duration: u64,
        deadline: i64,
    },
    /// A quorum provisioned the request on-chain: its lease runs.
    LeaseActive { request: Pubkey, operator: Pubkey },
    /// The request's account is gone (cancelled, reclaimed, settled) or its
    /// lease was terminated: its resources are free again.
    RequestGone { request: Pubkey },
    /// An operator account's current state.
    OperatorSeen {
        operator: Pubkey,
        nonce: u64,
        node_key: Pubkey,
        stake: u64,
        status: OperatorStatus,
        capacity: Capacity,
        address: String,
        price_floor: PriceFloor,
    },
    /// The assigned operator's node started the VM; customers reach it at
    /// `endpoint` (its blake3 hash is what the quorum attests on-chain).
    ProvisionReport { request: Pubkey, endpoint: String },
    /// The assigned operator's node could not start the VM.
    ProvisionFailed { request: Pubkey },
    /// The assigned operator's node saw the running VM fail.
    VmFailed { request: Pubkey },
    /// The images this node boots (only for itself: the reporter is the
    /// node). `any` marks a backend that boots nothing real (simulated).
    ImagesServed { any: bool, images: Vec<[u8; 32]> },
}

/// Longest endpoint a report may carry.
pub const MAX_ENDPOINT_LEN: usize = 256;
/// Most images one node may announce.
pub const MAX_IMAGES: usize = 256;

impl NodeTx {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        self.serialize(&mut out)
            .expect("serialising into a Vec cannot fail");
        out
    }

    /// `None` for anything that is not a well-formed node transaction.
    pub fn decode(bytes: &[u8]) -> Option<NodeTx> {
        let mut body = bytes.strip_prefix(&MAGIC[..])?;
        let tx = NodeTx::deserialize(&mut body).ok()?;
        body.is_empty().then_some(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_other_bytes() {
        let tx = NodeTx::ProvisionReport {
            request: Pubkey::new_unique(),
            endpoint: "ssh://root@10.0.0.1:22000".into(),
        };
        assert_eq!(NodeTx::decode(&tx.encode()), Some(tx.clone()));
        assert_eq!(NodeTx::decode(b"hello"), None);
        let mut trailing = tx.encode();
        trailing.push(0);
        assert_eq!(NodeTx::decode(&trailing), None);
        assert_eq!(NodeTx::decode(&tx.encode()[..10]), None);
    }
}
