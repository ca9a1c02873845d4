//! Assembles a running node: ledger, consensus core, QUIC gossip, HTTP API,
//! and — for a chain-backed network — watcher, controller, executor and
//! attester.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anchor_lang::prelude::Pubkey;
use dagger_consensus::{CreatorId, Roster};

use crate::{
    api::{self, ApiState, ChainView},
    chain::{attester::Attester, slasher::Slasher, watcher::Watcher, ChainReader},
    config::NodeConfig,
    controller::{Controller, ControllerObserver},
    core::{Core, CoreConfig, CoreHandle, OrderObserver, StaticRoster},
    executor::Executor,
    identity::{display_id, Identity},
    metrics::Metrics,
    net::{
        gossip::{Gossip, GossipConfig, PeerAddr, Peers},
        limits::PeerLimits,
        tls::Allowlist,
        transport::Transport,
    },
    provisioner::Provisioner,
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
    #[error("chain: {0}")]
    Chain(String),
    #[error("ledger failed: {0}")]
    Ledger(String),
    #[error("VM provisioner: {0}")]
    Provisioner(String),
    #[error("submission API: {0}")]
    Submit(String),
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
    /// The transaction submission API, when configured.
    pub submit_addr: Option<SocketAddr>,
    pub gossip_addr: SocketAddr,
    gossip: Gossip,
    transport: Transport,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    core_task: tokio::task::JoinHandle<()>,
    /// Tells the HTTP server to stop accepting and finish what it serves.
    http_shutdown: tokio::sync::oneshot::Sender<()>,
    http_task: tokio::task::JoinHandle<()>,
    /// A chain-backed node's VM backend, told when the node stops.
    provisioner: Option<Arc<dyn Provisioner>>,
}

/// How long a stopping node lets HTTP requests in flight finish.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// How long a stopping node waits for its QUIC connections to close.
const ENDPOINT_DRAIN: Duration = Duration::from_secs(3);

