//! Builds the DAGGER program's IDL the way `anchor idl build` does (by
//! compiling the program's `idl-build` test and collecting what it prints),
//! writes it to `programs/dagger/idl/dagger.json`, or with `--check` fails
//! when the committed IDL is out of date.

use std::path::PathBuf;

use anchor_lang_idl::build::IdlBuilder;
use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Build or check the DAGGER program IDL")]
struct Args {
    /// Compare with the committed IDL instead of writing it; exit 1 if it differs.
    #[arg(long)]
    check: bool,
    /// The program crate.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../dagger"))]
    program: PathBuf,
    /// Where the IDL lives.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../dagger/idl/dagger.json"))]
    out: PathBuf,
    /// Cargo target directory for the IDL build. It compiles with other
    /// features and flags than the workspace, so it gets its own.
    #[arg(long, env = "DAGGER_IDL_TARGET_DIR")]
    target_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // anchor-lang-idl passes RUSTUP_TOOLCHAIN to cargo verbatim (`+stable`),
    // which breaks on machines without that exact toolchain name.
    std::env::remove_var("RUSTUP_TOOLCHAIN");
    let target_dir = args.target_dir.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")))
            .join("idl-build")
    });

    let idl = IdlBuilder::new()
        .program_path(args.program.clone())
        .cargo_args(vec![
            "--target-dir".into(),
            target_dir.display().to_string(),
        ])
        .build()
        .context("building the IDL")?;
    let json = serde_json::to_string_pretty(&idl)? + "\n";

    if args.check {
        let committed = std::fs::read_to_string(&args.out)
            .with_context(|| format!("reading {}", args.out.display()))?;
        if committed != json {
            bail!(
                "{} is out of date: run `cargo run -p dagger-idl` and commit the result",
                args.out.display()
            );
        }
        println!("IDL is up to date: {}", args.out.display());
    } else {
        std::fs::write(&args.out, json)
            .with_context(|| format!("writing {}", args.out.display()))?;
        println!("wrote {}", args.out.display());
    }
    Ok(())
}
