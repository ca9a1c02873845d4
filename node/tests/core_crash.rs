//! The consensus core driven without sockets or tasks, crashed at every
//! step of a scripted run.
//!
//! Four machines gossip by pulls (exactly the node's sync protocol:
//! tips + ordered count in, missing events out). Their writes go to real
//! redb ledgers, but the harness decides when: a write is either committed
//! or, when the victim crashes first, lost — together with every write
//! after it. Own events become visible and acknowledge their submitters
//! only once committed, as with the real writer. After the crash the victim
//! stays down a while, restarts from its ledger and the run settles. Then:
//! no node ever saw two events of one creator at one place (no self-fork),
//! every acknowledged transaction is ordered exactly once, the victim's
//! order has no position gap, and it equals everyone else's.

mod common;

use std::collections::HashSet;

use common::machines::{Net, Timing};
use dagger_consensus::{CreatorId, EventId};
use dagger_node::core::{CoreError, EventLookup, InstallError};
use rand::{rngs::StdRng, Rng, SeedableRng};

const NODES: usize = 4;
const VICTIM: usize = 3;

/// One scripted run of the four nodes.
#[derive(Clone, Debug)]
struct Plan {
    seed: u64,
    steps: usize,
    /// Steps at which the victim crashes (it stays down `down` steps).
    crashes: Vec<usize>,
    down: usize,
    /// Steps during which nobody pulls from the victim and it pulls from
    /// nobody: its own events (and the transactions they carry) stay
    /// unseen, and go stale if it then stays down long enough.
    isolated: std::ops::Range<usize>,
    /// Crash again once this many writes were committed after the first
    /// restart (and come back a step later).
    crash_after_writes: Option<usize>,
    /// Decided rounds ordered events stay on disk (the others delete them
    /// after that: a victim away longer needs a state sync).
    disk_horizon: u64,
    /// The victim comes back from its first crash with an empty ledger
    /// (and is never sent transactions: what only its lost disk held is
    /// lost for good).
    lose_disk: bool,
    /// A peer further behind than this many ordered events is told to take
    /// a state sync (even while the others still keep what it misses).
    state_sync_gap: u64,
    /// Events in one pull's answer, at most.
    max_events_per_pull: usize,
}

impl Plan {
    fn new(seed: u64, steps: usize) -> Plan {
        Plan {
            seed,
            steps,
            crashes: Vec::new(),
            down: 1,
            isolated: 0..0,
            crash_after_writes: None,
            disk_horizon: 64,
            lose_disk: false,
            state_sync_gap: dagger_node::config::DEFAULT_STATE_SYNC_GAP_EVENTS,
            max_events_per_pull: 4_096,
        }
    }
}

/// What a run saw: the victim's writes committed after its first restart
/// until it committed its first new own event (the window in which
/// acknowledged transactions of stale events wait only in the ledger), and
/// how many state syncs happened.
struct Outcome {
    window: Option<usize>,
    installs: usize,
}

