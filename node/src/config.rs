//! Node settings: a TOML file, every key also a command-line flag and an
//! environment variable (flags win over the environment, which wins over
//! the file).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::identity::{parse_id, NodeId};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("rpc_url: {0}")]
    BadUrl(String),
    #[error("{0} must be at least 1 (milliseconds)")]
    ZeroInterval(&'static str),
    #[error(
        "event_spacing_us must be between {min} and {max} (got {got}): below, a busy node \
         would push more events than its peers accept"
    )]
    EventSpacing { got: u64, min: u64, max: u64 },
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("missing setting `{0}` (in the config file, as --{1}, or as {2})")]
    Missing(&'static str, &'static str, &'static str),
    #[error("peer `{0}`: expected NODE_KEY@HOST:PORT[=STAKE]")]
    BadPeer(String),
    #[error("node key `{0}` is not a base58 ed25519 public key")]
    BadKey(String),
    #[error("vm_ports `{0}`: expected FIRST-LAST, e.g. 22000-22999")]
    BadPorts(String),
    #[error("vm_pool `{0}`: {1}")]
    BadPool(String, String),
    #[error(
        "rpc_agree must be between 1 and the number of RPC endpoints ({endpoints}: rpc_url and \
         rpc_watch_urls), got {got}"
    )]
    RpcAgree { got: usize, endpoints: usize },
    #[error("rpc_watch_urls needs rpc_url (the endpoint transactions are sent through)")]
    WatchWithoutRpc,
}

/// The file form.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub identity: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub api: Option<SocketAddr>,
    pub signing_record: Option<PathBuf>,
    pub submit: Option<SocketAddr>,
    pub submit_token_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub network: Option<String>,
    pub stake: Option<u64>,
    #[serde(default)]
    pub peers: Vec<FilePeer>,
    pub rpc_url: Option<String>,
    pub ws_url: Option<String>,
    pub rpc_watch_urls: Option<Vec<String>>,
    pub rpc_agree: Option<usize>,
    pub disk_horizon_rounds: Option<u64>,
    pub state_sync_gap_events: Option<u64>,
    pub retain_ordered_txs: Option<u64>,
    pub retain_order_records: Option<u64>,
    pub provisioner: Option<ProvisionerChoice>,
    pub images_dir: Option<PathBuf>,
    pub vm_ports: Option<String>,
    pub vm_host: Option<String>,
    pub vm_max_vcpus: Option<u32>,
    pub vm_max_memory_mib: Option<u64>,
    pub vm_accel: Option<crate::provisioner::Accel>,
    pub vms_dir: Option<PathBuf>,
    pub vm_user: Option<String>,
    pub vm_pool: Option<Vec<String>>,
    pub chain_poll_ms: Option<u64>,
    pub attest_interval_ms: Option<u64>,
    pub event_spacing_us: Option<u64>,
    pub congestion_control: Option<CongestionControl>,
}

/// QUIC congestion control between nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CongestionControl {
    /// Paces by measured bandwidth and round trip; keeps a lossy or
    /// reordering wide-area path busy. quinn marks it experimental, and
    /// under the abuse harness it stalled the cluster (see the README).
    Bbr,
    /// quinn's default, loss-based: halves its window on every loss.
    #[default]
    Cubic,
}

/// Which VM backend a chain-backed node uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ProvisionerChoice {
    /// QEMU when it and at least one image are installed, else simulated.
    Auto,
    /// Real QEMU micro-VMs (refuses to start without QEMU or images).
    Qemu,
    /// Boots nothing (for tests and machines without QEMU); says so.
    Simulated,
}

