//! Random scenarios, one per seed, with the simulator's properties checked
//! on each (see the crate docs).
//!
//! * CI size: 500 seeds (`cargo test -p dagger-netsim`).
//! * Long run: `DAGGER_SIM_SEEDS=10000 cargo test --release -p dagger-netsim`.
//! * Replay one: `DAGGER_SIM_SEED=1234 cargo test -p dagger-netsim`.
//!
//! Seeds run on every core; a failure names its seed and what broke.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use dagger_netsim::{run, Scenario};

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn one(seed: u64) -> Result<(), String> {
    let scenario = Scenario::random(seed);
    match catch_unwind(AssertUnwindSafe(|| run(seed, &scenario))) {
        Ok(Ok(report)) => {
            if std::env::var("DAGGER_SIM_VERBOSE").is_ok() {
                eprintln!("seed {seed}: {report:?}");
            }
            Ok(())
        }
        Ok(Err(v)) => Err(format!(
            "seed {seed}: {}\n  report: {:?}\n  scenario: {scenario:?}\n  replay: DAGGER_SIM_SEED={seed} cargo test -p dagger-netsim",
            v.what, v.report
        )),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!(
                "seed {seed}: panicked: {msg}\n  scenario: {scenario:?}\n  replay: DAGGER_SIM_SEED={seed} cargo test -p dagger-netsim"
            ))
        }
    }
}

#[test]
fn random_networks_and_adversaries() {
    if let Some(seed) = env("DAGGER_SIM_SEED") {
        if let Err(e) = one(seed) {
            panic!("{e}");
        }
        return;
    }
    let count = env("DAGGER_SIM_SEEDS").unwrap_or(500);
    let next = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= count {
                    break;
                }
                if let Err(e) = one(seed) {
                    failures.lock().expect("lock").push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
