//! Snapshot / restore: a restored instance behaves exactly like the one
//! snapshotted. Random gossip schedules (forking creators, roster changes,
//! arbitrary delivery, lazy polling, small waiting areas) are fed to an
//! original instance; at random points it is snapshotted and restored, and
//! from then on the original and every restored copy get the same calls
//! and must give the same answers to all of them. Seeds are printed on
//! failure (`DAGGER_SEED` moves the base seed).

mod common;

use common::*;
use dagger_consensus::{
    Config, CreateError, CreatorId, Decided, Event, EventId, Hashgraph, InsertOutcome, Limits,
    Reject, Roster, ScheduleError, SnapshotError, ANCIENT_HORIZON, ROSTER_DELAY,
};
use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Everything a driver sees from one instance.
#[derive(Debug, PartialEq)]
enum Step {
    Insert(EventId, Result<InsertOutcome, Reject>),
    Decided(Box<Decided>),
    Scheduled(u64, Result<u64, ScheduleError>),
}

/// An instance and its driver: applies the scenario's roster changes when
/// their round comes out of `poll`, logs every call's answer and the
/// events `insert` accepted (what a node persists).
struct Node {
    hg: Hashgraph,
    changes: Vec<(u64, Roster)>,
    log: Vec<Step>,
    accepted: Vec<Event>,
}

impl Node {
    fn new(hg: Hashgraph, changes: &[(u64, Roster)]) -> Node {
        Node {
            hg,
            changes: changes.to_vec(),
            log: Vec::new(),
            accepted: Vec::new(),
        }
    }
    fn insert(&mut self, e: &Event) {
        let r = self.hg.insert(e.clone());
        if let Err(reject) = &r {
            // Every simulated event is valid: only timing may refuse it.
            assert!(!reject.is_fault(), "{reject:?}");
        }
        if matches!(
            r,
            Ok(InsertOutcome::Inserted(_) | InsertOutcome::Buffered { .. } | InsertOutcome::Parked)
        ) {
            self.accepted.push(e.clone());
        }
        self.log.push(Step::Insert(e.id(), r));
    }
    fn pump(&mut self) {
        while let Some(d) = self.hg.poll() {
            let r = d.round_received;
            self.log.push(Step::Decided(Box::new(d)));
            for (at, roster) in &self.changes {
                if *at == r {
                    let s = self.hg.schedule_roster_change(r, roster.clone());
                    self.log.push(Step::Scheduled(r, s));
                }
            }
        }
    }
}

struct Scenario {
    keys: Vec<SigningKey>,
    config: Config,
    genesis: Roster,
    changes: Vec<(u64, Roster)>,
    delivery: Vec<Event>,
    /// Poll after every `poll_every`-th insert (large values let
    /// consensus fall behind, so events get parked).
    poll_every: usize,
    /// Ids to query with `event_info` / `event`.
    probe: Vec<EventId>,
}

/// Kinds of schedule, cycled through by [`batch`] (N cycles separately).
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Everything in a random order (the parent buffer sorts it out).
    Shuffled,
    /// One honest participant's view in topological order, with changes.
    Rosters,
    /// Long enough to prune, polled after every insert.
    Long,
    /// Long, polled rarely: consensus falls more than `ROSTER_DELAY`
    /// rounds behind, so events are parked.
    Lazy,
    /// Shuffled, with tiny waiting areas (evictions, `TooFarAhead`).
    Tight,
    /// Long and shuffled, polled every few inserts.
    LongShuffled,
}

