//! Provisioner backends: start, watch and stop the VMs of the leases
//! assigned to this node. The trait is synchronous (real backends spawn and
//! supervise processes); the executor calls it from blocking threads.

pub mod qemu;
mod simulated;

use anchor_lang::prelude::Pubkey;
use dagger_client::VmSpec;

pub use qemu::{Accel, QemuProvisioner, QemuSettings};
pub use simulated::SimulatedProvisioner;

/// Where a customer reaches their VM. Its blake3 hash is what the quorum
/// attests on-chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoint(pub String);

impl Endpoint {
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(self.0.as_bytes()).as_bytes()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum VmStatus {
    Running,
    Failed,
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("not enough capacity for {0}")]
    Capacity(String),
    #[error("backend: {0}")]
    Backend(String),
    #[error("state file {path}: {reason}")]
    State { path: String, reason: String },
}

pub trait Provisioner: Send + Sync + 'static {
    /// A name that says what kind of backend this is (shown in status).
    fn name(&self) -> &'static str;
    /// Starts the VM for `request` (idempotent: an existing VM's endpoint is
    /// returned again).
    fn provision(&self, request: &Pubkey, spec: &VmSpec) -> Result<Endpoint, ProvisionError>;
    fn status(&self, request: &Pubkey) -> VmStatus;
    /// Stops and deletes the VM (idempotent).
    fn terminate(&self, request: &Pubkey) -> Result<(), ProvisionError>;
    /// Requests whose VMs exist here.
    fn vms(&self) -> Vec<Pubkey>;
}
