//! The core's admission limits, driven without sockets.

use std::{sync::Arc, time::Duration};

use dagger_consensus::{CreatorId, Roster};

use super::*;

fn open(max_pending_txs: usize, max_pending_bytes: usize) -> (CoreHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let identity = Identity::generate();
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    // An observer (not in the roster): it cannot sign, so what it is sent
    // stays pending.
    let genesis = Roster::new([(CreatorId(Identity::generate().id()), 1)]).expect("roster");
    let config = CoreConfig {
        consensus: dagger_consensus::Config::default(),
        genesis,
        max_pending_txs,
        max_pending_bytes,
        idle_event_interval: Duration::from_secs(3600),
        min_event_spacing: Duration::ZERO,
        disk_horizon_rounds: 64,
    };
    let (core, handle) = Core::open(
        identity,
        store,
        config,
        Arc::new(Metrics::default()),
        Box::new(StaticRoster),
    )
    .expect("opens");
    tokio::spawn(core.run());
    (handle, dir)
}

/// Nothing creates events here (an observer node, no gossip), so submitted
/// transactions stay pending: the limits must refuse more, by count and by
/// bytes, with a typed error, and accept again what fits.
#[tokio::test]
async fn pending_transactions_are_bounded_by_count_and_bytes() {
    let (core, _dir) = open(1_000, 10_000);
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let core = core.clone();
        waiting.push(tokio::spawn(
            async move { core.submit(vec![1; 3_000]).await },
        ));
    }
    // Let the three reach the core (9 000 bytes pending).
    for _ in 0..100 {
        if core.status().await.expect("status").pending_txs == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(core.status().await.expect("status").pending_txs, 3);
    assert_eq!(
        core.submit(vec![2; 3_000]).await,
        Err(SubmitError::BusyBytes(9_000))
    );
    // A smaller one still fits.
    let small = {
        let core = core.clone();
        tokio::spawn(async move { core.submit(vec![3; 1_000]).await })
    };
    for _ in 0..100 {
        if core.status().await.expect("status").pending_txs == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(core.status().await.expect("status").pending_txs, 4);
    assert_eq!(core.submit(vec![]).await, Err(SubmitError::Empty));
    core.shutdown().await;
    small.abort();
    for w in waiting {
        w.abort();
    }

    let (core, _dir) = open(2, 1 << 20);
    let a = {
        let core = core.clone();
        tokio::spawn(async move { core.submit(vec![1]).await })
    };
    let b = {
        let core = core.clone();
        tokio::spawn(async move { core.submit(vec![2]).await })
    };
    for _ in 0..100 {
        if core.status().await.expect("status").pending_txs == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(core.submit(vec![3]).await, Err(SubmitError::Busy(2)));
    core.shutdown().await;
    a.abort();
    b.abort();
}
