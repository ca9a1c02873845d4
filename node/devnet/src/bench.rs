//! `dagger-devnet bench`: a real cluster on loopback — N node processes
//! talking QUIC — driven through their HTTP APIs.
//!
//! It submits transactions (at a rate or as fast as possible) for a while,
//! waits until every node ordered all of them, and reports ordered tx/s,
//! finality latency (submit → ordered on the submitting node), CPU seconds
//! and peak RSS per node process, and each node's order digest (blake3 over
//! the ordered transactions' hashes), which must be identical.

use std::{
    collections::HashMap,
    net::{SocketAddr, TcpListener, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use dagger_node::identity::{display_id, Identity};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Number of node processes.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Seconds to submit transactions for.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Transactions per second to submit (all nodes together); 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Bytes per transaction.
    #[arg(long, default_value_t = 64)]
    pub tx_size: usize,
    /// Concurrent submitters (each waits for its previous submission).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Keep the cluster's files here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct NodeReport {
    pub node: String,
    pub ordered_tx: u64,
    pub cpu_s: f64,
    pub rss_mb: f64,
    pub digest: String,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub nodes: usize,
    pub duration_s: f64,
    pub submitted_tx: u64,
    pub ordered_tx: u64,
    pub ordered_tps: f64,
    pub finality_p50_ms: f64,
    pub finality_p99_ms: f64,
    pub finality_max_ms: f64,
    pub digests: Vec<String>,
    pub digests_match: bool,
    pub per_node: Vec<NodeReport>,
}

/// Submitted transaction → (node it went to, when).
type Submitted = HashMap<Vec<u8>, (usize, Instant)>;

fn free_tcp_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_udp_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One spawned node process.
pub struct ClusterNode {
    pub id: String,
    pub api: SocketAddr,
    pub gossip: SocketAddr,
    pub config: PathBuf,
    pub child: Option<Child>,
    pub log: PathBuf,
}

/// N node processes of `exe` with a shared static roster.
pub struct Cluster {
    pub nodes: Vec<ClusterNode>,
    pub exe: PathBuf,
    pub dir: PathBuf,
}

impl Cluster {
    /// Writes identities and configs for `n` nodes under `dir`.
    pub fn prepare(exe: &Path, dir: &Path, n: usize, network: &str) -> Result<Cluster> {
        std::fs::create_dir_all(dir)?;
        let mut identities = Vec::new();
        let mut addrs = Vec::new();
        for i in 0..n {
            let identity = Identity::generate();
            let path = dir.join(format!("node{i}.json"));
            if path.exists() {
                std::fs::remove_file(&path)?;
            }
            identity.save_new(&path)?;
            identities.push((identity, path));
            let gossip: SocketAddr = format!("127.0.0.1:{}", free_udp_port()?).parse()?;
            let api: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()?).parse()?;
            addrs.push((gossip, api));
        }
        let mut nodes = Vec::new();
        for i in 0..n {
            let mut toml = format!(
                "identity = {:?}\nlisten = \"{}\"\napi = \"{}\"\ndata_dir = {:?}\nnetwork = \"{network}\"\n",
                identities[i].1.display().to_string(),
                addrs[i].0,
                addrs[i].1,
                dir.join(format!("data{i}")).display().to_string(),
            );
            for j in (0..n).filter(|j| *j != i) {
                toml.push_str(&format!(
                    "[[peers]]\naddress = \"{}\"\nnode_key = \"{}\"\n",
                    addrs[j].0,
                    display_id(&identities[j].0.id())
                ));
            }
            let config = dir.join(format!("node{i}.toml"));
            std::fs::write(&config, toml)?;
            nodes.push(ClusterNode {
                id: display_id(&identities[i].0.id()),
                api: addrs[i].1,
                gossip: addrs[i].0,
                config,
                child: None,
                log: dir.join(format!("node{i}.log")),
            });
        }
        Ok(Cluster {
            nodes,
            exe: exe.to_path_buf(),
            dir: dir.to_path_buf(),
        })
    }

    /// Starts node `i` (again, if it was stopped).
    pub fn start(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let child = Command::new(&self.exe)
            .arg("run")
            .arg("--config")
            .arg(&node.config)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", self.exe.display()))?;
        node.child = Some(child);
        Ok(())
    }

    pub fn start_all(&mut self) -> Result<()> {
        for i in 0..self.nodes.len() {
            self.start(i)?;
        }
        Ok(())
    }

    /// kill -9.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(|c| c.id())
    }

    /// Sends a POSIX signal (STOP/CONT to freeze a node, TERM to stop it).
    pub fn signal(&self, i: usize, signal: &str) -> Result<()> {
        let pid = self.pid(i).context("node not running")?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        if !status.success() {
            bail!("kill -{signal} {pid} failed");
        }
        Ok(())
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{}", self.nodes[i].api, path)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// (CPU seconds, RSS MiB) of a process from /proc.
pub fn process_usage(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = 100.0; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(((utime + stime) / ticks, rss_kb / 1024.0))
}

#[derive(Deserialize)]
pub struct OrderedTxJson {
    pub position: u64,
    pub tx: String,
    pub event_id: String,
    pub consensus_time_ns: u64,
}

/// Waits until every node answers `/health`.
pub async fn wait_healthy(
    client: &reqwest::Client,
    cluster: &Cluster,
    within: Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    for i in 0..cluster.nodes.len() {
        loop {
            let ok = client
                .get(cluster.url(i, "/health"))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "node {i} did not become healthy; see {}",
                    cluster.nodes[i].log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Fetches a node's ordered transactions from `from` on.
pub async fn fetch_order(
    client: &reqwest::Client,
    url: &str,
    from: u64,
) -> Result<Vec<OrderedTxJson>> {
    Ok(client
        .get(format!("{url}?from={from}&limit=10000"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// The `p`th percentile (nearest rank) of sorted samples; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The directory a benchmark works in: `dir`, or a temporary one that lives
/// as long as the returned guard.
pub fn work_dir(dir: Option<&Path>) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match dir {
        Some(dir) => Ok((dir.to_path_buf(), None)),
        None => {
            let temp = tempfile::tempdir()?;
            Ok((temp.path().to_path_buf(), Some(temp)))
        }
    }
}

pub async fn run(args: BenchArgs) -> Result<BenchReport> {
    let exe = std::env::current_exe()?;
    let (dir, _temp) = work_dir(args.dir.as_deref())?;
    let mut cluster = Cluster::prepare(&exe, &dir, args.nodes, "dagger-bench")?;
    cluster.start_all()?;
    let client = reqwest::Client::new();
    wait_healthy(&client, &cluster, Duration::from_secs(30)).await?;

    let submitted_at: Arc<std::sync::Mutex<Submitted>> = Default::default();
    let counter = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut submitters = Vec::new();
    let per_submitter_interval = (args.rate > 0)
        .then(|| Duration::from_secs_f64(args.concurrency as f64 / args.rate as f64));
    for s in 0..args.concurrency {
        let client = client.clone();
        let urls: Vec<String> = (0..args.nodes).map(|i| cluster.url(i, "/tx")).collect();
        let submitted_at = submitted_at.clone();
        let counter = counter.clone();
        let stop = stop.clone();
        let tx_size = args.tx_size.max(16);
        submitters.push(tokio::spawn(async move {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let node = (n as usize + s) % urls.len();
                let mut tx = vec![0u8; tx_size];
                tx[..8].copy_from_slice(&n.to_le_bytes());
                tx[8..16].copy_from_slice(&(s as u64).to_le_bytes());
                let sent = Instant::now();
                submitted_at
                    .lock()
                    .unwrap()
                    .insert(tx.clone(), (node, sent));
                let ok = client
                    .post(&urls[node])
                    .body(tx.clone())
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if !ok {
                    submitted_at.lock().unwrap().remove(&tx);
                }
                if let Some(interval) = per_submitter_interval {
                    next += interval;
                    tokio::time::sleep_until(next.into()).await;
                }
            }
        }));
    }

    // Follow every node's order while submitting.
    let mut seen: Vec<Vec<(Vec<u8>, Instant)>> = vec![Vec::new(); args.nodes];
    let submit_for = Duration::from_secs(args.duration);
    let mut submission_done = false;
    let mut drain_deadline = None;
    loop {
        for (i, list) in seen.iter_mut().enumerate() {
            let batch = fetch_order(&client, &cluster.url(i, "/order"), list.len() as u64).await?;
            let now = Instant::now();
            for item in batch {
                list.push((hex_decode(&item.tx), now));
            }
        }
        if !submission_done && start.elapsed() >= submit_for {
            stop.store(true, Ordering::Relaxed);
            for s in submitters.drain(..) {
                let _ = s.await;
            }
            submission_done = true;
            drain_deadline = Some(Instant::now() + Duration::from_secs(60));
        }
        if submission_done {
            let expected = submitted_at.lock().unwrap().len();
            if seen.iter().all(|l| l.len() >= expected) {
                break;
            }
            if drain_deadline.is_some_and(|d| Instant::now() > d) {
                bail!(
                    "cluster did not order all {expected} transactions within 60 s: {:?}",
                    seen.iter().map(|l| l.len()).collect::<Vec<_>>()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();

    let submitted = submitted_at.lock().unwrap().clone();
    let mut latencies: Vec<f64> = Vec::new();
    for (i, list) in seen.iter().enumerate() {
        for (tx, at) in list {
            if let Some((node, sent)) = submitted.get(tx) {
                if *node == i {
                    latencies.push(at.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
                }
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let common = seen.iter().map(|l| l.len()).min().unwrap_or(0);
    let mut per_node = Vec::new();
    for (i, list) in seen.iter().enumerate() {
        let mut hasher = blake3::Hasher::new();
        for (tx, _) in &list[..common] {
            hasher.update(blake3::hash(tx).as_bytes());
        }
        let (cpu_s, rss_mb) = cluster.pid(i).and_then(process_usage).unwrap_or((0.0, 0.0));
        per_node.push(NodeReport {
            node: cluster.nodes[i].id.clone(),
            ordered_tx: list.len() as u64,
            cpu_s,
            rss_mb,
            digest: hasher.finalize().to_hex().to_string(),
        });
    }
    let digests: Vec<String> = per_node.iter().map(|n| n.digest.clone()).collect();
    let digests_match = digests.windows(2).all(|w| w[0] == w[1]);
    let ordered_tx = common as u64;
    Ok(BenchReport {
        nodes: args.nodes,
        duration_s: elapsed,
        submitted_tx: submitted.len() as u64,
        ordered_tx,
        ordered_tps: ordered_tx as f64 / elapsed,
        finality_p50_ms: percentile(&latencies, 50.0),
        finality_p99_ms: percentile(&latencies, 99.0),
        finality_max_ms: latencies.last().copied().unwrap_or(0.0),
        digests,
        digests_match,
        per_node,
    })
}

/// The bytes of a hex string (empty if it is not hex).
pub fn hex_decode(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_default()
}

pub fn print_text(report: &BenchReport) {
    println!(
        "{} nodes, {:.1} s: {} submitted, {} ordered on every node, {:.0} ordered tx/s",
        report.nodes, report.duration_s, report.submitted_tx, report.ordered_tx, report.ordered_tps
    );
    println!(
        "finality (submit -> ordered): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        report.finality_p50_ms, report.finality_p99_ms, report.finality_max_ms
    );
    for node in &report.per_node {
        println!(
            "  {}  ordered {:>8}  cpu {:>6.2} s  rss {:>6.1} MiB  digest {}",
            &node.node[..8.min(node.node.len())],
            node.ordered_tx,
            node.cpu_s,
            node.rss_mb,
            &node.digest[..16]
        );
    }
    println!(
        "order digests {}",
        if report.digests_match {
            "IDENTICAL"
        } else {
            "DIFFER"
        }
    );
}
