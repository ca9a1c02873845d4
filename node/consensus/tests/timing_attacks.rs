//! One byzantine creator that controls timing, against the public API:
//! it must not halt the honest nodes without forking, crash one, or fork
//! without being accused, whatever the arrival order.
//!
//! Four equal stakes: honest 0, 1 and 2, byzantine 3. Honest nodes gossip
//! as nodes do (pull, create with `best_other_parent`, push).

mod common;

use common::{config, key, roster, NET};
use dagger_consensus::{
    CreatorId, Event, EventId, Hashgraph, InsertOutcome, ParentRef, Reject, UnsignedEvent,
};
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Net {
    keys: Vec<SigningKey>,
    nodes: Vec<Hashgraph>,
    orders: Vec<Vec<(EventId, [u8; 32])>>,
    clock: u64,
}

impl Net {
    fn new() -> Net {
        let keys: Vec<SigningKey> = (0..4).map(key).collect();
        let genesis = roster(&keys, &[1, 1, 1, 1]);
        Net {
            nodes: (0..3)
                .map(|_| Hashgraph::new(config(), genesis.clone()))
                .collect(),
            orders: vec![Vec::new(); 3],
            keys,
            clock: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1_000;
        self.clock
    }

    fn deliver(&mut self, to: usize, events: Vec<Event>) {
        for e in events {
            let _ = self.nodes[to].insert(e);
        }
        while let Some(d) = self.nodes[to].poll() {
            self.orders[to].extend(d.events.iter().map(|o| (o.event.id(), o.running_hash)));
        }
    }

    fn sync(&mut self, from: usize, to: usize) {
        let tips = self.nodes[to].tips();
        let answer = self.nodes[from].events_unknown_to(&tips);
        self.deliver(to, answer);
    }

    /// Honest node `c` pulls from `p`, creates with the node's policy and
    /// pushes the event to the other honest nodes (except `muted`).
    fn honest_step(&mut self, c: usize, p: usize, muted: Option<usize>) {
        self.sync(p, c);
        let me = CreatorId::from(&self.keys[c]);
        let fresh = self.nodes[c].latest_of(&CreatorId::from(&self.keys[p]));
        let op = self.nodes[c].best_other_parent(&me, fresh);
        let t = self.tick();
        let key = self.keys[c].clone();
        if let Ok(e) = self.nodes[c].create_event(&key, vec![vec![c as u8]], t, op) {
            for to in 0..3 {
                if to != c && Some(to) != muted {
                    self.deliver(to, vec![e.clone()]);
                }
            }
        }
        self.pump(c);
    }

    fn pump(&mut self, c: usize) {
        self.deliver(c, Vec::new());
    }

    fn random_step(&mut self, rng: &mut ChaCha8Rng, muted: Option<usize>) {
        let c = rng.gen_range(0..3);
        let p = (c + rng.gen_range(1..3)) % 3;
        self.honest_step(c, p, muted);
    }

    fn decided(&self, i: usize) -> u64 {
        self.nodes[i].stats().last_decided_round
    }

    fn settle(&mut self) {
        for a in 0..3 {
            for b in 0..3 {
                if a != b {
                    self.sync(b, a);
                }
            }
        }
    }

    fn assert_orders_agree(&self) {
        for i in 0..3 {
            for j in i + 1..3 {
                let n = self.orders[i].len().min(self.orders[j].len());
                assert_eq!(
                    self.orders[i][..n],
                    self.orders[j][..n],
                    "nodes {i} and {j} ordered differently"
                );
            }
        }
    }

    /// A copy of node `i` (to probe what it would do with an event).
    fn copy_of(&self, i: usize) -> Hashgraph {
        Hashgraph::restore(config(), &self.nodes[i].snapshot()).expect("own snapshot")
    }

    /// Held events of node `i` by honest creators, with their rounds.
    fn honest_held(&self, i: usize) -> Vec<(Event, u64)> {
        let byz = CreatorId::from(&self.keys[3]);
        self.nodes[i]
            .held_events()
            .into_iter()
            .filter(|(e, _)| e.creator() != byz)
            .map(|(e, _)| {
                let round = self.nodes[i].event_info(&e.id()).expect("held").round;
                (e.clone(), round)
            })
            .collect()
    }
}

/// The event `hg` computes for these parents, or, where its parents are
/// too old for `hg` to compute a round, one born in its highest parent's
/// round (what a creator may sign: the round is its own claim).
fn build_or_forge(
    hg: &mut Hashgraph,
    key: &SigningKey,
    sp: Option<&Event>,
    op: &Event,
    t: u64,
) -> Event {
    if let Ok(e) = hg.build_event(key, sp.map(Event::id), Some(op.id()), t, vec![]) {
        return e;
    }
    let pref = |e: &Event| ParentRef {
        id: e.id(),
        birth_round: e.birth_round(),
    };
    sign(
        key,
        UnsignedEvent {
            seq: sp.map_or(0, |p| p.seq() + 1),
            birth_round: sp.map_or(0, Event::birth_round).max(op.birth_round()),
            self_parent: sp.map(pref),
            other_parent: Some(pref(op)),
            created_at_ns: t,
            txs: vec![],
        },
    )
}

/// The byzantine creator stays quiet, then signs a valid, non-forking event
/// born exactly where the nodes that decided one round more find it ancient
/// while the node one round behind inserts it, and climbs a short chain on
/// it to the live round, which the behind node links. Every honest node must
/// go on deciding rounds.
#[test]
fn a_boundary_birth_chain_does_not_halt_the_network() {
    let mut attacked = 0;
    for seed in 0..6u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut net = Net::new();
        // Honest progress without the quiet creator.
        let mut steps = 0;
        while (0..3).any(|i| net.decided(i) < 24) {
            net.random_step(&mut rng, None);
            steps += 1;
            assert!(steps < 20_000, "seed {seed}: no progress before the attack");
        }
        // A moment when node 2 is exactly one decided round behind 0 and 1
        // (it misses the last pushes).
        let mut found = false;
        for _ in 0..5_000 {
            let muted = rng.gen_bool(0.7).then_some(2);
            net.random_step(&mut rng, muted);
            if net.decided(0) == net.decided(1) && net.decided(0) == net.decided(2) + 1 {
                found = true;
                break;
            }
        }
        assert!(found, "seed {seed}: never one round apart");

        // e0: no self-parent, other-parent an old honest event, chosen so
        // that node 2 accepts it and node 0 refuses it as ancient.
        let k3 = net.keys[3].clone();
        let mut candidates = net.honest_held(2);
        candidates.sort_by_key(|(_, r)| *r);
        let mut e0 = None;
        for (op, _) in &candidates {
            let t = net.tick();
            let e = build_or_forge(&mut net.nodes[2], &k3, None, op, t);
            let behind_takes = matches!(
                net.copy_of(2).insert(e.clone()),
                Ok(InsertOutcome::Inserted(_))
            );
            let ahead_refuses = matches!(
                net.copy_of(0).insert(e.clone()),
                Err(Reject::Ancient { .. })
            );
            if behind_takes && ahead_refuses {
                e0 = Some(e);
                break;
            }
        }
        let Some(e0) = e0 else {
            // No event can be accepted by one and refused by the other:
            // the attack has no foothold.
            continue;
        };
        attacked += 1;
        for i in 0..3 {
            net.deliver(i, vec![e0.clone()]);
        }
        // Climb: each event links the previous one (born at most two
        // rounds before) and an honest event held by node 2 as high as
        // that allows.
        let mut head = e0;
        let top = net.nodes[2].stats().last_round_created;
        for _ in 0..64 {
            if head.birth_round() + 1 >= top {
                break;
            }
            let mut best: Option<Event> = None;
            for (op, r) in net.honest_held(2) {
                if r <= head.birth_round() || r > head.birth_round() + 2 {
                    continue;
                }
                let t = net.tick();
                let e = build_or_forge(&mut net.nodes[2], &k3, Some(&head), &op, t);
                let linked = dagger_consensus::links(e.birth_round(), head.birth_round());
                if linked
                    && best
                        .as_ref()
                        .is_none_or(|b| e.birth_round() > b.birth_round())
                {
                    best = Some(e);
                }
            }
            let Some(next) = best else { break };
            for i in 0..3 {
                net.deliver(i, vec![next.clone()]);
            }
            head = next;
        }
        // Node 2 links the chain's head (it is the newest arrival).
        let t = net.tick();
        let k2 = net.keys[2].clone();
        let op = net.nodes[2]
            .event(&head.id())
            .map(|_| head.id())
            .or_else(|| net.nodes[2].best_other_parent(&CreatorId::from(&k2), None));
        if let Ok(e) = net.nodes[2].create_event(&k2, vec![], t, op) {
            net.deliver(0, vec![e.clone()]);
            net.deliver(1, vec![e]);
        }
        let before: Vec<u64> = (0..3).map(|i| net.decided(i)).collect();
        for _ in 0..3_000 {
            net.random_step(&mut rng, None);
        }
        net.settle();
        for (i, was) in before.iter().enumerate() {
            assert!(
                net.decided(i) >= was + 10,
                "seed {seed}: node {i} stalled at {} (was {was}), stats {:?}",
                net.decided(i),
                net.nodes[i].stats()
            );
        }
        net.assert_orders_agree();
    }
    assert!(
        attacked >= 3,
        "the attack found a foothold in {attacked} of 6 runs"
    );
}

