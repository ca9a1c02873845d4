//! Carries out this node's duties from the controller: starts and stops
//! VMs through the provisioner, reports what happened into the DAG, and
//! keeps the peer set and TLS allowlist equal to the roster.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use anchor_lang::prelude::Pubkey;
use tokio::sync::watch;

use crate::{
    controller::{txs::MAX_IMAGES, Duties, ImagesServed, NodeTx},
    core::CoreHandle,
    net::{
        gossip::{PeerAddr, Peers},
        tls::Allowlist,
    },
    provisioner::{Provisioner, ServedImages, VmStatus},
};

/// An announcement of this node's images that consensus has not reflected
/// after this long is made again.
const ANNOUNCE_AGAIN: Duration = Duration::from_secs(5);

/// A provisioning attempt whose report has not been ordered after this long
/// is tried again (its event may have gone stale).
const RETRY_AFTER: Duration = Duration::from_secs(15);

pub struct Executor {
    pub core: CoreHandle,
    pub provisioner: Arc<dyn Provisioner>,
    pub duties: watch::Receiver<(u64, Duties)>,
    pub peers: Peers,
    pub allow: Allowlist,
    pub me: Pubkey,
}

impl Executor {
    pub async fn run(mut self) {
        let mut attempted: HashMap<Pubkey, Instant> = HashMap::new();
        let mut failure_reported: HashMap<Pubkey, Instant> = HashMap::new();
        let mut announced: Option<Instant> = None;
        loop {
            let duties = self.duties.borrow_and_update().1.clone();
            self.sync_peers(&duties);
            self.announce_images(&duties, &mut announced).await;
            // Each VM boots on its own blocking thread; its report follows.
            for (request, spec) in &duties.provision {
                if attempted
                    .get(request)
                    .is_some_and(|t| t.elapsed() < RETRY_AFTER)
                {
                    continue;
                }
                attempted.insert(*request, Instant::now());
                let (provisioner, core) = (self.provisioner.clone(), self.core.clone());
                let (request, spec) = (*request, *spec);
                tokio::spawn(async move {
                    let result =
                        tokio::task::spawn_blocking(move || provisioner.provision(&request, &spec))
                            .await;
                    let tx = match result {
                        Ok(Ok(endpoint)) => {
                            tracing::info!(%request, endpoint = %endpoint.0, "VM provisioned; reporting");
                            NodeTx::ProvisionReport {
                                request,
                                endpoint: endpoint.0,
                            }
                        }
                        Ok(Err(err)) => {
                            tracing::warn!(%request, error = %err, "provisioning failed; reporting");
                            NodeTx::ProvisionFailed { request }
                        }
                        Err(err) => {
                            tracing::error!(%request, error = %err, "provisioner panicked");
                            NodeTx::ProvisionFailed { request }
                        }
                    };
                    if let Err(err) = core.report(tx.encode()).await {
                        tracing::warn!(error = %err, "cannot submit a provisioning report");
                    }
                });
            }
            attempted.retain(|r, _| duties.provision.iter().any(|(p, _)| p == r));

            // VMs this node runs but no longer should (lease gone, reassigned).
            let keep: BTreeSet<Pubkey> = duties
                .leases
                .iter()
                .chain(duties.provision.iter().map(|(r, _)| r))
                .copied()
                .collect();
            for vm in self.provisioner.vms() {
                if !keep.contains(&vm) {
                    let provisioner = self.provisioner.clone();
                    let _ = tokio::task::spawn_blocking(move || provisioner.terminate(&vm)).await;
                }
            }
            // Running leases whose VM failed: report once in a while until terminated.
            for lease in &duties.leases {
                if self.provisioner.status(lease) == VmStatus::Failed
                    && failure_reported
                        .get(lease)
                        .is_none_or(|t| t.elapsed() > RETRY_AFTER)
                {
                    failure_reported.insert(*lease, Instant::now());
                    let tx = NodeTx::VmFailed { request: *lease };
                    let _ = self.core.report(tx.encode()).await;
                }
            }
            failure_reported.retain(|r, _| duties.leases.contains(r));

            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                changed = self.duties.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Tells consensus which images this node boots when what it knows
    /// differs (first start, catalog changed, operator re-admitted).
    async fn announce_images(&self, duties: &Duties, announced: &mut Option<Instant>) {
        let Some(known) = &duties.images_here else {
            return;
        };
        let ours = match self.provisioner.images() {
            ServedImages::Any => ImagesServed {
                any: true,
                images: Default::default(),
            },
            ServedImages::Only(images) => ImagesServed {
                any: false,
                images: images.into_iter().take(MAX_IMAGES).collect(),
            },
        };
        if *known == ours || announced.is_some_and(|t| t.elapsed() < ANNOUNCE_AGAIN) {
            return;
        }
        *announced = Some(Instant::now());
        tracing::info!(
            any = ours.any,
            images = ours.images.len(),
            "announcing the images this node boots"
        );
        let tx = NodeTx::ImagesServed {
            any: ours.any,
            images: ours.images.into_iter().collect(),
        };
        if let Err(err) = self.core.report(tx.encode()).await {
            tracing::warn!(error = %err, "cannot announce images");
        }
    }

    fn sync_peers(&self, duties: &Duties) {
        if duties.peers.is_empty() {
            return;
        }
        let mut keys: Vec<[u8; 32]> = duties.peers.iter().map(|(k, _)| k.to_bytes()).collect();
        keys.push(self.me.to_bytes());
        self.allow.replace(keys);
        let peers: Vec<PeerAddr> = duties
            .peers
            .iter()
            .filter(|(k, _)| *k != self.me)
            .filter_map(|(k, address)| match address.parse() {
                Ok(addr) => Some(PeerAddr {
                    id: k.to_bytes(),
                    addr,
                }),
                Err(_) => {
                    tracing::warn!(node = %k, %address, "roster member has an unusable address");
                    None
                }
            })
            .collect();
        self.peers.set(&peers);
    }
}
