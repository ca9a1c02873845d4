//! The command line, as clap sees it.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "dagger",
    version,
    about = "DAGGER: rent virtual machines paid on Solana, or run a compute operator",
    long_about = "DAGGER: rent virtual machines paid on Solana, or run a compute operator.\n\n\
        Customers pay a deposit into an on-chain escrow (`dagger vm request`); operators \
        staked on-chain agree by consensus who runs the VM and attest it, which starts the \
        lease. Amounts in SOL unless a flag says lamports.\n\n\
        Start with `dagger config show` to check the cluster, then `dagger vm request --help`.",
    after_help = "Examples:\n  \
        dagger -u l config show\n  \
        dagger vm request --vcpus 2 --memory-mib 4096 --disk-gib 40 --image <HEX> \
        --price 1000 --duration 1h --wait\n  \
        dagger requests list --customer --status active\n  \
        dagger -u d operators list --status active --output json"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, named as in the Solana CLI. The cluster,
/// the wallet and the commitment come from the flags, else the Solana CLI
/// config file (`solana config set ...`), else the defaults shown.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Solana CLI config file to read the URL, the keypair and the
    /// commitment from [default: ~/.config/solana/cli/config.yml, if it
    /// exists].
    #[arg(short = 'C', long = "config", global = true, value_name = "FILE")]
    pub config: Option<String>,
    /// Cluster: an RPC URL or a moniker — l/localhost (http://127.0.0.1:8899),
    /// d/devnet, t/testnet, m/mainnet-beta [default: the config file's
    /// json_rpc_url, else l].
    #[arg(
        short = 'u',
        long = "url",
        global = true,
        env = "DAGGER_URL",
        value_name = "URL_OR_MONIKER"
    )]
    pub url: Option<String>,
    /// Websocket URL [default: derived from --url: ws(s)://, port + 1].
    #[arg(long = "ws", global = true, value_name = "URL")]
    pub ws: Option<String>,
    /// Keypair file of the wallet that signs and pays (`~` is expanded)
    /// [default: the config file's keypair_path, else
    /// ~/.config/solana/id.json].
    #[arg(
        short = 'k',
        long = "keypair",
        global = true,
        env = "DAGGER_KEYPAIR",
        value_name = "FILE"
    )]
    pub keypair: Option<String>,
    /// Commitment for reads and for confirming transactions [default: the
    /// config file's commitment, else confirmed].
    #[arg(long, global = true, value_enum)]
    pub commitment: Option<CommitmentArg>,
    /// Output format: human text, or one JSON object on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Priority fee, in micro-lamports per compute unit.
    #[arg(long = "priority-fee", global = true, value_name = "MICRO_LAMPORTS")]
    pub priority_fee: Option<u64>,
    /// Compute unit limit per transaction (bounds what a priority fee costs).
    #[arg(long = "compute-unit-limit", global = true, value_name = "UNITS")]
    pub compute_unit_limit: Option<u32>,
    /// HTTP API of any DAGGER node (it tells where a VM is, the answer
    /// checked against the chain, and resolves image names) [default for a localhost cluster: the
    /// devnet's first node, http://127.0.0.1:8910].
    #[arg(
        long = "node-api",
        global = true,
        env = "DAGGER_NODE_API",
        value_name = "URL"
    )]
    pub node_api: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CommitmentArg {
    Processed,
    Confirmed,
    Finalized,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Protocol settings on this cluster.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List the compute operators.
    #[command(subcommand)]
    Operators(OperatorsCommand),
    /// Run an operator: register a node, manage its stake, claim earnings.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Rent a VM: request and pay, watch, top up, cancel, close.
    #[command(subcommand)]
    Vm(VmCommand),
    /// List VM requests and leases.
    #[command(subcommand)]
    Requests(RequestsCommand),
    /// Prove that an operator signed two conflicting DAG events: its stake
    /// is slashed, it leaves the roster, and your wallet earns the reward.
    ///
    /// The evidence file is what an operator node serves at `GET /evidence`
    /// (a JSON array) or one element of it: `{"first": {"header": HEX,
    /// "signature": HEX}, "second": {...}}`. Every pair is checked locally
    /// first, exactly as the program checks it, so a bad pair costs nothing.
    Slash {
        /// JSON file with the evidence ("-" reads standard input).
        #[arg(long, value_name = "FILE")]
        evidence: std::path::PathBuf,
    },
    /// Print a shell completion script, e.g.
    /// `dagger completions bash > ~/.local/share/bash-completion/completions/dagger`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the protocol config (admin, treasury, stakes, timeouts, fee, roster).
    Show,
}