/// While node 2 is idle, the byzantine creator answers each of its events
/// with a twin of its own head linking it and never extends the twin. The
/// idle node's other-parent choice and event creation must never panic,
/// with twins and own head anywhere near the pruned horizon.
#[test]
fn twins_near_the_pruned_horizon_never_crash_an_idle_node() {
    for seed in 0..4u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
        let keys: Vec<SigningKey> = (0..4).map(key).collect();
        let genesis = roster(&keys, &[1, 1, 1, 1]);
        // Nodes 0, 1, 3 (byzantine) active; 2 idle.
        let mut nodes: Vec<Hashgraph> = (0..4)
            .map(|_| Hashgraph::new(config(), genesis.clone()))
            .collect();
        let mut clock = 0u64;
        let mut byz_head: Option<Event> = None;
        let mut byz_prev: Option<Event> = None;
        let me2 = CreatorId::from(&keys[2]);
        for step in 0..3_000usize {
            clock += 1_000;
            let idle_turn = step % (90 + seed as usize * 31) == 0;
            let c = if idle_turn {
                2
            } else {
                [0, 1, 3][rng.gen_range(0..3)]
            };
            let p = [0, 1, 3][rng.gen_range(0..3)];
            if p != c {
                let tips = nodes[c].tips();
                let answer = nodes[p].events_unknown_to(&tips);
                for e in answer {
                    let _ = nodes[c].insert(e);
                }
                while nodes[c].poll().is_some() {}
            }
            // The idle node's policy is asked at every step (what a node
            // does when anything arrives), and it signs on its turn.
            let _ =
                nodes[2].best_other_parent(&me2, nodes[2].latest_of(&CreatorId::from(&keys[3])));
            let fresh = nodes[c].latest_of(&CreatorId::from(&keys[p]));
            let op = nodes[c].best_other_parent(&CreatorId::from(&keys[c]), fresh);
            let Ok(e) = nodes[c].create_event(&keys[c], vec![], clock, op) else {
                continue;
            };
            if c == 3 {
                byz_prev = byz_head.replace(e.clone());
            }
            let mut out = vec![e.clone()];
            if c == 2 {
                // A twin of the byzantine head, linking the idle node's event.
                if let (Some(h), Some(prev)) = (&byz_head, &byz_prev) {
                    let _ = h;
                    for e in &out {
                        let _ = nodes[3].insert(e.clone());
                    }
                    if let Ok(twin) = nodes[3].build_event(
                        &keys[3],
                        Some(prev.id()),
                        Some(e.id()),
                        clock + 1,
                        vec![],
                    ) {
                        out.push(twin);
                    }
                }
            }
            for node in nodes.iter_mut() {
                for e in &out {
                    let _ = node.insert(e.clone());
                }
                while node.poll().is_some() {}
            }
        }
        assert!(
            nodes[0].stats().last_decided_round > 20,
            "seed {seed}: {:?}",
            nodes[0].stats()
        );
    }
}

