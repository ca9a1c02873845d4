//! A deterministic network simulator for DAGGER's consensus.
//!
//! Real [`dagger_consensus::Hashgraph`] instances gossip over a simulated
//! network ([`network`]): per-link delays with jitter (messages overtake
//! each other), partitions that heal, nodes that are down for a while or
//! start late (and then install a peer's state, as a node's state sync
//! does), restarts from a snapshot, and a byzantine creator ([`byzantine`])
//! that sees every node's state and chooses among strategies: withholding
//! then releasing, twins shown to different nodes, stale fork tips, lies in
//! birth rounds and parent descriptors, and the boundary attack (an event
//! born where nodes that decided more find it ancient, with a chain
//! climbed on it to the live round).
//!
//! A run is a function of its seed: [`Scenario::random`] draws the network
//! and the adversary from it, [`run`] plays it and checks, on every run:
//! * honest orders are prefix-consistent (the same running hash at every
//!   position two honest nodes both output);
//! * after the network heals (last partition, outage or late start over),
//!   every honest node decides rounds beyond what the best honest node had
//!   decided at the heal;
//! * every equivocation whose two events reached an honest node while it
//!   held or kept waiting the first one ends in evidence at that node;
//! * no honest event is refused as a fault, and nothing panics.
//!
//! Tests run many seeds (`tests/seeds.rs`); a failure prints its seed, and
//! `DAGGER_SIM_SEED=<seed>` replays exactly that run.

pub mod byzantine;
pub mod honest;
pub mod network;

use std::collections::HashMap;

use dagger_consensus::{
    evidence::headers_conflict, verify, Config, CreatorId, Event, Limits, Roster,
};
use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use byzantine::{Byzantine, Done, Strategies};
pub use honest::Honest;
pub use network::{Link, Message, Micros, Network, Outage, Partition, MS, SECOND};

const NET_ID: [u8; 32] = [0x5A; 32];

/// Everything a run is made of.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub stakes: Vec<u64>,
    pub byzantine: Option<usize>,
    pub strategies: Strategies,
    pub links: Vec<Vec<Link>>,
    pub partitions: Vec<Partition>,
    pub outages: Vec<Outage>,
    pub starts: Vec<Micros>,
    /// Mean time between two pulls of one node.
    pub gossip_interval: Micros,
    /// How long the run goes on after the network healed.
    pub settle: Micros,
    /// Probability that an honest node restarts from a snapshot of itself
    /// at one of its turns.
    pub restart_prob: f64,
}

impl Scenario {
    pub fn n(&self) -> usize {
        self.stakes.len()
    }