fn run(plan: &Plan) -> Outcome {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut net =
        Net::with_state_sync_gap(NODES, plan.disk_horizon, Timing::FAST, plan.state_sync_gap);
    net.max_events_per_pull = plan.max_events_per_pull;
    let mut down_until = None;
    let mut restarts = 0;
    let mut since_restart = 0usize;
    let mut window = None;
    let mut crashed_by_writes = false;
    for step in 0..plan.steps {
        net.tick();
        if plan.crashes.contains(&step) && net.up(VICTIM) {
            net.crash(VICTIM);
            down_until = Some(step + plan.down);
        }
        if down_until == Some(step) {
            if plan.lose_disk && restarts == 0 {
                net.lose_disk(VICTIM);
            }
            net.start(VICTIM);
            down_until = None;
            restarts += 1;
            since_restart = 0;
        }
        let isolated = plan.isolated.contains(&step);
        for _ in 0..12 {
            let a = rng.gen_range(0..NODES);
            match rng.gen_range(0..10) {
                0..=1 if !(plan.lose_disk && a == VICTIM) => {
                    net.submit(a);
                }
                0..=1 => {}
                3 => net.heartbeat(a),
                _ => {
                    let b = rng.gen_range(0..NODES);
                    if !(isolated && (a == VICTIM || b == VICTIM)) {
                        net.pull(a, b);
                    }
                }
            }
        }
        if isolated {
            net.submit(VICTIM);
            net.heartbeat(VICTIM);
        }
        if std::mem::take(&mut net.behind[VICTIM]) {
            net.state_sync(VICTIM);
        }
        for i in 0..NODES {
            if i != VICTIM {
                net.commit_all(i);
                continue;
            }
            // The victim's writer lags: some of what it was handed is
            // committed, the rest waits (and a crash loses it).
            net.collect(i);
            let queued = net.peers[i].queued.len();
            let mut count = rng.gen_range(0..=queued);
            let limit = plan
                .crash_after_writes
                .filter(|_| restarts == 1 && !crashed_by_writes);
            if let Some(limit) = limit {
                count = count.min(limit.saturating_sub(since_restart));
            }
            let committed_own = net.commit(i, count);
            if restarts >= 1 {
                if let Some(own_at) = committed_own {
                    window.get_or_insert(since_restart + own_at);
                }
                since_restart += count;
            }
            if limit.is_some_and(|limit| since_restart >= limit) && net.up(VICTIM) {
                net.crash(VICTIM);
                crashed_by_writes = true;
                down_until = Some(step + 1);
            }
        }
    }
    if !net.up(VICTIM) {
        net.start(VICTIM);
    }
    let Plan {
        seed,
        crashes,
        down,
        isolated,
        crash_after_writes,
        ..
    } = plan;
    let context = format!(
        "seed {seed}, crashes {crashes:?}, down {down}, isolated {isolated:?}, \
         crash after writes {crash_after_writes:?}"
    );
    // Settle: everyone up, writes keep up, until every acknowledged
    // transaction is ordered on every node.
    let mut settled = false;
    for _ in 0..3_000 {
        net.tick();
        for a in 0..NODES {
            let b = (a + 1 + rng.gen_range(0..NODES - 1)) % NODES;
            net.pull(a, b);
            net.heartbeat(a);
        }
        if std::mem::take(&mut net.behind[VICTIM]) {
            net.state_sync(VICTIM);
        }
        for i in 0..NODES {
            net.commit_all(i);
        }
        let reference_end = net.tx_end(0);
        let all = (0..NODES).all(|i| {
            if net.order_base(i).is_some() {
                // Joined by state sync: it lacks the order before its base.
                return net.tx_end(i) >= reference_end;
            }
            let ordered: HashSet<Vec<u8>> = net.ordered_txs(i).into_iter().map(|r| r.tx).collect();
            net.acknowledged.iter().all(|tx| ordered.contains(tx))
        });
        if all {
            settled = true;
            break;
        }
    }
    for i in 0..NODES {
        let evidence = net.peers[i].machine.as_ref().expect("up").evidence();
        assert!(evidence.is_empty(), "{context}: node {i} saw a fork");
    }
    let reference = net.ordered_txs(0);
    assert!(net.order_base(0).is_none());
    for i in 0..NODES {
        let txs = net.ordered_txs(i);
        // Consecutive positions; after a state sync one jump, to exactly
        // where the installed state's order starts.
        let base = net.order_base(i).map(|c| c.next_tx);
        let mut expected = 0u64;
        for record in &txs {
            if record.position != expected
                && Some(record.position) == base
                && expected < record.position
            {
                expected = record.position;
            }
            assert_eq!(
                record.position, expected,
                "{context}: node {i} has a gap in its order"
            );
            expected += 1;
        }
        for record in &txs {
            if let Some(theirs) = reference.get(record.position as usize) {
                assert_eq!(record, theirs, "{context}: node {i} ordered differently");
            }
        }
        let mut seen = HashSet::new();
        for record in &txs {
            assert!(
                seen.insert(record.tx.clone()),
                "{context}: node {i} ordered {:?} twice",
                String::from_utf8_lossy(&record.tx)
            );
        }
    }
    let ordered: HashSet<Vec<u8>> = reference.into_iter().map(|r| r.tx).collect();
    let missing: Vec<String> = net
        .acknowledged
        .iter()
        .filter(|tx| !ordered.contains(*tx))
        .map(|tx| String::from_utf8_lossy(tx).into_owned())
        .collect();
    assert!(
        settled && missing.is_empty(),
        "{context}: acknowledged but never ordered: {missing:?}"
    );
    Outcome {
        window,
        installs: net.installs,
    }
}