fn sign(key: &SigningKey, u: UnsignedEvent) -> Event {
    u.sign(key, &NET)
}

/// Builds a short honest history on one instance and returns it with the
/// byzantine creator's head event.
fn history_with_byzantine_head(rounds: u64) -> (Vec<SigningKey>, Vec<Event>, Event) {
    let keys: Vec<SigningKey> = (0..4).map(key).collect();
    let mut hg = Hashgraph::new(config(), roster(&keys, &[1, 1, 1, 1]));
    let mut all = Vec::new();
    let mut clock = 0;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut last: Vec<Option<EventId>> = vec![None; 4];
    while hg.stats().last_round_created < rounds {
        let c = rng.gen_range(0..4);
        let p = (c + rng.gen_range(1..4)) % 4;
        clock += 1_000;
        if let Ok(e) = hg.create_event(&keys[c], vec![], clock, last[p]) {
            last[c] = Some(e.id());
            all.push(e);
        }
        while hg.poll().is_some() {}
    }
    let head = hg
        .event(&last[3].expect("the byzantine creator signed"))
        .expect("held");
    (keys, all, head)
}

fn fresh_with(keys: &[SigningKey], events: &[Event]) -> Hashgraph {
    let mut hg = Hashgraph::new(config(), roster(keys, &[1, 1, 1, 1]));
    for e in events {
        hg.insert(e.clone()).expect("honest history");
        while hg.poll().is_some() {}
    }
    hg
}

