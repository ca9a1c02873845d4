//! `dagger-devnet`: a whole DAGGER network on this machine (an embedded
//! Solana chain with the program, operators registered, staked and
//! admitted, and their nodes), and the benchmarks that run on it.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use dagger_node::config::{NodeConfig, Overrides};

/// This binary also runs the nodes of a devnet or bench (`run`): the same
/// allocator as `dagger-node`, for the same reason (see there).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "dagger-devnet",
    version,
    about = "A local DAGGER network: embedded Solana chain + program + operator nodes; and benchmarks",
    long_about = "A local DAGGER network on this machine.\n\n\
        With no subcommand it starts an embedded Solana chain (JSON-RPC on 8899, so `dagger -u l` \
        talks to it), registers, stakes and admits the operators, and runs their nodes until \
        Ctrl-C; --demo also runs a customer flow. `bench` and `bench-lease` measure consensus \
        throughput and lease latency.\n\
        Logs: set RUST_LOG (e.g. RUST_LOG=dagger_node=debug).",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    up: UpArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark a real cluster: N node processes over QUIC on loopback.
    Bench(Box<dagger_devnet::bench::BenchArgs>),
    /// Measure paid → lease active latency on a local network (embedded chain
    /// and N nodes), over many lease requests.
    BenchLease(dagger_devnet::lease_bench::LeaseBenchArgs),
    /// Run one node from a config (what `bench` starts its node processes
    /// with; operators run `dagger-node run`).
    #[command(hide = true)]
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Box<Overrides>,
    },
}

#[derive(clap::Args)]
struct UpArgs {
    /// Number of operator nodes.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Keys, ledgers and VM state live here; restarting with the same
    /// directory reuses them.
    #[arg(long, default_value = ".dagger-devnet")]
    data_dir: PathBuf,
    /// JSON-RPC port (8899 is what `dagger -u l` expects; websocket is +1).
    #[arg(long, default_value_t = 8899)]
    rpc_port: u16,
    /// Also run a customer flow (pay → active → claim → close) and print each step.
    #[arg(long)]
    demo: bool,
    /// With --demo: exit 0 once the flow completed, non-zero if a step failed.
    #[arg(long, requires = "demo")]
    exit: bool,
    /// VM backend: auto (real QEMU VMs when QEMU and the image's packages
    /// are installed, see scripts/setup-vm-host.sh), qemu, or simulated.
    #[arg(long, value_enum, default_value = "auto")]
    provisioner: dagger_node::config::ProvisionerChoice,
    /// Keep VMs booted ahead of leases on every node (real VMs), e.g.
    /// `count=1,vcpus=1,memory=256,disk=1`; repeat for several sizes.
    #[arg(long = "vm-pool")]
    vm_pool: Vec<dagger_node::provisioner::PoolSetting>,
    /// Serve only the default image. Otherwise, with real VMs and as root,
    /// the nodes also serve a Debian image (built with debootstrap on the
    /// first run, about 40 s, then cached in ~/.cache/dagger-images or
    /// $DAGGER_IMAGE_CACHE).
    #[arg(long)]
    no_debian_image: bool,
}

/// The embedded program's `msg!` output goes to the process's stdout (Anchor
/// prints off-chain); keep it out of the devnet's own output by moving fd 1
/// to a log file and writing through a copy of the original stdout.
#[cfg(unix)]
fn divert_program_stdout(log: &std::path::Path) -> Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    // SAFETY: plain POSIX fd duplication on descriptors this process owns.
    let original = unsafe { libc::dup(1) };
    if original < 0 || unsafe { libc::dup2(file.as_raw_fd(), 1) } < 0 {
        anyhow::bail!("cannot redirect stdout to {}", log.display());
    }
    Ok(unsafe { std::fs::File::from_raw_fd(original) })
}

