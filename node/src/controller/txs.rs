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
    /// What this node's catalog calls the images it boots, so customers
    /// can ask for `debian` and pay for an id (only for itself).
    ImageNames { names: Vec<([u8; 32], String)> },
    /// How many booted VMs of each shape this node holds ready for leases
    /// (its warm pools; only for itself). Among equally loaded operators,
    /// one with a ready VM of a request's shape gets the request.
    PoolsReady { ready: Vec<(WarmShape, u16)> },
}

/// A VM shape a node keeps warm: image and size, as a request names them.
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub struct WarmShape {
    pub image: [u8; 32],
    pub vcpus: u16,
    pub memory_mib: u32,
    pub disk_gib: u32,
}

impl WarmShape {
    pub fn of(spec: &VmSpec) -> WarmShape {
        WarmShape {
            image: spec.image_id,
            vcpus: spec.vcpus,
            memory_mib: spec.memory_mib,
            disk_gib: spec.disk_gib,
        }
    }
}

/// Most shapes one node may announce warm.
pub const MAX_WARM_SHAPES: usize = 16;

/// Longest endpoint a report may carry.
pub const MAX_ENDPOINT_LEN: usize = 256;
/// Most images one node may announce.
pub const MAX_IMAGES: usize = 256;
/// Longest image name a node may announce, bytes.
pub const MAX_IMAGE_NAME: usize = 64;

/// Whether an announced image name is acceptable: short, printable, one
/// line (it is shown to customers).
pub fn valid_image_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IMAGE_NAME
        && name.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

impl NodeTx {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        self.serialize(&mut out)
            .expect("serialising into a Vec cannot fail");
        out
    }

    /// For people (the explorer, `/events/{id}`): the kind and fields, keys
    /// in base58 and hashes in hex.
    pub fn describe(&self) -> serde_json::Value {
        use serde_json::json;
        let hex = |h: &[u8; 32]| crate::core::hex(h);
        let spec = |s: &VmSpec| {
            json!({
                "vcpus": s.vcpus, "memory_mib": s.memory_mib, "disk_gib": s.disk_gib,
                "region": s.region, "image_id": hex(&s.image_id), "ssh_key": hex(&s.ssh_key),
            })
        };
        match self {
            NodeTx::RequestSeen {
                request,
                nonce,
                spec: s,
                price_per_second,
                duration,
                deadline,
            } => json!({
                "kind": "RequestSeen", "request": request.to_string(), "nonce": nonce,
                "spec": spec(s), "price_per_second": price_per_second,
                "duration": duration, "deadline": deadline,
            }),
            NodeTx::LeaseActive { request, operator } => json!({
                "kind": "LeaseActive", "request": request.to_string(),
                "operator": operator.to_string(),
            }),
            NodeTx::RequestGone { request } => {
                json!({ "kind": "RequestGone", "request": request.to_string() })
            }
            NodeTx::OperatorSeen {
                operator,
                nonce,
                node_key,
                stake,
                status,
                capacity,
                address,
                price_floor,
            } => json!({
                "kind": "OperatorSeen", "operator": operator.to_string(), "nonce": nonce,
                "node_key": node_key.to_string(), "stake": stake,
                "status": format!("{status:?}"),
                "capacity": {
                    "vcpus": capacity.vcpus, "memory_mib": capacity.memory_mib,
                    "disk_gib": capacity.disk_gib, "region": capacity.region,
                },
                "address": address,
                "price_floor": {
                    "per_vcpu": price_floor.per_vcpu,
                    "per_memory_gib": price_floor.per_memory_gib,
                    "per_disk_gib": price_floor.per_disk_gib,
                },
            }),
            NodeTx::ProvisionReport { request, endpoint } => json!({
                "kind": "ProvisionReport", "request": request.to_string(), "endpoint": endpoint,
            }),
            NodeTx::ProvisionFailed { request } => {
                json!({ "kind": "ProvisionFailed", "request": request.to_string() })
            }
            NodeTx::VmFailed { request } => {
                json!({ "kind": "VmFailed", "request": request.to_string() })
            }
            NodeTx::ImagesServed { any, images } => json!({
                "kind": "ImagesServed", "any": any,
                "images": images.iter().map(hex).collect::<Vec<_>>(),
            }),
            NodeTx::PoolsReady { ready } => json!({
                "kind": "PoolsReady",
                "ready": ready
                    .iter()
                    .map(|(shape, n)| json!({
                        "image": hex(&shape.image), "vcpus": shape.vcpus,
                        "memory_mib": shape.memory_mib, "disk_gib": shape.disk_gib, "ready": n,
                    }))
                    .collect::<Vec<_>>(),
            }),
            NodeTx::ImageNames { names } => json!({
                "kind": "ImageNames",
                "names": names
                    .iter()
                    .map(|(id, name)| json!({ "image": hex(id), "name": name }))
                    .collect::<Vec<_>>(),
            }),
        }
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

    #[test]
    fn descriptions_name_the_kind_and_print_hashes_in_hex() {
        let request = Pubkey::new_unique();
        let seen = NodeTx::RequestSeen {
            request,
            nonce: 3,
            spec: VmSpec {
                vcpus: 1,
                memory_mib: 256,
                disk_gib: 1,
                region: 0,
                image_id: [0xcd; 32],
                ssh_key: [7; 32],
            },
            price_per_second: 1_000,
            duration: 600,
            deadline: 99,
        }
        .describe();
        assert_eq!(seen["kind"], "RequestSeen");
        assert_eq!(seen["request"], request.to_string());
        assert_eq!(seen["spec"]["image_id"], "cd".repeat(32));
        let images = NodeTx::ImagesServed {
            any: false,
            images: vec![[1; 32]],
        }
        .describe();
        assert_eq!(images["images"][0], "01".repeat(32));
        assert!(!images.to_string().contains("[1,1"));
    }
}
