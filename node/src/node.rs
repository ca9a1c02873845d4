//! Assembles a running node: ledger, consensus core, QUIC gossip, HTTP API.

use std::{future::Future, net::SocketAddr, sync::Arc};

use dagger_consensus::{CreatorId, Roster};

use crate::{
    api::{self, ApiState},
    config::NodeConfig,
    core::{Core, CoreConfig, CoreHandle, OrderObserver, StaticRoster},
    identity::{display_id, Identity},
    metrics::Metrics,
    net::{
        gossip::{Gossip, GossipConfig, PeerAddr, Peers},
        limits::PeerLimits,
        tls::Allowlist,
        transport::Transport,
    },
    store::Store,
};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Core(#[from] crate::core::CoreError),
    #[error(transparent)]
    Net(#[from] crate::net::transport::NetError),
    #[error("roster: {0}")]
    Roster(String),
    #[error("ledger failed: {0}")]
    Ledger(String),
    #[error("cannot serve the API on {addr}: {source}")]
    Api {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A started node. Stop it with [`RunningNode::stop`].
pub struct RunningNode {
    pub core: CoreHandle,
    pub api_addr: SocketAddr,
    pub gossip_addr: SocketAddr,
    gossip: Gossip,
    transport: Transport,
    api_task: tokio::task::JoinHandle<()>,
    core_task: tokio::task::JoinHandle<()>,
}

/// The static roster from configuration: this node plus its peers.
pub fn config_roster(identity: &Identity, config: &NodeConfig) -> Result<Roster, NodeError> {
    let members = std::iter::once((CreatorId(identity.id()), config.stake))
        .chain(config.peers.iter().map(|p| (CreatorId(p.id), p.stake)));
    Roster::new(members).map_err(|e| NodeError::Roster(e.to_string()))
}

/// Starts a node with the static roster from its configuration.
pub async fn start(config: &NodeConfig) -> Result<RunningNode, NodeError> {
    start_with(config, Box::new(StaticRoster), GossipConfig::default()).await
}

pub async fn start_with(
    config: &NodeConfig,
    observer: Box<dyn OrderObserver>,
    gossip_config: GossipConfig,
) -> Result<RunningNode, NodeError> {
    let identity = Identity::load(&config.identity)?;
    let roster = config_roster(&identity, config)?;
    let metrics = Arc::new(Metrics::default());
    let store = Arc::new(Store::open(&config.data_dir)?);
    let core_config = CoreConfig {
        consensus: dagger_consensus::Config {
            network_id: config.network_id(),
            limits: Default::default(),
        },
        genesis: roster,
        max_pending_txs: 200_000,
        idle_event_interval: std::time::Duration::from_millis(500),
    };
    let (core, handle) = Core::open(
        identity.clone(),
        store.clone(),
        core_config,
        metrics.clone(),
        observer,
    )?;
    let core_task = tokio::spawn(core.run());

    let allow =
        Allowlist::new(std::iter::once(identity.id()).chain(config.peers.iter().map(|p| p.id)));
    let limits = PeerLimits::default();
    let transport = Transport::bind(&identity, allow, config.listen, &limits)?;
    let gossip_addr = transport.local_addr().map_err(|source| NodeError::Api {
        addr: config.listen,
        source,
    })?;
    let peers = Peers::new(
        &config
            .peers
            .iter()
            .map(|p| PeerAddr {
                id: p.id,
                addr: p.addr,
            })
            .collect::<Vec<_>>(),
    );
    let gossip = Gossip::start(
        transport.clone(),
        handle.clone(),
        peers.clone(),
        limits,
        gossip_config,
        metrics.clone(),
    );

    let listener = tokio::net::TcpListener::bind(config.api)
        .await
        .map_err(|source| NodeError::Api {
            addr: config.api,
            source,
        })?;
    let api_addr = listener.local_addr().map_err(|source| NodeError::Api {
        addr: config.api,
        source,
    })?;
    let app = api::router(ApiState {
        core: handle.clone(),
        peers,
        metrics,
        store,
    });
    let api_task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "API server stopped");
        }
    });
    tracing::info!(
        node = %display_id(&identity.id()),
        gossip = %gossip_addr,
        api = %api_addr,
        "node started"
    );
    Ok(RunningNode {
        core: handle,
        api_addr,
        gossip_addr,
        gossip,
        transport,
        api_task,
        core_task,
    })
}

impl RunningNode {
    /// Stops gossip, the API and the core, in that order.
    pub async fn stop(self) {
        self.gossip.stop().await;
        self.transport.close();
        self.api_task.abort();
        drop(self.core);
        let _ = self.core_task.await;
    }
}

/// Runs a node until `shutdown` resolves (or its ledger fails).
pub async fn run_until(
    config: &NodeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let node = start(config).await?;
    let failed = node.core.clone();
    let outcome = tokio::select! {
        _ = shutdown => Ok(()),
        reason = failed.failed() => Err(NodeError::Ledger(reason)),
    };
    tracing::info!("shutting down");
    node.stop().await;
    outcome
}
