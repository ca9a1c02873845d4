//! The node's sans-IO machines over the deterministic simulated network of
//! `dagger-netsim`: per-link delays with jitter, partitions that heal,
//! nodes that are down for a while (losing the writes their ledger had not
//! committed) or start late with an empty ledger, transactions submitted
//! all along. The machines use the node's sync protocol (tips, ordered
//! count and oldest missing parent in; missing events or "behind" out),
//! push their own events once durable, answer news with events, and state
//! sync from the others' ledgers when a peer says they are behind.
//!
//! On every seed: no node ever saw a fork (no honest node signs twice),
//! orders agree position by position, every acknowledged transaction is
//! ordered exactly once, and after the network heals every node decides
//! rounds beyond what the best node had decided at the heal.
//!
//! CI runs 24 seeds; `DAGGER_MACHINE_SIM_SEEDS=1000` runs more (from
//! `DAGGER_MACHINE_SIM_FIRST`, default 0),
//! `DAGGER_MACHINE_SIM_SEED=<seed>` replays one.
//!
//! A node behind a slow link (its events arrive too late for anyone to
//! link them, so they go stale) still has its transactions ordered while
//! the load runs: its peers carry them in envelopes
//! (`a_node_behind_a_slow_link_has_its_transactions_ordered_under_load`). (The byzantine creator's
//! strategies run against the consensus core in `dagger-netsim`, 500 seeds.)

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::machines::{Net, Timing};
use dagger_consensus::{Event, EventId};
use dagger_netsim::{Link, Micros, Network, Scenario, Strategies, MS, SECOND};
use dagger_node::core::ForwardError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