/// A twin that waits for a parent nobody has arrives first; the placeable
/// twin comes later: the node must accuse the creator at once.
#[test]
fn a_waiting_twin_arriving_first_is_still_accused() {
    let (keys, all, head) = history_with_byzantine_head(6);
    let mut hg = fresh_with(&keys, &all);
    let placed = hg
        .build_event(&keys[3], Some(head.id()), None, 1 << 40, vec![])
        .expect("head held");
    let waiting = sign(
        &keys[3],
        UnsignedEvent {
            seq: placed.seq(),
            birth_round: placed.birth_round(),
            self_parent: placed.self_parent_ref(),
            other_parent: Some(ParentRef {
                id: EventId([0xEE; 32]),
                birth_round: placed.birth_round(),
            }),
            created_at_ns: (1 << 40) + 7,
            txs: vec![],
        },
    );
    assert!(matches!(
        hg.insert(waiting.clone()),
        Ok(InsertOutcome::Buffered { .. })
    ));
    assert!(hg.take_equivocations().is_empty());
    assert!(matches!(
        hg.insert(placed.clone()),
        Ok(InsertOutcome::Inserted(_))
    ));
    let found = hg.take_equivocations();
    assert_eq!(
        found.len(),
        1,
        "the creator of two events at one sequence number is accused"
    );
    assert_eq!(found[0].verify(&NET), Ok(()));
    let mut pair = [found[0].first.id(), found[0].second.id()];
    pair.sort();
    let mut want = [waiting.id(), placed.id()];
    want.sort();
    assert_eq!(pair, want);
}

/// Two twins that both wait (for different missing parents) are compared
/// with each other.
#[test]
fn two_waiting_twins_are_compared_with_each_other() {
    let (keys, all, head) = history_with_byzantine_head(6);
    let mut hg = fresh_with(&keys, &all);
    let base = hg
        .build_event(&keys[3], Some(head.id()), None, 1 << 40, vec![])
        .expect("head held");
    let twin = |tag: u8| {
        sign(
            &keys[3],
            UnsignedEvent {
                seq: base.seq(),
                birth_round: base.birth_round(),
                self_parent: base.self_parent_ref(),
                other_parent: Some(ParentRef {
                    id: EventId([tag; 32]),
                    birth_round: base.birth_round(),
                }),
                created_at_ns: (1 << 40) + u64::from(tag),
                txs: vec![],
            },
        )
    };
    for tag in [0xA1, 0xA2] {
        assert!(matches!(
            hg.insert(twin(tag)),
            Ok(InsertOutcome::Buffered { .. })
        ));
    }
    let found = hg.take_equivocations();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].verify(&NET), Ok(()));
}

/// A twin refused as ancient is compared with a waiting twin too.
#[test]
fn an_ancient_twin_is_compared_with_a_waiting_one() {
    let (keys, all, _) = history_with_byzantine_head(40);
    let mut hg = fresh_with(&keys, &all);
    while hg.poll().is_some() {}
    let pruned = hg.stats().pruned_through_round;
    assert!(pruned > 2, "{:?}", hg.stats());
    // Seq 0 twins: one born in round 1 (ancient), one waiting for an
    // unknown other-parent.
    let old = sign(
        &keys[3],
        UnsignedEvent {
            seq: 0,
            birth_round: 1,
            created_at_ns: 5,
            ..Default::default()
        },
    );
    let waiting = sign(
        &keys[3],
        UnsignedEvent {
            seq: 0,
            birth_round: pruned + 3,
            other_parent: Some(ParentRef {
                id: EventId([0xE1; 32]),
                birth_round: pruned + 3,
            }),
            created_at_ns: 6,
            ..Default::default()
        },
    );
    assert!(matches!(
        hg.insert(waiting.clone()),
        Ok(InsertOutcome::Buffered { .. })
    ));
    let _ = hg.take_equivocations();
    assert!(matches!(
        hg.insert(old.clone()),
        Err(Reject::Ancient { .. })
    ));
    let found = hg.take_equivocations();
    let want = (old.id().min(waiting.id()), old.id().max(waiting.id()));
    assert!(found.iter().any(|e| e.pair() == want), "{found:?}");
    for e in &found {
        assert_eq!(e.verify(&NET), Ok(()));
    }
}