fn scenario(seed: u64, n: usize, kind: Kind) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let f = (n - 1) / 3;
    let byzantine: Vec<usize> = (0..rng.gen_range(0..=f)).map(|i| n - 1 - i).collect();
    let keys: Vec<_> = (0..n).map(key).collect();
    let genesis = roster(&keys, &vec![1; n]);
    let mut changes = Vec::new();
    if matches!(kind, Kind::Rosters) || rng.gen_bool(0.4) {
        // A stake change ordered in an early round, sometimes dropping a
        // forker, sometimes followed by a second change restoring equal
        // stakes.
        let r1 = rng.gen_range(1..6);
        let mut members: Vec<(CreatorId, u64)> = keys
            .iter()
            .map(|k| (CreatorId::from(k), rng.gen_range(1..=2)))
            .collect();
        if !byzantine.is_empty() && rng.gen_bool(0.25) {
            let gone = CreatorId::from(&keys[byzantine[0]]);
            members.retain(|(c, _)| *c != gone);
        }
        changes.push((r1, Roster::new(members).expect("valid roster")));
        if rng.gen_bool(0.5) {
            changes.push((r1 + rng.gen_range(1..10), genesis.clone()));
        }
    }
    // Birth rounds depend on the rosters: the simulated network applies
    // the same changes.
    let mut sim = Sim::new(n, &byzantine, &[]);
    sim.fork_prob = 0.25;
    sim.roster_changes = changes.clone();
    sim.genesis(&mut rng);
    let long = matches!(kind, Kind::Long | Kind::Lazy | Kind::LongShuffled);
    let steps_per_node = match (long, n) {
        (false, _) => 30,
        (true, 4) => 250,
        (true, 7) => 160,
        (true, _) => 150,
    };
    for _ in 0..steps_per_node * n {
        sim.step(&mut rng);
    }
    let arbitrary = matches!(kind, Kind::Shuffled | Kind::Tight | Kind::LongShuffled);
    let honest: Vec<usize> = (0..n).filter(|i| !byzantine.contains(i)).collect();
    let events = if arbitrary {
        sim.all.clone()
    } else {
        sim.view(*honest.choose(&mut rng).expect("an honest node"))
    };
    let delivery = delivery_order(&events, arbitrary, &mut rng);
    let poll_every = match kind {
        Kind::Lazy => 40 * n * n,
        Kind::Shuffled | Kind::LongShuffled => rng.gen_range(1..12),
        _ => 1,
    };
    let mut config = config();
    if matches!(kind, Kind::Tight) {
        config.limits = Limits {
            max_buffered_events: rng.gen_range(5..60),
            max_parked_events: rng.gen_range(5..60),
            ..Limits::default()
        };
    }
    let mut probe: Vec<EventId> = sim.all.iter().map(Event::id).collect();
    probe.push(EventId([0xEE; 32]));
    Scenario {
        keys,
        config,
        genesis,
        changes,
        delivery,
        poll_every,
        probe,
    }
}

/// What the snapshots taken in a batch of schedules covered (so the test
/// cannot pass by only ever snapshotting trivial states).
#[derive(Default, Debug)]
struct Coverage {
    snapshots: usize,
    pruned: usize,
    buffered: usize,
    parked: usize,
    evidence: usize,
    pending_roster_change: usize,
    undecided_rounds: usize,
    ordered_after_restore: usize,
}

/// Every read-only (and mark-only) query answers the same on both.
fn assert_same(a: &mut Hashgraph, b: &mut Hashgraph, probe: &[EventId], ctx: &str) {
    assert_eq!(a.stats(), b.stats(), "{ctx}: stats");
    let tips = a.tips();
    assert_eq!(tips, b.tips(), "{ctx}: tips");
    for id in probe {
        assert_eq!(a.event_info(id), b.event_info(id), "{ctx}: event_info");
        assert_eq!(a.event(id), b.event(id), "{ctx}: event");
        if let Some(e) = a.event(id) {
            assert_eq!(
                a.latest_of(&e.creator()),
                b.latest_of(&e.creator()),
                "{ctx}: latest_of"
            );
        }
    }
    let d = a.stats().last_decided_round;
    for r in d.saturating_sub(2)..=d + ROSTER_DELAY + 1 {
        assert_eq!(a.roster_at(r), b.roster_at(r), "{ctx}: roster at {r}");
    }
    let some_tips: Vec<EventId> = tips.iter().step_by(2).copied().collect();
    let old: Vec<EventId> = probe.iter().step_by(7).copied().collect();
    for peer in [vec![], tips.clone(), some_tips, old] {
        assert_eq!(
            a.events_unknown_to(&peer),
            b.events_unknown_to(&peer),
            "{ctx}: events_unknown_to"
        );
    }
    let held = |hg: &Hashgraph| -> Vec<(EventId, bool)> {
        hg.held_events()
            .into_iter()
            .map(|(e, ordered)| (e.id(), ordered))
            .collect()
    };
    assert_eq!(held(a), held(b), "{ctx}: held events");
    let (sa, sb) = (a.snapshot(), b.snapshot());
    if sa != sb {
        let at = sa.iter().zip(&sb).position(|(x, y)| x != y);
        std::fs::write("/tmp/snap_a", &sa).ok();
        std::fs::write("/tmp/snap_b", &sb).ok();
        panic!(
            "{ctx}: snapshots differ: lengths {} {}, first difference at {at:?}",
            sa.len(),
            sb.len()
        );
    }
}