/// VM settings of a chain-backed node.
#[derive(Clone, Debug)]
pub struct VmConfig {
    pub provisioner: ProvisionerChoice,
    /// The image catalog (default `<data_dir>/images`).
    pub images_dir: PathBuf,
    /// Host ports forwarded to VMs' SSH.
    pub ports: std::ops::RangeInclusive<u16>,
    /// Host name customers connect to (default: the listen address's IP,
    /// or 127.0.0.1 when it listens on all addresses).
    pub public_host: String,
    pub max_vcpus: Option<u32>,
    pub max_memory_mib: Option<u64>,
    pub accel: crate::provisioner::Accel,
    /// Where VM disks live (default `<data_dir>/vms`): put them on a volume
    /// of their own, so that tenants filling disks cannot fill the ledger's.
    pub vms_dir: Option<PathBuf>,
    /// The account QEMU drops to when the node runs as root.
    pub vm_user: Option<String>,
    /// VMs kept booted ahead of leases.
    pub pools: Vec<crate::provisioner::PoolSetting>,
}

impl VmConfig {
    /// Settings for a node that boots nothing (tests, local networks
    /// without QEMU).
    pub fn simulated(data_dir: &Path) -> VmConfig {
        VmConfig {
            provisioner: ProvisionerChoice::Simulated,
            images_dir: data_dir.join("images"),
            ports: 22_000..=22_999,
            public_host: "127.0.0.1".into(),
            max_vcpus: None,
            max_memory_mib: None,
            accel: crate::provisioner::Accel::Auto,
            vms_dir: None,
            vm_user: None,
            pools: Vec::new(),
        }
    }
}

