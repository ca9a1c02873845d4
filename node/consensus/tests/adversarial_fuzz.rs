//! Arbitrary signed events against `Hashgraph::insert` / `poll`: valid
//! signatures by roster members (and by strangers), with adversarial
//! header fields (sequence numbers, birth rounds, parent descriptors that
//! name real, invented or lying parents, times, batches), interleaved with
//! an honest history. Nothing may panic, memory stays within the configured
//! bounds, every refusal is typed, and the instance still snapshots and
//! restores exactly. 1000 cases x 100 adversarial events = 10^5 events per
//! run (`PROPTEST_CASES` scales it).

mod common;

use std::sync::OnceLock;

use common::*;
use dagger_consensus::{
    Config, Event, EventId, Hashgraph, InsertOutcome, Limits, ParentRef, UnsignedEvent,
    MAX_HEADER_VALUE,
};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const ADVERSARIAL_PER_CASE: usize = 100;

/// An honest 4-node history long enough to prune.
fn history() -> &'static Vec<Event> {
    static H: OnceLock<Vec<Event>> = OnceLock::new();
    H.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(77);
        let mut sim = Sim::new(4, &[], &[]);
        sim.genesis(&mut rng);
        for _ in 0..400 {
            sim.step(&mut rng);
        }
        sim.all.clone()
    })
}

fn limits() -> Limits {
    Limits {
        max_buffered_events: 64,
        max_buffered_bytes: 64 << 10,
        max_parked_events: 16,
        max_parked_bytes: 16 << 10,
        ..Limits::default()
    }
}

#[derive(Clone, Debug)]
enum Parent {
    None,
    /// The signer's own history event (by index among its events).
    Own(usize),
    /// A history event, described truthfully or with this birth round.
    Real(usize, Option<u64>),
    /// An invented id with this birth round.
    Invented([u8; 32], u64),
}

#[derive(Clone, Debug)]
struct Spec {
    /// 0..4 roster members, 4 a stranger.
    signer: usize,
    seq: u64,
    birth: u64,
    self_parent: Parent,
    other_parent: Parent,
    time: u64,
    txs: Vec<Vec<u8>>,
    /// 0 valid, 1 flipped signature bit, 2 wrong Merkle root.
    damage: u8,
    /// 0: fields as drawn; 1: birth round and sequence number made
    /// plausible from the parents (so deeper checks are reached).
    plausible: u8,
    /// Insert this many honest events before it.
    honest_before: usize,
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(2),
        1u64..64,
        Just(MAX_HEADER_VALUE),
        Just(MAX_HEADER_VALUE + 1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        any::<u64>(),
    ]
}

fn parent() -> impl Strategy<Value = Parent> {
    prop_oneof![
        Just(Parent::None),
        (0usize..10_000).prop_map(Parent::Own),
        (0usize..10_000, proptest::option::of(number())).prop_map(|(i, lie)| Parent::Real(i, lie)),
        (any::<[u8; 32]>(), number()).prop_map(|(id, b)| Parent::Invented(id, b)),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0usize..5,
        number(),
        number(),
        parent(),
        parent(),
        number(),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..4),
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        0usize..6,
        0u8..3,
    )
        .prop_map(
            |(
                signer,
                seq,
                birth,
                self_parent,
                other_parent,
                time,
                txs,
                damage,
                honest_before,
                plausible,
            )| {
                Spec {
                    plausible: plausible.min(1),
                    signer,
                    seq,
                    birth,
                    self_parent,
                    other_parent,
                    time,
                    txs,
                    damage,
                    honest_before,
                }
            },
        )
}

fn describe(p: &Parent, history: &[Event], signer: &SigningKey) -> Option<ParentRef> {
    match p {
        Parent::None => None,
        Parent::Own(i) => {
            let me = dagger_consensus::CreatorId::from(signer);
            let own: Vec<&Event> = history.iter().filter(|e| e.creator() == me).collect();
            own.get(i % own.len().max(1)).map(|e| ParentRef {
                id: e.id(),
                birth_round: e.birth_round(),
            })
        }
        Parent::Real(i, lie) => {
            let e = &history[i % history.len()];
            Some(ParentRef {
                id: e.id(),
                birth_round: lie.unwrap_or(e.birth_round()),
            })
        }
        Parent::Invented(id, b) => Some(ParentRef {
            id: EventId(*id),
            birth_round: *b,
        }),
    }
}

