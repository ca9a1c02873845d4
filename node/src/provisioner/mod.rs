//! Provisioner backends: start, watch and stop the VMs of the leases
//! assigned to this node. The trait is synchronous (real backends spawn and
//! supervise processes); the executor calls it from blocking threads.

pub mod agent;
pub mod confine;
pub mod kvm_probe;
pub mod qemu;
mod simulated;
pub mod ssh_probe;

use anchor_lang::prelude::Pubkey;
use dagger_client::VmSpec;

pub use qemu::{Accel, PoolSetting, PoolStatus, QemuProvisioner, QemuSettings};
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
    /// The images this backend boots (announced through consensus).
    fn images(&self) -> ServedImages;
    /// What the catalog calls the images it boots (announced so customers
    /// can ask by name).
    fn image_names(&self) -> Vec<([u8; 32], String)> {
        Vec::new()
    }
    /// Stops what exists only for this process (pooled VMs); leases' VMs
    /// keep running, to be adopted by the next start.
    fn shutdown(&self) {}
    /// VMs kept booted ahead of leases, per shape (none by default).
    fn pools(&self) -> Vec<PoolStatus> {
        Vec::new()
    }
}

/// What a backend can boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServedImages {
    /// It boots nothing real, so any image id is as good as another.
    Any,
    /// These image ids, from its catalog.
    Only(Vec<[u8; 32]>),
}

/// The backend a chain-backed node configured with `vm` uses.
pub fn open(
    vm: &crate::config::VmConfig,
    data_dir: &std::path::Path,
    node_name: &str,
) -> Result<std::sync::Arc<dyn Provisioner>, ProvisionError> {
    use crate::config::ProvisionerChoice;
    let catalog = crate::images::Catalog::new(&vm.images_dir);
    let qemu = || {
        let mut settings = QemuSettings::new(data_dir, catalog.clone());
        if let Some(dir) = &vm.vms_dir {
            settings.dir = dir.clone();
        }
        if let Some(user) = &vm.vm_user {
            settings.vm_user = user.clone();
        }
        settings.ports = vm.ports.clone();
        settings.public_host = vm.public_host.clone();
        settings.accel = vm.accel;
        settings.pools = vm.pools.clone();
        if let Some(vcpus) = vm.max_vcpus {
            settings.max_vcpus = vcpus;
        }
        if let Some(memory) = vm.max_memory_mib {
            settings.max_memory_mib = memory;
        }
        QemuProvisioner::open(settings)
    };
    let no_images = || {
        format!(
            "no images in {}: build one with `dagger-node image build-default --images-dir {}`",
            vm.images_dir.display(),
            vm.images_dir.display()
        )
    };
    match vm.provisioner {
        ProvisionerChoice::Simulated => Ok(std::sync::Arc::new(SimulatedProvisioner::open(
            data_dir, node_name,
        )?)),
        ProvisionerChoice::Qemu => {
            if catalog.list().is_empty() {
                return Err(ProvisionError::Backend(no_images()));
            }
            Ok(std::sync::Arc::new(qemu()?))
        }
        ProvisionerChoice::Auto => {
            // A chain-backed node takes paid leases: it must not quietly
            // fall back to a backend that boots nothing.
            let ready = qemu::qemu_available(std::path::Path::new("qemu-system-x86_64"));
            if ready && !catalog.list().is_empty() {
                return Ok(std::sync::Arc::new(qemu()?));
            }
            Err(ProvisionError::Backend(format!(
                "provisioner = \"auto\" found no way to boot VMs: {}; run \
                 scripts/setup-vm-host.sh and `dagger-node image build-default`, or choose \
                 provisioner = \"simulated\" explicitly (it boots nothing)",
                if ready {
                    no_images()
                } else {
                    "QEMU is not installed".to_string()
                }
            )))
        }
    }
}