/// Parses `FIRST-LAST` (inclusive).
pub fn parse_ports(text: &str) -> Result<std::ops::RangeInclusive<u16>, ConfigError> {
    let bad = || ConfigError::BadPorts(text.to_string());
    let (first, last) = text.split_once('-').ok_or_else(bad)?;
    let (first, last): (u16, u16) = (
        first.trim().parse().map_err(|_| bad())?,
        last.trim().parse().map_err(|_| bad())?,
    );
    if first == 0 || first > last {
        return Err(bad());
    }
    Ok(first..=last)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePeer {
    pub address: SocketAddr,
    pub node_key: String,
    #[serde(default = "one")]
    pub stake: u64,
}

fn one() -> u64 {
    1
}

/// Command-line / environment overrides (see `dagger-node run --help`).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Node identity keypair (Solana CLI JSON); create one with `dagger-node keygen`.
    #[arg(long, env = "DAGGER_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// QUIC gossip address to listen on.
    #[arg(long, env = "DAGGER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// HTTP status API address (read-only: status, events, order, metrics).
    #[arg(long, env = "DAGGER_API")]
    pub api: Option<SocketAddr>,
    /// The signing record (slashing protection): default beside the
    /// identity file (`<identity>.signing-record`); keep it off the
    /// ledger's volume so that losing one does not lose the other.
    #[arg(long, env = "DAGGER_SIGNING_RECORD")]
    pub signing_record: Option<PathBuf>,
    /// Address of the transaction submission API (`POST /tx`, `/txs`),
    /// off unless set; every request must carry the token of
    /// --submit-token-file as `Authorization: Bearer <token>`.
    #[arg(long, env = "DAGGER_SUBMIT")]
    pub submit: Option<SocketAddr>,
    /// File holding the submission API's bearer token (at least 16
    /// characters; required with --submit).
    #[arg(long, env = "DAGGER_SUBMIT_TOKEN_FILE")]
    pub submit_token_file: Option<PathBuf>,
    /// Where the redb ledger lives.
    #[arg(long, env = "DAGGER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Network name; events are signed for it and refused by other networks.
    #[arg(long, env = "DAGGER_NETWORK")]
    pub network: Option<String>,
    /// This node's stake in the roster.
    #[arg(long, env = "DAGGER_STAKE")]
    pub stake: Option<u64>,
    /// A peer as NODE_KEY@HOST:PORT or NODE_KEY@HOST:PORT=STAKE (repeatable;
    /// replaces the file's peers). Env: comma-separated. Ignored with --rpc-url.
    #[arg(long = "peer", env = "DAGGER_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Solana JSON-RPC URL: follow the DAGGER program there (roster, peers and
    /// work come from the chain; the node attests on-chain).
    #[arg(long, env = "DAGGER_RPC_URL")]
    pub rpc_url: Option<String>,
    /// Solana websocket URL (default: derived from --rpc-url).
    #[arg(long, env = "DAGGER_WS_URL")]
    pub ws_url: Option<String>,
    /// Decided rounds ordered events stay on disk, so peers that fell behind
    /// can catch up from this node (default 4096).
    /// More RPC endpoints the chain is read from (repeat the flag), ideally
    /// of other providers: a chain fact is reported only when `rpc_agree`
    /// of all endpoints (`rpc_url` included) agree on it.
    #[arg(long = "rpc-watch-url")]
    pub rpc_watch_urls: Vec<String>,
    /// How many endpoints must agree (default: a majority of them).
    #[arg(long, env = "DAGGER_RPC_AGREE")]
    pub rpc_agree: Option<usize>,
    #[arg(long, env = "DAGGER_DISK_HORIZON_ROUNDS")]
    pub disk_horizon_rounds: Option<u64>,
    /// A peer more than this many ordered events behind this node's newest
    /// checkpoint, at a position the order passed over 10 s ago, is told to
    /// install a state instead of replaying (default 16384; it still needs
    /// more than a third of the stake to say so).
    #[arg(long, env = "DAGGER_STATE_SYNC_GAP_EVENTS", value_parser = clap::value_parser!(u64).range(1..))]
    pub state_sync_gap_events: Option<u64>,
    /// Ordered transactions kept on disk for `/order` readers (default ten
    /// million); older ones are pruned and `/order` answers 410 for them.
    #[arg(long, env = "DAGGER_RETAIN_ORDERED_TXS", value_parser = clap::value_parser!(u64).range(1..))]
    pub retain_ordered_txs: Option<u64>,
    /// Ordered event records kept on disk (default ten million; never those
    /// of events still kept for catch-ups).
    #[arg(long, env = "DAGGER_RETAIN_ORDER_RECORDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub retain_order_records: Option<u64>,
    /// VM backend (chain-backed nodes): auto (QEMU when QEMU and an image
    /// are installed), qemu, or simulated.
    #[arg(long, env = "DAGGER_PROVISIONER", value_enum)]
    pub provisioner: Option<ProvisionerChoice>,
    /// Image catalog directory (default <data_dir>/images); fill it with
    /// `dagger-node image build-default`.
    #[arg(long, env = "DAGGER_IMAGES_DIR")]
    pub images_dir: Option<PathBuf>,
    /// Host ports forwarded to VMs' SSH, FIRST-LAST (default 22000-22999).
    #[arg(long, env = "DAGGER_VM_PORTS")]
    pub vm_ports: Option<String>,
    /// Host name or address customers use to reach VMs.
    #[arg(long, env = "DAGGER_VM_HOST")]
    pub vm_host: Option<String>,
    /// Most vCPUs all VMs together may use (default: 2 per host thread).
    #[arg(long, env = "DAGGER_VM_MAX_VCPUS")]
    pub vm_max_vcpus: Option<u32>,
    /// Most memory all VMs together may use, MiB (default: 3/4 of the host's).
    #[arg(long, env = "DAGGER_VM_MAX_MEMORY_MIB")]
    pub vm_max_memory_mib: Option<u64>,
    /// Accelerator: auto (KVM if a smoke boot works), kvm, or tcg.
    #[arg(long, env = "DAGGER_VM_ACCEL", value_enum)]
    pub vm_accel: Option<crate::provisioner::Accel>,
    /// Where VM disks live (default <data_dir>/vms); a volume apart from
    /// the ledger's keeps tenants from filling it.
    #[arg(long, env = "DAGGER_VMS_DIR")]
    pub vms_dir: Option<PathBuf>,
    /// The unprivileged account QEMU runs as when the node is root
    /// (default dagger-vm).
    #[arg(long, env = "DAGGER_VM_USER")]
    pub vm_user: Option<String>,
    /// Keep VMs booted ahead of leases, so a paid lease skips the boot:
    /// `count=2,vcpus=1,memory=128,disk=1[,image=<id>]` (for every image
    /// served unless one is named). Repeat for several sizes. Pooled VMs
    /// count against --vm-max-vcpus/--vm-max-memory-mib and are stopped to
    /// make room for a lease that needs it.
    #[arg(long = "vm-pool", env = "DAGGER_VM_POOL", value_delimiter = ';')]
    pub vm_pool: Vec<String>,
    /// How often the chain is read besides websocket notifications, ms
    /// (default 500).
    #[arg(long, env = "DAGGER_CHAIN_POLL_MS")]
    pub chain_poll_ms: Option<u64>,
    /// How often pending attestations are (re)sent, ms (default 500).
    #[arg(long, env = "DAGGER_ATTEST_INTERVAL_MS")]
    pub attest_interval_ms: Option<u64>,
    /// Least time between two own events while busy, µs (default 2000):
    /// events that arrive meanwhile are answered with one event. Lower
    /// means faster finality and more CPU per transaction.
    #[arg(long, env = "DAGGER_EVENT_SPACING_US")]
    pub event_spacing_us: Option<u64>,
}

