//! The bench's network flags: with any of them the nodes talk through the
//! WAN emulator (`dagger-wan`) instead of straight over loopback.

use std::time::Duration;

use anyhow::Result;
use dagger_wan::{
    spec::{parse_bandwidth, parse_duration, parse_percent},
    LinkSpec, NetSpec, NodeRtt, Partition, Region, Relay, RelayReport,
};
use serde::Serialize;

use crate::bench::Cluster;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetArgs {
    /// Round trip between every pair of nodes (e.g. `100ms`), emulated in
    /// user space; half of it each way. Without any network flag the nodes
    /// talk straight over loopback.
    #[arg(long, value_parser = parse_duration, help_heading = "Network")]
    pub rtt: Option<Duration>,
    /// Each datagram's one-way delay varies by up to this much either way,
    /// in order (a path is a queue: see `--reorder`).
    #[arg(long, value_parser = parse_duration, help_heading = "Network")]
    pub jitter: Option<Duration>,
    /// Share of datagrams lost, each way (e.g. `1%`).
    #[arg(long, value_parser = parse_percent, help_heading = "Network")]
    pub loss: Option<f64>,
    /// Share of datagrams held back by up to 10 ms, so that later ones
    /// overtake them (e.g. `1%`).
    #[arg(long, value_parser = parse_percent, help_heading = "Network")]
    pub reorder: Option<f64>,
    /// Each direction of each pair carries at most this (e.g. `100mbit`);
    /// a queue of up to 200 ms builds, beyond it datagrams drop.
    #[arg(long, value_parser = parse_bandwidth, help_heading = "Network")]
    pub bandwidth: Option<u64>,
    /// Cut nodes off, from a time to a time after the load starts:
    /// `node3@10s-70s` isolates node 3, `0,1|2,3@10s-40s` splits 2–2
    /// (nodes no group names form one more group). Repeatable.
    #[arg(long, help_heading = "Network")]
    pub partition: Vec<Partition>,
    /// Place node i in region i mod k of this list and use published
    /// round trips between the regions (e.g.
    /// `us-east,eu-west,ap-southeast,sa-east`; see docs/PERFORMANCE.md).
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with = "rtt",
        help_heading = "Network"
    )]
    pub regions: Vec<Region>,
    /// One node behind a slow link: `node3=1000ms` gives every link it
    /// has this round trip. Repeatable.
    #[arg(long, help_heading = "Network")]
    pub node_rtt: Vec<NodeRtt>,
    /// Seed of the emulator's loss and jitter (the same seed, the same
    /// network).
    #[arg(long, default_value_t = 1, help_heading = "Network")]
    pub net_seed: u64,
}

impl NetArgs {
    /// Whether the nodes talk through the emulator.
    pub fn emulated(&self) -> bool {
        self.rtt.is_some()
            || self.jitter.is_some()
            || self.loss.is_some()
            || self.reorder.is_some()
            || self.bandwidth.is_some()
            || !self.partition.is_empty()
            || !self.regions.is_empty()
            || !self.node_rtt.is_empty()
    }

    /// The network of `n` nodes these flags describe, if any.
    pub fn spec(&self, n: usize) -> Result<Option<NetSpec>> {
        if !self.emulated() {
            return Ok(None);
        }
        let link = LinkSpec {
            delay: Duration::ZERO,
            jitter: self.jitter.unwrap_or_default(),
            loss: self.loss.unwrap_or_default(),
            reorder: self.reorder.unwrap_or_default(),
            bandwidth_bps: self.bandwidth,
        };
        let mut spec = if self.regions.is_empty() {
            NetSpec::uniform(n, self.rtt.unwrap_or_default(), link)
        } else {
            NetSpec::regions(n, &self.regions, link)
        };
        for slow in &self.node_rtt {
            spec.set_node_rtt(slow.node, slow.rtt)?;
        }
        spec.seed = self.net_seed;
        Ok(Some(spec.with_partitions(self.partition.clone())?))
    }
}

/// The network a bench ran on, beside its figures.
#[derive(Debug, Serialize)]
pub struct NetworkReport {
    /// Median and largest round trip between two nodes.
    pub rtt_ms: f64,
    pub max_rtt_ms: f64,
    pub jitter_ms: f64,
    pub loss: f64,
    pub reorder: f64,
    pub bandwidth_bps: Option<u64>,
    pub regions: Vec<&'static str>,
    pub partitions: Vec<String>,
    pub node_rtt: Vec<String>,
    pub seed: u64,
    /// Finality p50 and p99 in one-way delays (median RTT / 2).
    pub finality_p50_delays: Option<f64>,
    pub finality_p99_delays: Option<f64>,
    pub relay: RelayReport,
    /// The relay thread's CPU over the run (100 = one core).
    pub relay_cpu_percent: f64,
    /// With partitions: what each did to consensus.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<PartitionReport>,
}

