//! Bytes of heap per retained event, measured with a counting global
//! allocator (not estimated), then snapshot size and snapshot / restore
//! times at steady state: `cargo run --release --example memory`.

#[path = "../benches/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use dagger_consensus::{Config, Event, Hashgraph, Limits};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    println!("| creators | txs/event | events fed | decided rounds | held | peak held | heap bytes | bytes/held event |");
    println!("|---|---|---|---|---|---|---|---|");
    for (n, txs) in [(4usize, 1usize), (16, 1), (64, 1), (4, 100)] {
        let keys = keys(n);
        let events = if txs == 1 { 150 * n.max(16) } else { 60 * 16 };
        let bytes: Vec<Vec<u8>> = dag(&keys, events, txs, 32, 11)
            .iter()
            .map(Event::encode)
            .collect();
        let cfg = Config {
            network_id: NET,
            limits: Limits::default(),
        };
        let before = LIVE.load(Ordering::Relaxed);
        let mut hg = Hashgraph::new(cfg, roster(&keys));
        let mut peak = 0;
        for b in &bytes {
            hg.insert(Event::decode(b).expect("valid")).expect("valid");
            while let Some(d) = hg.poll() {
                drop(d);
            }
            peak = peak.max(hg.stats().held_events);
        }
        let used = LIVE.load(Ordering::Relaxed) - before;
        let held = hg.stats().held_events;
        println!(
            "| {n} | {txs} | {} | {} | {held} | {peak} | {used} | {} |",
            bytes.len(),
            hg.stats().last_decided_round,
            used / held.max(1) as isize
        );
        drop(hg);
    }
    snapshots();
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort_unstable();
    t[runs / 2]
}

fn snapshots() {
    println!();
    println!("| creators | events fed | decided rounds | held | snapshot bytes | bytes/held event | snapshot | restore | restored heap bytes |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in [4usize, 16] {
        let keys = keys(n);
        let cfg = Config {
            network_id: NET,
            limits: Limits::default(),
        };
        let events = dag(&keys, steady_state_events(n), 1, 32, 11);
        let fed = events.len();
        let mut hg = Hashgraph::new(cfg.clone(), roster(&keys));
        for e in events {
            hg.insert(e).expect("valid");
            while hg.poll().is_some() {}
        }
        let st = hg.stats();
        assert!(st.pruned_through_round > 0, "not at steady state: {st:?}");
        let bytes = hg.snapshot();
        let take = median(21, || drop(std::hint::black_box(hg.snapshot())));
        let restore = median(21, || {
            drop(std::hint::black_box(
                Hashgraph::restore(cfg.clone(), &bytes).expect("valid"),
            ))
        });
        let before = LIVE.load(Ordering::Relaxed);
        let restored = Hashgraph::restore(cfg.clone(), &bytes).expect("valid");
        let heap = LIVE.load(Ordering::Relaxed) - before;
        assert!(restored.snapshot() == bytes);
        println!(
            "| {n} | {fed} | {} | {} | {} | {} | {:.2} ms | {:.2} ms | {heap} |",
            st.last_decided_round,
            st.held_events,
            bytes.len(),
            bytes.len() / st.held_events.max(1),
            take.as_secs_f64() * 1e3,
            restore.as_secs_f64() * 1e3,
        );
    }
}
