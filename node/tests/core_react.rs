//! Gossip-driven event creation, driven without sockets: a node answers a
//! pushed event from another creator with an own event linking it, at most
//! once per `min_event_spacing` (arrivals in between are coalesced into
//! that one event), and only when there is something to order.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use dagger_consensus::{CreatorId, Event, Roster};
use dagger_node::{
    core::{CoreConfig, Machine, Now, Output, StaticRoster, SubmitId},
    identity::Identity,
    metrics::Metrics,
    store::Store,
};
use ed25519_dalek::SigningKey;

const SPACING: Duration = Duration::from_millis(2);
const IDLE: Duration = Duration::from_millis(500);

struct Node {
    machine: Machine,
    _dir: tempfile::TempDir,
}

fn nodes(n: usize, now: Now) -> Vec<Node> {
    let identities: Vec<Identity> = (0..n)
        .map(|i| Identity::from_signing_key(SigningKey::from_bytes(&[i as u8 + 40; 32])))
        .collect();
    let genesis = Roster::new(identities.iter().map(|i| (CreatorId(i.id()), 1))).expect("roster");
    identities
        .into_iter()
        .map(|identity| {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Arc::new(Store::open(dir.path()).expect("store"));
            let config = CoreConfig {
                consensus: dagger_consensus::Config {
                    network_id: [3; 32],
                    limits: Default::default(),
                },
                genesis: genesis.clone(),
                max_pending_txs: 1_000,
                max_pending_bytes: 1 << 20,
                idle_event_interval: IDLE,
                min_event_spacing: SPACING,
                disk_horizon_rounds: 64,
                state_sync_gap: dagger_node::config::DEFAULT_STATE_SYNC_GAP_EVENTS,
                state_sync_min_lag: dagger_node::core::STATE_SYNC_MIN_LAG,
                forward_window: dagger_node::core::forward::FORWARD_WINDOW,
                signing_record: None,
            };
            let recovered = store.recover().expect("recover");
            let mut machine = Machine::recover(
                identity,
                config,
                Arc::new(Metrics::default()),
                Box::new(StaticRoster),
                store,
                recovered,
                now,
            )
            .expect("machine");
            // A fresh node waits for a quiet pull before it signs.
            machine.after_sync([0; 32], now);
            Node { machine, _dir: dir }
        })
        .collect()
}

/// Own events the machine handed out since the last call.
fn created(machine: &mut Machine) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(output) = machine.poll_output() {
        if let Output::Persist { own: Some(own), .. } = output {
            machine.on_durable(&own.event.id());
            out.push(own.event);
        }
    }
    out
}

fn later(now: Now, by: Duration) -> Now {
    Now {
        instant: now.instant + by,
        unix_ns: now.unix_ns + by.as_nanos() as u64,
    }
}

/// Node 0 signs an event carrying a transaction (its heartbeat fallback,
/// long after the start).
fn first_event(nodes: &mut [Node], t0: Now) -> (Event, Now) {
    let t = later(t0, IDLE * 5);
    nodes[0]
        .machine
        .submit(b"pay".to_vec(), SubmitId(1), t)
        .expect("admitted");
    nodes[0].machine.heartbeat(t);
    let mut events = created(&mut nodes[0].machine);
    assert_eq!(
        events.len(),
        1,
        "the heartbeat signs the pending transaction"
    );
    (events.remove(0), t)
}

fn start() -> Now {
    Now {
        instant: Instant::now(),
        unix_ns: 1_800_000_000_000_000_000,
    }
}

#[test]
fn a_push_with_work_is_answered_at_once_by_an_event_linking_it() {
    let t0 = start();
    let mut nodes = nodes(4, t0);
    let (event, t) = first_event(&mut nodes, t0);
    for node in &mut nodes[1..] {
        created(&mut node.machine);
        let summary = node.machine.receive_push(vec![event.clone()], t);
        assert_eq!(summary.inserted, 1);
        let answer = created(&mut node.machine);
        assert_eq!(answer.len(), 1, "one answer, without waiting for a pull");
        assert_eq!(answer[0].other_parent(), Some(event.id()));
        assert_eq!(node.machine.poll_timeout(), None);
    }
}