/// The emulator between a cluster's nodes.
pub struct Emulator {
    pub relay: Relay,
    args: NetArgs,
    cpu_at_epoch: f64,
}

impl Emulator {
    /// Starts the relay between `cluster`'s nodes and points every node's
    /// peers at it. Call before the nodes start.
    pub fn start(args: &NetArgs, cluster: &Cluster) -> Result<Option<Emulator>> {
        let Some(spec) = args.spec(cluster.nodes.len())? else {
            return Ok(None);
        };
        let gossip: Vec<_> = cluster.nodes.iter().map(|n| n.gossip).collect();
        let relay = Relay::start(spec, &gossip)?;
        cluster.route_peers(|a, b| relay.addr(a, b))?;
        Ok(Some(Emulator {
            relay,
            args: args.clone(),
            cpu_at_epoch: 0.0,
        }))
    }

    /// The load starts now: partitions count from here.
    pub fn set_epoch(&mut self) {
        self.relay.set_epoch();
        self.cpu_at_epoch = self.relay.report().cpu_s;
    }

    pub fn report(&self, elapsed_s: f64, p50_ms: f64, p99_ms: f64) -> NetworkReport {
        let spec = self.relay.spec();
        let rtt = spec.median_rtt();
        let one_way_ms = rtt.as_secs_f64() * 1e3 / 2.0;
        let relay = self.relay.report();
        let delays = |ms: f64| (one_way_ms > 0.0).then(|| ms / one_way_ms);
        NetworkReport {
            rtt_ms: rtt.as_secs_f64() * 1e3,
            max_rtt_ms: spec.max_rtt().as_secs_f64() * 1e3,
            jitter_ms: self.args.jitter.unwrap_or_default().as_secs_f64() * 1e3,
            loss: self.args.loss.unwrap_or_default(),
            reorder: self.args.reorder.unwrap_or_default(),
            bandwidth_bps: self.args.bandwidth,
            regions: self.args.regions.iter().map(|r| r.name()).collect(),
            partitions: spec.partitions.iter().map(|p| p.to_string()).collect(),
            node_rtt: self
                .args
                .node_rtt
                .iter()
                .map(|n| format!("node{}={}ms", n.node, n.rtt.as_millis()))
                .collect(),
            seed: spec.seed,
            finality_p50_delays: delays(p50_ms),
            finality_p99_delays: delays(p99_ms),
            relay_cpu_percent: 100.0 * (relay.cpu_s - self.cpu_at_epoch) / elapsed_s.max(1e-9),
            relay,
            cut: Vec::new(),
        }
    }
}

/// One line about the network, for the text report.
pub fn describe(net: &NetworkReport) -> String {
    let mut parts = vec![format!("rtt {:.0} ms", net.rtt_ms)];
    if net.max_rtt_ms > net.rtt_ms {
        parts.push(format!("(max {:.0} ms)", net.max_rtt_ms));
    }
    if !net.regions.is_empty() {
        parts.push(format!("regions {}", net.regions.join(",")));
    }
    if net.jitter_ms > 0.0 {
        parts.push(format!("jitter ±{:.0} ms", net.jitter_ms));
    }
    if net.loss > 0.0 {
        parts.push(format!("loss {:.2} %", net.loss * 100.0));
    }
    if net.reorder > 0.0 {
        parts.push(format!("reorder {:.2} %", net.reorder * 100.0));
    }
    if let Some(bps) = net.bandwidth_bps {
        parts.push(format!("{:.0} Mbit/s", bps as f64 / 1e6));
    }
    for p in net.partitions.iter().chain(&net.node_rtt) {
        parts.push(p.clone());
    }
    let r = &net.relay;
    let cuts: String = net
        .cut
        .iter()
        .map(|c| {
            format!(
                "\npartition {}: {} rounds decided during it (after {:.1} s), every node decided past the heal {}",
                c.partition,
                c.rounds_decided_during,
                c.grace_s,
                c.heal_to_decide_s
                    .map_or("NEVER".to_string(), |s| format!("{s:.2} s after it")),
            )
        })
        .collect();
    format!(
        "network: {}; relayed {} datagrams ({} lost, {} cut, {} over the queue, {} reordered), late by {:.0} µs mean / {} µs max; relay CPU {:.1} %{}{cuts}",
        parts.join(", "),
        r.totals.datagrams,
        r.totals.lost,
        r.totals.cut,
        r.totals.queue_dropped,
        r.totals.reordered,
        r.late_mean_us,
        r.late_max_us,
        net.relay_cpu_percent,
        match (net.finality_p50_delays, net.finality_p99_delays) {
            (Some(p50), Some(p99)) =>
                format!("\nfinality in one-way delays (RTT/2): p50 {p50:.1}, p99 {p99:.1}"),
            _ => String::new(),
        }
    )
}

/// Every node's last decided round over time, sampled while a bench with
/// partitions runs: (seconds since the load started, round) per node.
pub type RoundSamples = Vec<Vec<(f64, u64)>>;