/// Where the transaction submission API listens and the file holding its
/// bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitApi {
    pub addr: SocketAddr,
    pub token_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSetting {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub stake: u64,
}

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub identity: PathBuf,
    /// The signing record (slashing protection, `crate::signing_record`).
    pub signing_record: PathBuf,
    pub listen: SocketAddr,
    pub api: SocketAddr,
    /// The transaction submission API, if this node takes transactions
    /// from outside.
    pub submit: Option<SubmitApi>,
    pub data_dir: PathBuf,
    pub network: String,
    pub stake: u64,
    pub peers: Vec<PeerSetting>,
    pub rpc_url: Option<String>,
    pub ws_url: Option<String>,
    /// Extra endpoints the watcher reads (besides `rpc_url`).
    pub rpc_watch_urls: Vec<String>,
    /// How many of the watcher's endpoints must report a fact identically.
    pub rpc_agree: usize,
    pub disk_horizon_rounds: u64,
    /// Peers further behind than this many ordered events are told to
    /// state sync rather than replay (`core::CoreConfig::state_sync_gap`).
    pub state_sync_gap_events: u64,
    /// How much of the order the ledger keeps (see `store::Retention`).
    pub retention: crate::store::Retention,
    pub vm: VmConfig,
    /// Chain-backed nodes: how often the chain is read (besides websocket
    /// notifications) and attestations are (re)sent.
    pub chain_poll: std::time::Duration,
    pub attest_interval: std::time::Duration,
    /// Least time between two own events while busy.
    pub event_spacing: std::time::Duration,
    pub congestion_control: CongestionControl,
}

/// Default for [`NodeConfig::event_spacing`].
pub const DEFAULT_EVENT_SPACING_US: u64 = 2_000;
/// Bounds of [`NodeConfig::event_spacing`]: a peer accepts
/// `PeerLimits::pushes_per_second` (2 000) pushes per second.
pub const EVENT_SPACING_US: std::ops::RangeInclusive<u64> = 500..=1_000_000;

/// Default for [`NodeConfig::chain_poll`] and [`NodeConfig::attest_interval`].
pub const DEFAULT_CHAIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Default for [`NodeConfig::disk_horizon_rounds`].
pub const DEFAULT_DISK_HORIZON_ROUNDS: u64 = 4096;

/// Default for [`NodeConfig::state_sync_gap_events`]: replaying this many
/// events takes a returning node a few seconds on two cores (signatures
/// and placement), about what installing a vouched state costs; a node
/// that only lags (a slow link, a busy moment) stays well below it.
pub const DEFAULT_STATE_SYNC_GAP_EVENTS: u64 = 16_384;