async fn up(args: UpArgs) -> Result<()> {
    use dagger_devnet::devnet::{demo, status_line, Devnet, DevnetOptions};
    use std::io::Write;
    std::fs::create_dir_all(&args.data_dir)?;
    #[cfg(unix)]
    let mut out = divert_program_stdout(&args.data_dir.join("program.log"))?;
    #[cfg(not(unix))]
    let mut out = std::io::stdout();
    macro_rules! say {
        ($($arg:tt)*) => {{ let _ = writeln!(out, $($arg)*); }};
    }
    let options = DevnetOptions {
        nodes: args.nodes,
        data_dir: args.data_dir.clone(),
        rpc_port: Some(args.rpc_port),
        ws_port: Some(args.rpc_port + 1),
        // Node 0's API at 8910 (for 8899): where `dagger vm ssh` looks by default.
        api_port: Some(args.rpc_port + 11),
        provisioner: args.provisioner,
        pools: args.vm_pool.clone(),
        // SAFETY: geteuid has no preconditions.
        debian_image: !args.no_debian_image && unsafe { libc::geteuid() } == 0,
        ..DevnetOptions::default()
    };
    say!(
        "starting the local chain and {} nodes in {} ...",
        args.nodes,
        args.data_dir.display()
    );
    let devnet = Devnet::start(options).await?;
    say!("chain:   {} (ws {})", devnet.rpc_url(), devnet.ws_url());
    say!("program: {}", devnet.program_id());
    say!("keys:    {}", args.data_dir.join("keys").display());
    match devnet.default_image() {
        Some(image) => {
            say!(
                "VMs:     real QEMU micro-VMs, image {}",
                dagger_node::images::hex(&image)
            );
            say!(
                "try:     dagger -u l -k {} vm request --vcpus 1 --memory-mib 256 --disk-gib 1 --image {} --price 1000 --duration 10m --wait",
                args.data_dir.join("keys").join("customer.json").display(),
                dagger_node::images::hex(&image)
            );
            say!("         dagger -u l vm ssh <REQUEST> -- uname -a");
            if let Some(debian) = devnet.image("debian") {
                say!(
                    "Debian:  image {} (dagger vm request --image debian --memory-mib 256 ...)",
                    dagger_node::images::hex(&debian)
                );
            }
        }
        None => {
            say!("VMs:     SIMULATED (nothing boots); for real VMs run scripts/setup-vm-host.sh");
            say!(
                "try:     dagger -u l -k {} vm request --vcpus 1 --memory-mib 1024 --disk-gib 10 --image {} --price 1000 --duration 10m --wait",
                args.data_dir.join("keys").join("customer.json").display(),
                "ab".repeat(32)
            );
        }
    }
    for (i, config) in devnet.configs.iter().enumerate() {
        let api = devnet.api(i).map(|a| a.to_string()).unwrap_or_default();
        say!(
            "node {i}:  gossip {}  api http://{api}  explorer http://{api}/explorer",
            config.listen
        );
    }
    let mut failure = None;
    if args.demo {
        say!("demo customer flow:");
        let printed = demo(&devnet, |s| {
            say!("  [{:>6} ms] {:<8} {}", s.at_ms, s.step, s.detail)
        })
        .await;
        match printed {
            Ok(_) => say!("demo completed"),
            Err(err) => {
                say!("demo FAILED: {err}");
                failure = Some(err);
            }
        }
    }
    if !args.exit {
        say!(
            "running; Ctrl-C to stop (node logs: {}/node<i>/node.log)",
            args.data_dir.display()
        );
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        let shutdown = dagger_node::node::shutdown_signal();
        tokio::pin!(shutdown);
        // One status line: redrawn in place on a terminal, else a line
        // every 10 s (node logs are in <data dir>/node<i>/node.log).
        use std::io::IsTerminal;
        let in_place = out.is_terminal();
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    let line = status_line(&devnet).await;
                    if in_place {
                        let _ = write!(out, "\r\x1b[2K{line}");
                        let _ = out.flush();
                    } else if ticks.is_multiple_of(5) {
                        say!("{line}");
                    }
                    ticks += 1;
                }
            }
        }
        if in_place {
            say!("");
        }
    }
    say!("stopping ...");
    devnet.stop().await;
    match failure {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

/// `RUST_LOG` wins; otherwise `default`. Colour only on a terminal.
fn init_logging(default: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.command.is_none() {
        dagger_devnet::logs::init_devnet(&cli.up.data_dir, cli.up.nodes)?;
    } else {
        // The network itself logs through `logs::init_devnet` (a file per
        // node); the embedded chain logs every refused simulation as an
        // error and attestation races produce some by design.
        init_logging(match cli.command {
            Some(Command::Run { .. }) => "info",
            _ => "warn,surfpool=off",
        });
    }
    match cli.command {
        None => up(cli.up).await?,
        Some(Command::Bench(args)) if !args.sweep.is_empty() || !args.rtt_sweep.is_empty() => {
            let json = args.json;
            let reports = if args.sweep.is_empty() {
                dagger_devnet::bench::sweep_rtt(*args).await?
            } else {
                dagger_devnet::bench::sweep(*args).await?
            };
            if json {
                println!("{}", serde_json::to_string(&reports)?);
            } else {
                dagger_devnet::bench::print_sweep(&reports);
            }
            if reports.iter().any(|r| !r.digests_match) {
                anyhow::bail!("nodes disagree on the order");
            }
        }
        Some(Command::Bench(args)) => {
            let json = args.json;
            let report = dagger_devnet::bench::run(*args).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                dagger_devnet::bench::print_text(&report);
            }
            if !report.digests_match {
                anyhow::bail!("nodes disagree on the order");
            }
        }
        Some(Command::BenchLease(args)) => {
            let dir = match &args.dir {
                Some(dir) => dir.clone(),
                None => std::env::temp_dir(),
            };
            std::fs::create_dir_all(&dir)?;
            let log = dir.join(format!(
                "dagger-bench-lease-{}.program.log",
                std::process::id()
            ));
            #[cfg(unix)]
            let mut out = divert_program_stdout(&log)?;
            #[cfg(not(unix))]
            let mut out = std::io::stdout();
            let json = args.json;
            let report = dagger_devnet::lease_bench::run(args).await?;
            #[cfg(unix)]
            let _ = std::fs::remove_file(&log);
            use std::io::Write;
            if json {
                writeln!(out, "{}", serde_json::to_string(&report)?)?;
            } else {
                write!(out, "{}", dagger_devnet::lease_bench::render_text(&report))?;
            }
            if report.failed > 0 {
                anyhow::bail!(
                    "{} of {} lease requests failed",
                    report.failed,
                    report.requests
                );
            }
        }
        Some(Command::Run { config, overrides }) => {
            let config = NodeConfig::load(config.as_deref(), &overrides)?;
            let node = dagger_node::node::start_from_config(&config).await?;
            dagger_node::node::run_until(node, dagger_node::node::shutdown_signal()).await?;
        }
    }
    Ok(())
}
