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
    /// The program crate (default: `../dagger` beside this crate).
    #[arg(long)]
    program: Option<PathBuf>,
    /// Where the IDL lives (default: the program's `idl/dagger.json`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Cargo target directory for the IDL build. It compiles with other
    /// features and flags than the workspace, so it gets its own.
    #[arg(long, env = "DAGGER_IDL_TARGET_DIR")]
    target_dir: Option<PathBuf>,
}

/// This crate's directory: where `cargo run` says it is now, else where it
/// was compiled (a build reused from another checkout must not point
/// there).
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let program = args
        .program
        .clone()
        .unwrap_or_else(|| manifest_dir().join("../dagger"));
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| program.join("idl/dagger.json"));
    // anchor-lang-idl passes RUSTUP_TOOLCHAIN to cargo verbatim (`+stable`),
    // which breaks on machines without that exact toolchain name.
    std::env::remove_var("RUSTUP_TOOLCHAIN");
    let target_dir = args.target_dir.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest_dir().join("../../target"))
            .join("idl-build")
    });

    let idl = IdlBuilder::new()
        .program_path(program)
        .cargo_args(vec![
            "--target-dir".into(),
            target_dir.display().to_string(),
        ])
        .build()
        .context("building the IDL")?;
    let json = serde_json::to_string_pretty(&idl)? + "\n";

    if args.check {
        let committed =
            std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
        if committed != json {
            bail!(
                "{} is out of date: run `cargo run -p dagger-idl` and commit the result",
                out.display()
            );
        }
        println!("IDL is up to date: {}", out.display());
    } else {
        std::fs::write(&out, json).with_context(|| format!("writing {}", out.display()))?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