pub fn parse_peer(text: &str) -> Result<PeerSetting, ConfigError> {
    let bad = || ConfigError::BadPeer(text.to_string());
    let (key, rest) = text.split_once('@').ok_or_else(bad)?;
    let (addr, stake) = match rest.split_once('=') {
        Some((addr, stake)) => (addr, stake.parse().map_err(|_| bad())?),
        None => (rest, 1),
    };
    Ok(PeerSetting {
        id: parse_id(key).ok_or_else(|| ConfigError::BadKey(key.to_string()))?,
        addr: addr.parse().map_err(|_| bad())?,
        stake,
    })
}

impl NodeConfig {
    /// Reads the file (if any) and applies the overrides. Relative paths
    /// in the file are relative to the file; in flags and environment
    /// variables, to the working directory.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<NodeConfig, ConfigError> {
        let mut from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        if let Some(base) = file.and_then(Path::parent) {
            let anchor = |p: &mut Option<PathBuf>| {
                if let Some(path) = p.as_mut().filter(|p| p.is_relative()) {
                    *path = base.join(&*path);
                }
            };
            anchor(&mut from_file.identity);
            anchor(&mut from_file.data_dir);
            anchor(&mut from_file.images_dir);
            anchor(&mut from_file.submit_token_file);
            anchor(&mut from_file.vms_dir);
            anchor(&mut from_file.signing_record);
        }
        let interval =
            |flag: Option<u64>, file: Option<u64>, name: &'static str| match flag.or(file) {
                None => Ok(DEFAULT_CHAIN_INTERVAL),
                Some(0) => Err(ConfigError::ZeroInterval(name)),
                Some(ms) => Ok(std::time::Duration::from_millis(ms)),
            };
        let chain_poll = interval(
            overrides.chain_poll_ms,
            from_file.chain_poll_ms,
            "chain_poll_ms",
        )?;
        let attest_interval = interval(
            overrides.attest_interval_ms,
            from_file.attest_interval_ms,
            "attest_interval_ms",
        )?;
        let spacing = overrides
            .event_spacing_us
            .or(from_file.event_spacing_us)
            .unwrap_or(DEFAULT_EVENT_SPACING_US);
        if !EVENT_SPACING_US.contains(&spacing) {
            return Err(ConfigError::EventSpacing {
                got: spacing,
                min: *EVENT_SPACING_US.start(),
                max: *EVENT_SPACING_US.end(),
            });
        }
        let peers = if overrides.peers.is_empty() {
            from_file
                .peers
                .iter()
                .map(|p| {
                    Ok(PeerSetting {
                        id: parse_id(&p.node_key)
                            .ok_or_else(|| ConfigError::BadKey(p.node_key.clone()))?,
                        addr: p.address,
                        stake: p.stake,
                    })
                })
                .collect::<Result<Vec<_>, ConfigError>>()?
        } else {
            overrides
                .peers
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| parse_peer(p.trim()))
                .collect::<Result<Vec<_>, _>>()?
        };
        // Missing settings are reported in the order a config file lists them.
        let identity: PathBuf =
            overrides
                .identity
                .clone()
                .or(from_file.identity)
                .ok_or(ConfigError::Missing(
                    "identity",
                    "identity",
                    "DAGGER_IDENTITY",
                ))?;
        let listen: SocketAddr = overrides
            .listen
            .or(from_file.listen)
            .ok_or(ConfigError::Missing("listen", "listen", "DAGGER_LISTEN"))?;
        let data_dir: PathBuf =
            overrides
                .data_dir
                .clone()
                .or(from_file.data_dir)
                .ok_or(ConfigError::Missing(
                    "data_dir",
                    "data-dir",
                    "DAGGER_DATA_DIR",
                ))?;
        let vm = VmConfig {
            provisioner: overrides
                .provisioner
                .or(from_file.provisioner)
                .unwrap_or(ProvisionerChoice::Auto),
            images_dir: overrides
                .images_dir
                .clone()
                .or(from_file.images_dir)
                .unwrap_or_else(|| data_dir.join("images")),
            ports: parse_ports(
                overrides
                    .vm_ports
                    .as_deref()
                    .or(from_file.vm_ports.as_deref())
                    .unwrap_or("22000-22999"),
            )?,
            public_host: overrides
                .vm_host
                .clone()
                .or(from_file.vm_host)
                .unwrap_or_else(|| {
                    if listen.ip().is_unspecified() {
                        "127.0.0.1".into()
                    } else {
                        listen.ip().to_string()
                    }
                }),
            max_vcpus: overrides.vm_max_vcpus.or(from_file.vm_max_vcpus),
            max_memory_mib: overrides.vm_max_memory_mib.or(from_file.vm_max_memory_mib),
            vms_dir: overrides.vms_dir.clone().or(from_file.vms_dir),
            vm_user: overrides.vm_user.clone().or(from_file.vm_user),
            pools: if overrides.vm_pool.is_empty() {
                from_file.vm_pool.unwrap_or_default()
            } else {
                overrides.vm_pool.clone()
            }
            .iter()
            .map(|text| {
                text.parse()
                    .map_err(|why| ConfigError::BadPool(text.clone(), why))
            })
            .collect::<Result<_, _>>()?,
            accel: overrides
                .vm_accel
                .or(from_file.vm_accel)
                .unwrap_or(crate::provisioner::Accel::Auto),
        };
        let rpc_url = overrides.rpc_url.clone().or(from_file.rpc_url);
        // The SDK's derivation (the one the `dagger` CLI uses): scheme to
        // ws(s), port + 1, path kept.
        let ws_url = match (&rpc_url, overrides.ws_url.clone().or(from_file.ws_url)) {
            (_, Some(ws)) => Some(ws),
            (Some(rpc), None) => Some(
                dagger_client::cluster::websocket_url(rpc)
                    .map_err(|e| ConfigError::BadUrl(e.to_string()))?,
            ),
            (None, None) => None,
        };
        let rpc_watch_urls = if overrides.rpc_watch_urls.is_empty() {
            from_file.rpc_watch_urls.unwrap_or_default()
        } else {
            overrides.rpc_watch_urls.clone()
        };
        if !rpc_watch_urls.is_empty() && rpc_url.is_none() {
            return Err(ConfigError::WatchWithoutRpc);
        }
        let endpoints = 1 + rpc_watch_urls.len();
        let rpc_agree = overrides
            .rpc_agree
            .or(from_file.rpc_agree)
            .unwrap_or(endpoints / 2 + 1);
        if rpc_agree == 0 || rpc_agree > endpoints {
            return Err(ConfigError::RpcAgree {
                got: rpc_agree,
                endpoints,
            });
        }
        Ok(NodeConfig {
            rpc_watch_urls,
            rpc_agree,
            signing_record: overrides
                .signing_record
                .clone()
                .or(from_file.signing_record)
                .unwrap_or_else(|| crate::signing_record::default_path(&identity)),
            identity,
            listen,
            api: overrides.api.or(from_file.api).ok_or(ConfigError::Missing(
                "api",
                "api",
                "DAGGER_API",
            ))?,
            submit: match (
                overrides.submit.or(from_file.submit),
                overrides
                    .submit_token_file
                    .clone()
                    .or(from_file.submit_token_file),
            ) {
                (None, _) => None,
                (Some(_), None) => {
                    return Err(ConfigError::Missing(
                        "submit_token_file",
                        "submit-token-file",
                        "DAGGER_SUBMIT_TOKEN_FILE",
                    ))
                }
                (Some(addr), Some(token_file)) => Some(SubmitApi { addr, token_file }),
            },
            data_dir,
            network: overrides
                .network
                .clone()
                .or(from_file.network)
                .unwrap_or_else(|| "dagger-local".to_string()),
            stake: overrides.stake.or(from_file.stake).unwrap_or(1),
            peers,
            rpc_url,
            ws_url,
            disk_horizon_rounds: overrides
                .disk_horizon_rounds
                .or(from_file.disk_horizon_rounds)
                .unwrap_or(DEFAULT_DISK_HORIZON_ROUNDS),
            state_sync_gap_events: overrides
                .state_sync_gap_events
                .or(from_file.state_sync_gap_events)
                .unwrap_or(DEFAULT_STATE_SYNC_GAP_EVENTS)
                .max(1),
            retention: crate::store::Retention {
                txs: overrides
                    .retain_ordered_txs
                    .or(from_file.retain_ordered_txs)
                    .unwrap_or(crate::store::DEFAULT_RETAIN_TXS)
                    .max(1),
                order: overrides
                    .retain_order_records
                    .or(from_file.retain_order_records)
                    .unwrap_or(crate::store::DEFAULT_RETAIN_ORDER)
                    .max(1),
            },
            vm,
            chain_poll,
            attest_interval,
            event_spacing: std::time::Duration::from_micros(spacing),
            congestion_control: from_file.congestion_control.unwrap_or_default(),
        })
    }

    /// The 32-byte network id signed into every event.
    pub fn network_id(&self) -> [u8; 32] {
        network_id(&self.network)
    }
}