/// Restore `bytes` and check the round trip and the immediate answers.
fn restored(s: &Scenario, bytes: &[u8], from: &mut Hashgraph, ctx: &str) -> Hashgraph {
    let mut hg = Hashgraph::restore(s.config.clone(), bytes)
        .unwrap_or_else(|e| panic!("{ctx}: restore failed: {e}"));
    assert!(hg.snapshot() == bytes, "{ctx}: snapshot(restore(s)) != s");
    assert_same(from, &mut hg, &s.probe, ctx);
    hg
}

fn one_schedule(seed: u64, n: usize, kind: Kind, cov: &mut Coverage) {
    let s = scenario(seed, n, kind);
    let ctx = format!("seed {seed} n {n} {kind:?}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED);
    let len = s.delivery.len();
    let mut cuts: Vec<usize> = vec![rng.gen_range(0..=len), rng.gen_range(len / 2..=len)];
    cuts.sort_unstable();
    let mut orig = Node::new(
        Hashgraph::new(s.config.clone(), s.genesis.clone()),
        &s.changes,
    );
    // (restored node, length of the original's log when it was made)
    let mut copies: Vec<(Node, usize)> = Vec::new();
    for i in 0..=len {
        for _ in cuts.iter().filter(|&&c| c == i) {
            let bytes = orig.hg.snapshot();
            let ctx = format!("{ctx} cut {i}/{len}");
            let hg = match copies.last_mut() {
                // Restore the second copy from the first one's snapshot:
                // restored instances must snapshot like the original.
                Some((prev, _)) => {
                    let again = prev.hg.snapshot();
                    assert!(again == bytes, "{ctx}: copy snapshots differently");
                    restored(&s, &again, &mut orig.hg, &ctx)
                }
                None => restored(&s, &bytes, &mut orig.hg, &ctx),
            };
            // A throw-away copy shows what is pending without touching the
            // instances under comparison.
            let mut probe = Hashgraph::restore(s.config.clone(), &bytes).expect("restores");
            let st = probe.stats();
            cov.snapshots += 1;
            cov.pruned += usize::from(st.pruned_through_round > 0);
            cov.buffered += usize::from(st.buffered_events > 0);
            cov.parked += usize::from(st.parked_events > 0);
            cov.evidence += usize::from(!probe.take_equivocations().is_empty());
            cov.undecided_rounds += usize::from(st.last_round_created > st.last_decided_round + 2);
            let d = st.last_decided_round;
            cov.pending_roster_change +=
                usize::from(probe.roster_at(d + ROSTER_DELAY) != probe.roster_at(d + 1));
            copies.push((Node::new(hg, &s.changes), orig.log.len()));
        }
        let Some(e) = s.delivery.get(i) else { break };
        let poll = (i + 1) % s.poll_every == 0;
        orig.insert(e);
        for (c, _) in copies.iter_mut() {
            c.insert(e);
        }
        if poll {
            orig.pump();
            for (c, _) in copies.iter_mut() {
                c.pump();
            }
        }
    }
    orig.pump();
    for (c, _) in copies.iter_mut() {
        c.pump();
    }
    for (k, (c, at)) in copies.iter_mut().enumerate() {
        let ctx = format!("{ctx} copy {k}");
        assert_eq!(orig.log.len(), *at + c.log.len(), "{ctx}: log length");
        for (j, (a, b)) in orig.log[*at..].iter().zip(&c.log).enumerate() {
            assert_eq!(a, b, "{ctx}: step {j} after the snapshot");
        }
        cov.ordered_after_restore += c
            .log
            .iter()
            .filter(|s| matches!(s, Step::Decided(d) if !d.events.is_empty()))
            .count();
        assert_same(&mut orig.hg, &mut c.hg, &s.probe, &ctx);
    }
    // The same own events are created (or refused) everywhere.
    let mut tips = orig.hg.tips();
    tips.push(EventId([0xEE; 32]));
    for (who, key) in s.keys.iter().enumerate() {
        let me = CreatorId::from(key);
        let op = tips
            .iter()
            .copied()
            .find(|t| orig.hg.event(t).is_none_or(|e| e.creator() != me));
        let now = 1_000_000 + who as u64;
        let txs = vec![vec![who as u8; 3]];
        let a: Result<Event, CreateError> = orig.hg.create_event(key, txs.clone(), now, op);
        for (c, _) in copies.iter_mut() {
            let b = c.hg.create_event(key, txs.clone(), now, op);
            assert_eq!(a, b, "{ctx}: create_event for creator {who}");
        }
    }
    orig.pump();
    let evidence = orig.hg.take_equivocations();
    for (k, (c, _)) in copies.iter_mut().enumerate() {
        c.pump();
        let ctx = format!("{ctx} copy {k} after create_event");
        assert_eq!(evidence, c.hg.take_equivocations(), "{ctx}: evidence");
        assert_same(&mut orig.hg, &mut c.hg, &s.probe, &ctx);
    }
}

fn batch(offset: u64, count: u64) -> Coverage {
    let base: u64 = std::env::var("DAGGER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5AA9_5407);
    let mut cov = Coverage::default();
    for i in offset..offset + count {
        let seed = base.wrapping_add(i);
        let kind = [
            Kind::Shuffled,
            Kind::Rosters,
            Kind::Long,
            Kind::Lazy,
            Kind::Tight,
            Kind::LongShuffled,
        ][(i % 6) as usize];
        let n = [4, 7, 10][((i / 6) % 3) as usize];
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            one_schedule(seed, n, kind, &mut cov)
        }));
        if let Err(e) = r {
            eprintln!("FAILED: seed {seed} n {n} {kind:?} (schedule i={i})");
            std::panic::resume_unwind(e);
        }
    }
    eprintln!("{cov:?}");
    cov
}

