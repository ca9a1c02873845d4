//! Prometheus metrics of one node (`GET /metrics`).

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels for rejected events and messages.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

pub struct Metrics {
    registry: Registry,
    pub events_created: Counter,
    pub events_received: Counter,
    pub events_duplicate: Counter,
    pub events_rejected: Family<Reason, Counter>,
    pub messages_rejected: Family<Reason, Counter>,
    pub rounds_decided: Counter,
    pub ordered_events: Counter,
    pub ordered_txs: Counter,
    pub ordered_tps: Gauge<f64, AtomicU64>,
    pub sync_latency: Histogram,
    pub finality_latency: Histogram,
    pub peers_connected: Gauge,
    pub last_round_created: Gauge,
    pub last_decided_round: Gauge,
    pub held_events: Gauge,
    pub equivocations: Counter,
    pub equivocations_reported: Counter,
    pub peer_penalties: Family<Reason, Counter>,
    pub pushes_dropped: Counter,
    pub forward_envelopes: Family<Step, Counter>,
}

/// Labels for envelopes of forwarded transactions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct Step {
    pub step: String,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 1 ms .. ~33 s, doubling.
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 16)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dagger");
        let m = Metrics {
            events_created: Counter::default(),
            events_received: Counter::default(),
            events_duplicate: Counter::default(),
            events_rejected: Family::default(),
            messages_rejected: Family::default(),
            rounds_decided: Counter::default(),
            ordered_events: Counter::default(),
            ordered_txs: Counter::default(),
            ordered_tps: Gauge::default(),
            sync_latency: Histogram::new(latency_buckets()),
            finality_latency: Histogram::new(latency_buckets()),
            peers_connected: Gauge::default(),
            last_round_created: Gauge::default(),
            last_decided_round: Gauge::default(),
            held_events: Gauge::default(),
            equivocations: Counter::default(),
            equivocations_reported: Counter::default(),
            peer_penalties: Family::default(),
            pushes_dropped: Counter::default(),
            forward_envelopes: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "events_created",
            "Events this node signed",
            m.events_created.clone(),
        );
        registry.register(
            "events_received",
            "Events accepted from peers",
            m.events_received.clone(),
        );
        registry.register(
            "events_duplicate",
            "Events a peer sent that this node already held (a push and a pull, or two pulls, carried the same event)",
            m.events_duplicate.clone(),
        );
        registry.register(
            "events_rejected",
            "Events refused, by reason",
            m.events_rejected.clone(),
        );
        registry.register(
            "messages_rejected",
            "Peer messages refused (malformed, oversized, over rate), by reason",
            m.messages_rejected.clone(),
        );
        registry.register(
            "rounds_decided",
            "Consensus rounds decided",
            m.rounds_decided.clone(),
        );
        registry.register(
            "ordered_events",
            "Events in consensus order",
            m.ordered_events.clone(),
        );
        registry.register(
            "ordered_txs",
            "Transactions in consensus order",
            m.ordered_txs.clone(),
        );
        registry.register(
            "ordered_tps",
            "Ordered transactions per second (last 5 s)",
            m.ordered_tps.clone(),
        );
        registry.register(
            "sync_latency_seconds",
            "Duration of one pull sync",
            m.sync_latency.clone(),
        );
        registry.register(
            "finality_latency_seconds",
            "Transaction submitted here to ordered",
            m.finality_latency.clone(),
        );
        registry.register(
            "peers_connected",
            "Peers with a live connection",
            m.peers_connected.clone(),
        );
        registry.register(
            "last_round_created",
            "Highest round of a held event",
            m.last_round_created.clone(),
        );
        registry.register(
            "last_decided_round",
            "Last round decided by consensus",
            m.last_decided_round.clone(),
        );
        registry.register(
            "held_events",
            "Events held in memory",
            m.held_events.clone(),
        );
        registry.register(
            "equivocations",
            "Forks detected (evidence produced)",
            m.equivocations.clone(),
        );
        registry.register(
            "equivocations_reported",
            "Equivocations this node reported on-chain (the operator was slashed)",
            m.equivocations_reported.clone(),
        );
        registry.register(
            "peer_penalties",
            "Peers disconnected and shut out for a while because they sent provably invalid events, by reason",
            m.peer_penalties.clone(),
        );
        registry.register(
            "pushes_dropped",
            "Own events not pushed to a peer that did not keep up (it pulls them instead)",
            m.pushes_dropped.clone(),
        );
        registry.register(
            "forward_envelopes",
            "Envelopes of forwarded transactions (own events went stale), by step: sealed here, carried for a peer, delivered (own) by the order",
            m.forward_envelopes.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    pub fn reject_event(&self, reason: &str) {
        self.events_rejected
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// An envelope of forwarded transactions was sealed here, carried for
    /// a peer, or delivered (one of this node's) by the order.
    pub fn forward_envelopes(&self, step: &str) {
        self.forward_envelopes
            .get_or_create(&Step {
                step: step.to_string(),
            })
            .inc();
    }

    pub fn reject_message(&self, reason: &str) {
        self.messages_rejected
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn penalise_peer(&self, reason: &str) {
        self.peer_penalties
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// `(name, type, help)` of every metric as `/metrics` exposes it (names
/// with the `dagger_` prefix, counters with their `_total` sample suffix).
pub fn exposed() -> Vec<(String, String, String)> {
    let text = Metrics::default().render();
    let mut help = std::collections::HashMap::new();
    let mut list = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, text)) = rest.split_once(' ') {
                help.insert(name.to_string(), text.trim_end_matches('.').to_string());
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                let sample = match kind {
                    "counter" => format!("{name}_total"),
                    _ => name.to_string(),
                };
                list.push((
                    sample,
                    kind.to_string(),
                    help.get(name).cloned().unwrap_or_default(),
                ));
            }
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's metrics table is this registry's: a metric added,
    /// renamed or removed without the table fails here, with the table to
    /// paste.
    #[test]
    fn metric_names_in_the_readme_are_the_exposed_ones() {
        let table: String = exposed()
            .iter()
            .map(|(name, kind, help)| format!("| `{name}` | {kind} | {help} |\n"))
            .collect();
        let readme = include_str!("../../README.md");
        let start = readme
            .find("<!-- metrics:start -->\n")
            .expect("README has a metrics table")
            + "<!-- metrics:start -->\n".len();
        let end = readme.find("<!-- metrics:end -->").expect("the table ends");
        let documented: String = readme[start..end]
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            documented, table,
            "README metrics table out of date; it should list:\n{table}"
        );
        assert!(table.contains("| `dagger_events_created_total` | counter |"));
    }

    /// The Grafana dashboard in `docs/grafana` queries only what `/metrics`
    /// serves (a renamed metric fails here, not on an operator's board),
    /// and shows every metric.
    #[test]
    fn the_grafana_dashboard_uses_the_exposed_metrics() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/grafana/dagger-node.json"))
                .expect("the dashboard is JSON");
        let mut exprs = Vec::new();
        let mut stack = vec![&dashboard];
        while let Some(v) = stack.pop() {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        match (k.as_str(), v) {
                            ("expr", serde_json::Value::String(e)) => exprs.push(e.clone()),
                            _ => stack.push(v),
                        }
                    }
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        assert!(exprs.len() >= 10, "{exprs:?}");
        let exposed = exposed();
        let known = |name: &str| {
            exposed.iter().any(|(sample, kind, _)| {
                sample == name
                    || (kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|suffix| name == format!("{sample}{suffix}")))
            })
        };
        let mut used = std::collections::BTreeSet::new();
        for expr in &exprs {
            let mut rest = expr.as_str();
            while let Some(at) = rest.find("dagger_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    known(&name),
                    "{name} (in `{expr}`) is not served by /metrics"
                );
                rest = &rest[at + name.len()..];
                used.insert(name);
            }
        }
        for (sample, kind, _) in &exposed {
            let shown = used
                .iter()
                .any(|u| u == sample || (kind == "histogram" && u.starts_with(sample.as_str())));
            assert!(shown, "{sample} is served but not on the dashboard");
        }
    }
}