    /// A random scenario: 4 to 7 nodes, random stakes (the byzantine
    /// creator, if any, below a third), random link delays, and possibly a
    /// partition, an outage and a late start.
    pub fn random(seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed);
        let n = *[4usize, 4, 5, 7].choose(&mut rng).expect("sizes");
        let byzantine = rng.gen_bool(0.8).then_some(n - 1);
        let mut stakes: Vec<u64> = if rng.gen_bool(0.6) {
            vec![1; n]
        } else {
            (0..n).map(|_| rng.gen_range(1..=4)).collect()
        };
        if let Some(b) = byzantine {
            // Strictly below a third of the total.
            let others: u64 = (0..n).filter(|&i| i != b).map(|i| stakes[i]).sum();
            stakes[b] = stakes[b].min((others - 1) / 2).max(1);
        }
        let links = (0..n)
            .map(|_| {
                (0..n)
                    .map(|_| {
                        let delay = rng.gen_range(1..=60) * MS;
                        Link {
                            delay,
                            jitter: rng.gen_range(0..=delay),
                        }
                    })
                    .collect()
            })
            .collect();
        let honest: Vec<usize> = (0..n).filter(|&i| Some(i) != byzantine).collect();
        let mut partitions = Vec::new();
        if rng.gen_bool(0.5) {
            let size = rng.gen_range(1..=n / 2);
            let group: Vec<usize> = honest.choose_multiple(&mut rng, size).copied().collect();
            let from = rng.gen_range(1..8) * SECOND;
            partitions.push(Partition {
                group,
                from,
                until: from + rng.gen_range(1..10) * SECOND,
            });
        }
        let mut outages = Vec::new();
        if rng.gen_bool(0.3) {
            let node = *honest.choose(&mut rng).expect("honest");
            let from = rng.gen_range(1..8) * SECOND;
            outages.push(Outage {
                node,
                from,
                until: from + rng.gen_range(1..8) * SECOND,
            });
        }
        let mut starts = vec![0; n];
        if rng.gen_bool(0.3) {
            let late = *honest.choose(&mut rng).expect("honest");
            starts[late] = rng.gen_range(2..12) * SECOND;
        }
        let w = |rng: &mut ChaCha8Rng| rng.gen_range(0..4);
        let strategies = Strategies {
            behave: 4,
            withhold: w(&mut rng),
            twins: w(&mut rng),
            stale_fork: w(&mut rng),
            lie: w(&mut rng),
            boundary: w(&mut rng) * 2,
        };
        Scenario {
            stakes,
            byzantine,
            strategies,
            links,
            partitions,
            outages,
            starts,
            gossip_interval: rng.gen_range(20..=60) * MS,
            settle: 12 * SECOND,
            restart_prob: 0.002,
        }
    }
}

/// What a run did (printed with a failure, and by the soak).
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub decided: Vec<u64>,
    pub decided_at_heal: Vec<u64>,
    pub ordered: Vec<u64>,
    pub installs: Vec<u32>,
    /// Buffered + parked events per node at the end.
    pub waiting: Vec<usize>,
    /// Highest round created per node at the end.
    pub top_round: Vec<u64>,
    pub events_created: u64,
    pub messages: u64,
    pub dropped_messages: u64,
    pub healed_at: Micros,
    pub adversary: Done,
    /// (node, creator) pairs where evidence was owed.
    pub evidence_owed: usize,
}

/// A property a run broke.
#[derive(Debug)]
pub struct Violation {
    pub what: String,
    pub report: Box<Report>,
}

enum Node {
    Honest(Box<Honest>),
    Byzantine(Box<Byzantine>),
}

fn key(i: usize) -> SigningKey {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&(i as u64 + 11).to_le_bytes());
    b[31] = 0x3C;
    SigningKey::from_bytes(&b)
}

fn config() -> Config {
    Config {
        network_id: NET_ID,
        limits: Limits::default(),
    }
}

