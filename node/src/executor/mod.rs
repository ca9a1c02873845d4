//! Carries out this node's duties from the controller: starts and stops
//! VMs through the provisioner, reports what happened into the DAG, and
//! keeps the peer set and TLS allowlist equal to the roster. What to do
//! about the VMs it holds is decided in [`reconcile`].

pub mod reconcile;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anchor_lang::prelude::Pubkey;
use tokio::sync::watch;

use crate::{
    chain::client::ChainReader,
    controller::{txs::MAX_IMAGES, Duties, ImagesServed, NodeTx},
    core::CoreHandle,
    net::{
        gossip::{PeerAddr, Peers},
        tls::Allowlist,
    },
    provisioner::{Provisioner, ServedImages},
};
use reconcile::{OnChain, Reconciler, Seen};

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
    /// Asked before a VM the duties do not list is destroyed.
    pub chain: Arc<ChainReader>,
}

fn wall_clock_s() -> i64 {
    crate::core::Now::system().unix_s()
}

impl Executor {
    pub async fn run(mut self) {
        if !self.provisioner.pools().is_empty() {
            crate::task::spawn(announce_warm_pools(
                self.core.clone(),
                self.provisioner.clone(),
                self.duties.clone(),
            ));
        }
        let mut attempted: HashMap<Pubkey, Instant> = HashMap::new();
        let in_flight: Arc<std::sync::Mutex<std::collections::HashSet<Pubkey>>> =
            Default::default();
        let mut reconciler = Reconciler::default();
        let operator = dagger_client::pda::operator(&self.me).0;
        let mut announced: Option<Instant> = None;
        loop {
            let duties = self.duties.borrow_and_update().1.clone();
            self.sync_peers(&duties);
            self.announce_images(&duties, &mut announced).await;
            // Each VM boots on its own blocking thread; its report follows.
            for (request, spec) in &duties.provision {
                // Never a second attempt while one still boots or waits
                // for SSH: it would only be told "being started" and
                // report a failure for a VM about to work.
                let busy = in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(request);
                if busy
                    || attempted
                        .get(request)
                        .is_some_and(|t| t.elapsed() < RETRY_AFTER)
                {
                    continue;
                }
                attempted.insert(*request, Instant::now());
                let (provisioner, core) = (self.provisioner.clone(), self.core.clone());
                let (request, spec) = (*request, *spec);
                in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(request);
                let in_flight = in_flight.clone();
                crate::task::spawn(async move {
                    let result =
                        crate::task::spawn_blocking(move || provisioner.provision(&request, &spec))
                            .await;
                    in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&request);
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

            self.reconcile(&duties, &mut reconciler, &operator).await;

            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                changed = self.duties.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Destroys the VMs no request needs any more and reports leases whose
    /// VM died or is gone (see [`reconcile`]).
    async fn reconcile(&self, duties: &Duties, reconciler: &mut Reconciler, operator: &Pubkey) {
        let unverified = match self.core.status().await {
            Ok(status) => status.unverified_install.is_some(),
            Err(_) => return,
        };
        let fresh = Reconciler::is_fresh(duties.as_of_s, wall_clock_s(), unverified);
        let provisioner = self.provisioner.clone();
        let Ok(vms) = crate::task::spawn_blocking(move || {
            provisioner
                .vms()
                .into_iter()
                .map(|vm| (vm, provisioner.status(&vm)))
                .collect::<Vec<_>>()
        })
        .await
        else {
            return;
        };
        let seen = |now| Seen {
            duties,
            vms: &vms,
            fresh,
            now,
        };
        let mut actions = reconciler.step(seen(Instant::now()));
        if !actions.ask_chain.is_empty() {
            for vm in &actions.ask_chain {
                match self.chain.one::<dagger_client::Request>(vm).await {
                    Ok(request) => {
                        let on_chain = OnChain::of(request.as_ref(), operator, wall_clock_s());
                        reconciler.learned(*vm, on_chain, Instant::now());
                    }
                    Err(err) => {
                        tracing::debug!(%vm, error = %err, "cannot read a VM's request; keeping the VM")
                    }
                }
            }
            // Reports were due at the first step; the second decides what
            // the chain's answers allow to destroy.
            let second = reconciler.step(seen(Instant::now()));
            actions.terminate = second.terminate;
            actions.report_failed.extend(second.report_failed);
        }
        for vm in actions.terminate {
            tracing::info!(%vm, "destroying a VM its request no longer needs");
            let provisioner = self.provisioner.clone();
            let _ = crate::task::spawn_blocking(move || provisioner.terminate(&vm)).await;
        }
        for lease in actions.report_failed {
            let tx = NodeTx::VmFailed { request: lease };
            if let Err(err) = self.core.report(tx.encode()).await {
                tracing::warn!(error = %err, "cannot report a failed VM");
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
        let names: std::collections::BTreeMap<[u8; 32], String> = self
            .provisioner
            .image_names()
            .into_iter()
            .filter(|(id, _)| ours.images.contains(id))
            .collect();
        let names_known = duties.image_names_here.as_ref() == Some(&names);
        if (*known == ours && names_known)
            || announced.is_some_and(|t| t.elapsed() < ANNOUNCE_AGAIN)
        {
            return;
        }
        if !names_known {
            let tx = NodeTx::ImageNames {
                names: names.into_iter().collect(),
            };
            if let Err(err) = self.core.report(tx.encode()).await {
                tracing::warn!(error = %err, "cannot announce image names");
            }
        }
        if *known == ours {
            *announced = Some(Instant::now());
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

/// How often a node with pools compares its ready VMs with what consensus
/// counts for it.
const WARM_CHECK: Duration = Duration::from_millis(250);

/// Tells consensus how many booted VMs of each shape this node holds ready
/// (`PoolsReady`) whenever that differs from consensus' count, so that
/// requests of a warm shape go to a node that can skip the boot.
async fn announce_warm_pools(
    core: CoreHandle,
    provisioner: Arc<dyn Provisioner>,
    duties: watch::Receiver<(u64, Duties)>,
) {
    use crate::controller::txs::{WarmShape, MAX_WARM_SHAPES};
    let mut last: Option<(std::collections::BTreeMap<WarmShape, u16>, Instant)> = None;
    loop {
        tokio::time::sleep(WARM_CHECK).await;
        if duties.has_changed().is_err() {
            return; // the node stopped
        }
        let (known, pending) = {
            let duties = &duties.borrow().1;
            // Leases assigned here but not provisioned yet will take ready
            // VMs: those are spoken for, not offered again.
            let mut pending: std::collections::BTreeMap<WarmShape, u16> = Default::default();
            for (_, spec) in &duties.provision {
                *pending.entry(WarmShape::of(spec)).or_default() += 1;
            }
            (duties.warm_here.clone(), pending)
        };
        let Some(known) = known else { continue };
        let p = provisioner.clone();
        let Ok(pools) = crate::task::spawn_blocking(move || p.pools()).await else {
            return;
        };
        let ours: std::collections::BTreeMap<WarmShape, u16> = pools
            .iter()
            .filter(|s| s.ready > 0)
            .take(MAX_WARM_SHAPES)
            .map(|s| {
                let shape = s.shape;
                let ready = u16::try_from(s.ready).unwrap_or(u16::MAX);
                let spoken_for = pending.get(&shape).copied().unwrap_or(0);
                (shape, ready.saturating_sub(spoken_for))
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        // The same announcement again only once the last had time to be
        // ordered.
        let repeated = last
            .as_ref()
            .is_some_and(|(sent, at)| *sent == ours && at.elapsed() < ANNOUNCE_AGAIN);
        if known == ours || repeated {
            continue;
        }
        let tx = NodeTx::PoolsReady {
            ready: ours.iter().map(|(s, n)| (*s, *n)).collect(),
        };
        match core.report(tx.encode()).await {
            Ok(_) => {}
            Err(crate::core::SubmitError::Closed) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot announce ready pooled VMs");
                continue;
            }
        }
        last = Some((ours, Instant::now()));
    }
}
