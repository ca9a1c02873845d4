//! Liveness, order invariance, restart, stake weighting, roster changes,
//! pruning and sync.

mod common;

use common::*;
use dagger_consensus::{
    CreateError, CreatorId, Decided, Event, EventId, Hashgraph, InsertOutcome, Reject, Roster,
    ANCIENT_HORIZON, ROSTER_DELAY,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn simulate(n: usize, byz: &[usize], silent: &[usize], steps: usize, seed: u64) -> Sim {
    simulate_with(Sim::new(n, byz, silent), steps, seed)
}

/// Run a prepared simulation (stakes and roster changes set: birth rounds
/// depend on them, so every node must use the same ones).
fn simulate_with(mut sim: Sim, steps: usize, seed: u64) -> Sim {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    sim.genesis(&mut rng);
    for _ in 0..steps {
        sim.step(&mut rng);
    }
    sim
}

#[test]
fn liveness_with_f_silent_creators() {
    for (n, silent) in [(4usize, vec![3usize]), (7, vec![5, 6]), (10, vec![7, 8, 9])] {
        let sim = simulate(n, &[], &silent, 60 * n, n as u64);
        let mut hg = Hashgraph::new(config(), roster(&sim.keys, &vec![1; n]));
        let mut rounds_seen = Vec::new();
        let mut out = Vec::new();
        let mut decided = Vec::new();
        for (i, e) in sim.all.iter().enumerate() {
            hg.insert(e.clone()).expect("honest");
            drain(&mut hg, &mut out, &mut decided);
            if i % 50 == 49 {
                rounds_seen.push(hg.stats().last_decided_round);
            }
        }
        // Decided rounds keep growing through the run.
        let half = rounds_seen.len() / 2;
        assert!(rounds_seen[half] > rounds_seen[0], "n={n}: {rounds_seen:?}");
        assert!(
            *rounds_seen.last().expect("samples") > rounds_seen[half],
            "n={n}: {rounds_seen:?}"
        );
        assert!(
            hg.stats().last_decided_round >= 5,
            "n={n}: {:?}",
            hg.stats()
        );
        // Nothing by a silent creator, obviously, but everyone else is ordered.
        assert!(out.len() > sim.all.len() / 2);
    }
}

#[test]
fn order_is_invariant_under_topological_delivery_and_polling_pattern() {
    let sim = simulate(7, &[6], &[], 200, 77);
    let mut rng = ChaCha8Rng::seed_from_u64(78);
    let mut reference: Option<Vec<OrderedRow>> = None;
    for trial in 0..6 {
        let order = delivery_order(&sim.all, false, &mut rng);
        let mut hg = Hashgraph::new(config(), roster(&sim.keys, &[1; 7]));
        let out = if trial % 2 == 0 {
            run_node(&mut hg, &order)
        } else {
            // Insert everything first, poll only at the end.
            for e in &order {
                hg.insert(e.clone()).expect("valid");
            }
            let mut out = Vec::new();
            drain(&mut hg, &mut out, &mut Vec::new());
            out
        };
        assert!(!out.is_empty());
        match &reference {
            None => reference = Some(out),
            Some(r) => assert_eq!(&out, r, "trial {trial}"),
        }
    }
}

#[test]
fn unequal_stakes_agree() {
    // One creator holds 40% of the stake.
    let stakes = [40u64, 20, 20, 20];
    for seed in 0..40u64 {
        let sim = simulate_with(Sim::with_stakes(4, &[], &[], &stakes), 80, 1000 + seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let outs: Vec<Vec<OrderedRow>> = (0..3)
            .map(|k| {
                let order = delivery_order(&sim.all, k == 1, &mut rng);
                let mut hg = Hashgraph::new(config(), roster(&sim.keys, &stakes));
                run_node(&mut hg, &order)
            })
            .collect();
        let min = assert_agree(&outs, &format!("stake seed {seed}"));
        assert!(min > 0, "seed {seed}");
    }
}

#[test]
fn a_forty_percent_creator_cannot_decide_alone_and_silent_majority_stalls() {
    // Creators 1..3 (60%) silent: 40% is not a supermajority, nothing past
    // round 1 can ever be decided.
    let sim = simulate(4, &[], &[1, 2, 3], 40, 3);
    let mut hg = Hashgraph::new(config(), roster(&sim.keys, &[40, 20, 20, 20]));
    let out = run_node(&mut hg, &sim.all);
    assert!(out.is_empty());
    assert_eq!(hg.stats().last_decided_round, 0);
    assert_eq!(hg.stats().last_round_created, 1);
    // With exactly 2/3 of the stake active (2 of 3 equal creators), no
    // round advances either: exactly 2/3 is not a supermajority.
    let sim = simulate(3, &[], &[2], 60, 4);
    let mut hg = Hashgraph::new(config(), roster(&sim.keys, &[1, 1, 1]));
    let out = run_node(&mut hg, &sim.all);
    assert!(out.is_empty());
    assert_eq!(hg.stats().last_round_created, 1);
}

/// Node driver that records accepted events and applies roster changes.
struct Driver {
    hg: Hashgraph,
    accepted: Vec<Event>,
    out: Vec<OrderedRow>,
    decided: Vec<Decided>,
    changes: Vec<(u64, Roster)>,
}

impl Driver {
    fn new(hg: Hashgraph, changes: Vec<(u64, Roster)>) -> Driver {
        Driver {
            hg,
            accepted: Vec::new(),
            out: Vec::new(),
            decided: Vec::new(),
            changes,
        }
    }
    fn feed(&mut self, e: &Event) -> Result<(), Reject> {
        match self.hg.insert(e.clone())? {
            InsertOutcome::Duplicate => {}
            _ => self.accepted.push(e.clone()),
        }
        self.pump();
        Ok(())
    }
    fn pump(&mut self) {
        while let Some(d) = self.hg.poll() {
            for o in &d.events {
                self.out.push(OrderedRow {
                    id: o.event.id(),
                    round_received: o.round_received,
                    time: o.consensus_time_ns,
                    index: o.order_index,
                    hash: o.running_hash,
                });
            }
            for (r, roster) in &self.changes {
                if *r == d.round_received {
                    self.hg
                        .schedule_roster_change(*r, roster.clone())
                        .expect("window open");
                }
            }
            self.decided.push(d);
        }
    }
}

#[test]
fn restart_from_stored_events_reproduces_the_order() {
    let keys: Vec<_> = (0..4).map(key).collect();
    let change = Roster::new(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (CreatorId::from(k), if i == 0 { 2 } else { 1 })),
    )
    .expect("valid");
    let changes = vec![(3u64, change)];
    let mut sim = Sim::new(4, &[3], &[]);
    sim.roster_changes = changes.clone();
    let sim = simulate_with(sim, 800, 31);
    let mut rng = ChaCha8Rng::seed_from_u64(32);
    let order = delivery_order(&sim.all, false, &mut rng);
    let mut live = Driver::new(
        Hashgraph::new(config(), roster(&keys, &[1; 4])),
        changes.clone(),
    );
    // Crash point: the live node stops after 70% of the events.
    let cut = order.len() * 7 / 10;
    for e in &order[..cut] {
        live.feed(e).expect("valid");
    }
    let mut restarted = Driver::new(
        Hashgraph::new(config(), roster(&keys, &[1; 4])),
        changes.clone(),
    );
    for e in &live.accepted {
        restarted.feed(e).expect("valid");
    }
    assert!(live.out.len() > 10);
    assert_eq!(restarted.out, live.out);
    assert_eq!(
        restarted.hg.stats().running_hash,
        live.hg.stats().running_hash
    );
    // Both continue identically afterwards.
    for e in &order[cut..] {
        live.feed(e).expect("valid");
        restarted.feed(e).expect("valid");
    }
    assert_eq!(restarted.out, live.out);
    assert!(
        live.hg.stats().last_decided_round > 3 + ROSTER_DELAY,
        "{:?} {}",
        live.hg.stats(),
        live.out.len()
    );
}

#[test]
fn roster_change_applies_at_the_same_round_everywhere() {
    // Creators 0..3 start; 4 is admitted, 3 removed and 0's stake raised by
    // a change "ordered" in round 2, effective at 2 + ROSTER_DELAY.
    let keys: Vec<_> = (0..5).map(key).collect();
    let genesis = roster(&keys[..4], &[1, 1, 1, 1]);
    let next = Roster::new([
        (CreatorId::from(&keys[0]), 3),
        (CreatorId::from(&keys[1]), 1),
        (CreatorId::from(&keys[2]), 1),
        (CreatorId::from(&keys[4]), 2),
    ])
    .expect("valid");
    let changes = vec![(2u64, next.clone())];
    let effective = 2 + ROSTER_DELAY;

    // Every simulated node applies the change when it decides round 2;
    // creator 4 cannot create events before it counts, creator 3 after.
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut sim = Sim::with_genesis(5, &[], &[], genesis.clone());
    sim.roster_changes = changes.clone();
    sim.genesis(&mut rng);
    for _ in 0..1500 {
        sim.step(&mut rng);
    }
    sim.check("roster change");
    for p in &sim.parts {
        let s = p.hg.stats();
        assert!(s.last_decided_round > effective + 2, "{s:?}");
        assert!(p.hg.roster_at(effective) == &next);
    }
    let births = |c: usize| -> Vec<u64> {
        let creator = CreatorId::from(&keys[c]);
        sim.all
            .iter()
            .filter(|e| e.creator() == creator)
            .map(|e| e.birth_round())
            .collect()
    };
    let (new, gone) = (births(4), births(3));
    assert!(!new.is_empty() && new.iter().all(|&b| b >= effective));
    assert!(!gone.is_empty() && gone.iter().all(|&b| b < effective));

    // Every node, whatever the delivery order, agrees, and creator 4's
    // events only count from the effective round.
    let mut outs = Vec::new();
    for k in 0..3 {
        let order = delivery_order(&sim.all, k == 1, &mut rng);
        let mut d = Driver::new(Hashgraph::new(config(), genesis.clone()), changes.clone());
        // A creator admitted later is unknown until the change is applied:
        // such events are refused and, as a peer would, re-sent later.
        let mut queue = order;
        while !queue.is_empty() {
            let before = queue.len();
            let mut retry = Vec::new();
            for e in queue {
                match d.feed(&e) {
                    Ok(()) => {}
                    Err(Reject::UnknownCreator) | Err(Reject::TooFarAhead { .. }) => retry.push(e),
                    Err(r) => panic!("delivery {k}: {r:?} for {e:?} stats {:?}", d.hg.stats()),
                }
            }
            assert!(retry.len() < before, "no progress");
            queue = retry;
        }
        for e in &sim.all {
            if let Some(info) = d.hg.event_info(&e.id()) {
                if e.creator() == CreatorId::from(&keys[4]) {
                    assert!(info.round >= effective);
                }
                if e.creator() == CreatorId::from(&keys[3]) {
                    assert!(info.round < effective);
                }
            }
        }
        outs.push(d.out);
    }
    outs.extend(sim.honest_outputs());
    let min = assert_agree(&outs, "roster change");
    let joined = CreatorId::from(&keys[4]);
    let ordered_by_new = outs[0][..min]
        .iter()
        .filter(|r| {
            sim.all
                .iter()
                .any(|e| e.id() == r.id && e.creator() == joined)
        })
        .count();
    assert!(
        ordered_by_new > 0,
        "the admitted creator's events reach consensus"
    );
}

#[test]
fn memory_stays_flat_over_a_long_run() {
    let sim = simulate(4, &[3], &[], 3000, 99);
    let mut hg = Hashgraph::new(config(), roster(&sim.keys, &[1; 4]));
    let mut max_held = 0;
    let mut pruned: Vec<EventId> = Vec::new();
    let mut held_samples = Vec::new();
    for (i, e) in sim.all.iter().enumerate() {
        hg.insert(e.clone()).expect("valid");
        while let Some(d) = hg.poll() {
            pruned.extend(d.pruned);
        }
        let s = hg.stats();
        max_held = max_held.max(s.held_events);
        if i % 500 == 499 {
            held_samples.push(s.held_events);
        }
    }
    let s = hg.stats();
    assert!(s.pruned_through_round + ANCIENT_HORIZON >= s.last_decided_round);
    assert!(s.last_decided_round > 3 * ANCIENT_HORIZON, "{s:?}");
    // Held events are bounded by the horizon, not by the run length.
    assert!(
        max_held < sim.all.len() / 3,
        "max held {max_held} of {}",
        sim.all.len()
    );
    let late = &held_samples[held_samples.len() / 2..];
    let (lo, hi) = (
        late.iter().min().expect("samples"),
        late.iter().max().expect("samples"),
    );
    assert!(
        *hi < 2 * lo + 50,
        "held events keep growing: {held_samples:?}"
    );
    // Every pruned id is really gone and reported once.
    assert!(!pruned.is_empty());
    let mut sorted = pruned.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), pruned.len());
    assert!(pruned.iter().all(|id| hg.event_info(id).is_none()));
    assert_eq!(
        s.held_events + pruned.len() + s.buffered_events,
        sim.all.len()
    );
}