/// How often the tracker asks every node for its last decided round.
const ROUND_SAMPLE: Duration = Duration::from_millis(100);

/// Samples `urls`' `/status` until `stop`.
pub fn track_rounds(
    client: &reqwest::Client,
    urls: Vec<String>,
    start: std::time::Instant,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<RoundSamples> {
    let client = client.clone();
    tokio::spawn(async move {
        let mut samples: RoundSamples = vec![Vec::new(); urls.len()];
        let mut tick = tokio::time::interval(ROUND_SAMPLE);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            tick.tick().await;
            let asks = urls.iter().map(|url| {
                let request = client.get(url).timeout(Duration::from_secs(1)).send();
                async move {
                    let status: serde_json::Value = request.await.ok()?.json().await.ok()?;
                    status["last_decided_round"].as_u64()
                }
            });
            let rounds = futures_util::future::join_all(asks).await;
            let at = start.elapsed().as_secs_f64();
            for (node, round) in rounds.into_iter().enumerate() {
                if let Some(round) = round {
                    samples[node].push((at, round));
                }
            }
        }
        samples
    })
}

/// What one partition did to consensus.
#[derive(Debug, Serialize)]
pub struct PartitionReport {
    pub partition: String,
    /// Most rounds any node decided while the cut lasted, counted from
    /// `grace_s` after it began (rounds whose events were already in flight
    /// may still be decided at its start). A split that leaves no side
    /// more than two thirds of the stake must decide none.
    pub rounds_decided_during: u64,
    pub grace_s: f64,
    /// From the heal until every node had decided beyond the most any node
    /// had decided at the heal; `None`: some node never did.
    pub heal_to_decide_s: Option<f64>,
}

/// The round a node had decided by `at` (its last sample then).
fn round_at(samples: &[(f64, u64)], at: f64) -> Option<u64> {
    samples
        .iter()
        .take_while(|(t, _)| *t <= at)
        .last()
        .map(|s| s.1)
}

/// Judges each partition of `spec` against the sampled rounds.
pub fn judge_partitions(spec: &NetSpec, samples: &RoundSamples) -> Vec<PartitionReport> {
    let grace = 1.0 + spec.max_rtt().as_secs_f64();
    spec.partitions
        .iter()
        .map(|p| {
            let (from, until) = (p.from.as_secs_f64(), p.until.as_secs_f64());
            let rounds_decided_during = samples
                .iter()
                .map(|node| {
                    // A node not sampled yet at the end of the grace period
                    // (its status timed out) counts from its first sample.
                    let begin = round_at(node, from + grace).or_else(|| {
                        node.iter()
                            .find(|(t, _)| *t >= from + grace && *t <= until)
                            .map(|s| s.1)
                    });
                    match (begin, round_at(node, until)) {
                        (Some(begin), Some(end)) => end.saturating_sub(begin),
                        _ => 0,
                    }
                })
                .max()
                .unwrap_or(0);
            let best = samples
                .iter()
                .filter_map(|node| round_at(node, until))
                .max()
                .unwrap_or(0);
            let recovered: Option<Vec<f64>> = samples
                .iter()
                .map(|node| {
                    node.iter()
                        .find(|(t, round)| *t >= until && *round > best)
                        .map(|(t, _)| t - until)
                })
                .collect();
            PartitionReport {
                partition: p.to_string(),
                rounds_decided_during,
                grace_s: grace,
                heal_to_decide_s: recovered.map(|r| r.into_iter().fold(0.0, f64::max)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_judged_by_rounds_during_it_and_the_slowest_recovery() {
        let spec = NetSpec::uniform(2, Duration::ZERO, LinkSpec::default())
            .with_partitions(vec!["0|1@2s-5s".parse().unwrap()])
            .unwrap();
        // Node 0 decides round 4 during the cut (after the grace); node 1
        // is stuck at 3 until 6.5 s.
        let samples = vec![
            vec![(1.0, 2), (3.5, 3), (4.0, 4), (5.2, 5)],
            vec![(1.0, 2), (3.5, 3), (6.5, 5)],
        ];
        let report = &judge_partitions(&spec, &samples)[0];
        assert_eq!(report.rounds_decided_during, 2);
        assert_eq!(report.heal_to_decide_s, Some(1.5));
        // A node whose first sample came late counts from it, not from 0.
        let late = vec![vec![(3.5, 7), (4.5, 7), (5.1, 8)], vec![(1.0, 7), (5.3, 8)]];
        assert_eq!(judge_partitions(&spec, &late)[0].rounds_decided_during, 0);
        let stuck = vec![vec![(1.0, 2), (4.9, 4), (5.5, 5)], vec![(1.0, 2), (9.0, 3)]];
        assert_eq!(
            judge_partitions(&spec, &stuck)[0].heal_to_decide_s,
            None,
            "node 1 never passed 4"
        );
    }
}