enum Msg {
    Pull {
        tips: Vec<EventId>,
        ordered: u64,
        missing: Vec<(EventId, u64)>,
    },
    Answer {
        events: Vec<Event>,
        behind: bool,
    },
    Push {
        events: Vec<Event>,
    },
    Forward {
        envelope: Vec<u8>,
    },
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Moves the machines' clock to `now` (virtual microseconds since start).
fn set_clock(net: &mut Net, start: std::time::Instant, base_ns: u64, now: Micros) {
    net.clock.instant = start + Duration::from_micros(now);
    net.clock.unix_ns = base_ns + now * 1_000;
}

/// Commits node `i`'s writes and pushes the own events that became
/// durable to every peer.
fn commit_and_push(
    net: &mut Net,
    network: &mut Network<Msg>,
    rng: &mut ChaCha8Rng,
    now: Micros,
    i: usize,
) {
    net.collect(i);
    let own: Vec<Event> = net.peers[i]
        .queued
        .iter()
        .filter_map(|(_, own)| own.as_ref().map(|o| o.event.clone()))
        .collect();
    net.commit_all(i);
    for envelope in std::mem::take(&mut net.peers[i].forwards) {
        for k in (0..net.n()).filter(|&k| k != i) {
            let envelope = envelope.clone();
            network.send(rng, now, i, k, Msg::Forward { envelope });
        }
    }
    if own.is_empty() {
        return;
    }
    for k in 0..net.n() {
        if k != i {
            network.send(
                rng,
                now,
                i,
                k,
                Msg::Push {
                    events: own.clone(),
                },
            );
        }
    }
}

fn one(seed: u64) -> Result<(), String> {
    // Odd seeds answer pulls in pages of 64 catch-up events. Seeds 1 and
    // 2 mod 4 tell a peer 64 to 512 ordered events behind to take a state
    // sync, so nodes back from outages and partitions install states while
    // they replay, with own events in flight (1: small pages, 2: the
    // node's); seeds 3 mod 4 keep the default gap, so such nodes replay in
    // pages smaller than what they hold unordered (a page of events they
    // held once stalled them).
    let small_gap = 64 << (seed / 4 % 4);
    let load = match seed % 4 {
        1 => Load {
            state_sync_gap: small_gap,
            max_events_per_pull: 128,
            ..Load::default()
        },
        2 => Load {
            state_sync_gap: small_gap,
            ..Load::default()
        },
        3 => Load {
            max_events_per_pull: 128,
            ..Load::default()
        },
        _ => Load::default(),
    };
    run(Scenario::random(seed), seed, &load)
}

/// How transactions are submitted during a run.
struct Load {
    /// Time between two submissions (each to a random node that is up).
    every: std::ops::Range<Micros>,
    /// Check, when the load stops, that every transaction this node
    /// acknowledged at least [`Load::within`] earlier is ordered already.
    ordered_during_load: Option<usize>,
    within: Micros,
    /// How long the run goes on after the network healed (the load stops
    /// 5 s before).
    after_heal: Micros,
    /// A peer further behind than this many ordered events is told to
    /// take a state sync.
    state_sync_gap: u64,
    /// Events in one pull's answer, at most.
    max_events_per_pull: usize,
}

impl Default for Load {
    fn default() -> Load {
        Load {
            every: 200 * MS..1_500 * MS,
            ordered_during_load: None,
            within: 0,
            after_heal: 10 * SECOND,
            state_sync_gap: dagger_node::config::DEFAULT_STATE_SYNC_GAP_EVENTS,
            max_events_per_pull: 4_096,
        }
    }
}

fn run(scenario: Scenario, seed: u64, load: &Load) -> Result<(), String> {
    // Every node honest here, with equal stakes (the harness's roster).
    let n = scenario.n();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // The node's idle interval; events at most every 20 ms (the node's
    // default allows 2 ms, which only multiplies the events here).
    let timing = Timing {
        idle: Duration::from_millis(500),
        spacing: Duration::from_millis(20),
    };
    let mut net = Net::with_state_sync_gap(n, 64, timing, load.state_sync_gap);
    let mut network: Network<Msg> = Network::new(
        scenario.links.clone(),
        scenario.partitions.clone(),
        scenario.outages.clone(),
        scenario.starts.clone(),
    );
    let start = net.clock.instant;
    let base_ns = net.clock.unix_ns;
    // Late starters have not run yet: down, with an empty ledger.
    let late: Vec<usize> = (0..n).filter(|&i| scenario.starts[i] > 0).collect();
    for &i in &late {
        net.crash(i);
    }
    let healed = network.healed_at();
    let end = healed + load.after_heal;
    let interval = scenario.gossip_interval.max(20 * MS);
    let mut next_tick: Vec<Micros> = (0..n)
        .map(|i| scenario.starts[i] + rng.gen_range(0..=interval))
        .collect();
    let mut next_submit = rng.gen_range(0..load.every.start.max(1));
    let mut submitted_at: Vec<(Vec<u8>, Micros)> = Vec::new();
    let mut load_checked = false;
    let mut decided_at_heal: Option<Vec<u64>> = None;
    let decided = |net: &Net| -> Vec<u64> {
        (0..net.n())
            .map(|i| {
                net.peers[i]
                    .machine
                    .as_ref()
                    .map_or(0, |m| m.status().last_decided_round)
            })
            .collect()
    };
    let trace = std::env::var("DAGGER_SIM_TRACE").is_ok();
    let mut next_report = 0;
    let mut steps = 0u64;
    loop {
        steps += 1;
        let tick = next_tick.iter().copied().min().expect("nodes");
        let due = network
            .next_at()
            .map_or(tick, |m| m.min(tick))
            .min(next_submit);
        if due > end {
            break;
        }
        let now = due;
        if trace && now >= next_report {
            next_report = now + SECOND;
            eprintln!(
                "t={}s steps {steps} decided {:?} held {:?}",
                now / SECOND,
                decided(&net),
                (0..n)
                    .map(|i| net.peers[i]
                        .machine
                        .as_ref()
                        .map_or(0, |m| m.status().held_events))
                    .collect::<Vec<_>>()
            );
        }
        set_clock(&mut net, start, base_ns, now);
        // Outages and late starts follow the schedule.
        for i in 0..n {
            let up = network.up(i, now);
            if up && !net.up(i) {
                net.start(i);
            } else if !up && net.up(i) {
                net.crash(i);
            }
        }
        if decided_at_heal.is_none() && now >= healed {
            decided_at_heal = Some(decided(&net));
        }
        if now == next_submit {
            next_submit = now + rng.gen_range(load.every.clone());
            let i = rng.gen_range(0..n);
            if let Some(watched) = load.ordered_during_load {
                if !load_checked && now + 5 * SECOND >= end {
                    load_checked = true;
                    let ordered: HashSet<Vec<u8>> =
                        net.ordered_txs(0).into_iter().map(|r| r.tx).collect();
                    let prefix = format!("tx-{watched}-").into_bytes();
                    let late = submitted_at
                        .iter()
                        .filter(|(tx, at)| {
                            tx.starts_with(&prefix)
                                && *at + load.within <= now
                                && net.acknowledged.contains(tx)
                                && !ordered.contains(tx)
                        })
                        .count();
                    let watched_total = submitted_at
                        .iter()
                        .filter(|(tx, _)| tx.starts_with(&prefix))
                        .count();
                    if late > 0 {
                        return Err(format!(
                            "{late} of node {watched}'s {watched_total} transactions were still unordered {} ms or more after they were acknowledged, under load",
                            load.within / MS
                        ));
                    }
                }
            }
            // Nothing new in the last seconds: what was acknowledged must
            // all be ordered by the end.
            if net.up(i) && now + 5 * SECOND < end {
                if let Some(tx) = net.submit(i) {
                    submitted_at.push((tx, now));
                }
                let clock = net.clock;
                if let Some(m) = net.peers[i].machine.as_mut() {
                    m.submitted(clock);
                }
                commit_and_push(&mut net, &mut network, &mut rng, now, i);
            }
            continue;
        }
        if let Some(d) = network.pop(now) {
            let (from, to) = (d.from, d.to);
            if !net.up(to) {
                continue;
            }
            let clock = net.clock;
            match d.message {
                Msg::Pull {
                    tips,
                    ordered,
                    missing,
                } => {
                    let m = net.peers[to].machine.as_mut().expect("up");
                    let (events, behind) =
                        m.sync_answer_now(&tips, ordered, &missing, load.max_events_per_pull);
                    network.send(&mut rng, now, to, from, Msg::Answer { events, behind });
                }
                Msg::Answer { events, behind } => {
                    if behind {
                        net.state_sync(to);
                    }
                    let peer = net.peers[from].identity.id();
                    let m = net.peers[to].machine.as_mut().expect("up");
                    let summary = m.receive(events, clock);
                    if let Some(fault) = summary.fault() {
                        return Err(format!("node {to} refused an honest event: {fault:?}"));
                    }
                    m.after_sync(peer, clock);
                }
                Msg::Forward { envelope } => {
                    let peer = net.peers[from].identity.id();
                    let m = net.peers[to].machine.as_mut().expect("up");
                    // Late (expired, a restart ago) is no fault; anything
                    // else an honest sender never causes.
                    match m.receive_forward(peer, envelope, clock) {
                        Ok(()) | Err(ForwardError::Expired) => {}
                        Err(err) => {
                            return Err(format!("node {to} refused an honest envelope: {err}"))
                        }
                    }
                }
                Msg::Push { events } => {
                    let m = net.peers[to].machine.as_mut().expect("up");
                    let summary = m.receive_push(events, clock);
                    if let Some(fault) = summary.fault() {
                        return Err(format!(
                            "node {to} refused a pushed honest event: {fault:?}"
                        ));
                    }
                }
            }
            commit_and_push(&mut net, &mut network, &mut rng, now, to);
            continue;
        }
        let i = (0..n).find(|&i| next_tick[i] == tick).expect("due");
        next_tick[i] = now + rng.gen_range(interval / 2..=interval * 3 / 2);
        if !net.up(i) {
            continue;
        }
        let clock = net.clock;
        let m = net.peers[i].machine.as_mut().expect("up");
        m.heartbeat(clock);
        let status = m.status();
        let pull = Msg::Pull {
            tips: m.tips(),
            ordered: status.ordered_events,
            missing: m.missing_parents(),
        };
        let peer = (i + rng.gen_range(1..n)) % n;
        network.send(&mut rng, now, i, peer, pull);
        commit_and_push(&mut net, &mut network, &mut rng, now, i);
    }

    // Properties.
    for i in 0..n {
        if let Some(m) = net.peers[i].machine.as_ref() {
            if !m.evidence().is_empty() {
                return Err(format!("node {i} holds evidence against an honest node"));
            }
        }
    }
    let at_heal = decided_at_heal.unwrap_or_else(|| decided(&net));
    let best = at_heal.iter().copied().max().unwrap_or(0);
    let now = decided(&net);
    for (i, d) in now.iter().enumerate() {
        if *d < best + 2 {
            return Err(format!(
                "node {i} decided round {d} by the end; the best node had decided {best} at the heal (all: {now:?}, at heal {at_heal:?})"
            ));
        }
    }
    // Orders agree position by position; no transaction twice.
    let orders: Vec<_> = (0..n).map(|i| net.ordered_txs(i)).collect();
    for (i, txs) in orders.iter().enumerate() {
        let mut seen = HashSet::new();
        for r in txs {
            if !seen.insert(r.tx.clone()) {
                return Err(format!("node {i} ordered a transaction twice"));
            }
        }
        for other in &orders[i + 1..] {
            for r in txs {
                let theirs = other.iter().find(|o| o.position == r.position);
                if theirs.is_some_and(|o| o != r) {
                    return Err(format!(
                        "node {i} ordered differently at position {}",
                        r.position
                    ));
                }
            }
        }
    }
    // Everything acknowledged is ordered (by the nodes that did not join
    // by state sync after it: those lack the order before their base).
    let full = (0..n).find(|&i| net.order_base(i).is_none());
    if let Some(i) = full {
        let ordered: HashSet<Vec<u8>> = orders[i].iter().map(|r| r.tx.clone()).collect();
        let missing = net
            .acknowledged
            .iter()
            .filter(|tx| !ordered.contains(*tx))
            .count();
        if missing > 0 {
            return Err(format!(
                "{missing} acknowledged transactions never ordered at node {i}"
            ));
        }
    }
    Ok(())
}

#[test]
fn machines_over_random_networks() {
    if let Some(seed) = env("DAGGER_MACHINE_SIM_SEED") {
        if let Err(e) = one(seed) {
            panic!("seed {seed}: {e}");
        }
        return;
    }
    let count = env("DAGGER_MACHINE_SIM_SEEDS").unwrap_or(24);
    let first = env("DAGGER_MACHINE_SIM_FIRST").unwrap_or(0);
    let next = AtomicU64::new(first);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + count {
                    break;
                }
                if let Err(e) = one(seed) {
                    failures.lock().expect("lock").push(format!(
                        "seed {seed}: {e}\n  replay: DAGGER_MACHINE_SIM_SEED={seed} cargo test -p dagger-node --test machine_sim"
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Node 3 reaches the others in 400 ms, they reach each other in 5 ms:
/// its view is always dozens of rounds old, so every event it signs goes
/// stale. Its transactions must still be ordered while the load runs, each
/// exactly once (the run's checks), on several seeds.
#[test]
fn a_node_behind_a_slow_link_has_its_transactions_ordered_under_load() {
    for seed in 0..3u64 {
        let n = 4;
        let links = (0..n)
            .map(|a| {
                (0..n)
                    .map(|b| {
                        if a == 3 || b == 3 {
                            Link {
                                delay: 400 * MS,
                                jitter: 20 * MS,
                            }
                        } else {
                            Link {
                                delay: 5 * MS,
                                jitter: 2 * MS,
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        let scenario = Scenario {
            stakes: vec![1; n],
            byzantine: None,
            strategies: Strategies {
                behave: 1,
                withhold: 0,
                twins: 0,
                stale_fork: 0,
                lie: 0,
                boundary: 0,
            },
            links,
            partitions: Vec::new(),
            outages: Vec::new(),
            starts: vec![0; n],
            gossip_interval: 30 * MS,
            settle: 12 * SECOND,
            restart_prob: 0.0,
        };
        let load = Load {
            every: 20 * MS..60 * MS,
            ordered_during_load: Some(3),
            within: 4 * SECOND,
            after_heal: 20 * SECOND,
            ..Load::default()
        };
        if let Err(e) = run(scenario, seed, &load) {
            panic!("seed {seed}: {e}");
        }
    }
}
