//! `Hashgraph::restore` on hostile input: random bytes, and valid
//! snapshots with flipped bits, truncations, insertions and tampered length
//! fields. It must return `Err` or `Ok`, never panic, and never allocate
//! more than a small multiple of the input (measured by a per-thread
//! counting allocator). Mutated snapshots are re-sealed with a correct
//! checksum so that the decoder itself is exercised, not just the checksum;
//! whatever it accepts must then keep working (poll, insert, sync, create,
//! snapshot) and snapshot back to exactly the accepted bytes.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

use common::*;
use dagger_consensus::{CreatorId, Event, EventId, Hashgraph, Roster, SnapshotError};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

struct Tracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size() as isize);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note(-(l.size() as isize));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        note(new as isize - l.size() as isize);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Tracking = Tracking;

/// Heap this thread allocated at the peak of `f`, beyond what it held
/// before.
fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - start).max(0) as usize)
}

/// Restoring allocates at most this for an input of `len` bytes: held
/// events take a few times their encoded size in memory (nodes, summaries,
/// indices), never more than this.
fn allowed(len: usize) -> usize {
    24 * len + (256 << 10)
}

fn restore_checked(bytes: &[u8]) -> Result<Hashgraph, SnapshotError> {
    let (r, grew) = peak_growth(|| Hashgraph::restore(config(), bytes));
    assert!(
        grew <= allowed(bytes.len()),
        "restore of {} bytes allocated {grew} bytes ({:?})",
        bytes.len(),
        r.as_ref().err()
    );
    r
}

/// A base snapshot and what to do with an instance restored from it.
struct Base {
    bytes: Vec<u8>,
    /// Events delivered after the snapshot was taken.
    later: Vec<Event>,
    keys: Vec<SigningKey>,
}

/// Replace the trailing checksum so the body gets decoded.
fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 32 {
        bytes.truncate(bytes.len() - 32);
    }
    let sum = blake3::hash(&bytes);
    bytes.extend_from_slice(sum.as_bytes());
    bytes
}

/// Snapshots of a small and of a long (pruned) run with a forker, a
/// scheduled roster change, buffered and parked events and pending
/// evidence, so that every section of the format is populated.
fn bases() -> &'static [Base] {
    static B: OnceLock<Vec<Base>> = OnceLock::new();
    B.get_or_init(|| {
        let mut out = Vec::new();
        for (steps, seed) in [(40usize, 1u64), (520, 2)] {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let keys: Vec<_> = (0..4).map(key).collect();
            let change = Roster::new(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| (CreatorId::from(k), 1 + u64::from(i == 0))),
            )
            .expect("valid");
            let mut sim = Sim::new(4, &[3], &[]);
            sim.fork_prob = 0.3;
            sim.roster_changes = vec![(3, change.clone())];
            sim.genesis(&mut rng);
            for _ in 0..steps {
                sim.step(&mut rng);
            }
            let mut hg = Hashgraph::new(config(), roster(&keys, &[1; 4]));
            let cut = sim.all.len() * 9 / 10;
            // Hold back one event (its descendants are buffered) and stop
            // polling for the last stretch (events get parked).
            let hold = sim.all.len() * 8 / 10;
            for (i, e) in sim.all[..cut].iter().enumerate() {
                if i == hold {
                    continue;
                }
                hg.insert(e.clone()).expect("valid");
                if i < hold {
                    while let Some(d) = hg.poll() {
                        if d.round_received == 3 {
                            hg.schedule_roster_change(3, change.clone()).expect("open");
                        }
                    }
                }
            }
            let mut later = vec![sim.all[hold].clone()];
            later.extend(sim.all[cut..].iter().cloned());
            out.push(Base {
                bytes: hg.snapshot(),
                later,
                keys,
            });
        }
        let long = Hashgraph::restore(config(), &out[1].bytes).expect("valid");
        let st = long.stats();
        assert!(
            st.pruned_through_round > 0 && st.buffered_events > 0,
            "base snapshot too simple: {st:?}"
        );
        out
    })
}