/// Play `scenario` with randomness from `seed` and check the properties.
pub fn run(seed: u64, scenario: &Scenario) -> Result<Report, Violation> {
    let n = scenario.n();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let keys: Vec<SigningKey> = (0..n).map(key).collect();
    let genesis = Roster::new(
        keys.iter()
            .zip(&scenario.stakes)
            .map(|(k, s)| (CreatorId::from(k), *s)),
    )
    .expect("valid roster");
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| {
            if scenario.byzantine == Some(i) {
                Node::Byzantine(Box::new(Byzantine::new(
                    i,
                    keys[i].clone(),
                    config(),
                    genesis.clone(),
                    scenario.strategies,
                )))
            } else {
                Node::Honest(Box::new(Honest::new(
                    i,
                    keys[i].clone(),
                    config(),
                    genesis.clone(),
                )))
            }
        })
        .collect();
    let byz_creator = scenario.byzantine.map(|b| CreatorId::from(&keys[b]));
    let mut net: Network = Network::new(
        scenario.links.clone(),
        scenario.partitions.clone(),
        scenario.outages.clone(),
        scenario.starts.clone(),
    );
    let healed_at = net.healed_at();
    let end = healed_at + scenario.settle;
    let mut next_tick: Vec<Micros> = (0..n)
        .map(|i| scenario.starts[i] + rng.gen_range(0..=scenario.gossip_interval))
        .collect();
    // Evidence owed: (honest node, creator).
    let mut owed: HashMap<(usize, CreatorId), ()> = HashMap::new();
    let mut decided_at_heal: Option<Vec<u64>> = None;
    loop {
        let tick = next_tick.iter().copied().min().expect("nodes");
        let at = net.next_at().map_or(tick, |m| m.min(tick));
        if at > end {
            break;
        }
        let now = at;
        if decided_at_heal.is_none() && now >= healed_at {
            decided_at_heal = Some(decided_now(&nodes));
        }
        if let Some(d) = net.pop(now) {
            deliver(
                &mut nodes,
                &mut net,
                &mut rng,
                now,
                d,
                byz_creator,
                &mut owed,
            );
            continue;
        }
        let i = (0..n).find(|&i| next_tick[i] == tick).expect("due");
        next_tick[i] =
            now + rng.gen_range(scenario.gossip_interval / 2..=scenario.gossip_interval * 3 / 2);
        if !net.up(i, now) {
            continue;
        }
        turn(&mut nodes, &mut net, &mut rng, now, i, scenario);
    }

    let report = Report {
        decided: decided_now(&nodes),
        decided_at_heal: decided_at_heal.unwrap_or_else(|| decided_now(&nodes)),
        ordered: nodes
            .iter()
            .map(|n| match n {
                Node::Honest(h) => h.hg.stats().ordered_count,
                Node::Byzantine(_) => 0,
            })
            .collect(),
        installs: nodes
            .iter()
            .map(|n| match n {
                Node::Honest(h) => h.installs,
                Node::Byzantine(_) => 0,
            })
            .collect(),
        waiting: nodes
            .iter()
            .map(|n| match n {
                Node::Honest(h) => h.hg.stats().buffered_events + h.hg.stats().parked_events,
                Node::Byzantine(_) => 0,
            })
            .collect(),
        top_round: nodes
            .iter()
            .map(|n| match n {
                Node::Honest(h) => h.hg.stats().last_round_created,
                Node::Byzantine(b) => b.hg.stats().last_round_created,
            })
            .collect(),
        events_created: nodes
            .iter()
            .map(|n| match n {
                Node::Honest(h) => h.created,
                Node::Byzantine(b) => b.signed.len() as u64,
            })
            .sum(),
        messages: net.sent,
        dropped_messages: net.dropped,
        healed_at,
        adversary: nodes
            .iter()
            .find_map(|n| match n {
                Node::Byzantine(b) => Some(b.done),
                Node::Honest(_) => None,
            })
            .unwrap_or_default(),
        evidence_owed: owed.len(),
    };
    if std::env::var("DAGGER_SIM_TRACE").is_ok() {
        for node in &nodes {
            if let Node::Honest(h) = node {
                let missing = h.hg.missing_parents();
                eprintln!(
                    "node {} pruned {} waits for {} events, e.g. {:?}",
                    h.index,
                    h.hg.stats().pruned_through_round,
                    missing.len(),
                    missing
                        .iter()
                        .take(3)
                        .map(|(id, b)| {
                            let holders: Vec<usize> = nodes
                                .iter()
                                .enumerate()
                                .filter(|(_, n)| match n {
                                    Node::Honest(x) => x.hg.knows(id),
                                    Node::Byzantine(b) => b.hg.knows(id),
                                })
                                .map(|(i, _)| i)
                                .collect();
                            (*id, *b, holders)
                        })
                        .collect::<Vec<_>>()
                );
            }
        }
    }
    check(&nodes, &owed, report, byz_creator)
}

fn decided_now(nodes: &[Node]) -> Vec<u64> {
    nodes
        .iter()
        .map(|n| match n {
            Node::Honest(h) => h.decided(),
            Node::Byzantine(_) => 0,
        })
        .collect()
}

