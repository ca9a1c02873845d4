//! Every verifier rejection path, the bounded buffers and the codec.

mod common;

use common::*;
use dagger_consensus::{
    merkle, Config, CreatorId, DecodeError, Event, EventHeader, Hashgraph, InsertOutcome, Limits,
    Reject, UnsignedEvent,
};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn keys4() -> Vec<SigningKey> {
    (0..4).map(key).collect()
}

fn fresh(limits: Limits) -> Hashgraph {
    Hashgraph::new(
        Config {
            network_id: NET,
            limits,
        },
        roster(&keys4(), &[1, 1, 1, 1]),
    )
}

fn genesis(k: &SigningKey, t: u64) -> Event {
    UnsignedEvent {
        created_at_ns: t,
        txs: vec![b"a".to_vec(), b"bc".to_vec()],
        ..Default::default()
    }
    .sign(k, &NET)
}

fn child(k: &SigningKey, sp: &Event, op: Option<&Event>, seq: u64, t: u64) -> Event {
    UnsignedEvent {
        seq,
        self_parent: Some(sp.id()),
        other_parent: op.map(Event::id),
        created_at_ns: t,
        txs: vec![],
    }
    .sign(k, &NET)
}

fn inserted(r: Result<InsertOutcome, Reject>) -> bool {
    matches!(r, Ok(InsertOutcome::Inserted(_)))
}

#[test]
fn bad_signature_and_wrong_network() {
    let k = keys4();
    let mut hg = fresh(Limits::default());
    let mut bytes = genesis(&k[0], 1).encode();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = Event::decode(&bytes).expect("still well-formed");
    assert_eq!(hg.insert(tampered), Err(Reject::BadSignature));
    // Signed for another network: the network id is inside the signed message.
    let other = UnsignedEvent::default().sign(&k[0], &[9u8; 32]);
    let other = Event::decode(&other.encode()).expect("decodes");
    assert_eq!(hg.insert(other), Err(Reject::BadSignature));
    assert!(inserted(hg.insert(genesis(&k[0], 1))));
}

#[test]
fn unknown_creator() {
    let mut hg = fresh(Limits::default());
    assert_eq!(hg.insert(genesis(&key(99), 1)), Err(Reject::UnknownCreator));
}

#[test]
fn bad_merkle_root_and_count_mismatch() {
    let k = &keys4()[0];
    let mut hg = fresh(Limits::default());
    let txs = vec![b"x".to_vec()];
    let header = EventHeader {
        creator: CreatorId::from(k),
        seq: 0,
        self_parent: None,
        other_parent: None,
        created_at_ns: 1,
        txs_root: merkle::merkle_root(&[b"y".to_vec()]),
        tx_count: 1,
    };
    let sig = header.sign(k, &NET);
    assert_eq!(
        hg.insert(Event::assemble(header.clone(), txs.clone(), sig)),
        Err(Reject::BadMerkleRoot)
    );
    let h2 = EventHeader {
        tx_count: 2,
        txs_root: merkle::merkle_root(&txs),
        ..header
    };
    let sig2 = h2.sign(k, &NET);
    assert!(matches!(
        hg.insert(Event::assemble(h2, txs, sig2)),
        Err(Reject::TxCountMismatch { .. })
    ));
}

#[test]
fn sequence_time_and_parent_rules() {
    let k = keys4();
    let mut hg = fresh(Limits::default());
    let a0 = genesis(&k[0], 100);
    let b0 = genesis(&k[1], 100);
    assert!(inserted(hg.insert(a0.clone())));
    assert!(inserted(hg.insert(b0.clone())));
    assert_eq!(
        hg.insert(child(&k[0], &a0, Some(&b0), 2, 200)),
        Err(Reject::WrongSequence {
            expected: 1,
            got: 2
        })
    );
    assert_eq!(
        hg.insert(child(&k[0], &a0, Some(&b0), 1, 100)),
        Err(Reject::TimeNotIncreasing {
            parent_ns: 100,
            got_ns: 100
        })
    );
    assert_eq!(
        hg.insert(child(&k[0], &b0, None, 1, 200)),
        Err(Reject::SelfParentWrongCreator)
    );
    let a0b = genesis(&k[0], 50);
    assert!(inserted(hg.insert(a0b.clone())));
    assert_eq!(
        hg.insert(child(&k[0], &a0, Some(&a0b), 1, 200)),
        Err(Reject::OtherParentSameCreator)
    );
    assert_eq!(
        hg.insert(child(&k[0], &a0, Some(&a0), 1, 200)),
        Err(Reject::ParentsEqual)
    );
    let no_sp = UnsignedEvent {
        seq: 3,
        ..Default::default()
    }
    .sign(&k[0], &NET);
    assert_eq!(hg.insert(no_sp), Err(Reject::SelfParentMismatch));
    let sp_at_zero = UnsignedEvent {
        seq: 0,
        self_parent: Some(a0.id()),
        ..Default::default()
    }
    .sign(&k[0], &NET);
    assert_eq!(hg.insert(sp_at_zero), Err(Reject::SelfParentMismatch));
    // a0 and a0b are a fork (two seq-0 events): evidence was produced.
    let ev = hg.take_equivocations();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].verify(&NET), Ok(()));
    assert!(ev[0].verify(&[0u8; 32]).is_err());
    assert!(hg.insert(a0.clone()).expect("dup") == InsertOutcome::Duplicate);
}