fn build(s: &Spec, keys: &[SigningKey], history: &[Event]) -> Event {
    let key = if s.signer < 4 {
        &keys[s.signer]
    } else {
        &keys[4]
    };
    let self_parent = describe(&s.self_parent, history, key);
    let other_parent = describe(&s.other_parent, history, key);
    let (mut seq, mut birth) = (s.seq, s.birth);
    if s.plausible == 1 {
        let top = [self_parent, other_parent]
            .iter()
            .flatten()
            .map(|p| p.birth_round)
            .max()
            .unwrap_or(1);
        birth = top.saturating_add(s.seq % 2).max(1);
        seq = match self_parent {
            None => 0,
            Some(p) => history
                .iter()
                .find(|e| e.id() == p.id)
                .map_or(s.seq, |e| e.seq().saturating_add(1)),
        };
    }
    let e = UnsignedEvent {
        seq,
        birth_round: birth,
        self_parent,
        other_parent,
        created_at_ns: s.time,
        txs: s.txs.clone(),
    }
    .sign(key, &NET);
    match s.damage {
        1 => {
            let mut b = e.encode();
            let last = b.len() - 1;
            b[last] ^= 1;
            Event::decode(&b).expect("still well-formed")
        }
        2 => {
            let mut h = e.header().clone();
            h.txs_root[0] ^= 1;
            let sig = h.sign(key, &NET);
            Event::assemble(h, e.transactions().to_vec(), sig)
        }
        _ => e,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000)
    ))]

    #[test]
    fn arbitrary_signed_events_never_panic_and_stay_bounded(
        specs in proptest::collection::vec(spec(), ADVERSARIAL_PER_CASE),
        start in 0usize..300,
    ) {
        let history = history();
        let keys: Vec<SigningKey> = (0..5).map(key).collect();
        let config = Config { network_id: NET, limits: limits() };
        let mut hg = Hashgraph::new(config.clone(), roster(&keys[..4], &[1; 4]));
        // Start somewhere in the honest history (rounds decided, pruning).
        let mut next = 0usize;
        let feed = |hg: &mut Hashgraph, next: &mut usize, count: usize| {
            for e in history.iter().skip(*next).take(count) {
                let _ = hg.insert(e.clone());
                while hg.poll().is_some() {}
            }
            *next = (*next + count).min(history.len());
        };
        feed(&mut hg, &mut next, start);
        for s in &specs {
            feed(&mut hg, &mut next, s.honest_before);
            let e = build(s, &keys, history);
            match hg.insert(e.clone()) {
                Ok(InsertOutcome::Inserted(_)) => {
                    // Only a correct birth round gets in.
                    prop_assert_eq!(hg.event_info(&e.id()).map(|i| i.round), Some(e.birth_round()));
                }
                Ok(_) => {}
                Err(r) => {
                    // Typed, and a fault unless it is only about timing.
                    let _ = r.is_fault();
                    prop_assert!(!hg.knows(&e.id()));
                }
            }
            if s.honest_before % 3 == 0 {
                while hg.poll().is_some() {}
            }
            let st = hg.stats();
            let l = limits();
            prop_assert!(st.buffered_events <= l.max_buffered_events);
            prop_assert!(st.buffered_bytes <= l.max_buffered_bytes);
            prop_assert!(st.parked_events <= l.max_parked_events);
            prop_assert!(st.parked_bytes <= l.max_parked_bytes);
            // Held events are bounded by the pruning horizon: an honest
            // history's window plus what the attacker managed to insert.
            prop_assert!(st.held_events <= 400 + ADVERSARIAL_PER_CASE);
        }
        feed(&mut hg, &mut next, history.len());
        for ev in hg.take_equivocations() {
            prop_assert_eq!(ev.verify(&NET), Ok(()));
        }
        let bytes = hg.snapshot();
        let restored = Hashgraph::restore(config, &bytes).expect("own snapshot restores");
        prop_assert!(restored.snapshot() == bytes);
    }
}

#[test]
fn the_fuzz_reaches_insertion() {
    // The generator's plausible mode builds events that pass every check
    // (here: forks of each creator's own events), so the fuzz reaches the
    // deep paths and not only the cheap refusals.
    let history = history();
    let keys: Vec<SigningKey> = (0..5).map(key).collect();
    let mut hg = Hashgraph::new(
        Config {
            network_id: NET,
            limits: limits(),
        },
        roster(&keys[..4], &[1; 4]),
    );
    let mut inserted = 0;
    for (i, e) in history.iter().enumerate().take(120) {
        let _ = hg.insert(e.clone());
        while hg.poll().is_some() {}
        // A plausible fork of the creator's own previous event.
        let s = Spec {
            signer: (i % 4),
            seq: 0,
            birth: 0,
            self_parent: Parent::Own(i / 4),
            other_parent: Parent::Real(i.saturating_sub(1), None),
            time: u64::MAX / 2 + i as u64,
            txs: vec![vec![i as u8]],
            damage: 0,
            plausible: 1,
            honest_before: 0,
        };
        if matches!(
            hg.insert(build(&s, &keys, history)),
            Ok(InsertOutcome::Inserted(_))
        ) {
            inserted += 1;
        }
    }
    assert!(
        inserted > 10,
        "only {inserted} plausible adversarial events inserted"
    );
}