pub fn network_id(name: &str) -> [u8; 32] {
    *blake3::hash(format!("dagger-network:{name}").as_bytes()).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::identity::display_id(&[7u8; 32]);
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            format!(
                "identity = \"id.json\"\nlisten = \"127.0.0.1:7000\"\napi = \"127.0.0.1:8000\"\n\
                 data_dir = \"data\"\n[[peers]]\naddress = \"127.0.0.1:7001\"\nnode_key = \"{key}\"\nstake = 3\n"
            ),
        )
        .unwrap();
        let config = NodeConfig::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(config.peers[0].stake, 3);
        assert_eq!(config.network, "dagger-local");

        let overrides = Overrides {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            peers: vec![format!("{key}@127.0.0.1:9001=5")],
            ..Default::default()
        };
        let config = NodeConfig::load(Some(&path), &overrides).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.peers[0].addr.port(), 9001);
        assert_eq!(config.peers[0].stake, 5);
    }

    #[test]
    fn relative_paths_in_a_file_are_relative_to_the_file_and_intervals_are_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "identity = \"keys/id.json\"\nlisten = \"127.0.0.1:7000\"\napi = \"127.0.0.1:8000\"\n\
             data_dir = \"data\"\nimages_dir = \"/srv/images\"\nchain_poll_ms = 250\n",
        )
        .unwrap();
        let config = NodeConfig::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(config.identity, dir.path().join("keys/id.json"));
        assert_eq!(config.data_dir, dir.path().join("data"));
        assert_eq!(config.vm.images_dir, PathBuf::from("/srv/images"));
        assert_eq!(config.chain_poll, std::time::Duration::from_millis(250));
        assert_eq!(config.attest_interval, DEFAULT_CHAIN_INTERVAL);
        // Flags stay relative to the working directory.
        let overrides = Overrides {
            data_dir: Some("elsewhere".into()),
            attest_interval_ms: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            NodeConfig::load(Some(&path), &overrides),
            Err(ConfigError::ZeroInterval("attest_interval_ms"))
        ));
        let overrides = Overrides {
            data_dir: Some("elsewhere".into()),
            ..Default::default()
        };
        let config = NodeConfig::load(Some(&path), &overrides).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("elsewhere"));
        assert_eq!(
            config.event_spacing,
            std::time::Duration::from_micros(DEFAULT_EVENT_SPACING_US)
        );
    }

    /// Writes `text` as the config file at `path` and loads it, with the
    /// required settings as flags (and `--event-spacing-us` if given).
    fn load_text(
        path: &Path,
        text: &str,
        event_spacing_us: Option<u64>,
    ) -> Result<NodeConfig, ConfigError> {
        std::fs::write(path, text).unwrap();
        let overrides = Overrides {
            identity: Some("id.json".into()),
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            api: Some("127.0.0.1:8000".parse().unwrap()),
            data_dir: Some("data".into()),
            event_spacing_us,
            ..Default::default()
        };
        NodeConfig::load(Some(path), &overrides)
    }

    #[test]
    fn congestion_control_defaults_to_cubic_and_refuses_unknown_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        let load = |text: &str| load_text(&path, text, None);
        assert_eq!(
            load("").unwrap().congestion_control,
            CongestionControl::Cubic
        );
        let bbr = load("congestion_control = \"bbr\"\n").unwrap();
        assert_eq!(bbr.congestion_control, CongestionControl::Bbr);
        let err = load("congestion_control = \"reno\"\n").unwrap_err();
        assert!(err.to_string().contains("reno"), "{err}");
    }

    /// Events closer than peers accept them, or a node that would hardly
    /// ever answer, are refused with the bounds.
    #[test]
    fn event_spacing_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        let load = |text: &str, flag: Option<u64>| load_text(&path, text, flag);
        for bad in [0, 499, 1_000_001, i64::MAX as u64] {
            let err = load(&format!("event_spacing_us = {bad}\n"), None).unwrap_err();
            assert!(
                matches!(err, ConfigError::EventSpacing { got, min: 500, max: 1_000_000 } if got == bad),
                "{bad}: {err}"
            );
        }
        let config = load("event_spacing_us = 750\n", None).unwrap();
        assert_eq!(config.event_spacing, std::time::Duration::from_micros(750));
        // The flag wins over the file.
        let config = load("event_spacing_us = 750\n", Some(5_000)).unwrap();
        assert_eq!(config.event_spacing, std::time::Duration::from_millis(5));
        assert!(load("", Some(100)).is_err());
    }

    #[test]
    fn the_websocket_url_is_derived_as_the_sdk_does() {
        let load = |rpc: &str| {
            let overrides = Overrides {
                identity: Some("id.json".into()),
                listen: Some("127.0.0.1:7000".parse().unwrap()),
                api: Some("127.0.0.1:8000".parse().unwrap()),
                data_dir: Some("data".into()),
                rpc_url: Some(rpc.into()),
                ..Default::default()
            };
            NodeConfig::load(None, &overrides)
        };
        let ws = |rpc: &str| load(rpc).unwrap().ws_url.unwrap();
        assert_eq!(ws("http://127.0.0.1:8899"), "ws://127.0.0.1:8900/");
        assert_eq!(
            ws("https://api.devnet.solana.com"),
            "wss://api.devnet.solana.com/"
        );
        // A provider URL with a path and a token keeps both.
        assert_eq!(
            ws("https://rpc.example.com:8899/v1/token"),
            "wss://rpc.example.com:8900/v1/token"
        );
        assert!(matches!(load("ftp://nowhere"), Err(ConfigError::BadUrl(_))));
    }

    #[test]
    fn clear_errors() {
        assert!(matches!(
            NodeConfig::load(None, &Overrides::default()),
            Err(ConfigError::Missing("identity", ..))
        ));
        assert!(matches!(parse_peer("nokey"), Err(ConfigError::BadPeer(_))));
        for bad in ["22000", "0-10", "10-5", "a-b", "1-70000"] {
            assert!(
                matches!(parse_ports(bad), Err(ConfigError::BadPorts(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_ports("22000-22010").unwrap(), 22000..=22010);
        assert!(matches!(
            parse_peer("zzz@127.0.0.1:1"),
            Err(ConfigError::BadKey(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listen = 5\nunknown = 1\n").unwrap();
        assert!(matches!(
            NodeConfig::load(Some(&path), &Overrides::default()),
            Err(ConfigError::Parse { .. })
        ));
    }
}