/// A crash at every step of one script, with a short outage.
#[test]
fn a_crash_at_any_step_loses_nothing_acknowledged() {
    const STEPS: usize = 60;
    for crash in 0..STEPS {
        run(&Plan {
            crashes: vec![crash],
            down: 3,
            ..Plan::new(11, STEPS)
        });
    }
}

/// The victim signs transactions nobody sees, crashes and stays down until
/// the others consider those events stale; after it comes back it crashes
/// again after every single write until it has carried them in a new
/// event: each write is either committed or lost, and nothing
/// acknowledged is lost.
#[test]
fn a_crash_after_any_write_while_stale_transactions_wait_loses_nothing() {
    // Seed 22: the round that makes the victim's events stale also takes a
    // snapshot, which deletes them (their transactions then live only in
    // the ledger's mempool table). Seed 27: the snapshot comes earlier, so
    // replay finds the staleness again after the new event took them.
    for seed in [22, 27] {
        let base = Plan {
            crashes: vec![40],
            down: 100,
            isolated: 32..40,
            ..Plan::new(seed, 180)
        };
        let window = run(&base)
            .window
            .expect("the victim signs again after its outage");
        for writes in 0..=window + 2 {
            run(&Plan {
                crash_after_writes: Some(writes),
                ..base.clone()
            });
        }
    }
}

/// Away longer than the others keep ordered events on disk, with its
/// ledger or without: the victim cannot catch up by replay and joins by
/// state sync, crashing at any write around the install; what it had
/// acknowledged is ordered exactly once, and it orders what the others
/// order from there on.
#[test]
fn a_node_behind_the_disk_horizon_joins_by_state_sync() {
    for lose_disk in [false, true] {
        let base = Plan {
            crashes: vec![30],
            down: 120,
            isolated: if lose_disk { 0..0 } else { 24..30 },
            disk_horizon: 2,
            lose_disk,
            ..Plan::new(31, 220)
        };
        let outcome = run(&base);
        assert!(
            outcome.installs >= 1,
            "lose_disk {lose_disk}: no state sync happened"
        );
        let window = outcome.window.expect("the victim signs again");
        for writes in 0..=window + 2 {
            run(&Plan {
                crash_after_writes: Some(writes),
                ..base.clone()
            });
        }
    }
}

/// Away long enough that replay would cost more than a state sync, while
/// the others still keep everything it misses: it is told to take a state
/// sync and installs one while its own events wait, crashing at any write
/// around the install; what it had acknowledged is ordered exactly once.
#[test]
fn a_node_far_behind_joins_by_state_sync_while_peers_still_keep_the_events() {
    let base = Plan {
        crashes: vec![30],
        down: 120,
        isolated: 24..30,
        state_sync_gap: 64,
        // Pages of 32 catch-up events: replay takes the victim several
        // pulls, so it is told while it replays, as a real node is.
        max_events_per_pull: 64,
        ..Plan::new(37, 220)
    };
    // Control: with the node's default gap the same run replays.
    let replayed = run(&Plan {
        state_sync_gap: dagger_node::config::DEFAULT_STATE_SYNC_GAP_EVENTS,
        ..base.clone()
    });
    assert_eq!(replayed.installs, 0, "the horizon alone made it state sync");
    let outcome = run(&base);
    assert!(outcome.installs >= 1, "no state sync happened");
    let window = outcome.window.expect("the victim signs again");
    for writes in 0..=window + 2 {
        run(&Plan {
            crash_after_writes: Some(writes),
            ..base.clone()
        });
    }
}

