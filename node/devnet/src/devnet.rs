//! `dagger-devnet`: the whole system on one machine — an embedded
//! Solana chain with the program, N operators registered, staked and
//! admitted, and their nodes gossiping over QUIC on loopback.
//!
//! Keys live in the data directory, so `dagger` commands from another
//! terminal can use them, and a restart with the same directory reuses them.

use std::{
    net::{SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tracing::Instrument;

use anchor_lang::prelude::Pubkey;
use dagger_client::{
    instructions as ix, pda, Capacity, InitializeArgs, OperatorStatus, PROGRAM_ID,
};
use dagger_localnet::{LocalChain, LocalChainConfig};
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signature::Keypair, signer::Signer};

use dagger_node::{
    chain::{ChainError, ChainReader},
    config::{NodeConfig, ProvisionerChoice, VmConfig},
    identity::Identity,
    images::{build_default, Catalog, DefaultImageSources},
    node::{start_chain, ChainSettings, RunningNode},
    provisioner::{self, qemu::qemu_available, Provisioner},
};

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("local chain: {0}")]
    Chain(#[from] dagger_localnet::LocalnetError),
    #[error("transaction: {0}")]
    Tx(#[from] ChainError),
    #[error("node {index}: {source}")]
    Node {
        index: usize,
        source: dagger_node::node::NodeError,
    },
    #[error("keys in {path}: {reason}")]
    Keys { path: String, reason: String },
    #[error("{0}")]
    Setup(String),
}

#[derive(Clone, Debug)]
pub struct DevnetOptions {
    pub nodes: usize,
    pub data_dir: PathBuf,
    /// Fixed RPC port (8899 for the `dagger -u l` moniker), or a free one.
    pub rpc_port: Option<u16>,
    pub ws_port: Option<u16>,
    pub slot_time_ms: u64,
    pub provisioning_timeout: i64,
    pub unbonding_period: i64,
    pub stake: u64,
    pub fee_bps: u16,
    /// VM backend of every node. With `auto` or `qemu` the devnet builds
    /// the default image into `<data_dir>/images` if it is missing.
    pub provisioner: ProvisionerChoice,
    /// Fixed API port of node 0 (the others follow), or free ones.
    pub api_port: Option<u16>,
    /// VMs each node keeps booted ahead of leases (real VMs only).
    pub pools: Vec<dagger_node::provisioner::PoolSetting>,
    /// vCPUs each node's VMs may use together (real VMs; default: one per
    /// host thread).
    pub vm_max_vcpus: Option<u32>,
    /// Also build and serve the Debian image (real VMs only; needs root,
    /// about a minute the first time, then cached).
    pub debian_image: bool,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        DevnetOptions {
            nodes: 4,
            data_dir: PathBuf::from(".dagger-devnet"),
            rpc_port: None,
            ws_port: None,
            slot_time_ms: 100,
            provisioning_timeout: 120,
            unbonding_period: 30,
            stake: 10 * LAMPORTS_PER_SOL,
            fee_bps: 250,
            provisioner: ProvisionerChoice::Simulated,
            api_port: None,
            pools: Vec::new(),
            vm_max_vcpus: None,
            debian_image: false,
        }
    }
}

/// Name of the default image in catalogs (`dagger-default (<kernel>)`).
pub const DEFAULT_IMAGE: &str = "dagger-default";

/// Where built images are cached between runs: `DAGGER_IMAGE_CACHE`, or
/// `~/.cache/dagger-images`.
pub fn image_cache() -> PathBuf {
    std::env::var_os("DAGGER_IMAGE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
            Path::new(&home).join(".cache/dagger-images")
        })
}