#[test]
fn size_limits() {
    let k = &keys4()[0];
    let limits = Limits {
        max_event_bytes: 400,
        max_tx_bytes: 50,
        max_txs_per_event: 3,
        max_batch_bytes: 100,
        ..Limits::default()
    };
    let mut hg = fresh(limits);
    let ev = |txs: Vec<Vec<u8>>| {
        UnsignedEvent {
            txs,
            ..Default::default()
        }
        .sign(k, &NET)
    };
    assert!(matches!(
        hg.insert(ev(vec![vec![0; 51]])),
        Err(Reject::TransactionTooLarge {
            index: 0,
            size: 51,
            max: 50
        })
    ));
    assert!(matches!(
        hg.insert(ev(vec![vec![0; 1]; 4])),
        Err(Reject::TooManyTransactions { count: 4, max: 3 })
    ));
    assert!(matches!(
        hg.insert(ev(vec![vec![0; 40]; 3])),
        Err(Reject::BatchTooLarge {
            size: 120,
            max: 100
        })
    ));
    let mut hg = fresh(Limits {
        max_event_bytes: 200,
        ..Limits::default()
    });
    assert!(matches!(
        hg.insert(ev(vec![vec![0; 100]])),
        Err(Reject::EventTooLarge { max: 200, .. })
    ));
}

#[test]
fn parent_buffer_evicts_oldest_and_releases_in_order() {
    let k = keys4();
    let mut hg = fresh(Limits {
        max_buffered_events: 2,
        ..Limits::default()
    });
    let a0 = genesis(&k[0], 1);
    let a1 = child(&k[0], &a0, None, 1, 2);
    let a2 = child(&k[0], &a1, None, 2, 3);
    let a3 = child(&k[0], &a2, None, 3, 4);
    assert_eq!(
        hg.insert(a1.clone()),
        Ok(InsertOutcome::Buffered { evicted: None })
    );
    assert_eq!(
        hg.insert(a2.clone()),
        Ok(InsertOutcome::Buffered { evicted: None })
    );
    // Full: the oldest (a1) is evicted to make room.
    assert_eq!(
        hg.insert(a3.clone()),
        Ok(InsertOutcome::Buffered {
            evicted: Some(a1.id())
        })
    );
    assert_eq!(hg.stats().buffered_events, 2);
    // What a node may still expect to see ordered: not the evicted one.
    assert!(!hg.knows(&a1.id()));
    assert!(hg.knows(&a2.id()) && hg.knows(&a3.id()));
    assert!(inserted(hg.insert(a0)));
    assert_eq!(hg.stats().held_events, 1, "a2 still waits for a1");
    match hg.insert(a1) {
        Ok(InsertOutcome::Inserted(r)) => assert_eq!(r.unblocked, vec![a2.id(), a3.id()]),
        other => panic!("{other:?}"),
    }
    assert_eq!(hg.stats().held_events, 4);
    assert_eq!(hg.stats().buffered_events, 0);
}

/// Runs a 4-node honest simulation long enough to prune, feeding `hg`.
fn long_run(hg: &mut Hashgraph, steps: usize, seed: u64) -> Sim {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sim = Sim::new(4, &[], &[]);
    sim.genesis(&mut rng);
    for _ in 0..steps {
        sim.step(&mut rng);
    }
    let mut out = Vec::new();
    let mut decided = Vec::new();
    for e in &sim.all {
        hg.insert(e.clone()).expect("honest event");
        drain(hg, &mut out, &mut decided);
    }
    sim
}

