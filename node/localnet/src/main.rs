//! `dagger-localnet`: runs the local chain until Ctrl-C, for manual use with
//! the `solana` CLI, curl or the DAGGER CLI.

use std::{io::IsTerminal, net::IpAddr, process::ExitCode, str::FromStr, time::Duration};

use clap::Parser;
use dagger_localnet::{LocalChain, LocalChainConfig, DEFAULT_SLOT_TIME_MS, PROGRAM_ID};
use solana_pubkey::Pubkey;
use tracing_subscriber::EnvFilter;

const LAMPORTS_PER_SOL: u64 = 1_000_000_000;

/// A local Solana JSON-RPC chain with the DAGGER program loaded.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Interface to bind the RPC servers to.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// HTTP JSON-RPC port (0 picks a free one).
    #[arg(long, default_value_t = 8899)]
    rpc_port: u16,
    /// Websocket port (0 picks a free one).
    #[arg(long, default_value_t = 8900)]
    ws_port: u16,
    /// Milliseconds per slot.
    #[arg(long, default_value_t = DEFAULT_SLOT_TIME_MS)]
    slot_time_ms: u64,
    /// Wallet to fund at startup (repeatable).
    #[arg(long = "airdrop", value_name = "PUBKEY", value_parser = parse_pubkey)]
    airdrop: Vec<Pubkey>,
    /// SOL for each `--airdrop` wallet.
    #[arg(long, default_value_t = 100)]
    airdrop_sol: u64,
    /// Keep surfpool's `surfnet_*` cheatcode RPC methods enabled.
    #[arg(long)]
    cheatcodes: bool,
    /// Seconds to wait for the chain to answer RPC.
    #[arg(long, default_value_t = 30)]
    ready_timeout_secs: u64,
}

fn parse_pubkey(value: &str) -> Result<Pubkey, String> {
    Pubkey::from_str(value).map_err(|e| format!("`{value}` is not a base58 public key: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr so stdout carries only the endpoints.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let Some(airdrop_lamports) = args.airdrop_sol.checked_mul(LAMPORTS_PER_SOL) else {
        eprintln!("--airdrop-sol {} is too large", args.airdrop_sol);
        return ExitCode::FAILURE;
    };
    let config = LocalChainConfig {
        bind: args.bind,
        rpc_port: Some(args.rpc_port),
        ws_port: Some(args.ws_port),
        slot_time_ms: args.slot_time_ms,
        airdrop: args.airdrop,
        airdrop_lamports,
        cheatcodes: args.cheatcodes,
        ready_timeout: Duration::from_secs(args.ready_timeout_secs),
    };
    let chain = match LocalChain::start(config).await {
        Ok(chain) => chain,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("RPC URL:       {}", chain.rpc_url());
    println!("Websocket URL: {}", chain.ws_url());
    println!("Program:       {PROGRAM_ID}");
    println!("Ctrl-C to stop.");

    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("error: waiting for Ctrl-C: {error}");
    }
    match chain.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
