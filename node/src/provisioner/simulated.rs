//! A provisioner that boots nothing: it records "VMs" in a state file and
//! hands out `sim://` endpoints. It exists for machines without KVM and for
//! tests, and says so in its name, its endpoints and its logs.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use anchor_lang::prelude::Pubkey;
use dagger_client::VmSpec;
use serde::{Deserialize, Serialize};

use super::{Endpoint, ProvisionError, Provisioner, ServedImages, VmStatus};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SimVm {
    endpoint: Endpoint,
    vcpus: u16,
    memory_mib: u32,
    failed: bool,
}

pub struct SimulatedProvisioner {
    node: String,
    path: PathBuf,
    vms: Mutex<BTreeMap<String, SimVm>>,
}

impl SimulatedProvisioner {
    /// Keeps its state in `dir/simulated-vms.json` so restarts are idempotent.
    pub fn open(dir: &Path, node: &str) -> Result<SimulatedProvisioner, ProvisionError> {
        let path = dir.join("simulated-vms.json");
        let vms = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| ProvisionError::State {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(ProvisionError::State {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        tracing::warn!(
            "provisioner: SIMULATED backend — no virtual machines are started on this node"
        );
        Ok(SimulatedProvisioner {
            node: node.to_string(),
            path,
            vms: Mutex::new(vms),
        })
    }

    fn save(&self, vms: &BTreeMap<String, SimVm>) -> Result<(), ProvisionError> {
        let text = serde_json::to_string_pretty(vms).expect("plain data serialises");
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| ProvisionError::State {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SimVm>> {
        self.vms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a simulated VM as failed (what a crashed VM looks like).
    pub fn fail(&self, request: &Pubkey) -> Result<(), ProvisionError> {
        let mut vms = self.lock();
        if let Some(vm) = vms.get_mut(&request.to_string()) {
            vm.failed = true;
        }
        self.save(&vms)
    }
}

impl Provisioner for SimulatedProvisioner {
    fn name(&self) -> &'static str {
        "simulated (no VMs are started)"
    }

    fn provision(&self, request: &Pubkey, spec: &VmSpec) -> Result<Endpoint, ProvisionError> {
        let mut vms = self.lock();
        if let Some(vm) = vms.get(&request.to_string()) {
            return Ok(vm.endpoint.clone());
        }
        let endpoint = Endpoint(format!("sim://{}/{}", self.node, request));
        tracing::info!(%request, endpoint = %endpoint.0, "SIMULATED VM started");
        vms.insert(
            request.to_string(),
            SimVm {
                endpoint: endpoint.clone(),
                vcpus: spec.vcpus,
                memory_mib: spec.memory_mib,
                failed: false,
            },
        );
        self.save(&vms)?;
        Ok(endpoint)
    }

    fn status(&self, request: &Pubkey) -> VmStatus {
        match self.lock().get(&request.to_string()) {
            Some(vm) if vm.failed => VmStatus::Failed,
            Some(_) => VmStatus::Running,
            None => VmStatus::Unknown,
        }
    }

    fn terminate(&self, request: &Pubkey) -> Result<(), ProvisionError> {
        let mut vms = self.lock();
        if vms.remove(&request.to_string()).is_some() {
            tracing::info!(%request, "SIMULATED VM stopped");
            self.save(&vms)?;
        }
        Ok(())
    }

    fn images(&self) -> ServedImages {
        ServedImages::Any
    }

    fn vms(&self) -> Vec<Pubkey> {
        self.lock().keys().filter_map(|k| k.parse().ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmSpec {
        VmSpec {
            vcpus: 1,
            memory_mib: 512,
            disk_gib: 5,
            region: 0,
            image_id: [1; 32],
            ssh_key: [42; 32],
        }
    }

    #[test]
    fn provisioning_is_idempotent_and_survives_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let request = Pubkey::new_unique();
        let p = SimulatedProvisioner::open(dir.path(), "node-a").unwrap();
        let endpoint = p.provision(&request, &spec()).unwrap();
        assert!(endpoint.0.starts_with("sim://node-a/"));
        assert_eq!(p.provision(&request, &spec()).unwrap(), endpoint);
        assert_eq!(p.status(&request), VmStatus::Running);
        drop(p);
        let p = SimulatedProvisioner::open(dir.path(), "node-a").unwrap();
        assert_eq!(p.vms(), vec![request]);
        assert_eq!(p.provision(&request, &spec()).unwrap(), endpoint);
        p.fail(&request).unwrap();
        assert_eq!(p.status(&request), VmStatus::Failed);
        p.terminate(&request).unwrap();
        p.terminate(&request).unwrap();
        assert_eq!(p.status(&request), VmStatus::Unknown);
        assert!(p.vms().is_empty());
    }

    #[test]
    fn a_corrupt_state_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("simulated-vms.json"), "{not json").unwrap();
        assert!(matches!(
            SimulatedProvisioner::open(dir.path(), "n"),
            Err(ProvisionError::State { .. })
        ));
    }
}