/// Makes sure the default image (and the Debian one, if asked) is in
/// `catalog` (building it from the host's packages) and says what the nodes
/// will use.
fn prepare_images(
    choice: ProvisionerChoice,
    catalog: &Catalog,
    debian: bool,
) -> Result<ProvisionerChoice, DevnetError> {
    if choice == ProvisionerChoice::Simulated {
        return Ok(choice);
    }
    if debian && qemu_available(Path::new("qemu-system-x86_64")) && catalog.find("debian").is_err()
    {
        let options = dagger_node::images::DebianImageOptions {
            cache_dir: Some(image_cache()),
            ..Default::default()
        };
        match dagger_node::images::build_debian(&options, catalog, &|step| {
            tracing::info!("Debian image: {step}")
        }) {
            Ok(image) => {
                tracing::info!(image = %dagger_node::images::hex(&image.id), "built the Debian image")
            }
            // Asked for explicitly: a failure is the caller's to see.
            Err(err) if choice == ProvisionerChoice::Qemu => {
                return Err(DevnetError::Setup(format!("the Debian image: {err}")))
            }
            Err(err) => tracing::warn!("the nodes serve no Debian image: {err}"),
        }
    }
    let unusable = if !qemu_available(Path::new("qemu-system-x86_64")) {
        Some("QEMU is not installed".to_string())
    } else if catalog.find(DEFAULT_IMAGE).is_err() {
        match build_default(&DefaultImageSources::default(), catalog) {
            Ok(image) => {
                tracing::info!(image = %dagger_node::images::hex(&image.id), "built the default image");
                None
            }
            Err(err) => Some(err.to_string()),
        }
    } else {
        None
    };
    match (unusable, choice) {
        (None, _) => Ok(ProvisionerChoice::Qemu),
        (Some(reason), ProvisionerChoice::Qemu) => Err(DevnetError::Setup(format!(
            "real VMs are not possible here: {reason}; run scripts/setup-vm-host.sh"
        ))),
        (Some(reason), _) => {
            tracing::warn!(
                "the devnet's nodes use the SIMULATED provisioner ({reason}); for real VMs run \
                 scripts/setup-vm-host.sh"
            );
            Ok(ProvisionerChoice::Simulated)
        }
    }
}

/// One operator's keys: wallet (stakes, gets paid) and node identity.
pub struct OperatorKeys {
    pub owner: Keypair,
    pub node: Keypair,
    pub identity_path: PathBuf,
}

pub struct DevnetKeys {
    pub admin: Keypair,
    pub treasury: Keypair,
    /// A funded wallet for trying the `dagger` CLI as a customer.
    pub customer: Keypair,
    pub operators: Vec<OperatorKeys>,
}

fn keys_error(path: &Path, reason: impl ToString) -> DevnetError {
    DevnetError::Keys {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Loads a Solana CLI keypair file, creating it if missing.
pub fn load_or_create(path: &Path) -> Result<Keypair, DevnetError> {
    if !path.exists() {
        Identity::generate()
            .save_new(path)
            .map_err(|e| keys_error(path, e))?;
    }
    let identity = Identity::load(path).map_err(|e| keys_error(path, e))?;
    Keypair::try_from(identity.signing_key().to_keypair_bytes().as_slice())
        .map_err(|e| keys_error(path, e))
}

impl DevnetKeys {
    pub fn load_or_create(dir: &Path, nodes: usize) -> Result<DevnetKeys, DevnetError> {
        let keys = dir.join("keys");
        std::fs::create_dir_all(&keys).map_err(|e| keys_error(&keys, e))?;
        let mut operators = Vec::new();
        for i in 0..nodes {
            let identity_path = keys.join(format!("node{i}.json"));
            operators.push(OperatorKeys {
                owner: load_or_create(&keys.join(format!("owner{i}.json")))?,
                node: load_or_create(&identity_path)?,
                identity_path,
            });
        }
        Ok(DevnetKeys {
            admin: load_or_create(&keys.join("admin.json"))?,
            treasury: load_or_create(&keys.join("treasury.json"))?,
            customer: load_or_create(&keys.join("customer.json"))?,
            operators,
        })
    }
}

fn free_udp_port() -> Result<u16, DevnetError> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| DevnetError::Setup(e.to_string()))
}