#[test]
fn ancient_events_are_rejected() {
    let k = keys4();
    let mut hg = fresh(Limits::default());
    let sim = long_run(&mut hg, 400, 5);
    assert!(hg.stats().pruned_through_round > 0, "{:?}", hg.stats());
    // A new genesis event (a fork of creator 0's first event) would be round 1.
    assert!(matches!(
        hg.insert(genesis(&k[0], 12345)),
        Err(Reject::Ancient { .. })
    ));
    // A child of a pruned event, with no other-parent, cannot be placed.
    let old = sim
        .all
        .iter()
        .find(|e| e.creator() == CreatorId::from(&k[1]) && e.seq() == 2)
        .expect("exists");
    let orphan = child(&k[1], old, None, 3, old.created_at_ns() + 1);
    assert!(matches!(hg.insert(orphan), Err(Reject::Ancient { .. })));
}

/// A creator dies right after signing event `n`, which nobody received,
/// and comes back after the others pruned `n`'s parents. A child naming `n`
/// could never be placed by them (they cannot place `n`); instead, once its
/// tip is pruned, the creator re-anchors: the next sequence without a
/// self-parent. Nobody sees a fork, and the chain goes on.
#[test]
fn a_creator_whose_tip_never_went_out_re_anchors_its_chain() {
    let k = keys4();
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut sim = Sim::new(4, &[], &[]);
    sim.genesis(&mut rng);
    for _ in 0..40 {
        sim.step(&mut rng);
    }
    let latest = |sim: &Sim, c: usize| {
        sim.all
            .iter()
            .filter(|e| e.creator() == CreatorId::from(&k[c]))
            .max_by_key(|e| e.seq())
            .expect("has events")
            .clone()
    };
    let head = latest(&sim, 3);
    let other = latest(&sim, 0);
    let n = child(
        &k[3],
        &head,
        Some(&other),
        head.seq() + 1,
        head.created_at_ns().max(other.created_at_ns()) + 1,
    );
    let signed_before_crash = sim.all.len();
    // Creator 3 is down while the others go on long enough to prune.
    sim.silent[3] = true;
    for _ in 0..400 {
        sim.step(&mut rng);
    }
    // A peer, which never got `n`, and creator 3 itself, which did.
    let mut peer = fresh(Limits::default());
    let mut creator = fresh(Limits::default());
    let (mut out, mut decided) = (Vec::new(), Vec::new());
    for (i, e) in sim.all.iter().enumerate() {
        if i == signed_before_crash {
            creator.insert(n.clone()).expect("its own event");
        }
        peer.insert(e.clone()).expect("honest event");
        creator.insert(e.clone()).expect("honest event");
        drain(&mut peer, &mut out, &mut decided);
        drain(&mut creator, &mut Vec::new(), &mut Vec::new());
    }
    assert!(peer.stats().pruned_through_round > 3, "{:?}", peer.stats());
    assert!(
        creator.event(&n.id()).is_none(),
        "n is pruned at its creator"
    );

    // The old way: a child naming `n` waits forever at the peer.
    let recent = sim
        .all
        .iter()
        .filter(|e| e.creator() == CreatorId::from(&k[1]))
        .filter(|e| peer.event(&e.id()).is_some() && creator.event(&e.id()).is_some())
        .max_by_key(|e| e.seq())
        .expect("a held event")
        .clone();
    let naming_n = child(
        &k[3],
        &n,
        Some(&recent),
        n.seq() + 1,
        recent.created_at_ns().max(n.created_at_ns()) + 1,
    );
    assert!(matches!(
        peer.insert(naming_n),
        Ok(InsertOutcome::Buffered { .. })
    ));

    // The creator re-anchors, and the peer places it at once.
    let now = recent.created_at_ns().max(n.created_at_ns()) + 1;
    let anchor = creator
        .create_event(&k[3], vec![b"back".to_vec()], now, Some(recent.id()))
        .expect("creates");
    assert_eq!(anchor.seq(), n.seq() + 1);
    assert_eq!(anchor.self_parent(), None);
    assert!(inserted(peer.insert(anchor.clone())));
    let next = creator
        .create_event(&k[3], vec![], now + 1, Some(recent.id()))
        .expect("creates");
    assert_eq!(next.self_parent(), Some(anchor.id()));
    assert!(inserted(peer.insert(next)));
    assert!(peer.take_equivocations().is_empty());
    // A re-anchor must still link to the graph.
    let floating = UnsignedEvent {
        seq: anchor.seq() + 5,
        created_at_ns: now + 9,
        ..Default::default()
    }
    .sign(&k[3], &NET);
    assert_eq!(peer.insert(floating), Err(Reject::SelfParentMismatch));
}

