//! DAG generator for benchmarks: each step a random creator makes an event
//! whose other-parent is the latest event of another random creator (a
//! well-connected gossip network).
#![allow(dead_code)]

use dagger_consensus::{CreatorId, Event, Roster, UnsignedEvent};
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const NET: [u8; 32] = [3u8; 32];

pub fn keys(n: usize) -> Vec<SigningKey> {
    (0..n)
        .map(|i| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            SigningKey::from_bytes(&b)
        })
        .collect()
}

pub fn roster(keys: &[SigningKey]) -> Roster {
    Roster::new(keys.iter().map(|k| (CreatorId::from(k), 1))).expect("valid")
}

/// `events` signed events by `keys.len()` creators, `txs` transactions of
/// `tx_bytes` each per event, in creation (topological) order.
pub fn dag(
    keys: &[SigningKey],
    events: usize,
    txs: usize,
    tx_bytes: usize,
    seed: u64,
) -> Vec<Event> {
    let n = keys.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut latest: Vec<Option<Event>> = vec![None; n];
    let mut out = Vec::with_capacity(events);
    let mut clock = 0u64;
    for i in 0..events {
        let c = if i < n { i } else { rng.gen_range(0..n) };
        let mut o = rng.gen_range(0..n);
        if o == c {
            o = (o + 1) % n;
        }
        clock += 1_000;
        let sp = latest[c].clone();
        let op = if i < n {
            None
        } else {
            latest[o].as_ref().map(Event::id)
        };
        let batch = (0..txs).map(|k| {
            let mut t = vec![0u8; tx_bytes];
            t[..8.min(tx_bytes)]
                .copy_from_slice(&((i * txs + k) as u64).to_le_bytes()[..8.min(tx_bytes)]);
            t
        });
        let e = UnsignedEvent {
            seq: sp.as_ref().map_or(0, |p| p.seq() + 1),
            self_parent: sp.as_ref().map(Event::id),
            other_parent: op,
            created_at_ns: clock,
            txs: batch.collect(),
        }
        .sign(&keys[c], &NET);
        latest[c] = Some(e.clone());
        out.push(e);
    }
    out
}

/// Events `dag` needs for `n` creators to reach steady state (pruning
/// under way for many rounds): with this generator a round takes about 3.4
/// events per creator at N = 4 and 7.8 at N = 16.
pub fn steady_state_events(n: usize) -> usize {
    if n <= 4 {
        2400
    } else {
        400 * n
    }
}

/// Re-decode so the per-event signature cache is empty.
pub fn fresh(events: &[Vec<u8>]) -> Vec<Event> {
    events
        .iter()
        .map(|b| Event::decode(b).expect("valid"))
        .collect()
}