pub fn capacity() -> Capacity {
    Capacity {
        vcpus: 32,
        memory_mib: 131_072,
        disk_gib: 2_000,
        region: 1,
    }
}

/// A running local network.
pub struct Devnet {
    pub chain: Option<LocalChain>,
    pub reader: Arc<ChainReader>,
    pub keys: DevnetKeys,
    pub options: DevnetOptions,
    pub configs: Vec<NodeConfig>,
    pub nodes: Vec<Option<RunningNode>>,
    /// Each running node's VM backend.
    pub provisioners: Vec<Option<Arc<dyn Provisioner>>>,
    /// The images the nodes boot (shared by all of them).
    pub catalog: Catalog,
}

impl Devnet {
    /// Starts the chain, sets up the program and the operators, and starts
    /// every node.
    pub async fn start(options: DevnetOptions) -> Result<Devnet, DevnetError> {
        let mut devnet = Devnet::start_chain(options).await?;
        for i in 0..devnet.configs.len() {
            devnet.start_node(i).await?;
        }
        Ok(devnet)
    }

    /// Starts the chain and sets up program and operators, but no node.
    pub async fn start_chain(options: DevnetOptions) -> Result<Devnet, DevnetError> {
        std::fs::create_dir_all(&options.data_dir).map_err(|e| keys_error(&options.data_dir, e))?;
        let keys = DevnetKeys::load_or_create(&options.data_dir, options.nodes)?;
        let mut airdrop = vec![
            keys.admin.pubkey(),
            keys.treasury.pubkey(),
            keys.customer.pubkey(),
        ];
        for op in &keys.operators {
            airdrop.push(op.owner.pubkey());
            airdrop.push(op.node.pubkey());
        }
        let chain = LocalChain::start(LocalChainConfig {
            rpc_port: options.rpc_port,
            ws_port: options.ws_port,
            slot_time_ms: options.slot_time_ms,
            airdrop,
            airdrop_lamports: 1_000 * LAMPORTS_PER_SOL,
            ..LocalChainConfig::default()
        })
        .await?;
        let reader = Arc::new(ChainReader::new(&chain.rpc_url())?);
        let catalog = Catalog::new(options.data_dir.join("images"));
        let backend = prepare_images(options.provisioner, &catalog, options.debian_image)?;
        let mut configs = Vec::new();
        for (i, op) in keys.operators.iter().enumerate() {
            let node_dir = options.data_dir.join(format!("node{i}"));
            // The gossip port is registered on-chain: it is remembered so a
            // restart keeps the address. The API port is whatever is free.
            let port_file = node_dir.join("gossip-port");
            let gossip = match std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.trim().parse::<u16>().ok())
            {
                Some(port) => port,
                None => free_udp_port()?,
            };
            std::fs::create_dir_all(&node_dir).map_err(|e| keys_error(&node_dir, e))?;
            std::fs::write(&port_file, gossip.to_string())
                .map_err(|e| keys_error(&port_file, e))?;
            let api_port = options.api_port.map_or(0, |p| p + i as u16);
            let vm = VmConfig {
                provisioner: backend,
                images_dir: catalog.dir().to_path_buf(),
                // Each node forwards its VMs' SSH from its own port block.
                ports: 22_000 + 100 * i as u16..=22_099 + 100 * i as u16,
                pools: options.pools.clone(),
                max_vcpus: options.vm_max_vcpus,
                ..VmConfig::simulated(&node_dir)
            };
            configs.push(NodeConfig {
                signing_record: dagger_node::signing_record::default_path(&op.identity_path),
                identity: op.identity_path.clone(),
                listen: SocketAddr::from(([127, 0, 0, 1], gossip)),
                api: SocketAddr::from(([127, 0, 0, 1], api_port)),
                submit: None,
                vm,
                data_dir: node_dir,
                network: "dagger-devnet".into(),
                stake: options.stake,
                peers: Vec::new(),
                rpc_url: Some(chain.rpc_url()),
                ws_url: Some(chain.ws_url()),
                disk_horizon_rounds: dagger_node::config::DEFAULT_DISK_HORIZON_ROUNDS,
                state_sync_gap_events: dagger_node::config::DEFAULT_STATE_SYNC_GAP_EVENTS,
                retention: Default::default(),
                rpc_watch_urls: Vec::new(),
                rpc_agree: 1,
                chain_poll: Duration::from_millis(300),
                attest_interval: Duration::from_millis(300),
                event_spacing: Duration::from_micros(dagger_node::config::DEFAULT_EVENT_SPACING_US),
                congestion_control: Default::default(),
            });
        }
        let devnet = Devnet {
            chain: Some(chain),
            reader,
            keys,
            options,
            configs,
            nodes: Vec::new(),
            provisioners: Vec::new(),
            catalog,
        };
        devnet.setup_program().await?;
        Ok(Devnet {
            nodes: (0..devnet.configs.len()).map(|_| None).collect(),
            provisioners: (0..devnet.configs.len()).map(|_| None).collect(),
            ..devnet
        })
    }

    /// Config, operators and the genesis roster, each step only if missing.
    async fn setup_program(&self) -> Result<(), DevnetError> {
        let admin = &self.keys.admin;
        if self
            .reader
            .one::<dagger_client::Config>(&pda::config().0)
            .await?
            .is_none()
        {
            self.reader
                .send(
                    &[ix::initialize(
                        &admin.pubkey(),
                        None,
                        InitializeArgs {
                            treasury: self.keys.treasury.pubkey(),
                            min_operator_stake: self.options.stake,
                            unbonding_period: self.options.unbonding_period,
                            provisioning_timeout: self.options.provisioning_timeout,
                            protocol_fee_bps: self.options.fee_bps,
                            max_stake_share_bps: 3_000,
                            removal_slash_bps: 500,
                            equivocation_slash_bps: 5_000,
                            reporter_reward_bps: 1_000,
                        },
                    )],
                    admin,
                    &[],
                )
                .await?;
        }
        for (i, op) in self.keys.operators.iter().enumerate() {
            let account = pda::operator(&op.node.pubkey()).0;
            if self
                .reader
                .one::<dagger_client::Operator>(&account)
                .await?
                .is_none()
            {
                self.reader
                    .send(
                        &[ix::register_operator(
                            &op.owner.pubkey(),
                            &op.node.pubkey(),
                            self.configs[i].listen.to_string(),
                            capacity(),
                            self.options.stake,
                            Default::default(),
                        )],
                        &op.owner,
                        &[&op.node],
                    )
                    .await?;
            }
        }
        let config = self.reader.config().await?;
        if !config.bootstrapped {
            for op in &self.keys.operators {
                let account = pda::operator(&op.node.pubkey()).0;
                let record = self.reader.one::<dagger_client::Operator>(&account).await?;
                if record.is_some_and(|r| r.status == OperatorStatus::Pending) {
                    self.reader
                        .send(
                            &[ix::bootstrap_admit(&admin.pubkey(), &op.node.pubkey())],
                            admin,
                            &[],
                        )
                        .await?;
                }
            }
            self.reader
                .send(&[ix::finish_bootstrap(&admin.pubkey())], admin, &[])
                .await?;
        }
        Ok(())
    }

    pub fn rpc_url(&self) -> String {
        self.chain.as_ref().map(|c| c.rpc_url()).unwrap_or_default()
    }

    pub fn ws_url(&self) -> String {
        self.chain.as_ref().map(|c| c.ws_url()).unwrap_or_default()
    }

    /// Starts (or restarts) node `i` in this process.
    pub async fn start_node(&mut self, i: usize) -> Result<(), DevnetError> {
        let config = &self.configs[i];
        let identity =
            Identity::load(&config.identity).map_err(|e| keys_error(&config.identity, e))?;
        // Opening a QEMU provisioner may probe KVM (a smoke boot, once per
        // host boot): off the runtime's threads, which serve running nodes.
        let (vm, dir, name) = (
            config.vm.clone(),
            config.data_dir.clone(),
            dagger_node::identity::display_id(&identity.id()),
        );
        // Everything the node does logs in its span (see `crate::logs`).
        let span = crate::logs::node_span(i);
        let in_span = span.clone();
        let provisioner = tokio::task::spawn_blocking(move || {
            in_span.in_scope(|| provisioner::open(&vm, &dir, &name))
        })
        .await
        .map_err(|e| DevnetError::Setup(e.to_string()))?
        .map_err(|e| DevnetError::Setup(e.to_string()))?;
        self.provisioners[i] = Some(provisioner.clone());
        let node = start_chain(
            config,
            ChainSettings {
                rpc_url: self.rpc_url(),
                ws_url: Some(self.ws_url()),
                poll_interval: config.chain_poll,
                attest_interval: config.attest_interval,
                provisioner,
            },
            Default::default(),
        )
        .instrument(span)
        .await
        .map_err(|source| DevnetError::Node { index: i, source })?;
        self.nodes[i] = Some(node);
        Ok(())
    }

    /// Stops node `i` cleanly (its ledger is kept).
    pub async fn stop_node(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.stop().await;
        }
    }

    /// Node `i`'s HTTP API address, while it runs.
    pub fn api(&self, i: usize) -> Option<SocketAddr> {
        self.nodes[i].as_ref().map(|n| n.api_addr)
    }

    /// Stops every node, then the chain.
    pub async fn stop(mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i).await;
        }
        // The chain lives in memory and goes with the devnet: so do its VMs.
        for provisioner in self.provisioners.iter().flatten() {
            let provisioner = provisioner.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for vm in provisioner.vms() {
                    let _ = provisioner.terminate(&vm);
                }
                provisioner.shutdown();
            })
            .await;
        }
        if let Some(chain) = self.chain.take() {
            let _ = chain.shutdown().await;
        }
    }

    pub fn program_id(&self) -> Pubkey {
        PROGRAM_ID
    }

    /// The default image the nodes boot, when they run real VMs.
    pub fn default_image(&self) -> Option<[u8; 32]> {
        self.image(DEFAULT_IMAGE)
    }

    /// The image of this name (or id prefix) the nodes boot, when they run
    /// real VMs.
    pub fn image(&self, name: &str) -> Option<[u8; 32]> {
        let real = self
            .configs
            .first()
            .is_some_and(|c| c.vm.provisioner == ProvisionerChoice::Qemu);
        real.then(|| self.catalog.find(name).ok().map(|i| i.id))
            .flatten()
    }
}

