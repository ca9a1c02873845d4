//! `dagger-migrate`: check that DAGGER is deployed on a cluster and create
//! (or compare, or update) its config. Safe to run repeatedly.
//!
//! Exit status: 0 when the cluster matches the settings afterwards
//! (initialised, unchanged or updated), 3 when the config differs and
//! `--update` was not given, 1 on any error.

use std::{process::ExitCode, sync::Arc};

use anyhow::Result;
use clap::{Parser, ValueEnum};
use dagger_cli::{parse_duration, parse_pubkey, read_keypair};
use dagger_client::{ClientOptions, CommitmentConfig, DaggerClient};
use dagger_migrations::{initialize, Action, Settings};
use tracing_subscriber::EnvFilter;

/// Exit status when the config differs and `--update` was not given.
const EXIT_DIFFERS: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "dagger-migrate",
    version,
    about = "Check that DAGGER is deployed on a cluster and create or update its config",
    long_about = "Check that DAGGER is deployed on a cluster and create or update its config.\n\n\
        Creates the config when it is missing (settings not given take their defaults). When it \
        exists, compares only the settings given: differences are reported and exit status 3, \
        unless --update applies them (signed by the config's admin). Running it again changes \
        nothing.",
    after_help = "Examples:\n  \
        dagger-migrate -u l --treasury <PUBKEY> --min-stake 10 --fee-bps 250\n  \
        dagger-migrate -u d -k admin.json --fee-bps 300 --update --output json"
)]
struct Cli {
    /// Cluster: an RPC URL or a moniker — l/localhost, d/devnet, t/testnet, m/mainnet-beta.
    #[arg(short = 'u', long = "url", env = "DAGGER_URL", default_value = "l")]
    url: String,
    /// Websocket URL [default: derived from --url].
    #[arg(long)]
    ws: Option<String>,
    /// Keypair file of the admin (the upgrade authority for an upgradeable program).
    #[arg(
        short = 'k',
        long = "keypair",
        env = "DAGGER_KEYPAIR",
        default_value = "~/.config/solana/id.json"
    )]
    keypair: String,
    #[arg(long, value_enum, default_value_t = Commitment::Confirmed)]
    commitment: Commitment,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Wallet receiving the protocol fee [default when creating: the admin].
    #[arg(long, value_parser = pubkey_arg, value_name = "PUBKEY")]
    treasury: Option<anchor_lang::prelude::Pubkey>,
    /// Minimum operator stake, in SOL [default when creating: 10].
    #[arg(long = "min-stake", value_parser = sol_arg, value_name = "SOL")]
    min_stake: Option<u64>,
    /// Time between unstaking and withdrawing (e.g. 7d) [default when creating: 7d].
    #[arg(long = "unbonding-period", value_parser = seconds_arg, value_name = "DURATION")]
    unbonding_period: Option<i64>,
    /// Time the operators have to provision a paid request (e.g. 10m) [default when creating: 10m].
    #[arg(long = "provisioning-timeout", value_parser = seconds_arg, value_name = "DURATION")]
    provisioning_timeout: Option<i64>,
    /// Protocol fee in basis points of each payout, at most 1000 [default when creating: 250].
    #[arg(long = "fee-bps", value_name = "BPS")]
    fee_bps: Option<u16>,
    /// Largest share of the active stake one operator may reach, in basis
    /// points (1000..=3333; default 3000).
    #[arg(long = "max-stake-share-bps", value_name = "BPS")]
    max_stake_share_bps: Option<u16>,
    /// Share of its stake an operator loses when a quorum removes it, in
    /// basis points (0..=5000; default 500).
    #[arg(long = "removal-slash-bps", value_name = "BPS")]
    removal_slash_bps: Option<u16>,
    /// Share of its stake an operator loses when anyone proves it signed two
    /// conflicting events, in basis points (0..=10000; default 5000).
    #[arg(long = "equivocation-slash-bps", value_name = "BPS")]
    equivocation_slash_bps: Option<u16>,
    /// Share of an equivocation slash paid to its reporter, in basis points
    /// (0..=5000; default 1000). The rest goes to the fee vault.
    #[arg(long = "reporter-reward-bps", value_name = "BPS")]
    reporter_reward_bps: Option<u16>,
    /// Apply differences between the given settings and the config on chain.
    #[arg(long)]
    update: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Commitment {
    Processed,
    Confirmed,
    Finalized,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn pubkey_arg(value: &str) -> Result<anchor_lang::prelude::Pubkey, String> {
    parse_pubkey(value).map_err(|e| e.to_string())
}

use dagger_cli::sol_arg;

fn seconds_arg(value: &str) -> Result<i64, String> {
    let seconds = parse_duration(value).map_err(|e| e.to_string())?.as_secs();
    i64::try_from(seconds).map_err(|_| format!("`{value}` is too long"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let output = cli.output;
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(&cli)));
    match result {
        Ok(report) => {
            match output {
                Output::Json => println!("{}", report.to_json()),
                Output::Text => println!("{}", report.to_text()),
            }
            if matches!(report.action, Action::Differs { .. }) {
                ExitCode::from(EXIT_DIFFERS)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            dagger_cli::report_error(matches!(output, Output::Json), &error);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> Result<dagger_migrations::Report> {
    let cluster = dagger_client::cluster::resolve(&cli.url, cli.ws.as_deref())?;
    let admin = Arc::new(read_keypair(&cli.keypair)?);
    let commitment = match cli.commitment {
        Commitment::Processed => CommitmentConfig::processed(),
        Commitment::Confirmed => CommitmentConfig::confirmed(),
        Commitment::Finalized => CommitmentConfig::finalized(),
    };
    let client = DaggerClient::new(
        cluster,
        admin,
        ClientOptions {
            commitment,
            ..ClientOptions::default()
        },
    )?;
    let settings = Settings {
        treasury: cli.treasury,
        min_operator_stake: cli.min_stake,
        unbonding_period: cli.unbonding_period,
        provisioning_timeout: cli.provisioning_timeout,
        protocol_fee_bps: cli.fee_bps,
        max_stake_share_bps: cli.max_stake_share_bps,
        removal_slash_bps: cli.removal_slash_bps,
        equivocation_slash_bps: cli.equivocation_slash_bps,
        reporter_reward_bps: cli.reporter_reward_bps,
    };
    Ok(initialize(&client, &settings, cli.update).await?)
}
