//! Criterion benchmarks: insertion throughput (with and without the
//! signature check), signature check alone, ordered transactions per second,
//! snapshot and restore of a steady-state instance.

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dagger_consensus::{verify, Config, CreatorId, Hashgraph, Limits};

fn config() -> Config {
    Config {
        network_id: NET,
        limits: Limits::default(),
    }
}

/// Insert everything, polling after each insert as a node would.
fn run(hg: &mut Hashgraph, events: Vec<dagger_consensus::Event>) -> u64 {
    let mut ordered_txs = 0u64;
    for e in events {
        hg.insert(e).expect("valid");
        while let Some(d) = hg.poll() {
            ordered_txs += d
                .events
                .iter()
                .map(|o| o.event.transactions().len() as u64)
                .sum::<u64>();
        }
    }
    ordered_txs
}

fn insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("insert");
    g.sample_size(10);
    for n in [4usize, 16, 64] {
        let keys = keys(n);
        let events = dag(&keys, 30 * n.max(16), 1, 64, n as u64);
        let bytes: Vec<Vec<u8>> = events.iter().map(|e| e.encode()).collect();
        g.throughput(Throughput::Elements(events.len() as u64));
        // Full path: decode done in setup, signature checked on insert.
        g.bench_function(format!("full/n={n}"), |b| {
            b.iter_batched(
                || (Hashgraph::new(config(), roster(&keys)), fresh(&bytes)),
                |(mut hg, evs)| run(&mut hg, evs),
                BatchSize::LargeInput,
            )
        });
        // Same events with the signature already checked: everything else.
        g.bench_function(format!("without_signature/n={n}"), |b| {
            b.iter_batched(
                || {
                    let evs = fresh(&bytes);
                    for e in &evs {
                        verify::signature_ok(e, &NET).expect("valid");
                    }
                    (Hashgraph::new(config(), roster(&keys)), evs)
                },
                |(mut hg, evs)| run(&mut hg, evs),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn signature(c: &mut Criterion) {
    let keys = keys(4);
    let bytes: Vec<Vec<u8>> = dag(&keys, 256, 1, 64, 1)
        .iter()
        .map(|e| e.encode())
        .collect();
    let mut g = c.benchmark_group("signature");
    g.throughput(Throughput::Elements(bytes.len() as u64));
    g.bench_function("verify_strict", |b| {
        b.iter_batched(
            || fresh(&bytes),
            |evs| {
                for e in &evs {
                    verify::signature_ok(e, &NET).expect("valid");
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn ordered_txs(c: &mut Criterion) {
    let mut g = c.benchmark_group("ordered_txs");
    g.sample_size(10);
    let keys = keys(4);
    for batch in [1usize, 100, 1000] {
        let events = dag(&keys, 400, batch, 32, 7);
        let bytes: Vec<Vec<u8>> = events.iter().map(|e| e.encode()).collect();
        let mut probe = Hashgraph::new(config(), roster(&keys));
        let ordered = run(&mut probe, fresh(&bytes));
        g.throughput(Throughput::Elements(ordered));
        g.bench_function(format!("batch={batch}"), |b| {
            b.iter_batched(
                || (Hashgraph::new(config(), roster(&keys)), fresh(&bytes)),
                |(mut hg, evs)| run(&mut hg, evs),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// Snapshot and restore at steady state: enough events that pruning keeps
/// the held window at about `ANCIENT_HORIZON` decided rounds plus the
/// undecided frontier (sizes: `examples/memory.rs`).
fn snapshot(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(20);
    for n in [4usize, 16] {
        let keys = keys(n);
        let mut hg = Hashgraph::new(config(), roster(&keys));
        run(&mut hg, dag(&keys, steady_state_events(n), 1, 64, 5));
        assert!(hg.stats().pruned_through_round > 0, "{:?}", hg.stats());
        let bytes = hg.snapshot();
        g.throughput(Throughput::Elements(hg.stats().held_events as u64));
        g.bench_function(format!("snapshot/n={n}"), |b| b.iter(|| hg.snapshot()));
        g.bench_function(format!("restore/n={n}"), |b| {
            b.iter(|| Hashgraph::restore(config(), &bytes).expect("valid"))
        });
    }
    g.finish();
}

/// The other-parent choice a node makes before each own event, at steady
/// state: one round computation per other creator's tip.
fn other_parent(c: &mut Criterion) {
    let mut g = c.benchmark_group("best_other_parent");
    for n in [4usize, 16, 64] {
        let keys = keys(n);
        let mut hg = Hashgraph::new(config(), roster(&keys));
        run(&mut hg, dag(&keys, steady_state_events(n), 1, 64, 5));
        let me = CreatorId::from(&keys[0]);
        let newest = hg.latest_of(&CreatorId::from(&keys[1]));
        assert!(hg.best_other_parent(&me, newest).is_some());
        g.bench_function(format!("n={n}"), |b| {
            b.iter(|| hg.best_other_parent(&me, newest))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    insert,
    signature,
    ordered_txs,
    snapshot,
    other_parent
);
criterion_main!(benches);
