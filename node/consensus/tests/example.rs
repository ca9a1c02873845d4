//! A small hand-checked graph: four equal-stake creators A, B, C, D and a
//! "token ring" gossip pattern, with rounds, witnesses, fame, round received
//! and timestamps derived on paper (see the comments).
//!
//! Events: genesis A0 B0 C0 D0 (no parents, times 10 20 30 40), then a ring
//! where each event's other-parent is the previous ring event:
//! A1(op D0) B1(op A1) C1(op B1) D1(op C1) A2(op D1) B2(op A2) C2(op B2)
//! D2(op C2) A3 B3 C3 D3 ..., times 100, 200, 300, ...
//!
//! Supermajority with 4 equal stakes: strictly more than 8/3, i.e. 3 creators.
//!
//! Rounds (x strongly sees witness w if the latest events it sees by >= 3
//! creators see w):
//! * A0..D0: no parents, round 1, witnesses.
//! * A1: intermediaries A1{A0,D0}, D0{D0}: nobody strongly seen -> round 1.
//! * B1: A1{A0,D0}, B1{A0,B0,D0}, D0{D0}: strongly sees D0 only -> round 1.
//! * C1: adds C1{A0,B0,C0,D0}: strongly sees A0 (3), D0 (4): 2 creators -> 1.
//! * D1: adds D1{A0,B0,C0,D0}: A0 (4), B0 (3), D0 (4) -> 3 creators -> round
//!   2, and a witness.
//! * A2: parent round 2 (D1); round-2 witnesses {D1}; only A2 and D1 see D1
//!   -> stays round 2; its self-parent is round 1 so it is a witness.
//! * B2: D1 seen through A2, D1, B2 (3) but that is one creator -> round 2,
//!   witness. C2 likewise (strongly sees D1 and A2: 2 creators) -> round 2,
//!   witness.
//! * D2: round-2 witnesses D1 (4), A2 (4), B2 (3: B2, C2, D2) strongly seen
//!   -> round 3, witness. The pattern then repeats one ring step later:
//!   round r+1 witnesses are D_r, A_{r+1}, B_{r+1}, C_{r+1}.
//!
//! Fame: every round-2 witness has all round-1 witnesses as (fork-free)
//! ancestors, so all vote yes; D2 strongly sees D1, A2, B2 (3 yes votes, a
//! supermajority) and decides all four round-1 witnesses famous. Likewise D3
//! decides D1, A2, B2, C2 famous.
//!
//! Birth rounds: every event claims the round derived above (for ring event
//! `k`, counting from 0: `(k + 1) / 4 + 1`), and consensus checks the claim.
//!
//! Round received: no event is an ancestor of all four genesis judges, so
//! round 1 orders nothing. Round 2's judges D1, A2, B2, C2 all descend from
//! D1, so round 2 receives exactly D1's ancestry: A0 B0 C0 D0 A1 B1 C1 D1.
//!
//! Timestamps (earliest self-ancestor of each judge that has the event as
//! ancestor; lower median of four):
//! * A0: D1 400, A0 10, B1 200, C1 300 -> 200
//! * B0: D1 400, A2 500, B0 20, C1 300 -> 300
//! * C0: D1 400, A2 500, B2 600, C0 30 -> 400
//! * D0: D0 40, A1 100, B1 200, C1 300 -> 100
//! * A1: 400, 100, 200, 300 -> 200;  B1: 400, 500, 200, 300 -> 300
//! * C1: 400, 500, 600, 300 -> 400;  D1: 400, 500, 600, 700 -> 500

mod common;

use common::*;
use dagger_consensus::{Event, EventId, Hashgraph, InsertOutcome, ParentRef, UnsignedEvent};

fn pref(e: &Event) -> ParentRef {
    ParentRef {
        id: e.id(),
        birth_round: e.birth_round(),
    }
}

struct Ring {
    events: Vec<(String, Event)>,
}

impl Ring {
    fn id(&self, name: &str) -> EventId {
        self.events
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.id())
            .expect("named event")
    }
}

