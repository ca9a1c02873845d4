//! `dagger`: the DAGGER command-line tool, a thin layer over the SDK that
//! follows the Solana CLI's habits (`-u` monikers, `-k` keypair files,
//! `--commitment`, `--output json`).

mod args;
mod commands;
mod context;

use std::process::ExitCode;

use clap::Parser;
use dagger_client::ClientError;
use serde_json::json;
use tracing_subscriber::EnvFilter;

use crate::{args::OutputFormat, context::Context};

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let output = cli.global.output;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(output, &anyhow::Error::from(error)),
    };
    let result = runtime.block_on(async {
        let ctx = Context::new(&cli.global)?;
        commands::run(&ctx, cli.command).await
    });
    match result {
        Ok(report) => {
            match output {
                OutputFormat::Json => println!("{}", report.json),
                OutputFormat::Text => println!("{}", report.text),
            }
            ExitCode::SUCCESS
        }
        Err(error) => fail(output, &error),
    }
}

/// Prints the error (with the program's logs when there are any): as one
/// JSON object on stdout for `--output json`, as text on stderr otherwise.
fn fail(output: OutputFormat, error: &anyhow::Error) -> ExitCode {
    let client_error = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<ClientError>());
    let logs = client_error.map(ClientError::logs).unwrap_or_default();
    match output {
        OutputFormat::Json => {
            let program_error =
                client_error
                    .and_then(ClientError::program_failure)
                    .map(|failure| {
                        json!({
                            "code": failure.code(),
                            "name": failure_name(failure),
                            "message": failure.to_string(),
                        })
                    });
            let report = json!({
                "error": {
                    "message": format!("{error:#}"),
                    "program_error": program_error,
                    "signature": client_error.and_then(ClientError::signature),
                    "logs": logs,
                }
            });
            println!("{report}");
        }
        OutputFormat::Text => {
            eprintln!("Error: {error:#}");
            if !logs.is_empty() {
                eprintln!("Program logs:");
                for line in logs {
                    eprintln!("  {line}");
                }
            }
        }
    }
    ExitCode::FAILURE
}

fn failure_name(failure: &dagger_client::ProgramFailure) -> Option<String> {
    use dagger_client::ProgramFailure::*;
    match failure {
        Dagger(error) => Some(error.name()),
        Anchor(error) => Some(error.name()),
        UnknownCustom(_) | Runtime(_) => None,
    }
}
