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
//! CI runs 24 seeds; `DAGGER_MACHINE_SIM_SEEDS=1000` runs more,
//! `DAGGER_MACHINE_SIM_SEED=<seed>` replays one. (The byzantine creator's
//! strategies run against the consensus core in `dagger-netsim`, 500 seeds.)

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::machines::{Net, Timing};
use dagger_consensus::{Event, EventId};
use dagger_netsim::{Micros, Network, Scenario, MS, SECOND};
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
    let scenario = Scenario::random(seed);
    // Every node honest here, with equal stakes (the harness's roster).
    let n = scenario.n();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // The node's idle interval; events at most every 20 ms (the node's
    // default allows 2 ms, which only multiplies the events here).
    let timing = Timing {
        idle: Duration::from_millis(500),
        spacing: Duration::from_millis(20),
    };
    let mut net = Net::with_timing(n, 64, timing);
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
    let end = healed + 10 * SECOND;
    let interval = scenario.gossip_interval.max(20 * MS);
    let mut next_tick: Vec<Micros> = (0..n)
        .map(|i| scenario.starts[i] + rng.gen_range(0..=interval))
        .collect();
    let mut next_submit = rng.gen_range(0..200 * MS);
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
            next_submit = now + rng.gen_range(200 * MS..1_500 * MS);
            let i = rng.gen_range(0..n);
            // Nothing new in the last seconds: what was acknowledged must
            // all be ordered by the end.
            if net.up(i) && now + 5 * SECOND < end {
                net.submit(i);
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
                    let (events, behind) = m.sync_answer_now(&tips, ordered, &missing, 4_096);
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
    let next = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= count {
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