/// One step of the demo customer flow, for printing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoStep {
    pub step: &'static str,
    pub detail: String,
    pub at_ms: u128,
}

/// A customer's whole journey on the devnet: pay, wait until a quorum made
/// the lease active, let the operator claim, close the lease, and check that
/// every lamport of the deposit is accounted for. Calls `on_step` as it goes.
pub async fn demo(
    devnet: &Devnet,
    mut on_step: impl FnMut(&DemoStep),
) -> Result<Vec<DemoStep>, DevnetError> {
    use dagger_client::{Request, RequestStatus, VmSpec};
    let started = std::time::Instant::now();
    let mut steps = Vec::new();
    let mut step = |name: &'static str, detail: String| {
        let s = DemoStep {
            step: name,
            detail,
            at_ms: started.elapsed().as_millis(),
        };
        on_step(&s);
        steps.push(s);
    };
    let reader = &devnet.reader;
    let customer = Keypair::new();
    reader
        .airdrop(&customer.pubkey(), 10 * LAMPORTS_PER_SOL)
        .await?;
    step(
        "funded",
        format!("customer {} has 10 SOL", customer.pubkey()),
    );

    let (price, duration) = (1_000u64, 600u64);
    // The customer's SSH key: its private half goes where `ssh -i` reads it.
    let ssh_secret = dagger_node::identity::Identity::generate();
    let ssh_public = ssh_secret.verifying_key().to_bytes();
    let ssh_key_file = devnet.options.data_dir.join("keys").join("demo_ssh");
    write_private_key(
        &ssh_key_file,
        &ssh_secret.signing_key().to_bytes(),
        &ssh_public,
    )?;
    let real_vm = devnet.default_image();
    let spec = match real_vm {
        Some(image_id) => VmSpec {
            vcpus: 1,
            memory_mib: 256,
            disk_gib: 1,
            region: 1,
            image_id,
            ssh_key: ssh_public,
        },
        None => VmSpec {
            vcpus: 2,
            memory_mib: 4_096,
            disk_gib: 40,
            region: 1,
            image_id: *blake3::hash(b"any image (simulated)").as_bytes(),
            ssh_key: ssh_public,
        },
    };
    let request_id = rand::random::<u64>();
    let request = reader
        .pay_for_vm(&customer, request_id, spec, price, duration)
        .await?;
    step(
        "paid",
        format!("request {request}: {duration} s at {price} lamports/s in escrow"),
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let active = loop {
        if let Some(r) = reader.one::<Request>(&request).await? {
            if r.status == RequestStatus::Active {
                break r;
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(DevnetError::Setup(
                "the lease did not become active within 120 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let assigned = devnet
        .keys
        .operators
        .iter()
        .find(|op| pda::operator(&op.node.pubkey()).0 == active.assigned_operator)
        .ok_or_else(|| DevnetError::Setup("assigned to an unknown operator".into()))?;
    step(
        "active",
        format!(
            "ordered by consensus, provisioned by operator {}, attested by a quorum",
            active.assigned_operator
        ),
    );
    let api = devnet
        .api(0)
        .ok_or_else(|| DevnetError::Setup("node 0 is not running".into()))?;
    // A simulated VM has an endpoint hash on-chain but nothing to reach.
    let endpoint = match real_vm {
        Some(_) => {
            let endpoint =
                dagger_client::endpoint::fetch(&format!("http://{api}"), &request, &active)
                    .await
                    .map_err(|e| DevnetError::Setup(e.to_string()))?;
            step(
                "endpoint",
                format!("{} (matches the hash the quorum attested)", endpoint.url),
            );
            let output = ssh_run(&endpoint, &ssh_key_file, "uname -a").await?;
            step("ssh", format!("uname -a in the VM: {}", output.trim()));
            Some(endpoint)
        }
        None => None,
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    reader
        .send(
            &[ix::claim(
                &assigned.owner.pubkey(),
                &assigned.node.pubkey(),
                &request,
                &customer.pubkey(),
            )],
            &assigned.owner,
            &[],
        )
        .await?;
    let claimed = reader
        .one::<Request>(&request)
        .await?
        .map(|r| r.paid_out)
        .unwrap_or(0);
    step(
        "claimed",
        format!("operator claimed {claimed} lamports (fee included)"),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    let escrow = pda::escrow(&request).0;
    let balance = |key: Pubkey| async move {
        reader
            .rpc()
            .get_balance(&key)
            .await
            .map_err(|e| DevnetError::Tx(ChainError::Rpc(e.to_string())))
    };
    let locked = balance(escrow).await? + balance(request).await?;
    // The operator's share is held in its stake vault (its owner withdraws
    // it), the fee in the fee vault.
    let vault = pda::stake_vault(&active.assigned_operator).0;
    let fees = pda::fee_vault().0;
    let before = (
        balance(customer.pubkey()).await?,
        balance(vault).await?,
        balance(fees).await?,
    );
    reader.close_lease(&customer, &request).await?;
    let fee_paid = 5_000;
    let to_customer = balance(customer.pubkey()).await? + fee_paid - before.0;
    let to_owner = balance(vault).await? - before.1;
    let to_fees = balance(fees).await? - before.2;
    if to_customer + to_owner + to_fees != locked
        || reader.one::<Request>(&request).await?.is_some()
    {
        return Err(DevnetError::Setup(format!(
            "balances do not add up: locked {locked}, customer {to_customer}, operator {to_owner}, fees {to_fees}"
        )));
    }
    step(
        "closed",
        format!(
            "operator +{to_owner} (held for its owner), fees +{to_fees}, customer refunded {to_customer} (deposit rest + rent); balances check out"
        ),
    );
    if let Some(endpoint) = &endpoint {
        // The assigned node destroys the VM once consensus sees the lease gone.
        let index = devnet
            .keys
            .operators
            .iter()
            .position(|op| pda::operator(&op.node.pubkey()).0 == active.assigned_operator)
            .expect("found above");
        let provisioner = devnet.provisioners[index]
            .clone()
            .ok_or_else(|| DevnetError::Setup("the assigned node is not running".into()))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while provisioner.vms().contains(&request) {
            if std::time::Instant::now() > deadline {
                return Err(DevnetError::Setup(
                    "the VM was not destroyed after its lease closed".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        step(
            "gone",
            format!(
                "node {index} destroyed the VM and deleted its disk; {} unreachable now",
                endpoint.url
            ),
        );
    }
    Ok(steps)
}

/// Writes an OpenSSH private key file readable only by its owner.
fn write_private_key(path: &Path, seed: &[u8; 32], public: &[u8; 32]) -> Result<(), DevnetError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = dagger_client::ssh::format_private_key(seed, public, "dagger devnet customer");
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| keys_error(path, e))
}

/// Runs `command` in a VM with the system `ssh`, pinning the endpoint's
/// attested host key; returns its output.
pub async fn ssh_run(
    endpoint: &dagger_client::endpoint::VmEndpoint,
    key: &Path,
    command: &str,
) -> Result<String, DevnetError> {
    let pin = endpoint
        .known_hosts_line()
        .ok_or_else(|| DevnetError::Setup(format!("{} pins no host key", endpoint.url)))?;
    let known = tempfile::NamedTempFile::new()
        .and_then(|f| std::fs::write(f.path(), format!("{pin}\n")).map(|()| f))
        .map_err(|e| DevnetError::Setup(format!("known hosts: {e}")))?;
    let output = tokio::process::Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!("UserKnownHostsFile={}", known.path().display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ])
        .args(["-o", "ConnectTimeout=10", "-i"])
        .arg(key)
        .args(["-p", &endpoint.port.to_string()])
        .args(["-l", &endpoint.user, "--"])
        .arg(&endpoint.host)
        .arg(command)
        .output()
        .await
        .map_err(|e| DevnetError::Setup(format!("cannot run ssh: {e}")))?;
    if !output.status.success() {
        return Err(DevnetError::Setup(format!(
            "ssh {}: {}",
            endpoint.url,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One line of live status: nodes, rounds, requests, leases.
pub async fn status_line(devnet: &Devnet) -> String {
    use dagger_client::{Request, RequestStatus};
    let mut parts = Vec::new();
    for (i, node) in devnet.nodes.iter().enumerate() {
        match node {
            Some(node) => match node.core.status().await {
                Ok(s) => parts.push(format!(
                    "n{i} r{}/{} ord {}",
                    s.last_round_created, s.last_decided_round, s.ordered_events
                )),
                Err(_) => parts.push(format!("n{i} stopping")),
            },
            None => parts.push(format!("n{i} down")),
        }
    }
    let (open, active) = match devnet.reader.all::<Request>().await {
        Ok(requests) => (
            requests
                .iter()
                .filter(|(_, r)| r.status == RequestStatus::Open)
                .count(),
            requests
                .iter()
                .filter(|(_, r)| r.status == RequestStatus::Active)
                .count(),
        ),
        Err(_) => (0, 0),
    };
    format!(
        "{} | requests open {open}, leases active {active}",
        parts.join(" | ")
    )
}