/// Node `i`'s turn: pull from a random peer; the byzantine node also acts.
fn turn(
    nodes: &mut [Node],
    net: &mut Network,
    rng: &mut ChaCha8Rng,
    now: Micros,
    i: usize,
    scenario: &Scenario,
) {
    let n = nodes.len();
    let peer = (i + rng.gen_range(1..n)) % n;
    let pull = match &mut nodes[i] {
        Node::Honest(h) => {
            if rng.gen_bool(scenario.restart_prob) {
                h.restart();
            }
            Message::Pull {
                tips: h.hg.tips(),
                decided: h.decided(),
                oldest_missing: h.oldest_missing(),
            }
        }
        Node::Byzantine(b) => Message::Pull {
            tips: b.hg.tips(),
            decided: b.hg.stats().last_decided_round,
            oldest_missing: None,
        },
    };
    net.send(rng, now, i, peer, pull);
    if matches!(nodes[i], Node::Byzantine(_)) {
        let sends = {
            let (honest, byz) = split(nodes, i);
            byz.act(now, rng, &honest, n)
        };
        // Group per receiver, keeping the adversary's order.
        let mut per: Vec<Vec<Event>> = vec![Vec::new(); n];
        for (to, e) in sends {
            per[to].push(e);
        }
        for (to, events) in per.into_iter().enumerate() {
            if !events.is_empty() {
                net.send(rng, now, i, to, Message::Push { events });
            }
        }
    }
}

/// The byzantine node mutably, and the honest ones read-only.
fn split(nodes: &mut [Node], b: usize) -> (Vec<(usize, &Honest)>, &mut Byzantine) {
    let (left, rest) = nodes.split_at_mut(b);
    let (mid, right) = rest.split_first_mut().expect("b < n");
    let Node::Byzantine(byz) = mid else {
        unreachable!("node {b} is byzantine")
    };
    let honest = left
        .iter()
        .enumerate()
        .chain(right.iter().enumerate().map(|(k, n)| (b + 1 + k, n)))
        .filter_map(|(i, n)| match n {
            Node::Honest(h) => Some((i, &**h)),
            Node::Byzantine(_) => None,
        })
        .collect();
    (honest, byz)
}

fn deliver(
    nodes: &mut [Node],
    net: &mut Network,
    rng: &mut ChaCha8Rng,
    now: Micros,
    d: network::Delivery,
    byz_creator: Option<CreatorId>,
    owed: &mut HashMap<(usize, CreatorId), ()>,
) {
    let (from, to) = (d.from, d.to);
    // What the byzantine creator signed, by sequence number (for the
    // evidence property).
    let signed: Vec<Event> = byz_creator
        .and_then(|_| {
            nodes.iter().find_map(|n| match n {
                Node::Byzantine(b) => Some(b.signed.clone()),
                Node::Honest(_) => None,
            })
        })
        .unwrap_or_default();
    match d.message {
        Message::Pull {
            tips,
            decided,
            oldest_missing,
        } => {
            let answer = match &mut nodes[to] {
                Node::Honest(h) => {
                    let (events, behind) = h.sync_answer(&tips, decided, oldest_missing);
                    Message::Answer { events, behind }
                }
                Node::Byzantine(b) => Message::Answer {
                    events: b.hg.events_unknown_to(&tips),
                    behind: false,
                },
            };
            net.send(rng, now, to, from, answer);
        }
        Message::Answer { events, behind } => {
            if matches!(nodes[to], Node::Byzantine(_)) {
                if let Node::Byzantine(b) = &mut nodes[to] {
                    b.receive(events);
                }
                return;
            }
            let (peer_creator, snapshot) = match &nodes[from] {
                // State transfer from that peer: the node's state sync
                // checks what peers vouch for; here only honest peers
                // offer one.
                Node::Honest(p) => (p.me, (behind).then(|| p.hg.snapshot())),
                Node::Byzantine(b) => (b.me, None),
            };
            let Node::Honest(h) = &mut nodes[to] else {
                unreachable!("checked above")
            };
            if let Some(snapshot) = snapshot {
                h.install(&snapshot, now);
            }
            note_owed(h, &events, byz_creator, &signed, owed);
            h.receive(events, now);
            let newest = h.hg.latest_of(&peer_creator);
            if let Some(e) = h.create(newest, now) {
                for k in 0..nodes.len() {
                    if k != to {
                        net.send(
                            rng,
                            now,
                            to,
                            k,
                            Message::Push {
                                events: vec![e.clone()],
                            },
                        );
                    }
                }
            }
        }
        Message::Push { events } => match &mut nodes[to] {
            Node::Honest(h) => {
                note_owed(h, &events, byz_creator, &signed, owed);
                h.receive(events, now);
            }
            Node::Byzantine(b) => b.receive(events),
        },
    }
}

