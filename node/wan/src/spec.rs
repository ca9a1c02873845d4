//! What a network looks like: per-direction links, scheduled partitions,
//! and the textual forms the bench's flags take (`100ms`, `1%`,
//! `100mbit`, `node3@10s-70s`).

use std::{fmt, str::FromStr, time::Duration};

use serde::Serialize;

use crate::regions::Region;

/// Most nodes a network spans (the bench's own limit).
pub const MAX_NODES: usize = 64;
/// Longest one-way delay or jitter a link may have.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// A value a user wrote that does not describe a network.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("`{0}`: expected a duration such as 100ms, 1.5s or 250us (at most 60 s)")]
    Duration(String),
    #[error("`{0}`: expected a loss rate such as 1% or 0.5% (0 to 100 %)")]
    Percent(String),
    #[error("`{0}`: expected a bandwidth such as 100mbit, 1gbit or 512kbit (at least 8 kbit/s)")]
    Bandwidth(String),
    #[error(
        "`{0}`: expected a partition such as node3@10s-70s (node 3 cut off) or \
         0,1|2,3@10s-40s (groups that cannot reach each other), the end after the start"
    )]
    Partition(String),
    #[error("`{spec}`: node {node} does not exist (nodes are numbered 0 to {last})")]
    NoSuchNode {
        spec: String,
        node: usize,
        last: usize,
    },
    #[error("`{0}`: a node appears in two groups of one partition")]
    NodeTwice(String),
    #[error("unknown region `{0}`; known: {known}", known = crate::regions::names().join(", "))]
    Region(String),
    #[error("`{0}`: expected NODE=RTT, such as node3=1000ms")]
    NodeRtt(String),
}

/// A decimal number and the unit written after it (`"1.5ms"` → (1.5,
/// `"ms"`)); the unit may be empty.
fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit))
}

/// Parses `100ms`, `1.5s`, `250us`, `0`; at most [`MAX_DELAY`].
pub fn parse_duration(text: &str) -> Result<Duration, SpecError> {
    let err = || SpecError::Duration(text.to_string());
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let (value, unit) = number_and_unit(t).ok_or_else(err)?;
    let scale = match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return Err(err()),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs < 0.0 || secs > MAX_DELAY.as_secs_f64() {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `1%`, `0.5%` (or a plain fraction `0.01`) into a probability.
pub fn parse_percent(text: &str) -> Result<f64, SpecError> {
    let err = || SpecError::Percent(text.to_string());
    let t = text.trim();
    let fraction = match t.strip_suffix('%') {
        Some(number) => number.trim().parse::<f64>().map_err(|_| err())? / 100.0,
        None => t.parse::<f64>().map_err(|_| err())?,
    };
    if !(0.0..=1.0).contains(&fraction) {
        return Err(err());
    }
    Ok(fraction)
}

/// Parses `100mbit`, `1gbit`, `512kbit`, `10mbps` (bytes: ×8) into bits
/// per second.
pub fn parse_bandwidth(text: &str) -> Result<u64, SpecError> {
    let err = || SpecError::Bandwidth(text.to_string());
    let t = text.trim().to_ascii_lowercase();
    let (value, unit) = number_and_unit(&t).ok_or_else(err)?;
    let scale = match unit {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => return Err(err()),
    };
    let bps = value * scale;
    if !bps.is_finite() || !(8_000.0..=1e12).contains(&bps) {
        return Err(err());
    }
    Ok(bps as u64)
}

/// One direction of the path between two nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LinkSpec {
    /// One-way delay.
    #[serde(serialize_with = "as_ms")]
    pub delay: Duration,
    /// Each datagram's delay is drawn uniformly from `delay ± jitter`
    /// (never below zero), but a datagram never arrives before one sent
    /// ahead of it: a path is a queue, and jitter on a real path comes
    /// from queues. Reordering is [`LinkSpec::reorder`].
    #[serde(serialize_with = "as_ms")]
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is held back by up to
    /// [`crate::model::REORDER_HOLD`] beyond its delay, so that datagrams
    /// sent after it overtake it.
    pub reorder: f64,
    /// Bits per second this direction carries; datagrams queue behind
    /// each other (up to [`LinkSpec::max_queue`]) and are dropped beyond.
    pub bandwidth_bps: Option<u64>,
}

fn as_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

impl LinkSpec {
    /// Queueing a bandwidth-capped link tolerates before it drops, like a
    /// router's buffer.
    pub fn max_queue(&self) -> Duration {
        Duration::from_millis(200)
    }
}

/// Groups of nodes that cannot reach each other from `from` until `until`
/// (times since the emulator's epoch, [`crate::Relay::set_epoch`]; none is
/// in force before it).
/// Nodes no group names form one more group together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub groups: Vec<Vec<usize>>,
    #[serde(serialize_with = "as_s")]
    pub from: Duration,
    #[serde(serialize_with = "as_s")]
    pub until: Duration,
}

