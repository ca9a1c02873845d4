//! `dagger-node`: run a DAGGER operator node.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dagger_node::{
    config::{NodeConfig, Overrides},
    identity::{display_id, Identity},
};

/// The node allocates and frees small buffers at a high rate on several
/// threads (events, batches, QUIC frames); under glibc's malloc that was a
/// sixth of its CPU and its resident memory crept up in long runs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "dagger-node",
    version,
    about = "DAGGER operator node: QUIC gossip, hashgraph consensus, redb ledger, HTTP status API",
    long_about = "DAGGER operator node.\n\n\
        Start with `dagger-node keygen --out node.json`, write a node.toml \
        (identity, listen, api, data_dir, rpc_url), then `dagger-node run --config node.toml`.\n\
        A local network to try it on: `cargo run -p dagger-devnet`.\n\
        Logs: set RUST_LOG (e.g. RUST_LOG=dagger_node=debug)."
)]
struct Cli {
    /// Log lines as text (coloured on a terminal) or as one JSON object
    /// per line (for log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node identity (a Solana CLI keypair file) and print its public key.
    Keygen {
        /// Where to write the keypair; never overwrites an existing file.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Print the public key (node id) of an identity file.
    Pubkey {
        /// The keypair file.
        path: PathBuf,
    },
    /// Manage this operator's VM images (by content hash).
    #[command(subcommand)]
    Image(ImageCommand),
    /// Move a node key's signing record (slashing protection) between
    /// machines: export it where the node stopped, import it where the key
    /// goes. An import never lowers what a record holds.
    #[command(subcommand)]
    SigningRecord(RecordCommand),
    /// Run a node until Ctrl-C.
    Run {
        /// TOML config file; every key can also be given as a flag or env var.
        #[arg(long, short, env = "DAGGER_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Box<Overrides>,
    },
}

#[derive(Subcommand)]
enum RecordCommand {
    /// Copy the record of the key in IDENTITY to OUT (stop the node first).
    Export {
        /// The node's keypair file.
        #[arg(long)]
        identity: PathBuf,
        /// The record (default: beside the keypair file).
        #[arg(long)]
        record: Option<PathBuf>,
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Merge an exported record into this machine's record for the key.
    Import {
        #[arg(long)]
        identity: PathBuf,
        #[arg(long)]
        record: Option<PathBuf>,
        /// The exported record.
        #[arg(long)]
        from: PathBuf,
    },
}

fn record_command(command: RecordCommand) -> Result<()> {
    use dagger_node::signing_record::{default_path, RecordLock, SigningRecord};
    use std::time::Duration;
    match command {
        RecordCommand::Export {
            identity,
            record,
            out,
        } => {
            let key = display_id(&Identity::load(&identity)?.id());
            let path = record.unwrap_or_else(|| default_path(&identity));
            // A copy taken while the node signs would be stale at once.
            let _lock = RecordLock::acquire(&path, Duration::ZERO)?;
            let ours = SigningRecord::open(&path, &key)?
                .with_context(|| format!("no signing record at {}", path.display()))?;
            if out.exists() {
                anyhow::bail!("refusing to overwrite {}", out.display());
            }
            let mut copy = SigningRecord::create_fresh(&out, &key)?;
            copy.merge(&ours)?;
            println!("exported {} to {}", path.display(), out.display());
        }
        RecordCommand::Import {
            identity,
            record,
            from,
        } => {
            let key = display_id(&Identity::load(&identity)?.id());
            let path = record.unwrap_or_else(|| default_path(&identity));
            let _lock = RecordLock::acquire(&path, Duration::ZERO)?;
            let theirs = SigningRecord::open(&from, &key)?
                .with_context(|| format!("no signing record at {}", from.display()))?;
            let mut ours = match SigningRecord::open(&path, &key)? {
                Some(record) => record,
                None => SigningRecord::create_fresh(&path, &key)?,
            };
            ours.merge(&theirs)?;
            println!("merged {} into {}", from.display(), path.display());
        }
    }
    Ok(())
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build the default image (Debian cloud kernel, busybox, dropbear) from
    /// this host's packages; `scripts/setup-vm-host.sh` installs them.
    BuildDefault {
        /// The image catalog directory.
        #[arg(long, default_value = "images", env = "DAGGER_IMAGES_DIR")]
        images_dir: PathBuf,
        /// The unpacked kernel package (boot/vmlinuz-*, lib/modules/*).
        #[arg(long, env = "DAGGER_KERNEL_DIR", default_value = dagger_node::images::DEFAULT_KERNEL_DIR)]
        kernel_dir: PathBuf,
    },
    /// Build a Debian image (debootstrap of this host's suite from its
    /// package sources: apt, sysvinit, dropbear) with the Debian cloud
    /// kernel. Needs root and about a minute.
    BuildDebian {
        #[arg(long, default_value = "images", env = "DAGGER_IMAGES_DIR")]
        images_dir: PathBuf,
        #[arg(long, env = "DAGGER_KERNEL_DIR", default_value = dagger_node::images::DEFAULT_KERNEL_DIR)]
        kernel_dir: PathBuf,
        /// Package mirror (default: this host's first Debian source).
        #[arg(long)]
        mirror: Option<String>,
        /// Debian suite (default: this host's, e.g. bookworm).
        #[arg(long)]
        suite: Option<String>,
        /// Reuse (and keep) builds here, keyed by everything they are made
        /// from.
        #[arg(long, env = "DAGGER_IMAGE_CACHE")]
        cache_dir: Option<PathBuf>,
    },
    /// Add an image made of a kernel, an initramfs and optionally a raw
    /// root file system. Its guest must run the DAGGER agent (see
    /// docs/images.md): that is how it receives the customer's key.
    Add {
        #[arg(long, default_value = "images", env = "DAGGER_IMAGES_DIR")]
        images_dir: PathBuf,
        /// A name to show in listings.
        #[arg(long)]
        name: String,
        #[arg(long)]
        kernel: PathBuf,
        #[arg(long)]
        initrd: PathBuf,
        /// A raw file system image each VM boots from (as a copy-on-write
        /// layer: `/dev/vda`).
        #[arg(long)]
        rootfs: Option<PathBuf>,
        /// Extra kernel arguments the image needs.
        #[arg(long, default_value = "")]
        cmdline: String,
    },
    /// List the images in a catalog with their ids.
    List {
        #[arg(long, default_value = "images", env = "DAGGER_IMAGES_DIR")]
        images_dir: PathBuf,
    },
}

fn image_command(command: ImageCommand) -> Result<()> {
    use dagger_node::images::{build_default, hex, Catalog, DefaultImageSources};
    match command {
        ImageCommand::BuildDefault {
            images_dir,
            kernel_dir,
        } => {
            let sources = DefaultImageSources {
                kernel_dir,
                ..DefaultImageSources::default()
            };
            let image = build_default(&sources, &Catalog::new(&images_dir))?;
            println!("{}  {}", hex(&image.id), image.manifest.name);
        }
        ImageCommand::BuildDebian {
            images_dir,
            kernel_dir,
            mirror,
            suite,
            cache_dir,
        } => {
            let options = dagger_node::images::DebianImageOptions {
                kernel_dir,
                mirror,
                suite,
                cache_dir,
                ..Default::default()
            };
            let image =
                dagger_node::images::build_debian(&options, &Catalog::new(&images_dir), &|step| {
                    eprintln!("{step}")
                })?;
            println!("{}  {}", hex(&image.id), image.manifest.name);
        }
        ImageCommand::Add {
            images_dir,
            name,
            kernel,
            initrd,
            rootfs,
            cmdline,
        } => {
            let image = Catalog::new(&images_dir).add(
                &name,
                &kernel,
                &initrd,
                rootfs.as_deref(),
                &cmdline,
            )?;
            println!("{}  {}", hex(&image.id), image.manifest.name);
        }
        ImageCommand::List { images_dir } => {
            for image in Catalog::new(&images_dir).list() {
                println!("{}  {}", hex(&image.id), image.manifest.name);
            }
        }
    }
    Ok(())
}

/// `RUST_LOG` wins; otherwise `default`. Colour only on a terminal.
fn init_logging(default: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging("info", cli.log_format);
    match cli.command {
        Command::Keygen { out } => {
            let identity = Identity::generate();
            identity
                .save_new(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!("{}", display_id(&identity.id()));
        }
        Command::Pubkey { path } => {
            let identity = Identity::load(&path)?;
            println!("{}", display_id(&identity.id()));
        }
        Command::Image(command) => image_command(command)?,
        Command::SigningRecord(command) => record_command(command)?,
        Command::Run { config, overrides } => {
            let config = NodeConfig::load(config.as_deref(), &overrides)?;
            let node = dagger_node::node::start_from_config(&config).await?;
            dagger_node::node::run_until(node, dagger_node::node::shutdown_signal()).await?;
        }
    }
    Ok(())
}
