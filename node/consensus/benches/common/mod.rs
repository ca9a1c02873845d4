//! DAG generator for benchmarks: each step a random creator makes an event
//! whose other-parent is the latest event of another random creator (a
//! well-connected gossip network).
#![allow(dead_code)]

use dagger_consensus::{Config, CreatorId, Event, Hashgraph, Limits, Roster};
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
/// `tx_bytes` each per event, in creation (topological) order. A generator
/// instance that holds every event computes each one's birth round (as the
/// creator's node would).
pub fn dag(
    keys: &[SigningKey],
    events: usize,
    txs: usize,
    tx_bytes: usize,
    seed: u64,
) -> Vec<Event> {
    let n = keys.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let config = Config {
        network_id: NET,
        limits: Limits::default(),
    };
    let mut hg = Hashgraph::new(config, roster(keys));
    let mut out = Vec::with_capacity(events);
    let mut clock = 0u64;
    let mut i = 0;
    while out.len() < events {
        let c = if i < n { i } else { rng.gen_range(0..n) };
        let mut o = rng.gen_range(0..n);
        if o == c {
            o = (o + 1) % n;
        }
        clock += 1_000;
        let op = if i < n {
            None
        } else {
            hg.latest_of(&CreatorId::from(&keys[o]))
        };
        let k = out.len();
        let batch = (0..txs).map(|j| {
            let mut t = vec![0u8; tx_bytes];
            t[..8.min(tx_bytes)]
                .copy_from_slice(&((k * txs + j) as u64).to_le_bytes()[..8.min(tx_bytes)]);
            t
        });
        i += 1;
        // Creation waits while consensus is behind (as a node's would).
        let Ok(e) = hg.create_event(&keys[c], batch.collect(), clock, op) else {
            while hg.poll().is_some() {}
            continue;
        };
        while hg.poll().is_some() {}
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
