//! `dagger`: the DAGGER command-line tool, a thin layer over the SDK that
//! follows the Solana CLI's habits (`-u` monikers, `-k` keypair files,
//! `--commitment`, `--output json`).

mod args;
mod commands;
mod context;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::{args::OutputFormat, context::Context};

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    if let args::Command::Completions { shell } = cli.command {
        // Nothing to connect to: print the script and stop.
        use clap::CommandFactory;
        use std::io::Write;
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut args::Cli::command(), "dagger", &mut script);
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = std::io::stdout().write_all(&script);
        return ExitCode::SUCCESS;
    }
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
    // Commands with a wait of their own draw their own progress.
    let own_progress = matches!(
        cli.command,
        args::Command::Slash { .. } | args::Command::Vm(args::VmCommand::Request { .. })
    );
    let spinner = (output == OutputFormat::Text && !own_progress)
        .then(|| commands::spinner("talking to the cluster (sending and confirming)".into()));
    let result = runtime.block_on(async {
        let ctx = Context::new(&cli.global)?;
        commands::run(&ctx, cli.command).await
    });
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
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

/// Prints the error the way every DAGGER binary does (see
/// `dagger_cli::report_error`).
fn fail(output: OutputFormat, error: &anyhow::Error) -> ExitCode {
    dagger_cli::report_error(output == OutputFormat::Json, error);
    ExitCode::FAILURE
}
