//! `dagger-devnet bench`: a real cluster on loopback — N node processes
//! talking QUIC — driven through their HTTP APIs.
//!
//! It submits transactions (at a rate or as fast as possible) for a while,
//! waits until every node ordered all of them, and reports ordered tx/s,
//! finality latency (submit → ordered on the submitting node), CPU seconds
//! and peak RSS per node process, and each node's order digest (blake3 over
//! the ordered transactions' hashes), which must be identical.

use std::{
    net::{SocketAddr, TcpListener, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::{builder::RangedU64ValueParser, value_parser};
use dagger_node::api::{batch_capacity, MAX_SUBMIT_BATCH, MAX_SUBMIT_BODY};
use serde::{Deserialize, Serialize};

use dagger_node::identity::{display_id, Identity};

/// Most node processes a bench starts.
const MAX_NODES: u64 = 64;
/// Longest load (a week).
const MAX_SECONDS: u64 = 7 * 24 * 3600;
/// Highest offered rate (tx/s).
const MAX_RATE: u64 = 10_000_000;
/// A node's default largest transaction: `Limits::max_tx_bytes`, less what
/// an envelope adds (a node admits only what it could forward).
const MAX_TX_BYTES: u64 = (64 << 10) - dagger_node::core::forward::ENVELOPE_OVERHEAD as u64;

/// `--soak`: seconds, or a number with one unit (s, m, h, d), up to a week.
fn soak_arg(value: &str) -> Result<u64, String> {
    match dagger_cli::parse_duration(value)
        .map_err(|e| e.to_string())?
        .as_secs()
    {
        0 => Err(format!("`{value}`: a soak lasts at least a second")),
        secs if secs <= MAX_SECONDS => Ok(secs),
        _ => Err(format!("`{value}`: a soak lasts at most a week")),
    }
}

#[derive(Debug, Clone, clap::Args)]
#[command(group = clap::ArgGroup::new("sweeps").args(["sweep", "rtt_sweep"]))]
pub struct BenchArgs {
    /// Number of node processes (1 to 64).
    #[arg(long, default_value_t = 4, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_NODES))]
    pub nodes: usize,
    /// Seconds to submit transactions for (at most a week).
    #[arg(long, default_value_t = 10, value_parser = value_parser!(u64).range(1..=MAX_SECONDS))]
    pub duration: u64,
    /// A soak: submit for this long (e.g. `10m`, `1h`, `90s`) and record
    /// RSS and finality every `--timeline` seconds (default 60, or a tenth
    /// of a shorter soak). Replaces `--duration`.
    #[arg(long, value_parser = soak_arg, conflicts_with_all = ["duration", "sweep"])]
    pub soak: Option<u64>,
    /// Transactions per second to submit (all nodes together); 0 = as fast
    /// as possible (at most 10 000 000).
    #[arg(long, default_value_t = 0, value_parser = value_parser!(u64).range(0..=MAX_RATE))]
    pub rate: u64,
    /// Bytes per transaction: at least 16 (each carries its number and a
    /// hash of it), at most a node's 64 KiB limit.
    #[arg(long, default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(16..=MAX_TX_BYTES))]
    pub tx_size: usize,
    /// Concurrent submitters without `--rate` (each waits for its previous
    /// request; 1 to 4 096).
    #[arg(long, default_value_t = 32, value_parser = RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub concurrency: usize,
    /// Transactions per request without `--rate` (`POST /txs`). A request
    /// is answered once its transactions' event is durable (a few ms), so
    /// with batches of 1 the submitters, not the cluster, set the pace
    /// (1 to 10 000).
    #[arg(long, default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_SUBMIT_BATCH as u64))]
    pub batch: usize,
    /// The nodes' `event_spacing_us` (least time between two own events
    /// while busy; default: the node's).
    #[arg(long)]
    pub event_spacing_us: Option<u64>,
    /// The nodes' QUIC congestion control (default: the node's, cubic).
    #[arg(long, value_enum)]
    pub congestion_control: Option<dagger_node::config::CongestionControl>,
    /// Seconds to measure the nodes' CPU while idle before the load (0: skip;
    /// at most an hour).
    #[arg(long, default_value_t = 5, value_parser = value_parser!(u64).range(0..=3600))]
    pub idle: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Run once per offered rate (tx/s, comma-separated: a latency against
    /// throughput curve) instead of once at `--rate`.
    #[arg(long, value_delimiter = ',', value_parser = value_parser!(u64).range(1..=MAX_RATE))]
    pub sweep: Vec<u64>,
    /// Run once per round trip between the nodes (comma-separated, e.g.
    /// `0,25ms,50ms,100ms,200ms`) at `--rate`, through the WAN emulator:
    /// finality against RTT.
    #[arg(long, value_delimiter = ',', value_parser = dagger_wan::spec::parse_duration, conflicts_with_all = ["sweep", "rtt", "regions"])]
    pub rtt_sweep: Vec<Duration>,
    /// With `--sweep` or `--rtt-sweep`: draw finality p50 and p99 against
    /// the offered rate (or the RTT) into this SVG file.
    #[arg(long, requires = "sweeps")]
    pub plot: Option<PathBuf>,
    /// Seconds per row of the timeline (RSS and finality over time, for
    /// soaks: e.g. `--duration 600 --timeline 60`); 0: no timeline.
    #[arg(long, default_value_t = 0, value_parser = value_parser!(u64).range(0..=MAX_SECONDS))]
    pub timeline: u64,
    /// Write every transaction's (seconds since the start, node, finality
    /// ms) to this CSV file.
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// Keep the cluster's files here instead of a temporary directory
    /// (a sweep keeps each run's in `run-0`, `run-1`, ...).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The abuse harness: the last node's key belongs to a byzantine
    /// member that runs no honest node and attacks all the others while the
    /// load runs. `silent` (it only stays quiet: the baseline to compare
    /// with), `handshakes` (half-open QUIC handshakes), `frames` (event
    /// floods, frames that never end), `http` (idle connections, largest
    /// reads), `catchup` (catch-up from the beginning, nonstop) or `all`;
    /// comma-separated. Needs at least 4 nodes.
    #[arg(long, value_delimiter = ',', conflicts_with = "sweep")]
    pub abuse: Vec<crate::abuse::Attack>,
    #[command(flatten)]
    pub net: crate::wan::NetArgs,
}

#[derive(Debug, Serialize)]
pub struct NodeReport {
    pub node: String,
    pub ordered_tx: u64,
    /// Transactions submitted to this node that were accepted and ordered.
    pub submitted_here: u64,
    /// Finality of those (a node behind a slow link shows here).
    pub finality_p50_ms: f64,
    pub finality_p99_ms: f64,
    /// Its own transactions that peers carried in envelopes because its
    /// events went stale (`None`: its status did not answer).
    pub forwarded_tx: Option<u64>,
    /// CPU seconds since the process started.
    pub cpu_s: f64,
    /// CPU use from the start of the load until everything was ordered
    /// (100 = one core).
    pub cpu_percent: f64,
    pub rss_mb: f64,
    pub digest: String,
    /// The node joined by state sync during the run: its order starts at
    /// this position (before it, its digest covers another node's order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_starts_at: Option<u64>,
}

/// One period of a run.
#[derive(Debug, Serialize)]
pub struct TimelineRow {
    /// End of the period, seconds since the load started.
    pub at_s: f64,
    /// Each node's resident memory at the end of the period.
    pub rss_mb: Vec<f64>,
    /// Finality of the transactions sent during the period.
    pub finality_p50_ms: f64,
    pub finality_p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub nodes: usize,
    /// `--rate` (open loop), if given.
    pub offered_tps: Option<u64>,
    pub duration_s: f64,
    pub submitted_tx: u64,
    /// Accepted submissions per second while submitting.
    pub submitted_tps: f64,
    pub ordered_tx: u64,
    pub ordered_tps: f64,
    pub finality_p50_ms: f64,
    pub finality_p99_ms: f64,
    pub finality_max_ms: f64,
    /// Mean CPU per node with nothing to order (100 = one core).
    pub idle_cpu_percent: Option<f64>,
    /// With `--timeline`: one row per period of the load.
    pub timeline: Vec<TimelineRow>,
    pub digests: Vec<String>,
    pub digests_match: bool,
    pub per_node: Vec<NodeReport>,
    /// With `--abuse`: what the attackers did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abuse: Option<crate::abuse::AbuseReport>,
    /// With network flags: the emulated network and what it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::wan::NetworkReport>,
}

fn free_tcp_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_udp_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `[[peers]]` entry of a node's config.
fn peer_entry(address: SocketAddr, node_key: &str) -> String {
    format!("[[peers]]\naddress = \"{address}\"\nnode_key = \"{node_key}\"\n")
}

/// One spawned node process.
pub struct ClusterNode {
    pub id: String,
    pub api: SocketAddr,
    /// The transaction submission API (bearer token: [`Cluster::token`]).
    pub submit: SocketAddr,
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
    /// Bearer token of every node's submission API.
    pub token: String,
}

impl Cluster {
    /// Writes identities and configs for `n` nodes under `dir`.
    pub fn prepare(exe: &Path, dir: &Path, n: usize, network: &str) -> Result<Cluster> {
        std::fs::create_dir_all(dir)?;
        // A node resolves relative paths in its config against the config's
        // own directory, so every path written into it must be absolute.
        let dir = &std::fs::canonicalize(dir)
            .with_context(|| format!("resolving the work directory {}", dir.display()))?;
        let mut identities = Vec::new();
        let mut addrs = Vec::new();
        let token = hex::encode(Identity::generate().id());
        let token_file = dir.join("submit.token");
        std::fs::write(&token_file, &token)?;
        let mut submits = Vec::new();
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
            submits.push(format!("127.0.0.1:{}", free_tcp_port()?).parse::<SocketAddr>()?);
        }
        let mut nodes = Vec::new();
        for i in 0..n {
            let mut toml = format!(
                "identity = {:?}\nlisten = \"{}\"\napi = \"{}\"\nsubmit = \"{}\"\nsubmit_token_file = {:?}\ndata_dir = {:?}\nnetwork = \"{network}\"\n",
                identities[i].1.display().to_string(),
                addrs[i].0,
                addrs[i].1,
                submits[i],
                token_file.display().to_string(),
                dir.join(format!("data{i}")).display().to_string(),
            );
            for j in (0..n).filter(|j| *j != i) {
                toml.push_str(&peer_entry(addrs[j].0, &display_id(&identities[j].0.id())));
            }
            let config = dir.join(format!("node{i}.toml"));
            std::fs::write(&config, toml)?;
            nodes.push(ClusterNode {
                id: display_id(&identities[i].0.id()),
                api: addrs[i].1,
                submit: submits[i],
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
            token,
        })
    }

    /// Points every node's peers at `via(node, peer)` instead of the
    /// peers' own addresses (the WAN emulator's relay).
    pub fn route_peers(&self, via: impl Fn(usize, usize) -> SocketAddr) -> Result<()> {
        for (i, node) in self.nodes.iter().enumerate() {
            let text = std::fs::read_to_string(&node.config)?;
            let mut toml = text
                .split_once("[[peers]]")
                .map_or(text.as_str(), |(head, _)| head)
                .to_string();
            for (j, peer) in self.nodes.iter().enumerate().filter(|(j, _)| *j != i) {
                toml.push_str(&peer_entry(via(i, j), &peer.id));
            }
            std::fs::write(&node.config, toml)?;
        }
        Ok(())
    }

    /// Adds a top-level setting to every node's config file.
    pub fn set(&self, setting: &str) -> Result<()> {
        for node in &self.nodes {
            let text = std::fs::read_to_string(&node.config)?;
            std::fs::write(&node.config, format!("{setting}\n{text}"))?;
        }
        Ok(())
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

    /// SIGTERM, then wait for the node to exit (kill -9 after 10 s): a
    /// clean stop leaves its ledger durable, with nothing to replay.
    pub fn stop(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].child.is_none() {
            return Ok(());
        }
        self.signal(i, "TERM")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let child = self.nodes[i].child.as_mut().expect("checked above");
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.kill(i);
                bail!("node {i} did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.nodes[i].child = None;
        Ok(())
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

    /// A URL of node `i`'s submission API.
    pub fn submit_url(&self, i: usize, path: &str) -> String {
        format!("http://{}{}", self.nodes[i].submit, path)
    }

    /// The `Authorization` header value the submission APIs want.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// An HTTP client that sends the submission APIs' token.
    pub fn submit_client(&self, timeout: Option<Duration>) -> Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            self.authorization().parse().context("token header")?,
        );
        let mut builder = reqwest::Client::builder().default_headers(headers);
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        Ok(builder.build()?)
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

/// Waits until every running node answers `/health`.
pub async fn wait_healthy(
    client: &reqwest::Client,
    cluster: &Cluster,
    within: Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    for i in (0..cluster.nodes.len()).filter(|i| cluster.nodes[*i].child.is_some()) {
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

/// Fetches a node's ordered transactions from `from` on; with `wait_ms`,
/// a long poll that waits that long for position `from`.
pub async fn fetch_order(
    client: &reqwest::Client,
    url: &str,
    from: u64,
    wait_ms: u64,
) -> Result<Vec<OrderedTxJson>> {
    fetch_order_page(client, url, from, 10_000, wait_ms).await
}

async fn fetch_order_page(
    client: &reqwest::Client,
    url: &str,
    from: u64,
    limit: u64,
    wait_ms: u64,
) -> Result<Vec<OrderedTxJson>> {
    Ok(client
        .get(format!("{url}?from={from}&limit={limit}&wait_ms={wait_ms}"))
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

/// Every transaction sent, by number (the first 8 bytes of its content):
/// when (µs after the start) and to which node, packed in 8 bytes so a
/// long soak's bookkeeping stays small and never stalls the load.
struct SentLog {
    start: Instant,
    entries: Vec<u64>,
    refused: u64,
}

const REFUSED: u64 = u64::MAX;

impl SentLog {
    fn new(start: Instant, capacity: usize) -> SentLog {
        SentLog {
            start,
            entries: Vec::with_capacity(capacity),
            refused: 0,
        }
    }

    /// Numbers the next transaction, sent now to `node`.
    fn push(&mut self, node: usize, now: Instant) -> u64 {
        let at_us = now.saturating_duration_since(self.start).as_micros() as u64;
        self.entries.push(at_us << 8 | node as u64);
        self.entries.len() as u64 - 1
    }

    fn refuse(&mut self, n: u64) {
        if let Some(entry) = self.entries.get_mut(n as usize) {
            if *entry != REFUSED {
                *entry = REFUSED;
                self.refused += 1;
            }
        }
    }

    /// (node, seconds after the start) of transaction `n`, if accepted.
    fn get(&self, n: u64) -> Option<(usize, f64)> {
        let entry = *self.entries.get(n as usize)?;
        (entry != REFUSED).then(|| ((entry & 0xff) as usize, (entry >> 8) as f64 / 1e6))
    }

    fn accepted(&self) -> u64 {
        self.entries.len() as u64 - self.refused
    }
}

type Sent = Arc<std::sync::Mutex<SentLog>>;

/// The number a bench transaction carries.
fn tx_number(tx: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(tx.get(..8)?.try_into().ok()?))
}

/// What the bench saw of one node's order.
#[derive(Default)]
struct Follow {
    count: u64,
    /// blake3 over the ordered transactions' hashes.
    digest: blake3::Hasher,
    /// Transactions sent to this node: (seconds after the start it was
    /// sent, finality ms).
    finality: Vec<(f32, f32)>,
    /// The node joined by state sync: its order starts at this position.
    order_starts_at: Option<u64>,
}

type Seen = Arc<std::sync::Mutex<Follow>>;

/// A 64-byte (or `size`) transaction unique to `n`.
fn make_tx(n: u64, size: usize) -> Vec<u8> {
    let mut tx = vec![0u8; size.max(16)];
    tx[..8].copy_from_slice(&n.to_le_bytes());
    tx[8..16].copy_from_slice(&blake3::hash(&n.to_le_bytes()).as_bytes()[..8]);
    tx
}

/// Sends `txs` to `url` (one `POST /txs`) and forgets those the node
/// refused (they will never be ordered).
async fn send_batch(client: &reqwest::Client, url: &str, txs: Vec<Vec<u8>>, sent: &Sent) {
    let answer = client
        .post(url)
        .body(dagger_node::api::frame_batch(&txs))
        .send()
        .await;
    let accepted: Vec<bool> = match answer {
        Ok(r) if r.status().is_success() => match r.json::<Vec<serde_json::Value>>().await {
            Ok(results) => results
                .iter()
                .map(|r| r.get("event_id").is_some())
                .collect(),
            Err(_) => vec![false; txs.len()],
        },
        _ => vec![false; txs.len()],
    };
    let mut sent = sent.lock().unwrap();
    for (tx, ok) in txs
        .iter()
        .zip(accepted.iter().chain(std::iter::repeat(&false)))
    {
        if !ok {
            if let Some(n) = tx_number(tx) {
                sent.refuse(n);
            }
        }
    }
}

/// Submits until `stop`: closed loop (`concurrency` submitters, each
/// waiting for its batch) when `rate` is 0, else open loop: every
/// [`OPEN_LOOP_TICK`] the transactions due by then go to the next node in
/// one request, whether or not earlier requests were answered.
fn spawn_load(
    args: &BenchArgs,
    nodes: usize,
    cluster: &Cluster,
    client: &reqwest::Client,
    sent: &Sent,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let urls: Arc<Vec<String>> =
        Arc::new((0..nodes).map(|i| cluster.submit_url(i, "/txs")).collect());
    let (tx_size, batch) = (args.tx_size, args.batch);
    let per_request = batch_capacity(tx_size);
    let new_txs = move |count: usize, node: usize, sent: &Sent| {
        let now = Instant::now();
        let mut sent = sent.lock().unwrap();
        (0..count)
            .map(|_| make_tx(sent.push(node, now), tx_size))
            .collect::<Vec<_>>()
    };
    if args.rate == 0 {
        return (0..args.concurrency)
            .map(|s| {
                let (client, urls, sent, stop) =
                    (client.clone(), urls.clone(), sent.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut round = s;
                    while !stop.load(Ordering::Relaxed) {
                        let node = round % urls.len();
                        round += 1;
                        let txs = new_txs(batch, node, &sent);
                        send_batch(&client, &urls[node], txs, &sent).await;
                    }
                })
            })
            .collect();
    }
    let rate = args.rate;
    let (client, sent, stop) = (client.clone(), sent.clone(), stop.clone());
    vec![tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(OPEN_LOOP_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let (mut offered, mut node) = (0u64, 0usize);
        let mut requests = tokio::task::JoinSet::new();
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            let count = due.saturating_sub(offered) as usize;
            if count == 0 {
                continue;
            }
            offered += count as u64;
            // What is due goes to the next node, in requests it accepts
            // (many at high rates or after a stall of the generator).
            node = (node + 1) % urls.len();
            let mut left = count;
            while left > 0 {
                let n = left.min(per_request);
                left -= n;
                let txs = new_txs(n, node, &sent);
                let (client, urls, sent) = (client.clone(), urls.clone(), sent.clone());
                requests.spawn(async move { send_batch(&client, &urls[node], txs, &sent).await });
            }
            while requests.try_join_next().is_some() {}
        }
        while requests.join_next().await.is_some() {}
    })]
}

/// How often the open-loop generator sends what is due.
const OPEN_LOOP_TICK: Duration = Duration::from_millis(2);

/// Follows node `i`'s order with long polls, noting when each transaction
/// appeared, until `done` and nothing more comes.
/// Consecutive failed reads of a node's order a follower retries.
const FOLLOWER_RETRIES: u32 = 5;

fn spawn_follower(
    client: &reqwest::Client,
    (node, url): (usize, String),
    others: Vec<String>,
    seen: Seen,
    sent: Sent,
    done: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<()>> {
    let client = client.clone();
    tokio::spawn(async move {
        let mut failures = 0;
        loop {
            let from = seen.lock().unwrap().count;
            // A node under a connection flood (`--abuse http`) may reset a
            // connection; a reader reconnects, as any client would, but a
            // node that keeps refusing fails the run.
            let read = match fetch_order(&client, &url, from, 500).await {
                Err(err) if is_gone(&err) => {
                    behind_state_sync(&client, &url, &others, from, &seen).await
                }
                read => read,
            };
            let page = match read {
                Ok(page) => {
                    failures = 0;
                    page
                }
                Err(err) if failures < FOLLOWER_RETRIES => {
                    failures += 1;
                    tracing::debug!(node, error = %err, "reading the order failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let now = Instant::now();
            if page.is_empty() && done.load(Ordering::Relaxed) {
                return Ok(());
            }
            let mut seen = seen.lock().unwrap();
            let sent = sent.lock().unwrap();
            let now_s = now.saturating_duration_since(sent.start).as_secs_f64();
            for item in page {
                let tx = hex_decode(&item.tx);
                seen.count += 1;
                seen.digest.update(blake3::hash(&tx).as_bytes());
                if let Some((to, at_s)) = tx_number(&tx).and_then(|n| sent.get(n)) {
                    if to == node {
                        seen.finality
                            .push((at_s as f32, ((now_s - at_s) * 1000.0) as f32));
                    }
                }
            }
        }
    })
}

/// Whether a read of `/order` was answered 410: the node does not hold
/// that position (it joined by state sync after it).
fn is_gone(err: &anyhow::Error) -> bool {
    err.downcast_ref::<reqwest::Error>()
        .and_then(reqwest::Error::status)
        == Some(reqwest::StatusCode::GONE)
}

/// The positions a node that joined by state sync does not hold, from
/// `from` up to where its order starts, read from another node: its own
/// order from there on is still compared with everyone's (digest), and
/// its transactions count as final on it from the moment they are read.
async fn behind_state_sync(
    client: &reqwest::Client,
    url: &str,
    others: &[String],
    from: u64,
    seen: &Seen,
) -> Result<Vec<OrderedTxJson>> {
    let status_url = url.replace("/order", "/status");
    let status: serde_json::Value = client
        .get(&status_url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let starts_at = status["order_starts_at"]
        .as_u64()
        .context("/status has no order_starts_at")?;
    if starts_at <= from {
        bail!("{url} answered 410 for position {from}, but its order starts at {starts_at}");
    }
    seen.lock()
        .unwrap()
        .order_starts_at
        .get_or_insert(starts_at);
    let mut last = None;
    for other in others {
        match fetch_order_page(client, other, from, (starts_at - from).min(10_000), 0).await {
            Ok(page) if !page.is_empty() => return Ok(page),
            Ok(_) => {}
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no other node holds position {from} yet")))
}

/// CPU seconds used by every node process so far.
fn cpu_seconds(cluster: &Cluster) -> Vec<f64> {
    (0..cluster.nodes.len())
        .map(|i| cluster.pid(i).and_then(process_usage).map_or(0.0, |u| u.0))
        .collect()
}

/// A closed-loop request must fit what a node takes in one `POST /txs`.
fn check_request_size(args: &BenchArgs) -> Result<()> {
    let fits = batch_capacity(args.tx_size);
    if args.rate == 0 && args.batch > fits {
        bail!(
            "--batch {} of {}-byte transactions does not fit one request: a node takes at most {} \
             bytes ({fits} such transactions); lower --batch or --tx-size",
            args.batch,
            args.tx_size,
            MAX_SUBMIT_BODY
        );
    }
    Ok(())
}

impl BenchArgs {
    /// `--soak` spelled out: its length as the duration, with a timeline.
    fn resolved(mut self) -> BenchArgs {
        if let Some(secs) = self.soak.take() {
            self.duration = secs;
            if self.timeline == 0 {
                self.timeline = (secs / 10).clamp(1, 60);
            }
        }
        self
    }
}

pub async fn run(args: BenchArgs) -> Result<BenchReport> {
    let args = args.resolved();
    check_request_size(&args)?;
    let exe = std::env::current_exe()?;
    let (dir, _temp) = work_dir(args.dir.as_deref())?;
    let mut cluster = Cluster::prepare(&exe, &dir, args.nodes, "dagger-bench")?;
    if let Some(us) = args.event_spacing_us {
        cluster.set(&format!("event_spacing_us = {us}"))?;
    }
    if let Some(control) = args.congestion_control {
        let name = format!("{control:?}").to_lowercase();
        cluster.set(&format!("congestion_control = \"{name}\""))?;
    }
    // With --abuse the last key is the byzantine member's: no honest node
    // runs with it.
    if !args.abuse.is_empty() && args.nodes < 4 {
        bail!("--abuse needs at least 4 nodes: the byzantine member must hold less than a third of the stake");
    }
    let honest = if args.abuse.is_empty() {
        args.nodes
    } else {
        args.nodes - 1
    };
    let mut emulator = crate::wan::Emulator::start(&args.net, &cluster)?;
    for i in 0..honest {
        cluster.start(i)?;
    }
    let client = cluster.submit_client(None)?;
    wait_healthy(&client, &cluster, Duration::from_secs(30)).await?;

    // Let the nodes connect to each other (they gossip slowly while idle)
    // so the first transactions do not measure start-up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Idle: a settled cluster with nothing to order.
    let idle_cpu_percent = if args.idle > 0 {
        let before = cpu_seconds(&cluster);
        tokio::time::sleep(Duration::from_secs(args.idle)).await;
        let after = cpu_seconds(&cluster);
        let used: f64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
        Some(100.0 * used / (honest as f64 * args.idle as f64))
    } else {
        None
    };
    let cpu_before = cpu_seconds(&cluster);

    let capacity = (args.rate * args.duration) as usize + (1 << 16);
    let sent: Sent = Arc::new(std::sync::Mutex::new(SentLog::new(
        Instant::now(),
        capacity.min(1 << 28),
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let abuse = if args.abuse.is_empty() {
        None
    } else {
        Some(crate::abuse::start(&args.abuse, &cluster, honest, "dagger-bench").await?)
    };
    let seen: Vec<Seen> = (0..honest).map(|_| Default::default()).collect();
    let mut followers: Vec<_> = (0..honest)
        .map(|i| {
            spawn_follower(
                &client,
                (i, cluster.url(i, "/order")),
                (0..honest)
                    .filter(|&j| j != i)
                    .map(|j| cluster.url(j, "/order"))
                    .collect(),
                seen[i].clone(),
                sent.clone(),
                done.clone(),
            )
        })
        .collect();
    let start = sent.lock().unwrap().start;
    if let Some(emulator) = &mut emulator {
        emulator.set_epoch();
    }
    // Partition windows count from the epoch just set, and so do the
    // tracker's samples.
    let epoch = Instant::now();
    let tracker_stop = Arc::new(AtomicBool::new(false));
    let tracker = emulator
        .as_ref()
        .filter(|e| !e.relay.spec().partitions.is_empty())
        .map(|_| {
            let urls = (0..honest).map(|i| cluster.url(i, "/status")).collect();
            crate::wan::track_rounds(&client, urls, epoch, tracker_stop.clone())
        });
    let load = spawn_load(&args, honest, &cluster, &client, &sent, &stop);
    let mut rss_over_time: Vec<(f64, Vec<f64>)> = Vec::new();
    let end = start + Duration::from_secs(args.duration);
    while Instant::now() < end {
        let period = match args.timeline {
            0 => end.saturating_duration_since(Instant::now()),
            s => Duration::from_secs(s).min(end.saturating_duration_since(Instant::now())),
        };
        tokio::time::sleep(period).await;
        if args.timeline > 0 {
            let rss = (0..honest)
                .map(|i| cluster.pid(i).and_then(process_usage).map_or(0.0, |u| u.1))
                .collect();
            rss_over_time.push((start.elapsed().as_secs_f64(), rss));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    let submit_s = start.elapsed().as_secs_f64();
    let (expected, sent_count) = {
        let log = sent.lock().unwrap();
        (log.accepted(), log.entries.len())
    };
    if expected == 0 {
        bail!(
            "the nodes accepted none of the {sent_count} transactions sent (see the node logs{})",
            args.dir
                .as_ref()
                .map_or(String::new(), |d| format!(" in {}", d.display()))
        );
    }
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts: Vec<u64> = seen.iter().map(|s| s.lock().unwrap().count).collect();
        if counts.iter().all(|&c| c >= expected) {
            break;
        }
        if let Some(i) = followers.iter().position(|f| f.is_finished()) {
            let why = match (&mut followers[i]).await {
                Ok(Err(err)) => format!("{err:#}"),
                Ok(Ok(())) => "it stopped".to_string(),
                Err(err) => err.to_string(),
            };
            bail!(
                "cluster did not order all {expected} transactions: reading node {i}'s order \
                 failed ({why}); ordered so far: {counts:?}"
            );
        }
        if Instant::now() > drain_deadline {
            bail!("cluster did not order all {expected} transactions within 60 s: {counts:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    tracker_stop.store(true, Ordering::Relaxed);
    let rounds = match tracker {
        Some(tracker) => Some(tracker.await?),
        None => None,
    };
    let abuse = match abuse {
        Some(abuse) => Some(abuse.stop().await),
        None => None,
    };
    done.store(true, Ordering::Relaxed);
    let cpu_after = cpu_seconds(&cluster);
    for follower in followers {
        follower.await??;
    }
    let seen: Vec<Follow> = seen
        .iter()
        .map(|s| std::mem::take(&mut *s.lock().unwrap()))
        .collect();
    let submitted = sent.lock().unwrap().accepted();
    // Each node's own transactions ordered through envelopes (its events
    // went stale: a node behind a slow link shows here).
    let forwarded: Vec<Option<u64>> =
        futures_util::future::join_all((0..cluster.nodes.len()).map(|i| {
            let request = client
                .get(cluster.url(i, "/status"))
                .timeout(Duration::from_secs(5))
                .send();
            async move {
                let status: serde_json::Value = request.await.ok()?.json().await.ok()?;
                status["forwarded_txs"].as_u64()
            }
        }))
        .await;
    let mut latencies: Vec<f64> = Vec::new();
    let mut by_period: Vec<Vec<f64>> = vec![Vec::new(); rss_over_time.len()];
    let mut samples = String::from("sent_s,node,finality_ms\n");
    for (i, follow) in seen.iter().enumerate() {
        for &(at_s, ms) in &follow.finality {
            let (at_s, ms) = (f64::from(at_s), f64::from(ms));
            latencies.push(ms);
            if args.samples.is_some() {
                samples.push_str(&format!("{at_s:.4},{i},{ms:.2}\n"));
            }
            if let Some(row) = rss_over_time.iter().position(|(end, _)| at_s < *end) {
                by_period[row].push(ms);
            }
        }
    }
    if let Some(path) = &args.samples {
        std::fs::write(path, samples).with_context(|| format!("writing {}", path.display()))?;
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let timeline = rss_over_time
        .into_iter()
        .zip(by_period)
        .map(|((at_s, rss_mb), mut ms)| {
            ms.sort_by(|a, b| a.total_cmp(b));
            TimelineRow {
                at_s,
                rss_mb,
                finality_p50_ms: percentile(&ms, 50.0),
                finality_p99_ms: percentile(&ms, 99.0),
            }
        })
        .collect();
    let mut per_node = Vec::new();
    for (i, follow) in seen.iter().enumerate() {
        let (cpu_s, rss_mb) = cluster.pid(i).and_then(process_usage).unwrap_or((0.0, 0.0));
        let mut here: Vec<f64> = follow
            .finality
            .iter()
            .map(|(_, ms)| f64::from(*ms))
            .collect();
        here.sort_by(|a, b| a.total_cmp(b));
        per_node.push(NodeReport {
            node: cluster.nodes[i].id.clone(),
            ordered_tx: follow.count,
            submitted_here: follow.finality.len() as u64,
            finality_p50_ms: percentile(&here, 50.0),
            finality_p99_ms: percentile(&here, 99.0),
            forwarded_tx: forwarded[i],
            cpu_s,
            cpu_percent: 100.0 * (cpu_after[i] - cpu_before[i]) / elapsed,
            rss_mb,
            digest: follow.digest.finalize().to_hex().to_string(),
            order_starts_at: follow.order_starts_at,
        });
    }
    // Every node ordered exactly what was accepted (the drain loop waited
    // for it), so equal digests mean the same order.
    let digests: Vec<String> = per_node.iter().map(|n| n.digest.clone()).collect();
    let digests_match = digests.windows(2).all(|w| w[0] == w[1])
        && per_node.iter().all(|n| n.ordered_tx == expected);
    let ordered_tx = per_node.iter().map(|n| n.ordered_tx).min().unwrap_or(0);
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
    Ok(BenchReport {
        nodes: args.nodes,
        offered_tps: (args.rate > 0).then_some(args.rate),
        duration_s: elapsed,
        submitted_tx: submitted,
        submitted_tps: submitted as f64 / submit_s,
        ordered_tx,
        ordered_tps: ordered_tx as f64 / elapsed,
        finality_p50_ms: p50,
        finality_p99_ms: p99,
        finality_max_ms: latencies.last().copied().unwrap_or(0.0),
        idle_cpu_percent,
        timeline,
        digests,
        digests_match,
        per_node,
        abuse,
        network: emulator.map(|e| {
            let mut report = e.report(elapsed, p50, p99);
            if let Some(rounds) = &rounds {
                report.cut = crate::wan::judge_partitions(&e.relay.spec(), rounds);
            }
            report
        }),
    })
}

/// One run per rate of `--sweep`, each on a fresh cluster (the idle CPU is
/// measured before the first only).
pub async fn sweep(args: BenchArgs) -> Result<Vec<BenchReport>> {
    if args.sweep.contains(&0) {
        bail!("--sweep takes offered rates above 0 (as fast as possible is --rate 0)");
    }
    let runs = args.sweep.iter().map(|&rate| BenchArgs {
        rate,
        ..args.clone()
    });
    let reports = run_each(&args, runs).await?;
    if let Some(path) = &args.plot {
        let nodes = reports.first().map_or(0, |r| r.nodes);
        let points = reports
            .iter()
            .map(|r| {
                (
                    r.offered_tps.unwrap_or(0) as f64,
                    r.finality_p50_ms,
                    r.finality_p99_ms,
                )
            })
            .collect();
        plot(
            path,
            &format!("DAGGER finality against offered load ({nodes} nodes, open loop)"),
            "offered transactions per second",
            points,
            None,
        )?;
    }
    Ok(reports)
}

/// One run per round trip of `--rtt-sweep`, each on a fresh cluster behind
/// the WAN emulator.
pub async fn sweep_rtt(args: BenchArgs) -> Result<Vec<BenchReport>> {
    let runs = args.rtt_sweep.iter().map(|&rtt| {
        let mut run = args.clone();
        run.net.rtt = Some(rtt);
        run
    });
    let reports = run_each(&args, runs).await?;
    if let Some(path) = &args.plot {
        let nodes = reports.first().map_or(0, |r| r.nodes);
        let points = args
            .rtt_sweep
            .iter()
            .zip(&reports)
            .map(|(rtt, r)| {
                (
                    rtt.as_secs_f64() * 1e3,
                    r.finality_p50_ms,
                    r.finality_p99_ms,
                )
            })
            .collect();
        let rate = match args.rate {
            0 => "closed loop".to_string(),
            rate => format!("{rate} tx/s offered"),
        };
        plot(
            path,
            &format!("DAGGER finality against round-trip time ({nodes} nodes, {rate})"),
            "round trip between every pair of nodes, ms",
            points,
            Some(("goal p50: 2 × RTT + 25 ms", 2.0, 25.0)),
        )?;
    }
    Ok(reports)
}

/// Runs each of `runs` on a fresh cluster (the idle CPU is measured before
/// the first only).
async fn run_each(
    args: &BenchArgs,
    runs: impl Iterator<Item = BenchArgs>,
) -> Result<Vec<BenchReport>> {
    let mut reports = Vec::new();
    for (i, run_args) in runs.enumerate() {
        let run_args = BenchArgs {
            sweep: Vec::new(),
            rtt_sweep: Vec::new(),
            plot: None,
            idle: if i == 0 { args.idle } else { 0 },
            // A fresh cluster needs fresh files: the previous run's ledgers
            // would make the new identities refuse to sign.
            dir: args.dir.as_ref().map(|dir| dir.join(format!("run-{i}"))),
            ..run_args
        };
        reports.push(run(run_args).await?);
    }
    Ok(reports)
}

/// Finality p50 and p99 (y) against `x`, as an SVG file; `goal` is a line
/// `slope × x + intercept` drawn for comparison.
fn plot(
    path: &Path,
    caption: &str,
    x_desc: &str,
    points: Vec<(f64, f64, f64)>,
    goal: Option<(&str, f64, f64)>,
) -> Result<()> {
    use plotters::prelude::*;
    let p50: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
    let p99: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.2)).collect();
    let max_x = p50.iter().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let goal_top = goal.map_or(0.0, |(_, slope, intercept)| slope * max_x + intercept);
    let max_y = p99.iter().map(|p| p.1).fold(goal_top.max(1.0), f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 22))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max_x, 0.0..max_y)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("finality (submit to ordered), ms")
            .draw()?;
        for (label, points, color) in [("p50", &p50, BLUE), ("p99", &p99, RED)] {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
        }
        if let Some((label, slope, intercept)) = goal {
            let grey = RGBColor(120, 120, 120);
            chart
                .draw_series(LineSeries::new(
                    [(0.0, intercept), (max_x, slope * max_x + intercept)],
                    grey.stroke_width(1),
                ))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))
}

/// One row per rate of a sweep.
pub fn print_sweep(reports: &[BenchReport]) {
    println!("| RTT | offered tx/s | ordered tx/s | finality p50 | finality p99 | p50 in one-way delays | CPU per node | RSS per node | digests |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in reports {
        let cpu =
            r.per_node.iter().map(|n| n.cpu_percent).sum::<f64>() / r.per_node.len().max(1) as f64;
        let rss = r.per_node.iter().map(|n| n.rss_mb).fold(0.0, f64::max);
        let (rtt, delays) =
            r.network
                .as_ref()
                .map_or(("loopback".to_string(), "-".to_string()), |n| {
                    (
                        format!("{:.0} ms", n.rtt_ms),
                        n.finality_p50_delays
                            .map_or("-".to_string(), |d| format!("{d:.1}")),
                    )
                });
        println!(
            "| {rtt} | {} | {:.0} | {:.1} ms | {:.1} ms | {delays} | {:.0} % | {:.0} MiB | {} |",
            r.offered_tps.unwrap_or(0),
            r.ordered_tps,
            r.finality_p50_ms,
            r.finality_p99_ms,
            cpu,
            rss,
            if r.digests_match {
                "identical"
            } else {
                "DIFFER"
            }
        );
    }
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
    if let Some(idle) = report.idle_cpu_percent {
        println!("idle CPU per node: {idle:.1} %");
    }
    if let Some(net) = &report.network {
        println!("{}", crate::wan::describe(net));
    }
    for row in &report.timeline {
        let rss: Vec<String> = row.rss_mb.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "  at {:>6.0} s: finality p50 {:.1} ms, p99 {:.1} ms; RSS MiB {}",
            row.at_s,
            row.finality_p50_ms,
            row.finality_p99_ms,
            rss.join(" ")
        );
    }
    for node in &report.per_node {
        println!(
            "  {}  ordered {:>8}  submitted here: finality p50 {:>7.1} ms, p99 {:>7.1} ms, {} forwarded  cpu {:>5.0} % under load  rss {:>6.1} MiB  digest {}",
            &node.node[..8.min(node.node.len())],
            node.ordered_tx,
            node.finality_p50_ms,
            node.finality_p99_ms,
            node.forwarded_tx.map_or("?".to_string(), |n| n.to_string()),
            node.cpu_percent,
            node.rss_mb,
            &node.digest[..16]
        );
        if let Some(at) = node.order_starts_at {
            println!("      joined by state sync: its order starts at position {at}");
        }
    }
    if let Some(abuse) = &report.abuse {
        let attacks: Vec<String> = abuse
            .attacks
            .iter()
            .map(|a| format!("{a:?}").to_lowercase())
            .collect();
        println!(
            "abuse by member {} ({}): {} half-open handshakes, {} peer connections ({} refused), {} flooded events, {} HTTP reads, {} idle HTTP connections opened, {} catch-ups ({} events); harness CPU {:.0} %",
            &abuse.attacker[..8.min(abuse.attacker.len())],
            if attacks.is_empty() { "silent".to_string() } else { attacks.join(", ") },
            abuse.handshakes_started,
            abuse.peer_connections,
            abuse.peer_connections_refused,
            abuse.frames_sent,
            abuse.http_requests,
            abuse.http_idle_opened,
            abuse.catchups,
            abuse.catchup_events,
            abuse.harness_cpu_percent,
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

#[cfg(test)]
mod tests {
    use super::*;
    use dagger_node::config::{NodeConfig, Overrides};

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        <Cli as clap::Parser>::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map(|c| c.bench)
    }

    /// Numbers a user controls are bounded before anything starts: zero
    /// nodes, an overflowing rate, transactions the nodes refuse or cannot
    /// number, empty batches and no submitters are usage errors.
    #[test]
    fn out_of_range_arguments_are_usage_errors() {
        for bad in [
            &["--nodes", "0"][..],
            &["--nodes", "65"],
            &["--rate", "18446744073709551615"],
            &["--duration", "0"],
            &["--duration", "604801"],
            &["--tx-size", "15"],
            &["--tx-size", "65413"],
            &["--batch", "0"],
            &["--batch", "10001"],
            &["--concurrency", "0"],
            &["--sweep", "1000,0"],
            &["--idle", "3601"],
            &["--soak", "0"],
            &["--soak", "2w"],
            &["--soak", "169h"],
            &["--soak", "8d"],
            &["--soak", "10m", "--duration", "5"],
            &["--soak", "10m", "--sweep", "1000"],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?} was accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
        assert_eq!(
            MAX_TX_BYTES as usize,
            dagger_node::core::forward::max_forwardable_tx(&dagger_consensus::Limits::default())
        );
        let ok = parse(&["--tx-size", "16", "--batch", "10000", "--rate", "10000000"]).unwrap();
        assert_eq!((ok.tx_size, ok.batch, ok.rate), (16, 10_000, 10_000_000));
    }

    #[test]
    fn a_closed_loop_batch_must_fit_one_request() {
        let big = parse(&["--tx-size", "65412", "--batch", "10000"]).unwrap();
        let err = check_request_size(&big).unwrap_err().to_string();
        assert!(err.contains("does not fit one request"), "{err}");
        // Open loop splits what is due into requests that fit.
        let open = parse(&["--tx-size", "65412", "--rate", "1000"]).unwrap();
        assert!(check_request_size(&open).is_ok());
        assert!(check_request_size(&parse(&[]).unwrap()).is_ok());
        assert_eq!(batch_capacity(64), MAX_SUBMIT_BATCH);
        assert_eq!(batch_capacity(65412), MAX_SUBMIT_BODY / 65416);
    }

    #[test]
    fn a_soak_sets_the_duration_and_a_timeline() {
        let soak = parse(&["--soak", "10m"]).unwrap().resolved();
        assert_eq!((soak.duration, soak.timeline), (600, 60));
        let short = parse(&["--soak", "90s", "--rate", "1000"])
            .unwrap()
            .resolved();
        assert_eq!((short.duration, short.timeline, short.rate), (90, 9, 1000));
        let own = parse(&["--soak", "1h", "--timeline", "300"])
            .unwrap()
            .resolved();
        assert_eq!((own.duration, own.timeline), (3600, 300));
        let plain = parse(&["--duration", "20"]).unwrap().resolved();
        assert_eq!((plain.duration, plain.timeline), (20, 0));
    }

    /// `bench --dir run` once wrote `run/node0.json` into `run/node0.toml`,
    /// which the node resolved against the config's directory as
    /// `run/run/node0.json` and failed to start.
    #[test]
    fn a_relative_work_dir_gives_configs_that_resolve_to_the_written_files() {
        let parent = tempfile::tempdir_in(".").unwrap();
        let cwd = std::env::current_dir().unwrap();
        let relative = std::fs::canonicalize(parent.path())
            .unwrap()
            .strip_prefix(std::fs::canonicalize(&cwd).unwrap())
            .unwrap()
            .join("run");
        assert!(relative.is_relative());
        let cluster = Cluster::prepare(Path::new("dagger-devnet"), &relative, 2, "t").unwrap();
        for (i, node) in cluster.nodes.iter().enumerate() {
            let config = NodeConfig::load(Some(&node.config), &Overrides::default()).unwrap();
            assert!(config.identity.is_file(), "{}", config.identity.display());
            assert_eq!(
                config.data_dir,
                std::fs::canonicalize(&relative)
                    .unwrap()
                    .join(format!("data{i}"))
            );
        }
    }
}