#[test]
fn sync_sends_exactly_what_the_peer_lacks_even_with_forks() {
    let sim = simulate(4, &[3], &[], 200, 5);
    let mut a = Hashgraph::new(config(), roster(&sim.keys, &[1; 4]));
    let mut b = Hashgraph::new(config(), roster(&sim.keys, &[1; 4]));
    for e in &sim.all {
        a.insert(e.clone()).expect("valid");
        drain(&mut a, &mut Vec::new(), &mut Vec::new());
    }
    // b holds a prefix.
    for e in &sim.all[..sim.all.len() / 2] {
        b.insert(e.clone()).expect("valid");
        drain(&mut b, &mut Vec::new(), &mut Vec::new());
    }
    let tips_b = b.tips();
    assert!(tips_b.len() >= 3);
    let missing = a.events_unknown_to(&tips_b);
    let held_by_b: std::collections::HashSet<EventId> =
        sim.all[..sim.all.len() / 2].iter().map(Event::id).collect();
    // Nothing b has is sent, everything it lacks is, parents first.
    assert!(missing.iter().all(|e| !held_by_b.contains(&e.id())));
    assert_eq!(missing.len(), sim.all.len() - held_by_b.len());
    for e in &missing {
        assert!(
            matches!(b.insert(e.clone()), Ok(InsertOutcome::Inserted(_))),
            "topological order"
        );
    }
    assert!(a.events_unknown_to(&b.tips()).is_empty());
    // A forker has several tips: every held event of any creator that has no
    // held self-child is listed, so every branch head of a fork is.
    let tips: std::collections::HashSet<EventId> = a.tips().into_iter().collect();
    let held: Vec<&Event> = sim
        .all
        .iter()
        .filter(|e| a.event_info(&e.id()).is_some())
        .collect();
    for e in &held {
        let has_child = held.iter().any(|c| c.self_parent() == Some(e.id()));
        assert_eq!(tips.contains(&e.id()), !has_child, "{e:?}");
    }
    let forker = CreatorId::from(&sim.keys[3]);
    if !a.take_equivocations().is_empty() {
        let heads = tips
            .iter()
            .filter(|t| a.event(t).expect("held").creator() == forker)
            .count();
        assert!(heads >= 1);
    }
    // Unknown tips are ignored: everything is sent.
    assert_eq!(
        a.events_unknown_to(&[EventId([0xEE; 32])]).len(),
        sim.all.len()
    );
}