fn assert_covered(c: &Coverage) {
    assert!(c.snapshots >= 80, "{c:?}");
    for (what, hits) in [
        ("pruned", c.pruned),
        ("buffered", c.buffered),
        ("parked", c.parked),
        ("evidence", c.evidence),
        ("pending roster change", c.pending_roster_change),
        ("undecided rounds", c.undecided_rounds),
    ] {
        assert!(hits >= 3, "too few snapshots with {what}: {c:?}");
    }
    assert!(c.ordered_after_restore >= c.snapshots, "{c:?}");
}

#[test]
fn restored_instances_behave_identically_0() {
    assert_covered(&batch(0, 45));
}

#[test]
fn restored_instances_behave_identically_1() {
    assert_covered(&batch(45, 45));
}

/// A node's restart: snapshots every few decided rounds while running;
/// after a crash it restores the last snapshot and replays only the
/// events accepted after it. The long run prunes, so every snapshot is of
/// a pruned window and the replay never needs an event from before it.
#[test]
fn restart_from_snapshot_and_event_log_after_pruning() {
    for (n, steps, seed) in [(4usize, 2400usize, 11u64), (7, 2400, 12)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let keys: Vec<_> = (0..n).map(key).collect();
        let change = Roster::new(
            keys.iter()
                .enumerate()
                // The forker (n - 1) keeps stake 1, well under a third.
                .map(|(i, k)| (CreatorId::from(k), 1 + (i % 2 == 1 && i < n - 1) as u64)),
        )
        .expect("valid");
        let changes = vec![(20u64, change)];
        let mut sim = Sim::new(n, &[n - 1], &[]);
        sim.roster_changes = changes.clone();
        sim.genesis(&mut rng);
        for _ in 0..steps {
            sim.step(&mut rng);
        }
        let order = delivery_order(&sim.all, false, &mut rng);
        let mut live = Node::new(
            Hashgraph::new(config(), roster(&keys, &vec![1; n])),
            &changes,
        );
        // (snapshot, accepted events and log entries it covers)
        let mut snaps: Vec<(Vec<u8>, usize, usize)> = Vec::new();
        let mut last_snap_round = 0;
        let crash = order.len() * 3 / 4;
        for e in &order[..crash] {
            live.insert(e);
            live.pump();
            let d = live.hg.stats().last_decided_round;
            if d >= last_snap_round + 3 {
                last_snap_round = d;
                snaps.push((live.hg.snapshot(), live.accepted.len(), live.log.len()));
            }
        }
        let stats = live.hg.stats();
        assert!(
            stats.pruned_through_round > ANCIENT_HORIZON,
            "n {n}: {stats:?}"
        );
        let pruned_snaps: Vec<&(Vec<u8>, usize, usize)> = snaps
            .iter()
            .filter(|(b, _, _)| {
                Hashgraph::restore(config(), b)
                    .expect("restores")
                    .stats()
                    .pruned_through_round
                    > 0
            })
            .collect();
        assert!(pruned_snaps.len() >= 5, "n {n}: {}", pruned_snaps.len());
        // Restart from the latest snapshot and from an older one.
        for (bytes, accepted_at, log_at) in [pruned_snaps[1], pruned_snaps[pruned_snaps.len() - 2]]
        {
            let hg = Hashgraph::restore(config(), bytes).expect("restores");
            let mut node = Node::new(hg, &changes);
            for e in &live.accepted[*accepted_at..] {
                node.insert(e);
                node.pump();
            }
            // Same decisions as the live node made after the snapshot.
            let decided = |log: &[Step]| -> Vec<Decided> {
                log.iter()
                    .filter_map(|s| match s {
                        Step::Decided(d) => Some((**d).clone()),
                        _ => None,
                    })
                    .collect()
            };
            let expect = decided(&live.log[*log_at..]);
            assert!(!expect.is_empty());
            assert!(expect.iter().any(|d| !d.pruned.is_empty()));
            assert_eq!(decided(&node.log), expect, "n {n}");
            assert!(node.hg.snapshot() == live.hg.snapshot(), "n {n}");
            // And both carry on identically.
            let mut live2 = Node::new(
                Hashgraph::restore(config(), &live.hg.snapshot()).expect("restores"),
                &changes,
            );
            for e in &order[crash..] {
                node.insert(e);
                node.pump();
                live2.insert(e);
                live2.pump();
            }
            assert_eq!(node.log[node.log.len() - live2.log.len()..], live2.log[..]);
            assert!(node.hg.snapshot() == live2.hg.snapshot(), "n {n}");
        }
    }
}

