//! `dagger-devnet bench-lease`: how long a customer waits between paying for a
//! VM and holding an active lease, on a whole local network (embedded chain,
//! N nodes over QUIC), and with real VMs (`--provisioner qemu`) until the VM
//! answers a command over SSH.
//!
//! Each worker is one customer that pays for a lease, waits until a quorum
//! made it active, closes it (so capacity frees up for the next one) and
//! repeats. "Paid" is when `create_request` is confirmed; "active" is the
//! first poll (every [`POLL`]) that reads the request as active.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use dagger_client::{Request, RequestStatus, VmSpec};
use serde::Serialize;
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signature::Keypair, signer::Signer};

use crate::{
    bench::percentile,
    devnet::{Devnet, DevnetOptions},
};

/// How often a worker reads its request while it waits.
pub const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, clap::Args)]
pub struct LeaseBenchArgs {
    /// Lease requests to measure.
    #[arg(long, default_value_t = 100)]
    pub requests: usize,
    /// Customers paying at the same time (each waits for its lease before
    /// paying again).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Operator nodes.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// A request not active after this many seconds counts as failed.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Keep the network's files here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// VM backend: simulated (boots nothing), or qemu (real micro-VMs; also
    /// measures paid -> a command ran in the VM over SSH).
    #[arg(long, value_enum, default_value = "simulated")]
    pub provisioner: dagger_node::config::ProvisionerChoice,
    /// Booted VMs each node keeps ready for the bench's VM size (real VMs;
    /// 0: every lease boots its VM).
    #[arg(long, default_value_t = 0)]
    pub pool: usize,
    /// vCPUs each node's VMs may use together, pooled ones included
    /// (default: one per host thread). Pools of more than one VM need
    /// room for them beside the leases.
    #[arg(long)]
    pub vcpus_per_node: Option<u32>,
    /// The image leases ask for (real VMs): `default`, or `debian` (built
    /// with debootstrap on first use: needs root).
    #[arg(long, default_value = "default")]
    pub image: String,
}