/// How a chain-backed node reaches the cluster and runs VMs.
pub struct ChainSettings {
    pub rpc_url: String,
    pub ws_url: Option<String>,
    pub poll_interval: Duration,
    pub attest_interval: Duration,
    pub provisioner: Arc<dyn Provisioner>,
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

/// Starts a static-roster node with a custom observer.
pub async fn start_with(
    config: &NodeConfig,
    observer: Box<dyn OrderObserver>,
    gossip_config: GossipConfig,
) -> Result<RunningNode, NodeError> {
    let identity = Identity::load(&config.identity)?;
    let store = Arc::new(Store::open(&config.data_dir)?);
    store.set_retention(config.retention);
    let roster = config_roster(&identity, config)?;
    let peers: Vec<PeerAddr> = config
        .peers
        .iter()
        .map(|p| PeerAddr {
            id: p.id,
            addr: p.addr,
        })
        .collect();
    let parts = Parts {
        identity,
        store,
        network_id: config.network_id(),
        roster,
        observer,
        peers,
    };
    assemble(config, parts, gossip_config, |_| Vec::new(), None).await
}

/// Starts a node whose roster, peers and work come from the DAGGER program
/// on a Solana cluster.
pub async fn start_chain(
    config: &NodeConfig,
    chain: ChainSettings,
    gossip_config: GossipConfig,
) -> Result<RunningNode, NodeError> {
    let identity = Identity::load(&config.identity)?;
    let store = Arc::new(Store::open(&config.data_dir)?);
    store.set_retention(config.retention);
    let reader =
        Arc::new(ChainReader::new(&chain.rpc_url).map_err(|e| NodeError::Chain(e.to_string()))?);
    let (genesis, network_id) = crate::chain::genesis(&reader, &store)
        .await
        .map_err(NodeError::Chain)?;
    // The watcher reads every configured endpoint (see `watcher::agreed`).
    let mut watch_readers = vec![reader.clone()];
    for url in &config.rpc_watch_urls {
        watch_readers.push(Arc::new(
            ChainReader::new(url).map_err(|e| NodeError::Chain(format!("{url}: {e}")))?,
        ));
    }
    let agree = config.rpc_agree;
    // The watcher tells state sync who the chain's active operators are.
    let (roster_tx, roster_rx) = tokio::sync::watch::channel(Vec::new());
    let gossip_config = GossipConfig {
        chain_roster: Some(roster_rx),
        ..gossip_config
    };
    let me = Pubkey::new_from_array(identity.id());
    let roster = Controller::genesis_roster(&genesis).map_err(NodeError::Roster)?;
    let (observer, duties) = ControllerObserver::new(Controller::new(&genesis), me);
    let endpoints = observer.endpoints();
    let catalog = observer.catalog();
    let peers: Vec<PeerAddr> = genesis
        .iter()
        .filter(|g| g.node_key != me)
        .filter_map(|g| {
            Some(PeerAddr {
                id: g.node_key.to_bytes(),
                addr: g.address.parse().ok()?,
            })
        })
        .collect();
    let parts = Parts {
        identity: identity.clone(),
        network_id,
        store: store.clone(),
        roster,
        observer: Box::new(observer),
        peers,
    };
    let node_keypair = solana_sdk::signature::Keypair::try_from(
        identity.signing_key().to_keypair_bytes().as_slice(),
    )
    .map_err(|e| NodeError::Chain(format!("node key is not a Solana keypair: {e}")))?;
    let slasher_keypair = node_keypair.insecure_clone();
    let provisioner = chain.provisioner.clone();
    let stopping_provisioner = provisioner.clone();
    let view = ChainView {
        duties: duties.clone(),
        provisioner: provisioner.name(),
        endpoints,
        catalog,
        pools: {
            let provisioner = provisioner.clone();
            std::sync::Arc::new(move || provisioner.pools())
        },
    };
    assemble(
        config,
        parts,
        gossip_config,
        move |ctx: &Context| {
            vec![
                crate::task::spawn(
                    Watcher {
                        readers: watch_readers.clone(),
                        agree,
                        roster: Some(roster_tx.clone()),
                        ws_url: chain.ws_url.clone(),
                        core: ctx.core.clone(),
                        store: store.clone(),
                        poll_interval: chain.poll_interval,
                        health: ctx.health.clone(),
                    }
                    .run(),
                ),
                crate::task::spawn(
                    Attester {
                        reader: reader.clone(),
                        node: node_keypair,
                        store: store.clone(),
                        duties: duties.clone(),
                        metrics: ctx.metrics.clone(),
                        interval: chain.attest_interval,
                        since_sweep: 0,
                        core: ctx.core.clone(),
                    }
                    .run(),
                ),
                crate::task::spawn(
                    Slasher {
                        reader: reader.clone(),
                        node: slasher_keypair,
                        store: store.clone(),
                        core: ctx.core.clone(),
                        metrics: ctx.metrics.clone(),
                        network_id,
                        interval: chain.attest_interval.max(Duration::from_secs(1)),
                    }
                    .run(),
                ),
                crate::task::spawn(
                    Executor {
                        core: ctx.core.clone(),
                        provisioner,
                        duties,
                        peers: ctx.peers.clone(),
                        allow: ctx.allow.clone(),
                        me,
                        chain: reader.clone(),
                    }
                    .run(),
                ),
            ]
        },
        Some(view),
    )
    .await
    .map(|mut node| {
        node.provisioner = Some(stopping_provisioner);
        node
    })
}

struct Parts {
    identity: Identity,
    store: Arc<Store>,
    network_id: [u8; 32],
    roster: Roster,
    observer: Box<dyn OrderObserver>,
    peers: Vec<PeerAddr>,
}

/// What extra tasks get to talk to.
pub struct Context {
    pub core: CoreHandle,
    pub peers: Peers,
    pub allow: Allowlist,
    pub metrics: Arc<Metrics>,
    pub health: Arc<crate::health::Health>,
}

async fn assemble(
    config: &NodeConfig,
    parts: Parts,
    gossip_config: GossipConfig,
    extra: impl FnOnce(&Context) -> Vec<tokio::task::JoinHandle<()>>,
    chain_view: Option<ChainView>,
) -> Result<RunningNode, NodeError> {
    let Parts {
        identity,
        store,
        network_id,
        roster,
        observer,
        peers,
    } = parts;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(crate::health::Health::new(chain_view.is_some()));
    let allow =
        Allowlist::new(std::iter::once(identity.id()).chain(roster.members().map(|(c, _)| c.0)));
    let core_config = CoreConfig {
        consensus: dagger_consensus::Config {
            network_id,
            limits: Default::default(),
        },
        genesis: roster,
        max_pending_txs: 200_000,
        max_pending_bytes: 256 << 20,
        idle_event_interval: Duration::from_millis(500),
        min_event_spacing: config.event_spacing,
        disk_horizon_rounds: config.disk_horizon_rounds,
        state_sync_gap: config.state_sync_gap_events,
        state_sync_min_lag: crate::core::STATE_SYNC_MIN_LAG,
        forward_window: crate::core::forward::FORWARD_WINDOW,
        signing_record: Some(config.signing_record.clone()),
    };
    let (core, handle) = Core::open(
        identity.clone(),
        store.clone(),
        core_config,
        metrics.clone(),
        observer,
    )?;
    let core_task = crate::task::spawn(core.run());

    let limits = PeerLimits {
        congestion: config.congestion_control,
        ..PeerLimits::default()
    };
    let transport = Transport::bind(&identity, allow.clone(), config.listen, &limits)?;
    let gossip_addr = transport.local_addr().map_err(|source| NodeError::Api {
        addr: config.listen,
        source,
    })?;
    let peers = Peers::new(&peers);
    let gossip = Gossip::start(
        transport.clone(),
        handle.clone(),
        store.clone(),
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

    let submit = match &config.submit {
        None => None,
        Some(submit) => {
            let token = api::SubmitToken::load(&submit.token_file).map_err(NodeError::Submit)?;
            let listener = tokio::net::TcpListener::bind(submit.addr)
                .await
                .map_err(|source| NodeError::Api {
                    addr: submit.addr,
                    source,
                })?;
            let addr = listener.local_addr().map_err(|source| NodeError::Api {
                addr: submit.addr,
                source,
            })?;
            let app = api::submit_router(
                ApiState {
                    core: handle.clone(),
                    peers: peers.clone(),
                    metrics: metrics.clone(),
                    store: store.clone(),
                    health: health.clone(),
                    chain: None,
                    dag_streams: Arc::new(tokio::sync::Semaphore::new(0)),
                },
                token,
            );
            Some((listener, addr, app))
        }
    };
    let submit_addr = submit.as_ref().map(|(_, addr, _)| *addr);
    let app = api::router(ApiState {
        core: handle.clone(),
        peers: peers.clone(),
        metrics: metrics.clone(),
        store,
        health: health.clone(),
        chain: chain_view,
        dag_streams: Arc::new(tokio::sync::Semaphore::new(api::MAX_DAG_STREAMS)),
    });
    let sampled = handle.clone();
    let sampler = health.clone();
    let (http_shutdown, http_stop) = tokio::sync::oneshot::channel::<()>();
    let http_metrics = metrics.clone();
    let http_task = crate::task::spawn(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.changed().await;
        };
        let read_only = crate::http::serve(
            listener,
            app,
            stopped(stop_rx.clone()),
            http_metrics.clone(),
            Default::default(),
        );
        let submit = async move {
            if let Some((listener, _, app)) = submit {
                crate::http::serve(
                    listener,
                    app,
                    stopped(stop_rx),
                    http_metrics,
                    Default::default(),
                )
                .await;
            }
        };
        let stop = async move {
            let _ = http_stop.await;
            let _ = stop_tx.send(true);
        };
        tokio::join!(read_only, submit, stop);
    });
    let mut tasks = vec![
        // Readiness needs to know when the decided round last moved, even
        // when nobody asks `/ready` for a while.
        crate::task::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Ok(status) = sampled.status().await {
                    sampler.observe_decided(status.last_decided_round);
                }
            }
        }),
    ];
    tasks.extend(extra(&Context {
        core: handle.clone(),
        peers,
        allow,
        metrics,
        health,
    }));
    tracing::info!(
        node = %display_id(&identity.id()),
        gossip = %gossip_addr,
        api = %api_addr,
        "node started"
    );
    Ok(RunningNode {
        core: handle,
        api_addr,
        submit_addr,
        gossip_addr,
        gossip,
        transport,
        tasks,
        core_task,
        http_shutdown,
        http_task,
        provisioner: None,
    })
}