#[test]
fn restore_refuses_another_network_and_foreign_bytes() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut sim = Sim::new(4, &[], &[]);
    sim.genesis(&mut rng);
    for _ in 0..100 {
        sim.step(&mut rng);
    }
    let mut hg = Hashgraph::new(config(), roster(&sim.keys, &[1; 4]));
    run_node(&mut hg, &sim.all);
    let bytes = hg.snapshot();
    let mut other = config();
    other.network_id = [8; 32];
    assert_eq!(
        Hashgraph::restore(other, &bytes).err(),
        Some(SnapshotError::NetworkMismatch {
            expected: [8; 32],
            found: NET
        })
    );
    assert_eq!(
        Hashgraph::restore(config(), b"").err(),
        Some(SnapshotError::Truncated)
    );
    assert_eq!(
        Hashgraph::restore(config(), b"DAGGERHG\x01\x00").err(),
        Some(SnapshotError::Truncated)
    );
    assert_eq!(
        Hashgraph::restore(config(), &bytes[1..]).err(),
        Some(SnapshotError::BadMagic)
    );
    let mut v1 = bytes.clone();
    v1[8] = 1; // the format before birth rounds
    assert_eq!(
        Hashgraph::restore(config(), &v1).err(),
        Some(SnapshotError::UnsupportedVersion(1))
    );
    let mut flipped = bytes.clone();
    let mid = bytes.len() / 2;
    flipped[mid] ^= 0x10;
    assert_eq!(
        Hashgraph::restore(config(), &flipped).err(),
        Some(SnapshotError::ChecksumMismatch)
    );
    assert_eq!(
        Hashgraph::restore(config(), &bytes[..bytes.len() - 1]).err(),
        Some(SnapshotError::ChecksumMismatch)
    );
    // Valid bytes, but more held than this configuration allows.
    let mut small = config();
    small.limits.max_event_bytes = 100;
    assert!(matches!(
        Hashgraph::restore(small, &bytes),
        Err(SnapshotError::LimitExceeded { .. })
    ));
    // A fresh instance round-trips too.
    let fresh = Hashgraph::new(config(), roster(&sim.keys, &[1; 4]));
    let b = fresh.snapshot();
    assert_eq!(
        Hashgraph::restore(config(), &b)
            .expect("restores")
            .snapshot(),
        b
    );
}