#[test]
fn create_event_builds_on_own_chain_with_monotone_time() {
    let keys: Vec<_> = (0..4).map(key).collect();
    let mut hg = Hashgraph::new(config(), roster(&keys, &[1; 4]));
    let a0 = hg
        .create_event(&keys[0], vec![b"tx".to_vec()], 1_000, None)
        .expect("genesis");
    let b0 = hg
        .create_event(&keys[1], vec![], 1_000, None)
        .expect("genesis");
    // The clock goes back: time still increases along the chain.
    let a1 = hg
        .create_event(&keys[0], vec![], 500, Some(b0.id()))
        .expect("next");
    assert_eq!(a1.seq(), 1);
    assert_eq!(a1.self_parent(), Some(a0.id()));
    assert_eq!(a1.created_at_ns(), 1_001);
    assert!(hg
        .create_event(&keys[0], vec![], 2_000, Some(EventId([1; 32])))
        .is_err());
    assert!(hg.create_event(&key(50), vec![], 2_000, None).is_err());
    assert_eq!(hg.stats().held_events, 3);
}

/// A copy of creator 3 started late (empty state, caught up from old
/// events) signs on from an old position of 3's chain. By the time its
/// events reach an honest node, that node pruned the rounds the copy
/// forked in: the copy's first events are ancient there, and the later
/// ones are placed without them (an ancient parent is not needed) or wait.
/// The creator must be accused from the signed headers alone, whichever
/// of its events were placed.
#[test]
fn a_late_twin_whose_branch_never_becomes_placeable_is_still_accused() {
    let sim = simulate(4, &[], &[], 1_500, 77);
    let keys = &sim.keys;
    let mut honest = Hashgraph::new(config(), roster(keys, &[1; 4]));
    run_node(&mut honest, &sim.all);
    let pruned = honest.stats().pruned_through_round;
    assert!(pruned > 20, "the run must prune: {:?}", honest.stats());
    let _ = honest.take_equivocations();

    // The twin catches up on everything born up to round 3, then forks 3's
    // chain and keeps extending its own branch as it learns later rounds.
    let twin_key = &keys[3];
    let me = CreatorId::from(twin_key);
    let mut twin = Hashgraph::new(config(), roster(keys, &[1; 4]));
    let mut branch: Vec<Event> = Vec::new();
    let mut now = u64::MAX / 2;
    let last_round = sim.all.iter().map(Event::birth_round).max().unwrap_or(0);
    for round in 1..=last_round {
        for e in sim.all.iter().filter(|e| e.birth_round() == round) {
            let _ = twin.insert(e.clone());
        }
        drain(&mut twin, &mut Vec::new(), &mut Vec::new());
        if round < 3 {
            continue;
        }
        let self_parent = match branch.last() {
            Some(e) => Some(e.id()),
            None => twin.chain_head(&me).map(|h| h.id),
        };
        let other = twin.latest_of(&CreatorId::from(&keys[0]));
        now += 1_000;
        let Ok(e) = twin.build_event(twin_key, self_parent, other, now, vec![]) else {
            continue;
        };
        if twin.insert(e.clone()).is_ok() {
            branch.push(e);
        }
    }
    assert!(
        branch.len() > 20,
        "the twin built a branch: {}",
        branch.len()
    );
    assert!(
        branch.last().unwrap().birth_round() > pruned + dagger_consensus::LINK_ROUNDS,
        "the twin reached the honest node's live rounds"
    );

    let mut ancient = 0;
    for e in &branch {
        match honest.insert(e.clone()) {
            Err(Reject::Ancient { .. }) => ancient += 1,
            Ok(InsertOutcome::Buffered { .. }) | Ok(InsertOutcome::Inserted(_)) => {}
            other => panic!("a branch event was refused otherwise: {other:?}"),
        }
    }
    assert!(ancient > 0, "the branch starts in pruned rounds");
    let evidence = honest.take_equivocations();
    assert!(!evidence.is_empty(), "the twin was never accused");
    for ev in &evidence {
        assert_eq!(ev.verify(&NET), Ok(()));
        assert_eq!(ev.first.creator(), me);
    }
}