impl LeaseBenchArgs {
    /// Memory of the bench's VMs, MiB: the Debian image runs a real init
    /// and wants more than the default image's busybox.
    fn memory_mib(&self) -> u32 {
        if self.image == "debian" {
            256
        } else {
            128
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LeaseBenchReport {
    pub nodes: usize,
    pub concurrency: usize,
    pub requests: usize,
    pub failed: usize,
    /// Paid (confirmed) → lease active, over the requests that succeeded.
    pub active_p50_ms: f64,
    pub active_p99_ms: f64,
    pub active_max_ms: f64,
    pub active_mean_ms: f64,
    /// Paid → `true` ran in the VM over SSH (real VMs only).
    pub ssh_ready_p50_ms: Option<f64>,
    pub ssh_ready_p99_ms: Option<f64>,
    /// Sending `create_request` → confirmed, for context.
    pub pay_p50_ms: f64,
    pub provisioner: &'static str,
    /// The image leased (real VMs) and the pool each node kept for it.
    pub image: Option<String>,
    pub pool: usize,
    pub vcpus_per_node: Option<u32>,
    pub poll_interval_ms: u64,
    pub wall_s: f64,
}

/// What one request went through.
enum Outcome {
    Active {
        pay_ms: f64,
        active_ms: f64,
        ssh_ms: Option<f64>,
    },
    Failed(String),
}

/// Starts a devnet, runs the customers, stops the devnet.
pub async fn run(args: LeaseBenchArgs) -> Result<LeaseBenchReport> {
    anyhow::ensure!(args.requests > 0, "--requests must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let (dir, _temp) = crate::bench::work_dir(args.dir.as_deref())?;
    anyhow::ensure!(
        ["default", "debian"].contains(&args.image.as_str()),
        "--image must be default or debian"
    );
    let pools = if args.pool == 0 {
        Vec::new()
    } else {
        vec![format!(
            "count={},vcpus=1,memory={},disk=1",
            args.pool,
            args.memory_mib()
        )
        .parse()
        .map_err(anyhow::Error::msg)?]
    };
    let devnet = Devnet::start(DevnetOptions {
        nodes: args.nodes,
        data_dir: dir,
        provisioner: args.provisioner,
        pools,
        vm_max_vcpus: args.vcpus_per_node,
        debian_image: args.image == "debian",
        ..DevnetOptions::default()
    })
    .await
    .context("starting the local network")?;
    let devnet = Arc::new(devnet);
    let result = match wait_for_pools(&devnet, args.pool).await {
        Ok(()) => measure(&devnet, &args).await,
        Err(err) => Err(err),
    };
    match Arc::try_unwrap(devnet) {
        Ok(devnet) => devnet.stop().await,
        Err(_) => tracing::warn!("a worker still holds the network; not stopped cleanly"),
    }
    result
}

/// Waits until every node's pool holds `pool` booted VMs, so that the
/// figures are those of a warm pool.
async fn wait_for_pools(devnet: &Devnet, pool: usize) -> Result<()> {
    if pool == 0 || devnet.default_image().is_none() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ready = devnet.provisioners.iter().flatten().all(|p| {
            let pools = p.pools();
            !pools.is_empty() && pools.iter().all(|s| s.ready >= s.target)
        });
        if ready {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the nodes' pools did not fill within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn measure(devnet: &Arc<Devnet>, args: &LeaseBenchArgs) -> Result<LeaseBenchReport> {
    let image = devnet.image(if args.image == "default" {
        crate::devnet::DEFAULT_IMAGE
    } else {
        &args.image
    });
    anyhow::ensure!(
        image.is_some() || devnet.default_image().is_none(),
        "the nodes do not serve the {} image",
        args.image
    );
    let memory_mib = args.memory_mib();
    let progress = indicatif::ProgressBar::new(args.requests as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} leases {pos}/{len} [{elapsed_precise}] {msg}",
        )
        .expect("static template"),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.min(args.requests) {
        let devnet = devnet.clone();
        let next = next.clone();
        let progress = progress.clone();
        let (total, timeout) = (args.requests, Duration::from_secs(args.timeout));
        workers.push(tokio::spawn(async move {
            let customer = Keypair::new();
            devnet
                .reader
                .airdrop(&customer.pubkey(), 1_000 * LAMPORTS_PER_SOL)
                .await?;
            let mut outcomes = Vec::new();
            let mut request_id = 0u64;
            while next.fetch_add(1, Ordering::Relaxed) < total {
                request_id += 1;
                let outcome =
                    one_lease(&devnet, &customer, request_id, timeout, image, memory_mib).await;
                if let Outcome::Failed(why) = &outcome {
                    progress.set_message(format!("last failure: {why}"));
                }
                progress.inc(1);
                outcomes.push(outcome);
            }
            anyhow::Ok(outcomes)
        }));
    }
    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.extend(worker.await??);
    }
    progress.finish_and_clear();
    let wall_s = started.elapsed().as_secs_f64();

    let mut active = Vec::new();
    let mut pay = Vec::new();
    let mut ssh = Vec::new();
    let mut failed = 0;
    for outcome in outcomes {
        match outcome {
            Outcome::Active {
                pay_ms,
                active_ms,
                ssh_ms,
            } => {
                pay.push(pay_ms);
                active.push(active_ms);
                ssh.extend(ssh_ms);
            }
            Outcome::Failed(why) => {
                tracing::warn!(%why, "lease request failed");
                failed += 1;
            }
        }
    }
    active.sort_by(f64::total_cmp);
    pay.sort_by(f64::total_cmp);
    ssh.sort_by(f64::total_cmp);
    let real = devnet.default_image().is_some();
    Ok(LeaseBenchReport {
        nodes: args.nodes,
        concurrency: args.concurrency,
        requests: args.requests,
        failed,
        active_p50_ms: percentile(&active, 50.0),
        active_p99_ms: percentile(&active, 99.0),
        active_max_ms: active.last().copied().unwrap_or(0.0),
        active_mean_ms: if active.is_empty() {
            0.0
        } else {
            active.iter().sum::<f64>() / active.len() as f64
        },
        ssh_ready_p50_ms: real.then(|| percentile(&ssh, 50.0)),
        ssh_ready_p99_ms: real.then(|| percentile(&ssh, 99.0)),
        pay_p50_ms: percentile(&pay, 50.0),
        provisioner: if real { "qemu" } else { "simulated" },
        image: real.then(|| args.image.clone()),
        pool: args.pool,
        vcpus_per_node: args.vcpus_per_node,
        poll_interval_ms: POLL.as_millis() as u64,
        wall_s,
    })
}

/// Pays for one lease, waits until it is active, then closes it.
async fn one_lease(
    devnet: &Devnet,
    customer: &Keypair,
    request_id: u64,
    timeout: Duration,
    real: Option<[u8; 32]>,
    memory_mib: u32,
) -> Outcome {
    let reader = &devnet.reader;
    let key = dagger_node::identity::Identity::generate();
    let public = key.verifying_key().to_bytes();
    let spec = VmSpec {
        vcpus: 1,
        memory_mib: if real.is_some() { memory_mib } else { 1_024 },
        disk_gib: 1,
        region: 1,
        image_id: real.unwrap_or(*blake3::hash(b"bench-image").as_bytes()),
        ssh_key: public,
    };
    let sent = Instant::now();
    let request = match reader
        .pay_for_vm(customer, request_id, spec, 1_000, 3_600)
        .await
    {
        Ok(request) => request,
        Err(err) => return Outcome::Failed(format!("paying: {err}")),
    };
    let paid = Instant::now();
    let lease = loop {
        match reader.one::<Request>(&request).await {
            Ok(Some(r)) if r.status == RequestStatus::Active => break r,
            Ok(_) => {}
            Err(err) => return Outcome::Failed(format!("reading the request: {err}")),
        }
        if paid.elapsed() > timeout {
            return Outcome::Failed(format!("not active after {} s", timeout.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    };
    let active_ms = paid.elapsed().as_secs_f64() * 1e3;
    let ssh_ms = match real {
        None => None,
        Some(_) => match ssh_ready(devnet, &request, &lease, &key, paid, timeout).await {
            Ok(ms) => Some(ms),
            Err(why) => return Outcome::Failed(why),
        },
    };
    let outcome = Outcome::Active {
        pay_ms: (paid - sent).as_secs_f64() * 1e3,
        active_ms,
        ssh_ms,
    };
    // Close it so the operators' capacity is free for the next request.
    if let Err(err) = reader.close_lease(customer, &request).await {
        return Outcome::Failed(format!("closing: {err}"));
    }
    outcome
}

/// Milliseconds from `paid` until `true` ran in the lease's VM over SSH.
async fn ssh_ready(
    devnet: &Devnet,
    request: &anchor_lang::prelude::Pubkey,
    lease: &Request,
    key: &dagger_node::identity::Identity,
    paid: Instant,
    timeout: Duration,
) -> Result<f64, String> {
    let api = devnet.api(0).ok_or("node 0 is not running")?;
    let endpoint = dagger_client::endpoint::fetch(&format!("http://{api}"), request, lease)
        .await
        .map_err(|e| e.to_string())?;
    let file = devnet.options.data_dir.join(format!("bench-key-{request}"));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = dagger_client::ssh::format_private_key(
            &key.signing_key().to_bytes(),
            &key.verifying_key().to_bytes(),
            "bench",
        );
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| e.to_string())?;
    }
    let result = loop {
        if crate::devnet::ssh_run(&endpoint, &file, "true")
            .await
            .is_ok()
        {
            break Ok(paid.elapsed().as_secs_f64() * 1e3);
        }
        if paid.elapsed() > timeout {
            break Err(format!("no SSH after {} s", timeout.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    };
    let _ = std::fs::remove_file(&file);
    result
}

/// The report as a few lines of text.
pub fn render_text(report: &LeaseBenchReport) -> String {
    let ssh = match (report.ssh_ready_p50_ms, report.ssh_ready_p99_ms) {
        (Some(p50), Some(p99)) => format!("paid -> SSH ready: p50 {p50:.0} ms, p99 {p99:.0} ms\n"),
        _ => String::new(),
    };
    format!(
        "{} lease requests over {} nodes ({} provisioner{}), {} customers at a time, {:.1} s\n\
         paid -> active: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, mean {:.0} ms (poll every {} ms)\n\
         {ssh}payment confirmed: p50 {:.0} ms\n\
         failed: {}\n",
        report.requests,
        report.nodes,
        report.provisioner,
        match &report.image {
            Some(image) => format!(", image {image}, pool {} per node", report.pool),
            None => String::new(),
        },
        report.concurrency,
        report.wall_s,
        report.active_p50_ms,
        report.active_p99_ms,
        report.active_max_ms,
        report.active_mean_ms,
        report.poll_interval_ms,
        report.pay_p50_ms,
        report.failed
    )
}