#[test]
fn arrivals_within_the_spacing_are_coalesced_into_one_event_linking_the_newest() {
    let t0 = start();
    let mut nodes = nodes(4, t0);
    let (event, t) = first_event(&mut nodes, t0);
    // Node 1 answers node 0's event at once...
    nodes[1].machine.receive_push(vec![event.clone()], t);
    let answer1 = created(&mut nodes[1].machine).remove(0);
    // ...node 2 too; then node 2 gets node 1's answer 0.5 ms later, and
    // node 3's 1 ms later: within the spacing, so nothing is signed yet.
    nodes[2].machine.receive_push(vec![event.clone()], t);
    created(&mut nodes[2].machine);
    nodes[3].machine.receive_push(vec![event.clone()], t);
    let answer3 = created(&mut nodes[3].machine).remove(0);
    let t_half = later(t, Duration::from_micros(500));
    nodes[2].machine.receive_push(vec![answer1], t_half);
    assert!(created(&mut nodes[2].machine).is_empty());
    assert_eq!(nodes[2].machine.poll_timeout(), Some(t.instant + SPACING));
    let t_one = later(t, Duration::from_millis(1));
    nodes[2].machine.receive_push(vec![answer3.clone()], t_one);
    assert!(created(&mut nodes[2].machine).is_empty());
    // An early timer does nothing; the deadline signs one event for both,
    // linking the newest arrival.
    nodes[2]
        .machine
        .handle_timeout(later(t, Duration::from_micros(1_500)));
    assert!(created(&mut nodes[2].machine).is_empty());
    nodes[2].machine.handle_timeout(later(t, SPACING));
    let coalesced = created(&mut nodes[2].machine);
    assert_eq!(coalesced.len(), 1);
    assert_eq!(coalesced[0].other_parent(), Some(answer3.id()));
    assert_eq!(nodes[2].machine.poll_timeout(), None);
}

#[test]
fn an_idle_node_does_not_answer_pushes_until_its_idle_interval_passed() {
    let t0 = start();
    let mut nodes = nodes(2, t0);
    // Node 0 signs an empty event (nothing to order anywhere).
    let t = later(t0, IDLE * 5);
    nodes[0].machine.heartbeat(t);
    let empty = created(&mut nodes[0].machine).remove(0);
    assert!(empty.transactions().is_empty());
    // Node 1 signed a moment ago (a heartbeat of its own)...
    nodes[1].machine.heartbeat(t);
    created(&mut nodes[1].machine);
    // ...so an empty push is not answered, and no timer is armed.
    let soon = later(t, Duration::from_millis(10));
    nodes[1].machine.receive_push(vec![empty], soon);
    assert!(created(&mut nodes[1].machine).is_empty());
    assert_eq!(nodes[1].machine.poll_timeout(), None);
    // Once the idle interval passed, the news is answered (no pull needed).
    nodes[1].machine.heartbeat(later(t, IDLE));
    assert_eq!(created(&mut nodes[1].machine).len(), 1);
}

/// A pull answer leaves out what the asking peer is about to get in its
/// creators' pushes (events this node got within the round-trip window)
/// and everything built on them, sends them once the window passed, and
/// sends everything to a peer that waits for a parent.
#[test]
fn pull_answers_leave_out_events_still_in_flight_to_the_peer() {
    let t0 = start();
    let mut nodes = nodes(4, t0);
    let (event, t) = first_event(&mut nodes, t0);
    // Node 1 gets node 0's event and answers it with an own event built
    // on it; node 2 holds neither.
    created(&mut nodes[1].machine);
    nodes[1].machine.receive_push(vec![event.clone()], t);
    let answer = created(&mut nodes[1].machine).remove(0);
    assert_eq!(answer.other_parent(), Some(event.id()));
    let tips = nodes[2].machine.tips();
    let window = Duration::from_millis(100);
    let ids = |events: Vec<Event>| events.iter().map(Event::id).collect::<Vec<_>>();
    let asked = |machine: &mut Machine, in_flight, at| {
        let answer = machine.sync_answer(&tips, 0, &[], 1_000, in_flight, at);
        assert!(answer.ledger.missing.is_empty());
        ids(answer.events)
    };

    let everything = asked(&mut nodes[1].machine, None, t);
    assert!(everything.contains(&event.id()) && everything.contains(&answer.id()));
    let older: Vec<_> = everything
        .iter()
        .copied()
        .filter(|id| *id != event.id() && *id != answer.id())
        .collect();
    let soon = later(t, window / 2);
    assert_eq!(
        asked(&mut nodes[1].machine, Some(window), soon),
        older,
        "both are in flight to the peer (the answer is built on the event)"
    );
    let after = later(t, window + Duration::from_millis(1));
    assert_eq!(
        asked(&mut nodes[1].machine, Some(window), after),
        everything
    );

    // A peer waiting for a parent gets everything at once.
    let missing = [(event.id(), event.birth_round())];
    let waiting = nodes[1]
        .machine
        .sync_answer(&tips, 0, &missing, 1_000, Some(window), soon);
    assert_eq!(ids(waiting.events), everything);
}