/// Before `events` reach honest node `h`: every byzantine event among them
/// that conflicts with one `h` holds or keeps waiting makes `h` owe
/// evidence against the creator.
fn note_owed(
    h: &Honest,
    events: &[Event],
    byz: Option<CreatorId>,
    signed: &[Event],
    owed: &mut HashMap<(usize, CreatorId), ()>,
) {
    let Some(byz) = byz else { return };
    // Only events that pass the static checks are looked at by anyone
    // (a malformed one is refused before its signature is).
    let limits = Limits::default();
    let well_formed = |e: &Event| verify::check_shape(e, &limits).is_ok();
    for e in events
        .iter()
        .filter(|e| e.creator() == byz && well_formed(e))
    {
        if signed.iter().any(|f| {
            f.id() != e.id()
                && h.hg.knows(&f.id())
                && well_formed(f)
                && headers_conflict(f.header(), e.header())
        }) {
            owed.insert((h.index, byz), ());
        }
    }
}

fn check(
    nodes: &[Node],
    owed: &HashMap<(usize, CreatorId), ()>,
    report: Report,
    byz: Option<CreatorId>,
) -> Result<Report, Violation> {
    let fail = |what: String, report: &Report| {
        Err(Violation {
            what,
            report: Box::new(report.clone()),
        })
    };
    let honest: Vec<&Honest> = nodes
        .iter()
        .filter_map(|n| match n {
            Node::Honest(h) => Some(&**h),
            Node::Byzantine(_) => None,
        })
        .collect();
    // Prefix consistency.
    for (a, ha) in honest.iter().enumerate() {
        for hb in &honest[a + 1..] {
            for (pos, hash) in &ha.order {
                if let Some(other) = hb.order.get(pos) {
                    if other != hash {
                        return fail(
                            format!(
                                "nodes {} and {} differ at order position {pos}",
                                ha.index, hb.index
                            ),
                            &report,
                        );
                    }
                }
            }
        }
    }
    // Liveness after the heal.
    let best_at_heal = report.decided_at_heal.iter().copied().max().unwrap_or(0);
    for h in &honest {
        if report.decided[h.index] < best_at_heal + 2 {
            return fail(
                format!(
                    "node {} decided round {} by the end; the best node had decided {} when the network healed",
                    h.index, report.decided[h.index], best_at_heal
                ),
                &report,
            );
        }
    }
    // Evidence.
    for (node, creator) in owed.keys() {
        let h = honest.iter().find(|h| h.index == *node).expect("honest");
        if !h.accused.contains_key(creator) {
            return fail(
                format!("node {node} held both events of a fork and never accused its creator"),
                &report,
            );
        }
    }
    // Only the byzantine creator is accused, and honest events are never
    // refused as faults.
    for h in &honest {
        if let Some((c, pair)) = h.accused.iter().find(|(c, _)| Some(**c) != byz) {
            return fail(
                format!("node {} accused honest creator {c:?}: {pair:#?}", h.index),
                &report,
            );
        }
        for (creator, reject) in &h.faults {
            if Some(*creator) != byz {
                return fail(
                    format!("node {} refused an honest event: {reject}", h.index),
                    &report,
                );
            }
        }
    }
    Ok(report)
}