fn build(ring_len: usize) -> Ring {
    let keys: Vec<_> = (0..4).map(key).collect();
    let letters = ['A', 'B', 'C', 'D'];
    let mut events: Vec<(String, Event)> = Vec::new();
    let mut last: Vec<Event> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let e = UnsignedEvent {
            birth_round: 1,
            created_at_ns: 10 * (i as u64 + 1),
            ..Default::default()
        }
        .sign(k, &NET);
        events.push((format!("{}0", letters[i]), e.clone()));
        last.push(e);
    }
    let mut prev = last[3].clone();
    for k in 0..ring_len {
        let c = k % 4;
        let sp = last[c].clone();
        let e = UnsignedEvent {
            seq: sp.seq() + 1,
            birth_round: (k as u64 + 1) / 4 + 1,
            self_parent: Some(pref(&sp)),
            other_parent: Some(pref(&prev)),
            created_at_ns: 100 * (k as u64 + 1),
            txs: vec![format!("tx{k}").into_bytes()],
        }
        .sign(&keys[c], &NET);
        events.push((format!("{}{}", letters[c], sp.seq() + 1), e.clone()));
        last[c] = e.clone();
        prev = e;
    }
    Ring { events }
}

#[test]
fn hand_checked_rounds_witnesses_fame_and_order() {
    let ring = build(12); // up to D3
    let keys: Vec<_> = (0..4).map(key).collect();
    let mut hg = Hashgraph::new(config(), roster(&keys, &[1, 1, 1, 1]));
    let mut decided = Vec::new();
    for (_, e) in &ring.events {
        assert!(matches!(
            hg.insert(e.clone()),
            Ok(InsertOutcome::Inserted(_))
        ));
        while let Some(d) = hg.poll() {
            decided.push(d);
        }
    }

    // (name, round, witness) derived in the module comment.
    const EXPECTED: &[(&str, u64, bool)] = &[
        ("A0", 1, true),
        ("B0", 1, true),
        ("C0", 1, true),
        ("D0", 1, true),
        ("A1", 1, false),
        ("B1", 1, false),
        ("C1", 1, false),
        ("D1", 2, true),
        ("A2", 2, true),
        ("B2", 2, true),
        ("C2", 2, true),
        ("D2", 3, true),
        ("A3", 3, true),
        ("B3", 3, true),
        ("C3", 3, true),
        ("D3", 4, true),
    ];
    for &(name, round, witness) in EXPECTED {
        let info = hg.event_info(&ring.id(name)).expect("held");
        assert_eq!((info.round, info.witness), (round, witness), "{name}");
    }
    // Fame: rounds 1 and 2 are fully decided, every witness famous.
    for name in ["A0", "B0", "C0", "D0", "D1", "A2", "B2", "C2"] {
        assert_eq!(
            hg.event_info(&ring.id(name)).expect("held").famous,
            Some(true),
            "{name}"
        );
    }
    // Round 3's fame needs round-5 voters, which do not exist yet.
    assert_eq!(hg.event_info(&ring.id("D2")).expect("held").famous, None);

    assert_eq!(decided.len(), 2);
    assert_eq!(decided[0].round_received, 1);
    assert!(
        decided[0].events.is_empty(),
        "nothing descends into all genesis judges"
    );
    let d = &decided[1];
    assert_eq!(d.round_received, 2);
    let mut judges = d.judges.clone();
    judges.sort();
    let mut want: Vec<EventId> = ["D1", "A2", "B2", "C2"]
        .iter()
        .map(|n| ring.id(n))
        .collect();
    want.sort();
    assert_eq!(judges, want);

    // Raw timestamps from the comment; ties broken by whitened id; output
    // times made strictly increasing.
    let raw: &[(&str, u64)] = &[
        ("A0", 200),
        ("B0", 300),
        ("C0", 400),
        ("D0", 100),
        ("A1", 200),
        ("B1", 300),
        ("C1", 400),
        ("D1", 500),
    ];
    let mut whitening = [0u8; 32];
    for j in &d.judges {
        for (w, b) in whitening.iter_mut().zip(j.0) {
            *w ^= b;
        }
    }
    let mut expected: Vec<(u64, [u8; 32], EventId)> = raw
        .iter()
        .map(|(n, t)| {
            let id = ring.id(n);
            let mut k = id.0;
            for (x, w) in k.iter_mut().zip(whitening) {
                *x ^= w;
            }
            (*t, k, id)
        })
        .collect();
    expected.sort();
    let got: Vec<EventId> = d.events.iter().map(|o| o.event.id()).collect();
    let want: Vec<EventId> = expected.iter().map(|x| x.2).collect();
    assert_eq!(got, want);
    let times: Vec<u64> = d.events.iter().map(|o| o.consensus_time_ns).collect();
    assert_eq!(times, vec![100, 200, 201, 300, 301, 400, 401, 500]);
    assert_eq!(
        d.events.iter().map(|o| o.order_index).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    assert_eq!(
        d.running_hash,
        d.events.last().expect("non-empty").running_hash
    );
}