impl RunningNode {
    /// Stops everything around the core, then the core (which flushes its
    /// ledger writer).
    pub async fn stop(self) {
        // The API first, gracefully: requests in flight get their answer.
        let _ = self.http_shutdown.send(());
        let http = self.http_task;
        let abort = http.abort_handle();
        if tokio::time::timeout(HTTP_DRAIN, http).await.is_err() {
            abort.abort();
        }
        for task in &self.tasks {
            task.abort();
        }
        // Awaited, so that whatever they held (connections, the endpoint)
        // is dropped before the sockets are expected free again.
        for task in self.tasks {
            let _ = task.await;
        }
        self.gossip.stop().await;
        self.transport.close();
        // The UDP port is released only when the endpoint has told its
        // peers goodbye; a restart in the same process needs it back.
        let _ = tokio::time::timeout(ENDPOINT_DRAIN, self.transport.wait_idle()).await;
        drop(self.transport);
        self.core.shutdown().await;
        drop(self.core);
        let _ = self.core_task.await;
        // Pooled VMs go with the node; leases' VMs stay for the next start.
        if let Some(provisioner) = self.provisioner {
            let _ = crate::task::spawn_blocking(move || provisioner.shutdown()).await;
        }
    }
}

/// Starts the node a config describes: chain-backed when it names an
/// `rpc_url`, otherwise with its static roster (what `dagger-node run` does).
pub async fn start_from_config(config: &NodeConfig) -> Result<RunningNode, NodeError> {
    let Some(rpc_url) = &config.rpc_url else {
        return start(config).await;
    };
    let identity = Identity::load(&config.identity)?;
    let provisioner =
        crate::provisioner::open(&config.vm, &config.data_dir, &display_id(&identity.id()))
            .map_err(|e| NodeError::Provisioner(e.to_string()))?;
    let chain = ChainSettings {
        rpc_url: rpc_url.clone(),
        ws_url: config.ws_url.clone(),
        poll_interval: config.chain_poll,
        attest_interval: config.attest_interval,
        provisioner,
    };
    start_chain(config, chain, Default::default()).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs a node until `shutdown` resolves (or its ledger fails).
pub async fn run_until(
    node: RunningNode,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let failed = node.core.clone();
    let outcome = tokio::select! {
        _ = shutdown => Ok(()),
        reason = failed.failed() => Err(NodeError::Ledger(reason)),
    };
    tracing::info!("shutting down");
    node.stop().await;
    outcome
}