/// Long outages (the others prune the victim's last events meanwhile) and
/// repeated crashes, over random scripts (16 by default; set
/// `DAGGER_CRASH_CASES` for a longer hunt).
#[test]
fn long_outages_and_repeated_crashes_lose_nothing_acknowledged() {
    let cases: u64 = std::env::var("DAGGER_CRASH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let mut rng = StdRng::seed_from_u64(5);
    for case in 0..cases {
        let steps: usize = 200;
        let first = rng.gen_range(10..steps / 2);
        let down = rng.gen_range(1..120);
        // Often crash again soon after coming back.
        let second = first + down + rng.gen_range(1..12);
        let isolated = if case % 2 == 0 {
            first.saturating_sub(rng.gen_range(2..10))..first
        } else {
            0..0
        };
        run(&Plan {
            crashes: vec![first, second],
            down,
            isolated,
            // Every fourth case: a state sync once replay would be long.
            state_sync_gap: if case % 4 == 1 {
                64
            } else {
                dagger_node::config::DEFAULT_STATE_SYNC_GAP_EVENTS
            },
            max_events_per_pull: if case % 4 == 1 { 64 } else { 4_096 },
            ..Plan::new(100 + case, steps)
        });
    }
}

/// One step of nodes `0..nodes` pulling from each other at random (and,
/// with `submit`, taking transactions); every node's writes are committed.
fn gossip_step(net: &mut Net, rng: &mut StdRng, nodes: usize, submit: bool) {
    net.tick();
    for a in 0..nodes {
        if submit && rng.gen_range(0..4) == 0 {
            net.submit(a);
        }
        let b = (a + 1 + rng.gen_range(0..nodes - 1)) % nodes;
        net.pull(a, b);
        net.heartbeat(a);
    }
    for i in 0..NODES {
        net.commit_all(i);
    }
}

/// Gossips without new load (the victim state-syncs when told to) until
/// node 0 ordered everything acknowledged, then checks it ordered each
/// exactly once.
fn settle_exactly_once(net: &mut Net, rng: &mut StdRng) {
    for _ in 0..3_000 {
        let order: HashSet<Vec<u8>> = net.ordered_txs(0).into_iter().map(|r| r.tx).collect();
        if net.acknowledged.iter().all(|tx| order.contains(tx)) {
            break;
        }
        gossip_step(net, rng, NODES, false);
        if std::mem::take(&mut net.behind[VICTIM]) {
            net.state_sync(VICTIM);
        }
    }
    let order: Vec<Vec<u8>> = net.ordered_txs(0).into_iter().map(|r| r.tx).collect();
    for tx in &net.acknowledged {
        let count = order.iter().filter(|o| *o == tx).count();
        assert_eq!(count, 1, "{}", String::from_utf8_lossy(tx));
    }
}

/// The line between replay and state sync: a peer exactly `state_sync_gap`
/// ordered events behind the answering node's newest checkpoint gets a
/// catch-up page only; one event further, the page and `Behind` (it keeps
/// replaying until more than a third of the stake said so and a state is
/// installed). With a minimum lag longer than the whole run, neither is
/// told: the order passed their positions too recently.
#[test]
fn only_a_peer_further_behind_a_checkpoint_than_the_gap_is_told_to_state_sync() {
    const GAP: u64 = 300;
    for (min_lag, told) in [
        (std::time::Duration::ZERO, true),
        (std::time::Duration::from_secs(3_600), false),
    ] {
        let mut net = Net::with_state_sync(NODES, 4096, Timing::FAST, GAP, min_lag);
        let mut rng = StdRng::seed_from_u64(11);
        let newest = |net: &Net| {
            net.peers[0]
                .machine
                .as_ref()
                .expect("up")
                .recent_checkpoints()
                .first()
                .copied()
        };
        for _ in 0..5_000 {
            if newest(&net).is_some_and(|c| c.ordered > 2 * GAP) {
                break;
            }
            gossip_step(&mut net, &mut rng, NODES, true);
        }
        let checkpoint = newest(&net).expect("a checkpoint");
        assert!(checkpoint.ordered > 2 * GAP, "{checkpoint:?}");
        let machine = net.peers[0].machine.as_mut().expect("up");
        // A peer without tips gets what this node holds in memory, and a
        // peer far enough behind the catch-up page before it.
        let ours = machine.status().ordered_events;
        let (from_memory, _) = machine.sync_answer_now(&[], ours, &[], 4_096);
        let at_gap = checkpoint.ordered - GAP;
        let (events, behind) = machine.sync_answer_now(&[], at_gap, &[], 4_096);
        assert!(!behind, "told to state sync at exactly the gap");
        assert!(events.len() > from_memory.len(), "no catch-up page");
        let (events, behind) = machine.sync_answer_now(&[], at_gap - 1, &[], 4_096);
        assert_eq!(
            behind, told,
            "one event beyond the gap, min lag {min_lag:?}"
        );
        assert!(
            events.len() > from_memory.len(),
            "no catch-up page beyond the gap"
        );
    }
}

/// A catch-up page leaves out what the asking peer holds (by its tips):
/// a node back from a crash may hold more unordered events than a page,
/// and a page of those taught it nothing, pull after pull, since its
/// position moves only once it orders.
#[test]
fn a_catch_up_page_leaves_out_what_the_peer_holds() {
    let mut net = Net::new(NODES, 4096);
    let mut rng = StdRng::seed_from_u64(37);
    let status = |net: &Net, i: usize| net.peers[i].machine.as_ref().expect("up").status();
    let event_of =
        |net: &Net, id: &EventId| match net.peers[0].machine.as_ref().expect("up").event(id) {
            EventLookup::Held(event, _) => Some(event),
            _ => dagger_node::core::stored_event(net.peers[0].disk.store.as_ref(), id),
        };
    while status(&net, 0).ordered_events < 300 {
        gossip_step(&mut net, &mut rng, NODES, true);
    }
    // What a peer that stopped here holds: every creator up to its tip.
    let early_tips = net.peers[0].machine.as_ref().expect("up").tips();
    let early: Vec<(CreatorId, u64)> = early_tips
        .iter()
        .map(|tip| {
            let event = event_of(&net, tip).expect("held");
            (event.creator(), event.seq())
        })
        .collect();
    while status(&net, 0).ordered_events < 900 {
        gossip_step(&mut net, &mut rng, NODES, true);
    }
    let machine = net.peers[0].machine.as_mut().expect("up");
    // A peer at position 0 with no tips gets a whole page (256 catch-up
    // events, then what this node holds in memory).
    let (page, behind) = machine.sync_answer_now(&[], 0, &[], 512);
    assert!(!behind);
    assert_eq!(page.len(), 512);
    // One holding everything this node holds gets nothing (and is not
    // told it is behind).
    let tips = machine.tips();
    let (page, behind) = machine.sync_answer_now(&tips, 0, &[], 512);
    assert!(!behind);
    assert!(page.is_empty(), "{} events it holds", page.len());
    // One that stopped at the early tips gets, in order, the ordered events
    // it lacks (then what this node holds in memory).
    let (page, behind) = machine.sync_answer_now(&early_tips, 0, &[], 512);
    assert!(!behind);
    let ordered = net.peers[0]
        .disk
        .store
        .order_ids(0, status(&net, 0).ordered_events as usize)
        .expect("order");
    let lacking: Vec<[u8; 32]> = ordered
        .iter()
        .filter(|id| {
            let event = event_of(&net, &EventId(**id)).expect("stored");
            !early
                .iter()
                .any(|(creator, seq)| *creator == event.creator() && event.seq() <= *seq)
        })
        .take(256)
        .copied()
        .collect();
    assert_eq!(lacking.len(), 256);
    let sent: Vec<[u8; 32]> = page.iter().take(256).map(|e| e.id().0).collect();
    assert_eq!(
        sent, lacking,
        "the catch-up part is not what the peer lacks"
    );
}

/// A state that lacks an own event which is not ancient in it is refused:
/// peers may still receive and order that event, so its transactions must
/// not be carried again. The node stays on replay, and everything it
/// acknowledged is ordered exactly once.
#[test]
fn a_state_lacking_a_live_own_event_is_not_installed() {
    let mut net = Net::with_state_sync_gap(NODES, 64, Timing::FAST, 1);
    let mut rng = StdRng::seed_from_u64(23);
    let decided = |net: &Net, i: usize| {
        net.peers[i]
            .machine
            .as_ref()
            .expect("up")
            .status()
            .last_decided_round
    };
    while decided(&net, 0) < 3 {
        gossip_step(&mut net, &mut rng, NODES, true);
    }
    // The victim signs events nobody sees while the others decide up to
    // a checkpoint ahead of it, fewer rounds than make its events ancient.
    let isolated_at = decided(&net, VICTIM);
    for _ in 0..3 {
        net.tick();
        net.submit(VICTIM);
        net.heartbeat(VICTIM);
        net.commit_all(VICTIM);
    }
    let checkpoint_ahead = |net: &Net| {
        net.peers[0]
            .disk
            .store
            .state()
            .expect("state")
            .is_some_and(|(_, c)| c.round > isolated_at)
    };
    while !checkpoint_ahead(&net) {
        gossip_step(&mut net, &mut rng, NODES - 1, true);
    }
    assert!(
        decided(&net, 0) < isolated_at + 16,
        "the victim's events went ancient"
    );
    let (blob, checkpoint) = net.peers[0].disk.store.state().unwrap().expect("a state");
    let (from, from_hash, waiting) = net.peers[VICTIM]
        .machine
        .as_ref()
        .expect("up")
        .sync_position();
    assert!(waiting, "no own event waits");
    let gap = net.order_gap(0, (from, from_hash), &checkpoint);
    let refused =
        net.peers[VICTIM]
            .machine
            .as_mut()
            .expect("up")
            .install(&blob, &checkpoint, Some(&gap));
    assert!(
        matches!(
            refused,
            Err(CoreError::Install(InstallError::OwnEventLive { .. }))
        ),
        "{refused:?}"
    );
    // Back together (a state sync once the checkpoints pass its events).
    settle_exactly_once(&mut net, &mut rng);
}

/// The node keeps replaying while its state sync fetches the ids ordered
/// between its position and the checkpoint: the install accepts a gap that
/// starts where the node was (what it ordered since is the gap's start)
/// and refuses one whose start is not what it ordered.
#[test]
fn a_state_installs_after_the_node_replayed_past_where_its_gap_starts() {
    let mut net = Net::new(NODES, 64);
    // Pages of 256 catch-up events: more than the victim holds unordered,
    // far fewer than it misses.
    net.max_events_per_pull = 512;
    let mut rng = StdRng::seed_from_u64(29);
    let status = |net: &Net, i: usize| net.peers[i].machine.as_ref().expect("up").status();
    while status(&net, 0).last_decided_round < 3 {
        gossip_step(&mut net, &mut rng, NODES, true);
    }
    // The victim acknowledges transactions nobody sees, then stays away
    // while the others decide far ahead.
    let away_at = status(&net, VICTIM).last_decided_round;
    for _ in 0..3 {
        net.tick();
        net.submit(VICTIM);
        net.heartbeat(VICTIM);
        net.commit_all(VICTIM);
    }
    while status(&net, 0).last_decided_round < away_at + 60 {
        gossip_step(&mut net, &mut rng, NODES - 1, true);
    }
    let machine = net.peers[VICTIM].machine.as_ref().expect("up");
    let (from, from_hash, waiting) = machine.sync_position();
    assert!(waiting, "no own event waits");
    // Replay after the position was taken.
    for _ in 0..100 {
        if status(&net, VICTIM).ordered_events >= from + 2 {
            break;
        }
        net.pull(VICTIM, 0);
        net.commit_all(VICTIM);
    }
    let replayed_to = status(&net, VICTIM).ordered_events;
    assert!(replayed_to >= from + 2, "the pull replayed nothing");
    let (blob, checkpoint) = net.peers[0].disk.store.state().unwrap().expect("a state");
    assert!(checkpoint.ordered > replayed_to);
    let gap = net.order_gap(0, (from, from_hash), &checkpoint);
    let mut reordered = gap.clone();
    reordered.ids.swap(0, 1);
    let machine = net.peers[VICTIM].machine.as_mut().expect("up");
    let refused = machine.install(&blob, &checkpoint, Some(&reordered));
    assert!(
        matches!(refused, Err(CoreError::Install(InstallError::Gap))),
        "{refused:?}"
    );
    machine
        .install(&blob, &checkpoint, Some(&gap))
        .expect("installs");
    // Back together: everything acknowledged is ordered exactly once.
    settle_exactly_once(&mut net, &mut rng);
}

/// A state that already ordered an own event the node still waited for
/// settles it. The node signed a transaction into an event that reached a
/// peer, then lost touch while the others ordered it; the state it installs
/// holds that event as ordered. Watched on as if unordered, nothing would
/// ever settle it: once pruned it looked stale, and its transaction was
/// sealed in an envelope and ordered a second time.
#[test]
fn a_state_that_ordered_a_waiting_own_event_settles_it() {
    let mut net = Net::with_state_sync_gap(NODES, 64, Timing::FAST, 1);
    let mut rng = StdRng::seed_from_u64(31);
    let status = |net: &Net, i: usize| net.peers[i].machine.as_ref().expect("up").status();
    while status(&net, 0).last_decided_round < 3 {
        gossip_step(&mut net, &mut rng, NODES, true);
    }
    // Everything so far settles, so the victim waits for one event only.
    let waits = |net: &Net| {
        net.peers[VICTIM]
            .machine
            .as_ref()
            .expect("up")
            .sync_position()
            .2
    };
    for _ in 0..200 {
        if !waits(&net) {
            break;
        }
        gossip_step(&mut net, &mut rng, NODES, false);
    }
    assert!(!waits(&net), "the victim's earlier events never settled");
    net.tick();
    let tx = net.submit(VICTIM).expect("up");
    for _ in 0..100 {
        if net.acknowledged.contains(&tx) {
            break;
        }
        net.tick();
        net.heartbeat(VICTIM);
        net.commit_all(VICTIM);
    }
    assert!(net.acknowledged.contains(&tx), "not acknowledged");
    // One peer gets the event; then the victim hears nothing more.
    net.pull(0, VICTIM);
    net.commit_all(0);
    let record_of = |net: &Net| net.ordered_txs(0).into_iter().find(|r| r.tx == tx);
    let mut covered = None;
    for _ in 0..2_000 {
        gossip_step(&mut net, &mut rng, NODES - 1, true);
        let stored = net.peers[0].disk.store.state().expect("state");
        if let (Some(record), Some((_, checkpoint))) = (record_of(&net), stored) {
            if checkpoint.next_tx > record.position {
                covered = Some(record);
                break;
            }
        }
    }
    let carrier = covered.expect("no state covers the transaction").event_id;
    assert!(waits(&net), "the victim does not wait for its event");
    let installs = net.installs;
    net.state_sync(VICTIM);
    assert_eq!(net.installs, installs + 1, "the state did not install");
    // The case at stake: the installed state holds the event, as ordered
    // (one it had pruned would be settled by the gap).
    let machine = net.peers[VICTIM].machine.as_ref().expect("up");
    assert!(
        matches!(
            machine.event(&EventId(carrier)),
            EventLookup::Held(_, Some(info)) if info.ordered
        ),
        "the installed state does not hold the event as ordered"
    );
    assert!(
        !waits(&net),
        "the victim still waits for an event the state ordered"
    );
    // Long past the event's pruning and any envelope's window: ordered once.
    let start = status(&net, 0).last_decided_round;
    while status(&net, 0).last_decided_round < start + 40 {
        gossip_step(&mut net, &mut rng, NODES, false);
        for _ in 0..20 {
            net.tick();
        }
    }
    for i in 0..NODES {
        let count = net.ordered_txs(i).iter().filter(|r| r.tx == tx).count();
        assert!(count <= 1, "node {i} ordered it {count} times");
    }
    assert_eq!(net.ordered_txs(0).iter().filter(|r| r.tx == tx).count(), 1);
}
