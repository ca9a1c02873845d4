//! `dagger-node`: run a DAGGER operator node.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dagger_node::{
    config::{NodeConfig, Overrides},
    identity::{display_id, Identity},
};

#[derive(Parser)]
#[command(
    name = "dagger-node",
    version,
    about = "DAGGER operator node: QUIC gossip, hashgraph consensus, redb ledger, HTTP status API",
    long_about = "DAGGER operator node.\n\n\
        Start with `dagger-node keygen --out node.json`, write a node.toml \
        (identity, listen, api, data_dir, peers), then `dagger-node run --config node.toml`.\n\
        Logs: set RUST_LOG (e.g. RUST_LOG=dagger_node=debug)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Benchmark a real cluster: N node processes over QUIC on loopback.
    Bench(dagger_node::bench::BenchArgs),
    /// Run a node until Ctrl-C.
    Run {
        /// TOML config file; every key can also be given as a flag or env var.
        #[arg(long, short, env = "DAGGER_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging();
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
        Command::Bench(args) => {
            let json = args.json;
            let report = dagger_node::bench::run(args).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                dagger_node::bench::print_text(&report);
            }
            if !report.digests_match {
                anyhow::bail!("nodes disagree on the order");
            }
        }
        Command::Run { config, overrides } => {
            let config = NodeConfig::load(config.as_deref(), &overrides)?;
            dagger_node::node::run_until(&config, shutdown_signal()).await?;
        }
    }
    Ok(())
}