#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// List operators, optionally by status and owner.
    List {
        /// Only operators in this state.
        #[arg(long, value_enum)]
        status: Option<OperatorStatusArg>,
        /// Only operators owned by this wallet (alone: your --keypair wallet).
        #[arg(long, num_args = 0..=1, default_missing_value = "me", value_name = "PUBKEY")]
        owner: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OperatorStatusArg {
    Pending,
    Active,
    Unbonding,
    Exited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RequestStatusArg {
    Open,
    Active,
    Terminated,
}

/// Which operator: its node identity, as a pubkey or a keypair file.
#[derive(Debug, Args)]
pub struct NodeArg {
    /// The operator's node identity key: a pubkey or a keypair file.
    #[arg(long, value_name = "PUBKEY_OR_KEYPAIR")]
    pub node: String,
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// vCPUs offered.
    #[arg(long)]
    pub vcpus: Option<u16>,
    /// Memory offered, in MiB.
    #[arg(long = "memory-mib", value_name = "MIB")]
    pub memory_mib: Option<u32>,
    /// Disk offered, in GiB.
    #[arg(long = "disk-gib", value_name = "GIB")]
    pub disk_gib: Option<u32>,
    /// Numeric region code agreed off-chain (e.g. 1 = eu-west).
    #[arg(long)]
    pub region: Option<u16>,
}

/// The least the operator accepts, in lamports per second per unit; a
/// request is only assigned to operators whose floor its price meets.
#[derive(Debug, Args)]
pub struct PriceFloorArgs {
    /// Lamports per second per vCPU.
    #[arg(long = "price-per-vcpu", value_name = "LAMPORTS")]
    pub per_vcpu: Option<u64>,
    /// Lamports per second per GiB of memory (a started GiB counts whole).
    #[arg(long = "price-per-memory-gib", value_name = "LAMPORTS")]
    pub per_memory_gib: Option<u64>,
    /// Lamports per second per GiB of disk.
    #[arg(long = "price-per-disk-gib", value_name = "LAMPORTS")]
    pub per_disk_gib: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Register a node under your wallet and stake SOL. The node keypair
    /// co-signs. The operator is pending until it is admitted.
    Register {
        /// Keypair file of the node identity (it signs DAG events and attestations).
        #[arg(long = "node-keypair", value_name = "FILE")]
        node_keypair: String,
        /// QUIC address other nodes reach this node at, host:port.
        #[arg(long)]
        address: String,
        #[command(flatten)]
        capacity: CapacityArgs,
        /// Stake, in SOL (at least the config's minimum).
        #[arg(long, value_name = "SOL", value_parser = dagger_cli::sol_arg)]
        stake: u64,
        /// Unset prices are 0 (any price is accepted for that unit).
        #[command(flatten)]
        price_floor: PriceFloorArgs,
    },
    /// Add stake, in SOL.
    AddStake {
        #[command(flatten)]
        node: NodeArg,
        #[arg(long, value_name = "SOL", value_parser = dagger_cli::sol_arg)]
        amount: u64,
    },
    /// Leave the roster; the stake unlocks after the unbonding period.
    Unstake {
        #[command(flatten)]
        node: NodeArg,
    },
    /// Withdraw the stake once unbonding is over.
    Withdraw {
        #[command(flatten)]
        node: NodeArg,
    },
    /// Take the lease earnings held for you in the operator's stake vault.
    WithdrawEarnings {
        #[command(flatten)]
        node: NodeArg,
    },
    /// Close the operator account once its stake was withdrawn (its rent
    /// comes back; the node key stays retired: to come back, register a
    /// new node key).
    Close {
        #[command(flatten)]
        node: NodeArg,
    },
    /// Change the node's address, capacity and/or price floor (unset values stay).
    Update {
        #[command(flatten)]
        node: NodeArg,
        #[arg(long)]
        address: Option<String>,
        #[command(flatten)]
        capacity: CapacityArgs,
        #[command(flatten)]
        price_floor: PriceFloorArgs,
    },
    /// Claim what a lease accrued for your operator (minus the protocol fee).
    Claim {
        #[command(flatten)]
        node: NodeArg,
        /// The lease's request account.
        #[arg(long, value_name = "REQUEST", value_parser = dagger_cli::pubkey_arg)]
        request: solana_sdk::pubkey::Pubkey,
    },
    /// Show one operator.
    Show {
        #[command(flatten)]
        node: NodeArg,
    },
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Wait (with a spinner) until the operators have provisioned the VM.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long (e.g. 90s, 10m).
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = dagger_cli::duration_arg)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Request a VM and pay price × duration into escrow.
    Request {
        /// vCPUs wanted.
        #[arg(long)]
        vcpus: u16,
        /// Memory wanted, in MiB.
        #[arg(long = "memory-mib", value_name = "MIB")]
        memory_mib: u32,
        /// Disk wanted, in GiB.
        #[arg(long = "disk-gib", value_name = "GIB")]
        disk_gib: u32,
        /// Region code (0 = any agreed default).
        #[arg(long, default_value_t = 0)]
        region: u16,
        /// The VM image: its id (64 hex characters), or a name operators
        /// announce (`debian`, `dagger-default`), resolved through a node's
        /// catalog (--node-api) to the id backed by the most stake; the id
        /// is what is paid for and printed.
        #[arg(long, value_name = "ID|NAME", value_parser = dagger_cli::image_arg)]
        image: String,
        /// Your ed25519 SSH public key (OpenSSH format): the VM lets in only
        /// its holder, as root. Recorded on-chain in the request.
        #[arg(
            long = "ssh-key",
            value_name = "FILE",
            default_value = "~/.ssh/id_ed25519.pub"
        )]
        ssh_key: String,
        /// Price offered, in lamports per second.
        #[arg(long, value_name = "LAMPORTS")]
        price: u64,
        /// Lease length paid up front: seconds, or with a unit (90s, 30m, 2h, 1d).
        #[arg(long, value_name = "DURATION", value_parser = dagger_cli::duration_arg)]
        duration: std::time::Duration,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Show what the active operators ask for a VM like this, cheapest
    /// first (lamports per second): offer at least the cheapest price, or
    /// nobody will be assigned the request.
    Quote {
        /// vCPUs wanted.
        #[arg(long)]
        vcpus: u16,
        /// Memory wanted, in MiB.
        #[arg(long = "memory-mib", value_name = "MIB")]
        memory_mib: u32,
        /// Disk wanted, in GiB.
        #[arg(long = "disk-gib", value_name = "GIB")]
        disk_gib: u32,
        /// Region code (0 = any).
        #[arg(long, default_value_t = 0)]
        region: u16,
    },
    /// Pay for more time on an open request or running lease.
    TopUp {
        /// The request account (printed by `dagger vm request`).
        #[arg(value_parser = dagger_cli::pubkey_arg)]
        request: solana_sdk::pubkey::Pubkey,
        /// Time to add: seconds, or with a unit (90s, 30m, 2h, 1d).
        #[arg(long, value_name = "DURATION", value_parser = dagger_cli::duration_arg)]
        duration: std::time::Duration,
    },
    /// Cancel an open request; the whole deposit comes back.
    Cancel {
        /// The request account (printed by `dagger vm request`).
        #[arg(value_parser = dagger_cli::pubkey_arg)]
        request: solana_sdk::pubkey::Pubkey,
    },
    /// Refund a request whose provisioning deadline passed (anyone may send it).
    Reclaim {
        /// The request account (printed by `dagger vm request`).
        #[arg(value_parser = dagger_cli::pubkey_arg)]
        request: solana_sdk::pubkey::Pubkey,
    },
    /// End a lease now: the operator is paid what accrued, you get the rest.
    Close {
        /// The request account (printed by `dagger vm request`).
        #[arg(value_parser = dagger_cli::pubkey_arg)]
        request: solana_sdk::pubkey::Pubkey,
    },
    /// Show a request / lease.
    Status {
        /// The request account (printed by `dagger vm request`).
        #[arg(value_parser = dagger_cli::pubkey_arg)]
        request: solana_sdk::pubkey::Pubkey,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Open an SSH session to a lease's VM (runs the system `ssh`), or run
    /// a command there: `dagger vm ssh <REQUEST> -- uname -a`. The endpoint
    /// comes from a node (--node-api) and is checked against the one the
    /// operators' quorum attested on-chain.
    Ssh {
        /// The request account.
        #[arg(value_parser = dagger_cli::pubkey_arg)]
        request: solana_sdk::pubkey::Pubkey,
        /// Private key matching the public key given at `vm request`.
        #[arg(
            short = 'i',
            long = "identity",
            default_value = "~/.ssh/id_ed25519",
            value_name = "FILE"
        )]
        identity: String,
        /// Command to run instead of an interactive shell.
        #[arg(last = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// List requests, optionally by customer and status.
    List {
        /// Only this customer's requests (alone: your --keypair wallet).
        #[arg(long, num_args = 0..=1, default_missing_value = "me", value_name = "PUBKEY")]
        customer: Option<String>,
        /// Only requests in this state (active and terminated ones are leases).
        #[arg(long, value_enum)]
        status: Option<RequestStatusArg>,
    },
}