#[test]
fn far_future_events_are_bounded() {
    // Never polling keeps the fixed-roster horizon at round ROSTER_DELAY.
    let mut hg = fresh(Limits {
        max_parked_events: 1,
        ..Limits::default()
    });
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut sim = Sim::new(4, &[], &[]);
    sim.genesis(&mut rng);
    for _ in 0..600 {
        sim.step(&mut rng);
    }
    let mut parked = 0;
    let mut too_far = 0;
    for e in &sim.all {
        match hg.insert(e.clone()) {
            Ok(InsertOutcome::Parked) => parked += 1,
            Ok(_) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(parked, 1);
    // Build more events whose parents are held at the fixed horizon: the
    // parked area is full, so they are refused with a typed error.
    let tips: Vec<Event> = hg
        .tips()
        .iter()
        .map(|t| hg.event(t).expect("held"))
        .collect();
    let keys = keys4();
    for t1 in &tips {
        for t2 in &tips {
            if t1.creator() == t2.creator() {
                continue;
            }
            let r = hg
                .event_info(&t1.id())
                .expect("held")
                .round
                .max(hg.event_info(&t2.id()).expect("held").round);
            if r != dagger_consensus::ROSTER_DELAY {
                continue;
            }
            let k = keys
                .iter()
                .find(|k| CreatorId::from(*k) == t1.creator())
                .expect("member");
            match hg.insert(child(k, t1, Some(t2), t1.seq() + 1, t1.created_at_ns() + 1)) {
                Err(Reject::TooFarAhead {
                    round,
                    fixed_through,
                }) => {
                    assert_eq!(fixed_through, dagger_consensus::ROSTER_DELAY);
                    assert_eq!(round, fixed_through + 1);
                    too_far += 1;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(too_far > 0);
    assert!(hg.stats().last_round_created <= dagger_consensus::ROSTER_DELAY);
    // Polling seals rounds and places the parked events.
    while hg.poll().is_some() {}
    assert_eq!(hg.stats().parked_events, 0);
}

#[test]
fn codec_roundtrip_and_typed_errors() {
    let e = genesis(&keys4()[0], 7);
    let bytes = e.encode();
    assert_eq!(bytes.len(), e.encoded_len());
    let d = Event::decode(&bytes).expect("roundtrip");
    assert_eq!(d, e);
    assert_eq!(d.encode(), bytes);
    assert_eq!(Event::decode(&[]), Err(DecodeError::Truncated));
    let mut v = bytes.clone();
    v[0] = 2;
    assert_eq!(Event::decode(&v), Err(DecodeError::UnsupportedVersion(2)));
    let mut v = bytes.clone();
    v[41] = 7; // self-parent presence flag
    assert_eq!(Event::decode(&v), Err(DecodeError::BadFlag(7)));
    let mut v = bytes.clone();
    v.push(0);
    assert_eq!(Event::decode(&v), Err(DecodeError::TrailingBytes(1)));
    assert_eq!(
        Event::decode(&bytes[..bytes.len() - 1]),
        Err(DecodeError::Truncated)
    );
    // A huge declared transaction count must not allocate or panic.
    let mut v = bytes.clone();
    let count_at = 1 + 32 + 8 + 1 + 1 + 8 + 32;
    v[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(Event::decode(&v), Err(DecodeError::Truncated));
}

#[test]
fn inclusion_proof_for_a_client() {
    let e = genesis(&keys4()[0], 7);
    let p = e.prove_transaction(1).expect("in range");
    assert!(p.verify(b"bc", &e.txs_root()));
    assert!(!p.verify(b"a", &e.txs_root()));
    assert!(e.prove_transaction(2).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(e) = Event::decode(&bytes) {
            prop_assert_eq!(e.encode(), bytes);
        }
    }

    #[test]
    fn decode_of_mutated_event_never_panics(pos in 0usize..200, val in any::<u8>(), cut in 0usize..220) {
        let e = UnsignedEvent { txs: vec![vec![1, 2, 3], vec![4; 20]], ..Default::default() }.sign(&key(0), &NET);
        let mut b = e.encode();
        let p = pos % b.len();
        b[p] = val;
        b.truncate(cut.min(b.len()));
        if let Ok(d) = Event::decode(&b) {
            let mut hg = fresh(Limits::default());
            // Whatever decoded, inserting it yields a typed outcome.
            let _ = hg.insert(d);
        }
    }
}