/// Offsets of the length prefixes of stored events (two-byte varints just
/// before a version byte followed by a creator key).
fn length_fields(base: &Base) -> Vec<usize> {
    let creators: Vec<[u8; 32]> = base.keys.iter().map(|k| CreatorId::from(k).0).collect();
    let b = &base.bytes;
    (2..b.len().saturating_sub(33))
        .filter(|&p| {
            b[p] == dagger_consensus::event::EVENT_VERSION
                && creators.iter().any(|c| b[p + 1..p + 33] == c[..])
        })
        .map(|p| p - 2)
        .collect()
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// Whatever restore accepted is a working instance: it snapshots back to
/// the same bytes and survives the whole API.
fn exercise(mut hg: Hashgraph, bytes: &[u8], base: &Base) {
    assert!(hg.snapshot() == bytes, "accepted input is not canonical");
    let _ = hg.stats();
    let tips = hg.tips();
    let _ = hg.events_unknown_to(&tips);
    let _ = hg.events_unknown_to(&tips[..tips.len() / 2]);
    for t in &tips {
        let _ = hg.event_info(t);
    }
    for k in &base.keys {
        let _ = hg.latest_of(&CreatorId::from(k));
    }
    for (i, e) in base.later.iter().enumerate() {
        let _ = hg.insert(e.clone());
        if i % 5 == 0 {
            while let Some(d) = hg.poll() {
                let _ = hg.schedule_roster_change(d.round_received, roster(&base.keys, &[1; 4]));
            }
        }
    }
    while hg.poll().is_some() {}
    let op = hg.tips().first().copied();
    let _ = hg.create_event(&base.keys[0], vec![vec![1]], 5, op);
    let _ = hg.create_event(&base.keys[1], vec![], 5, Some(EventId([3; 32])));
    let _ = hg.take_equivocations();
    let again = hg.snapshot();
    let back = Hashgraph::restore(config(), &again).expect("own snapshot restores");
    assert!(back.snapshot() == again);
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Set {
        at: usize,
        value: u8,
    },
    Insert {
        at: usize,
        value: u8,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Truncate {
        keep: usize,
    },
    /// Replace the length prefix of the `which`-th stored event.
    Length {
        which: usize,
        value: u64,
    },
    /// Replace the byte before that length prefix (often a count).
    Count {
        which: usize,
        value: u64,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = any::<prop::sample::Index>();
    prop_oneof![
        3 => (pos.clone(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip { at: i.index(usize::MAX), bit }),
        2 => (pos.clone(), any::<u8>()).prop_map(|(i, value)| Mutation::Set { at: i.index(usize::MAX), value }),
        1 => (pos.clone(), any::<u8>()).prop_map(|(i, value)| Mutation::Insert { at: i.index(usize::MAX), value }),
        1 => (pos.clone(), 1usize..64).prop_map(|(i, len)| Mutation::Delete { at: i.index(usize::MAX), len }),
        1 => pos.clone().prop_map(|i| Mutation::Truncate { keep: i.index(usize::MAX) }),
        2 => (pos.clone(), prop_oneof![Just(0u64), 1u64..400, Just(u64::from(u32::MAX)), Just(u64::MAX)])
            .prop_map(|(i, value)| Mutation::Length { which: i.index(usize::MAX), value }),
        2 => (pos, prop_oneof![Just(0u64), 1u64..300, Just(1u64 << 40), Just(u64::MAX)])
            .prop_map(|(i, value)| Mutation::Count { which: i.index(usize::MAX), value }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation, fields: &[usize]) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match *m {
        Mutation::Flip { at, bit } => bytes[at % n] ^= 1 << bit,
        Mutation::Set { at, value } => bytes[at % n] = value,
        Mutation::Insert { at, value } => bytes.insert(at % n, value),
        Mutation::Delete { at, len } => {
            let s = at % n;
            let e = (s + len).min(bytes.len());
            bytes.drain(s..e);
        }
        Mutation::Truncate { keep } => bytes.truncate(keep % n),
        Mutation::Length { which, value } | Mutation::Count { which, value } => {
            if fields.is_empty() {
                return;
            }
            let p = fields[which % fields.len()];
            let (at, old) = if matches!(m, Mutation::Length { .. }) {
                (p, 2)
            } else {
                (p.saturating_sub(1), 1)
            };
            if at + old <= bytes.len() {
                bytes.splice(at..at + old, varint(value));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        prop_assert!(restore_checked(&bytes).is_err());
    }

    /// Random bodies behind a valid header and checksum reach the decoder.
    #[test]
    fn random_sealed_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut bytes = b"DAGGERHG\x01\x00".to_vec();
        bytes.extend_from_slice(&NET);
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&[0; 32]);
        let bytes = reseal(bytes);
        if let Ok(hg) = restore_checked(&bytes) {
            exercise(hg, &bytes, &bases()[0]);
        }
    }

    /// Without a fresh checksum every change is caught up front.
    #[test]
    fn unsealed_mutations_are_refused(
        which in 0usize..2,
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let base = &bases()[which];
        let mut bytes = base.bytes.clone();
        let fields = length_fields(base);
        for m in &muts {
            apply(&mut bytes, m, &fields);
        }
        prop_assume!(bytes != base.bytes);
        prop_assert!(restore_checked(&bytes).is_err());
    }

}

proptest! {
    // DAGGER_FUZZ_CASES=100000 for a long run (release mode advised).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("DAGGER_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1024)
    ))]
    #[test]
    fn resealed_mutations_never_panic(
        which in 0usize..2,
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let base = &bases()[which];
        let mut bytes = base.bytes.clone();
        let fields = length_fields(base);
        for m in &muts {
            apply(&mut bytes, m, &fields);
        }
        let bytes = reseal(bytes);
        if let Ok(hg) = restore_checked(&bytes) {
            exercise(hg, &bytes, base);
        }
    }
}

/// The bases themselves restore within the allocation bound and survive
/// the exercise (so the bound and the exercise are not vacuous).
#[test]
fn valid_snapshots_restore_within_the_allocation_bound() {
    for base in bases() {
        let hg = restore_checked(&base.bytes).expect("valid");
        assert!(!length_fields(base).is_empty());
        exercise(hg, &base.bytes, base);
    }
    // A declared count far beyond the input is refused before allocating.
    let base = &bases()[1];
    let fields = length_fields(base);
    let mut bytes = base.bytes.clone();
    apply(
        &mut bytes,
        &Mutation::Count {
            which: 0,
            value: 1 << 40,
        },
        &fields,
    );
    assert_eq!(
        restore_checked(&reseal(bytes)).err(),
        Some(SnapshotError::Truncated)
    );
}