fn as_s<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Partition {
    /// Node `node` alone, cut off from everyone during `[from, until)`.
    pub fn isolate(node: usize, from: Duration, until: Duration) -> Partition {
        Partition {
            groups: vec![vec![node]],
            from,
            until,
        }
    }

    fn group_of(&self, node: usize) -> Option<usize> {
        self.groups.iter().position(|g| g.contains(&node))
    }

    /// Whether this partition separates `a` from `b` at `at`.
    pub fn cuts(&self, a: usize, b: usize, at: Duration) -> bool {
        self.from <= at && at < self.until && self.group_of(a) != self.group_of(b)
    }

    /// Every node it names is below `nodes`.
    pub fn check(&self, nodes: usize) -> Result<(), SpecError> {
        for &node in self.groups.iter().flatten() {
            if node >= nodes {
                return Err(SpecError::NoSuchNode {
                    spec: self.to_string(),
                    node,
                    last: nodes.saturating_sub(1),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        write!(
            f,
            "{}@{}s-{}s",
            groups.join("|"),
            self.from.as_secs_f64(),
            self.until.as_secs_f64()
        )
    }
}

/// A node number, written `3` or `node3`.
fn parse_node(text: &str) -> Option<usize> {
    let t = text.trim();
    t.strip_prefix("node")
        .unwrap_or(t)
        .parse()
        .ok()
        .filter(|n| *n < MAX_NODES)
}

impl FromStr for Partition {
    type Err = SpecError;

    /// `node3@10s-70s` or `0,1|2,3@10s-40s`.
    fn from_str(text: &str) -> Result<Partition, SpecError> {
        let err = || SpecError::Partition(text.to_string());
        let (who, when) = text.split_once('@').ok_or_else(err)?;
        let (from, until) = when.split_once('-').ok_or_else(err)?;
        let (from, until) = (
            parse_duration_long(from).ok_or_else(err)?,
            parse_duration_long(until).ok_or_else(err)?,
        );
        if until <= from {
            return Err(err());
        }
        let mut groups = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for group in who.split('|') {
            let mut nodes = Vec::new();
            for node in group.split(',') {
                let node = parse_node(node).ok_or_else(err)?;
                if !seen.insert(node) {
                    return Err(SpecError::NodeTwice(text.to_string()));
                }
                nodes.push(node);
            }
            groups.push(nodes);
        }
        Ok(Partition {
            groups,
            from,
            until,
        })
    }
}

/// Partition times may exceed [`MAX_DELAY`] (a cut at 10 min); up to a day.
fn parse_duration_long(text: &str) -> Option<Duration> {
    let (value, unit) = number_and_unit(text.trim())?;
    let scale = match unit {
        "ms" => 1e-3,
        "s" | "" => 1.0,
        "m" => 60.0,
        _ => return None,
    };
    let secs = value * scale;
    (secs.is_finite() && (0.0..=86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// `node3=1000ms`: every link touching node 3 has this round-trip time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeRtt {
    pub node: usize,
    pub rtt: Duration,
}

impl FromStr for NodeRtt {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<NodeRtt, SpecError> {
        let (node, rtt) = text
            .split_once('=')
            .ok_or_else(|| SpecError::NodeRtt(text.to_string()))?;
        Ok(NodeRtt {
            node: parse_node(node).ok_or_else(|| SpecError::NodeRtt(text.to_string()))?,
            rtt: parse_duration(rtt)?,
        })
    }
}

/// A whole emulated network of `n` nodes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetSpec {
    /// `links[from][to]`; the diagonal is unused.
    pub links: Vec<Vec<LinkSpec>>,
    pub partitions: Vec<Partition>,
    /// Loss and jitter are drawn from generators seeded from this, one per
    /// link, so a run repeats whatever the order datagrams arrive in.
    pub seed: u64,
}

impl NetSpec {
    /// Every direction of every pair alike: `rtt` split evenly.
    pub fn uniform(n: usize, rtt: Duration, link: LinkSpec) -> NetSpec {
        let link = LinkSpec {
            delay: rtt / 2,
            ..link
        };
        NetSpec {
            links: vec![vec![link; n]; n],
            partitions: Vec::new(),
            seed: 0,
        }
    }

    /// Node `i` in region `regions[i % regions.len()]`, each pair with
    /// the published round trip between their regions (nodes in one
    /// region: [`crate::regions::SAME_REGION_RTT`]); jitter, loss and
    /// bandwidth from `link`.
    pub fn regions(n: usize, regions: &[Region], link: LinkSpec) -> NetSpec {
        let mut spec = NetSpec::uniform(n, Duration::ZERO, link);
        if regions.is_empty() {
            return spec;
        }
        for a in 0..n {
            for b in 0..n {
                let rtt =
                    crate::regions::rtt(regions[a % regions.len()], regions[b % regions.len()]);
                spec.links[a][b].delay = rtt / 2;
            }
        }
        spec
    }

    pub fn nodes(&self) -> usize {
        self.links.len()
    }

    /// Every link touching `node` gets round trip `rtt`.
    pub fn set_node_rtt(&mut self, node: usize, rtt: Duration) -> Result<(), SpecError> {
        let n = self.nodes();
        if node >= n {
            return Err(SpecError::NoSuchNode {
                spec: format!("node{node}"),
                node,
                last: n.saturating_sub(1),
            });
        }
        for other in 0..n {
            self.links[node][other].delay = rtt / 2;
            self.links[other][node].delay = rtt / 2;
        }
        Ok(())
    }

    pub fn with_partitions(mut self, partitions: Vec<Partition>) -> Result<NetSpec, SpecError> {
        for p in &partitions {
            p.check(self.nodes())?;
        }
        self.partitions = partitions;
        Ok(self)
    }

    /// Whether any partition separates `a` and `b` at `at`.
    pub fn cut(&self, a: usize, b: usize, at: Duration) -> bool {
        self.partitions.iter().any(|p| p.cuts(a, b, at))
    }

    /// Largest round trip between two distinct nodes.
    pub fn max_rtt(&self) -> Duration {
        let n = self.nodes();
        (0..n)
            .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
            .map(|(a, b)| self.links[a][b].delay + self.links[b][a].delay)
            .max()
            .unwrap_or_default()
    }

    /// Median round trip between two distinct nodes.
    pub fn median_rtt(&self) -> Duration {
        let n = self.nodes();
        let mut rtts: Vec<Duration> = (0..n)
            .flat_map(|a| ((a + 1)..n).map(move |b| (a, b)))
            .map(|(a, b)| self.links[a][b].delay + self.links[b][a].delay)
            .collect();
        rtts.sort();
        rtts.get(rtts.len() / 2).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_rates_and_bandwidths_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "ms",
            "10",
            "-5ms",
            "1e400s",
            "61s",
            "NaNms",
            "5 parsecs",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("0.5%"), Ok(0.005));
        assert_eq!(parse_percent("0"), Ok(0.0));
        for bad in ["101%", "-1%", "x%", "2", "NaN"] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_bandwidth("100mbit"), Ok(100_000_000));
        assert_eq!(parse_bandwidth("1Gbit"), Ok(1_000_000_000));
        assert_eq!(parse_bandwidth("10mbps"), Ok(80_000_000));
        for bad in ["100", "0mbit", "1bit", "9e99gbit", "fast"] {
            assert!(parse_bandwidth(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn partitions_parse_into_groups_and_cut_only_across_them_while_they_last() {
        let p: Partition = "node3@10s-70s".parse().unwrap();
        assert_eq!(
            p,
            Partition::isolate(3, Duration::from_secs(10), Duration::from_secs(70))
        );
        assert!(p.cuts(3, 0, Duration::from_secs(10)));
        assert!(p.cuts(1, 3, Duration::from_secs(69)));
        assert!(
            !p.cuts(0, 1, Duration::from_secs(30)),
            "the rest stay together"
        );
        assert!(!p.cuts(3, 0, Duration::from_secs(70)), "healed at the end");
        assert!(!p.cuts(3, 0, Duration::from_secs(9)));
        let split: Partition = "0,1|2,3@1.5s-2m".parse().unwrap();
        assert_eq!(split.groups, vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(split.until, Duration::from_secs(120));
        assert!(split.cuts(1, 2, Duration::from_secs(2)));
        assert!(!split.cuts(2, 3, Duration::from_secs(2)));
        assert_eq!(split.to_string().parse::<Partition>().unwrap(), split);
        for bad in [
            "node3",
            "3@10s",
            "3@70s-10s",
            "3@10s-10s",
            "x@1s-2s",
            "1,1@1s-2s",
            "1|1@1s-2s",
            "99@1s-2s",
        ] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
        let spec = NetSpec::uniform(4, Duration::ZERO, LinkSpec::default());
        let err = spec
            .with_partitions(vec!["node4@1s-2s".parse().unwrap()])
            .unwrap_err();
        assert!(
            matches!(
                err,
                SpecError::NoSuchNode {
                    node: 4,
                    last: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_slow_node_slows_every_link_it_touches_and_only_those() {
        let mut spec = NetSpec::uniform(4, Duration::from_millis(100), LinkSpec::default());
        let slow: NodeRtt = "node2=1000ms".parse().unwrap();
        spec.set_node_rtt(slow.node, slow.rtt).unwrap();
        assert_eq!(spec.links[2][0].delay, Duration::from_millis(500));
        assert_eq!(spec.links[3][2].delay, Duration::from_millis(500));
        assert_eq!(spec.links[0][1].delay, Duration::from_millis(50));
        assert_eq!(spec.max_rtt(), Duration::from_secs(1));
        assert_eq!(spec.median_rtt(), Duration::from_millis(1000));
        assert!(spec.set_node_rtt(4, Duration::ZERO).is_err());
        assert!("node2".parse::<NodeRtt>().is_err());
        assert!("node2=fast".parse::<NodeRtt>().is_err());
    }
}