/// The waiting areas are part of the state: buffered events come out of
/// a restored instance when their parents arrive, parked ones when
/// consensus catches up, and a smaller configured capacity refuses the
/// snapshot instead of silently dropping events.
#[test]
fn waiting_areas_survive_restore() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut sim = Sim::new(4, &[], &[]);
    sim.genesis(&mut rng);
    for _ in 0..400 {
        sim.step(&mut rng);
    }
    let mut hg = Hashgraph::new(config(), roster(&sim.keys, &[1; 4]));
    // Hold back a few early events (children get buffered) and never poll
    // (events born right after the fixed rounds get parked; those born
    // beyond what may wait are left out).
    let horizon = dagger_consensus::ROSTER_DELAY + dagger_consensus::MAX_FUTURE_ROUNDS;
    let all: Vec<Event> = sim
        .all
        .iter()
        .filter(|e| e.birth_round() <= horizon)
        .cloned()
        .collect();
    let held_back: Vec<Event> = all[4..8].to_vec();
    let mut rest = Vec::new();
    for (i, e) in all.iter().enumerate() {
        if (4..8).contains(&i) {
            continue;
        }
        match hg.insert(e.clone()) {
            Ok(_) => {}
            Err(r) => panic!("{r:?}"),
        }
        rest.push(e.clone());
    }
    let st = hg.stats();
    assert!(st.buffered_events > 1, "{st:?}");
    let mut hg2 = Hashgraph::new(config(), roster(&sim.keys, &[1; 4]));
    for e in &all {
        hg2.insert(e.clone()).expect("valid");
    }
    let st2 = hg2.stats();
    assert!(st2.parked_events > 0, "{st2:?}");
    for (mut a, extra) in [(hg, held_back), (hg2, Vec::new())] {
        let bytes = a.snapshot();
        let mut tight = config();
        tight.limits.max_buffered_events = a.stats().buffered_events.max(2) - 1;
        tight.limits.max_parked_events = a.stats().parked_events.max(1) - 1;
        assert!(matches!(
            Hashgraph::restore(tight, &bytes),
            Err(SnapshotError::LimitExceeded { .. })
        ));
        let mut b = Hashgraph::restore(config(), &bytes).expect("restores");
        let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
        for e in &extra {
            assert_eq!(a.insert(e.clone()), b.insert(e.clone()));
        }
        drain(&mut a, &mut out_a, &mut Vec::new());
        drain(&mut b, &mut out_b, &mut Vec::new());
        assert!(out_a.len() > 50, "{}", out_a.len());
        assert_eq!(out_a, out_b);
        assert_eq!(a.stats(), b.stats());
        assert_eq!(a.stats().buffered_events + a.stats().parked_events, 0);
        assert!(a.snapshot() == b.snapshot());
    }
}

#[test]
#[ignore = "long soak: DAGGER_SOAK_COUNT=3000 cargo test --release -p dagger-consensus --test snapshot -- --ignored"]
fn soak_restored_instances_behave_identically() {
    let count: u64 = std::env::var("DAGGER_SOAK_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    assert_covered(&batch(1_000_000, count));
}

/// A state taken by someone else is checked event by event: a snapshot
/// whose checksum was recomputed around a forged signature restores (it
/// trusts stored signatures) but fails `verify_signatures`.
#[test]
fn a_forged_event_in_a_recomputed_snapshot_is_found() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut sim = Sim::new(4, &[], &[]);
    sim.genesis(&mut rng);
    for _ in 0..60 {
        sim.step(&mut rng);
    }
    let hg = &sim.parts[0].hg;
    let bytes = hg.snapshot();
    let restored = Hashgraph::restore(config(), &bytes).expect("restores");
    assert_eq!(restored.verify_signatures(), Ok(()));
    // Flip one signature bit of a held event and recompute the checksum.
    let (victim, _) = hg.held_events()[3];
    let encoded = victim.encode();
    let at = bytes
        .windows(encoded.len())
        .position(|w| w == encoded.as_slice())
        .expect("the event is stored verbatim");
    let mut forged = bytes.clone();
    forged[at + encoded.len() - 1] ^= 0x01;
    let body = forged.len() - 32;
    let sum = *blake3::hash(&forged[..body]).as_bytes();
    forged[body..].copy_from_slice(&sum);
    let restored = Hashgraph::restore(config(), &forged).expect("restore trusts signatures");
    assert_eq!(restored.verify_signatures(), Err(victim.id()));
}