/// An own event that insertion would refuse is refused before it is
/// signed: the caller's check (a node's slashing protection, which records
/// the sequence number as used) never sees it, so an admitted operator
/// that tries to create before its admission takes effect is not left with
/// a used sequence number and a chain that can never continue.
#[test]
fn an_own_event_the_roster_refuses_is_never_shown_for_signing() {
    let keys: Vec<_> = (0..5).map(key).collect();
    let mut hg = Hashgraph::new(config(), roster(&keys[..4], &[1; 4]));
    let mut clock = 0u64;
    let mut effective = None;
    let mut step = |hg: &mut Hashgraph, c: usize| {
        clock += 1_000;
        let prev = CreatorId::from(&keys[(c + 3) % 4]);
        let op = hg.latest_of(&prev);
        hg.create_event(&keys[c], vec![vec![c as u8]], clock, op)
            .expect("member creates");
        clock
    };
    let mut shown = 0;
    let mut refused_before = 0;
    for i in 0..4_000 {
        let now = step(&mut hg, i % 4);
        while let Some(d) = hg.poll() {
            if effective.is_none() {
                let joined = roster(&keys, &[1; 5]);
                effective = Some(
                    hg.schedule_roster_change(d.round_received, joined)
                        .expect("window open"),
                );
            }
        }
        if effective.is_none() || i % 4 != 3 {
            continue;
        }
        let op = hg.latest_of(&CreatorId::from(&keys[3]));
        let mut seen = false;
        let made = hg.create_event_checked(&keys[4], vec![], now + 1, op, |_| {
            seen = true;
            Ok(())
        });
        shown += usize::from(seen);
        match made {
            Ok(e) => {
                assert!(e.birth_round() >= effective.unwrap());
                assert_eq!(e.seq(), 0, "no sequence number was used up before");
                assert_eq!(shown, 1);
                assert!(refused_before > 0, "the join was tried too early first");
                return;
            }
            Err(CreateError::Rejected(Reject::NotInRoster { round })) => {
                assert!(round < effective.unwrap());
                assert!(!seen, "an event the roster refuses was shown for signing");
                refused_before += 1;
            }
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    panic!("the admitted creator never created an event");
}
