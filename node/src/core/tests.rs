//! The core's admission limits, driven without sockets.

use std::{sync::Arc, time::Duration};

use dagger_consensus::{CreatorId, Roster};

use super::*;

/// A core that is not in `genesis` (an observer: it cannot sign, so what
/// it is sent stays pending), with no gossip.
fn open_observer(
    genesis: Roster,
    max_pending_txs: usize,
    max_pending_bytes: usize,
) -> (CoreHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let config = CoreConfig {
        consensus: dagger_consensus::Config::default(),
        genesis,
        max_pending_txs,
        max_pending_bytes,
        idle_event_interval: Duration::from_secs(3600),
        min_event_spacing: Duration::ZERO,
        disk_horizon_rounds: 64,
        state_sync_gap: crate::config::DEFAULT_STATE_SYNC_GAP_EVENTS,
        state_sync_min_lag: crate::core::STATE_SYNC_MIN_LAG,
        forward_window: crate::core::forward::FORWARD_WINDOW,
        signing_record: None,
    };
    let (core, handle) = Core::open(
        Identity::generate(),
        store,
        config,
        Arc::new(Metrics::default()),
        Box::new(StaticRoster),
    )
    .expect("opens");
    tokio::spawn(core.run());
    (handle, dir)
}

fn open(max_pending_txs: usize, max_pending_bytes: usize) -> (CoreHandle, tempfile::TempDir) {
    let genesis = Roster::new([(CreatorId(Identity::generate().id()), 1)]).expect("roster");
    open_observer(genesis, max_pending_txs, max_pending_bytes)
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

/// A fork that waits for a withheld parent is evidence at once, and stays
/// one piece of evidence when the parent arrives and consensus meets the
/// same pair again on insertion.
#[tokio::test]
async fn a_fork_waiting_for_a_parent_is_evidence_once() {
    use dagger_consensus::{Config, Hashgraph};
    let (forker, other) = (Identity::generate(), Identity::generate());
    let genesis =
        Roster::new([(CreatorId(forker.id()), 1), (CreatorId(other.id()), 1)]).expect("roster");
    let (handle, _dir) = open_observer(genesis.clone(), 16, 1 << 16);

    // Build the events with a scratch instance (it computes birth rounds).
    let mut scratch = Hashgraph::new(Config::default(), genesis);
    let (fk, ok) = (forker.signing_key(), other.signing_key());
    let a0 = scratch.create_event(fk, vec![], 1, None).expect("a0");
    let b0 = scratch.create_event(ok, vec![], 2, None).expect("b0");
    let a1 = scratch
        .create_event(fk, vec![], 3, Some(b0.id()))
        .expect("a1");
    let x = scratch
        .create_event(ok, vec![], 4, Some(a0.id()))
        .expect("x");
    let fork = scratch
        .build_event(fk, Some(a0.id()), Some(x.id()), 5, vec![b"fork".to_vec()])
        .expect("fork");
    assert_eq!(fork.seq(), a1.seq());
    let a0_id = a0.id();

    handle
        .receive(vec![a0, b0, a1.clone()])
        .await
        .expect("receive");
    let summary = handle.receive(vec![fork.clone()]).await.expect("receive");
    assert_eq!(summary.waiting, 1, "the fork waits for x");
    let evidence = handle.evidence().await.expect("evidence");
    assert_eq!(evidence.len(), 1, "reported while waiting");
    handle.receive(vec![x]).await.expect("receive");
    let evidence = handle.evidence().await.expect("evidence");
    assert_eq!(evidence.len(), 1, "the same pair once: {evidence:?}");
    let ids = [evidence[0].first.id(), evidence[0].second.id()];
    assert!(ids.contains(&a1.id()) && ids.contains(&fork.id()));
    // Kept as signed headers: the fork's transactions are dropped, the
    // proof still checks.
    assert!(evidence[0].second.transactions().is_empty());
    assert_eq!(evidence[0].verify(&Config::default().network_id), Ok(()));

    // Endless cheap forks of one creator are a few pairs, not a flood.
    for t in 10..40 {
        let again = scratch
            .build_event(fk, Some(a0_id), None, t, vec![])
            .expect("another fork");
        handle.receive(vec![again]).await.expect("receive");
    }
    let evidence = handle.evidence().await.expect("evidence");
    assert_eq!(evidence.len(), super::machine::MAX_EVIDENCE_PER_CREATOR);
}

/// The explorer's view: every held event once, then only news and what it
/// was shown unsettled; a fork's two events and its creator accused.
#[tokio::test]
async fn the_explorer_follows_the_dag_and_sees_a_fork() {
    use dagger_consensus::{Config, Hashgraph};
    let (forker, other) = (Identity::generate(), Identity::generate());
    let genesis =
        Roster::new([(CreatorId(forker.id()), 1), (CreatorId(other.id()), 1)]).expect("roster");
    let (handle, _dir) = open_observer(genesis.clone(), 16, 1 << 16);
    let mut scratch = Hashgraph::new(Config::default(), genesis);
    let (fk, ok) = (forker.signing_key(), other.signing_key());
    let a0 = scratch.create_event(fk, vec![], 1, None).expect("a0");
    let b0 = scratch.create_event(ok, vec![], 2, None).expect("b0");
    let a1 = scratch
        .create_event(fk, vec![b"tx".to_vec()], 3, Some(b0.id()))
        .expect("a1");
    handle
        .receive(vec![a0.clone(), b0.clone(), a1.clone()])
        .await
        .expect("receive");

    let first = handle.dag(0, Default::default()).await.expect("dag");
    let ids: Vec<_> = first.events.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![a0.id(), b0.id(), a1.id()], "parents first");
    assert!(first.accused.is_empty());
    assert_eq!(first.roster.len(), 2);
    let a1_view = &first.events[2];
    assert_eq!(a1_view.creator, forker.id());
    assert_eq!(a1_view.self_parent, Some(a0.id()));
    assert_eq!(a1_view.other_parent, Some(b0.id()));
    assert_eq!(a1_view.txs, 1);
    assert!(a1_view.moments.received_ns.is_some(), "arrival recorded");
    assert!(
        a1_view.unsettled(),
        "nothing is ordered with two events a creator"
    );

    // Nothing new: an empty slice, unless unsettled events are named.
    let again = handle
        .dag(first.cursor, Default::default())
        .await
        .expect("dag");
    assert!(again.events.is_empty());
    assert_eq!(again.cursor, first.cursor);
    let named = handle
        .dag(first.cursor, [a1.id()].into_iter().collect())
        .await
        .expect("dag");
    assert_eq!(named.events.len(), 1);
    assert_eq!(named.events[0].id, a1.id());

    // A fork: the second event at a1's sequence number is news, and its
    // creator is accused.
    let fork = scratch
        .build_event(fk, Some(a0.id()), Some(b0.id()), 5, vec![b"fork".to_vec()])
        .expect("fork");
    assert_eq!(fork.seq(), a1.seq());
    handle.receive(vec![fork.clone()]).await.expect("receive");
    let news = handle
        .dag(first.cursor, Default::default())
        .await
        .expect("dag");
    assert_eq!(
        news.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![fork.id()]
    );
    assert_eq!(news.accused, vec![forker.id()]);
    assert!(news.cursor > first.cursor);
}
