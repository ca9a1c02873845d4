//! State sync over QUIC: how a node that fell behind what its peers keep
//! (offline longer than their disk horizon, or its ledger lost) joins
//! again without operator action.
//!
//! 1. Ask every peer for its latest checkpoints (`core::checkpoint`).
//! 2. Take the newest round whose digest peers holding more than a third of
//!    the stake (by this node's current roster) report identically: at
//!    least one of them is honest, so the digest is the network's.
//! 3. Fetch that round's snapshot from one of them, in chunks, and have the
//!    core check it against the digest; a voucher that serves something else
//!    is penalised and the next one is asked.
//! 4. If own events of this node wait for consensus, fetch the ids ordered
//!    between its position and the checkpoint; the core believes them only
//!    if they link its running hash to the checkpoint's.
//! 5. Install. Until a later checkpoint of this node matches one vouched
//!    for by peers, the node reports itself unverified (and posts nothing
//!    on-chain); a vouched mismatch starts a new state sync.
//!
//! The serving side answers from the ledger: checkpoints, the stored
//! snapshot of its latest checkpoint round, ordered ids. A state is large,
//! so each peer may ask for one only every [`STATE_INTERVAL`].

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use rand::seq::SliceRandom;
use tokio::time::timeout;

use super::{
    gossip::Shared,
    wire::{
        read_message, write_message, Message, MAX_CHECKPOINTS, MAX_ORDER_IDS, MAX_STATE_BYTES,
        STATE_CHUNK_BYTES,
    },
};
use crate::{
    core::{Checkpoint, OrderGap},
    identity::{display_id, NodeId},
};

/// Least time between two state syncs of this node.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// Least time between two states served to one peer.
pub const STATE_INTERVAL: Duration = Duration::from_secs(5);
/// How long one state transfer may take.
const STATE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a checkpoint query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// How long to wait for a checkpoint that verifies an installed state.
const VERIFY_FOR: Duration = Duration::from_secs(120);

/// What this node's state sync is doing.
#[derive(Default)]
pub struct Progress {
    running: bool,
    last_attempt: Option<Instant>,
    /// When each peer last got a state from this node.
    served: HashMap<NodeId, Instant>,
    /// When each peer last said this node is behind what it keeps.
    behind: HashMap<NodeId, Instant>,
}

/// How long a peer's "behind" counts towards starting a state sync.
const BEHIND_FOR: Duration = Duration::from_secs(60);

/// A peer said this node is behind what it keeps. A state sync starts once
/// peers holding more than a third of the stake said so recently: one
/// peer (which may lie) cannot send a node into state syncs.
pub(super) fn behind_reported(shared: &Arc<Shared>, peer: NodeId) {
    let reporters: Vec<NodeId> = {
        let mut progress = shared.state_sync.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        progress.behind.insert(peer, now);
        progress
            .behind
            .retain(|_, at| now.duration_since(*at) < BEHIND_FOR);
        progress.behind.keys().copied().collect()
    };
    let shared = shared.clone();
    crate::task::spawn(async move {
        let Ok(rosters) = rosters(&shared).await else {
            return;
        };
        if rosters.iter().all(|r| more_than_a_third(r, &reporters)) {
            start(&shared);
        } else {
            tracing::debug!(
                reporters = reporters.len(),
                "a peer says this node is behind; waiting for more than a third of the stake to agree"
            );
        }
    });
}

/// The rosters vouchers are weighed by: the consensus roster this node
/// knows and, for a chain-backed node, the chain's active operators now.
/// A checkpoint (or a "behind") counts only with more than a third of the
/// stake of each: a node that knows only an old roster (a fresh node
/// starts from the genesis one) cannot be led by members that left.
pub(super) async fn rosters(shared: &Shared) -> Result<Vec<Vec<(NodeId, u64)>>, String> {
    let mut rosters = vec![shared.core.roster().await.map_err(|e| e.to_string())?];
    if let Some(chain) = &shared.config.chain_roster {
        let chain = chain.borrow().clone();
        // Empty until the watcher's first agreed read.
        if chain.is_empty() {
            return Err("the chain's roster is not known yet".into());
        }
        rosters.push(chain);
    }
    Ok(rosters)
}

/// The checkpoints vouched for under every roster of `rosters`, newest
/// first, with the peers that reported them.
pub fn vouched_by_all(
    rosters: &[Vec<(NodeId, u64)>],
    answers: &[(NodeId, Vec<Checkpoint>)],
) -> Vec<(Checkpoint, Vec<NodeId>)> {
    let Some((first, rest)) = rosters.split_first() else {
        return Vec::new();
    };
    let others: Vec<Vec<Checkpoint>> = rest
        .iter()
        .map(|r| {
            all_vouched(r, answers)
                .into_iter()
                .map(|(c, _)| c)
                .collect()
        })
        .collect();
    all_vouched(first, answers)
        .into_iter()
        .filter(|(checkpoint, _)| others.iter().all(|vouched| vouched.contains(checkpoint)))
        .collect()
}

/// Whether `ids` hold more than a third of `roster`'s stake.
pub fn more_than_a_third(roster: &[(NodeId, u64)], ids: &[NodeId]) -> bool {
    let total: u128 = roster.iter().map(|(_, s)| u128::from(*s)).sum();
    let held: u128 = roster
        .iter()
        .filter(|(id, _)| ids.contains(id))
        .map(|(_, s)| u128::from(*s))
        .sum();
    held * 3 > total
}

/// Starts a state sync unless one runs or ran very recently.
pub(super) fn start(shared: &Arc<Shared>) {
    {
        let mut progress = shared.state_sync.lock().unwrap_or_else(|p| p.into_inner());
        if progress.running
            || progress
                .last_attempt
                .is_some_and(|t| t.elapsed() < RETRY_AFTER)
        {
            return;
        }
        progress.running = true;
        progress.last_attempt = Some(Instant::now());
        // The reports are used up: another state sync needs fresh ones
        // from more than a third of the stake (else, after a return, one
        // liar's report would join the honest ones still remembered).
        progress.behind.clear();
    }
    let shared = shared.clone();
    crate::task::spawn(async move {
        let outcome = sync(&shared).await;
        if let Err(err) = &outcome {
            tracing::warn!(error = %err, "state sync failed; will retry");
        }
        shared
            .state_sync
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .running = false;
        if let Ok(round) = outcome {
            verify(&shared, round).await;
        }
    });
}

/// Sends one request and reads one answer message.
async fn ask(shared: &Shared, peer: NodeId, request: &Message) -> Result<Message, String> {
    let connection = super::gossip::connection_to(shared, peer).await?;
    let work = async {
        let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
        write_message(&mut send, request)
            .await
            .map_err(|e| e.to_string())?;
        let _ = send.finish();
        read_message(&mut recv, shared.limits.max_frame_bytes)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no answer".to_string())
    };
    timeout(QUERY_TIMEOUT, work)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// Every peer's latest checkpoints.
async fn gather(shared: &Arc<Shared>) -> Vec<(NodeId, Vec<Checkpoint>)> {
    let peers = shared.peers.ids();
    let mut asks = tokio::task::JoinSet::new();
    for peer in peers {
        let shared = shared.clone();
        asks.spawn(async move {
            match ask(&shared, peer, &Message::CheckpointsRequest).await {
                Ok(Message::Checkpoints(list)) => Some((peer, list)),
                _ => None,
            }
        });
    }
    let mut out = Vec::new();
    while let Some(answer) = asks.join_next().await {
        if let Ok(Some(answer)) = answer {
            out.push(answer);
        }
    }
    out
}

/// The newest checkpoint reported identically by peers holding more than
/// a third of `roster`'s stake, with the peers that reported it.
pub fn vouched(
    roster: &[(NodeId, u64)],
    answers: &[(NodeId, Vec<Checkpoint>)],
) -> Option<(Checkpoint, Vec<NodeId>)> {
    all_vouched(roster, answers).into_iter().next()
}

/// Every checkpoint reported identically by peers holding more than a
/// third of `roster`'s stake, newest first, with the peers that reported
/// it.
pub fn all_vouched(
    roster: &[(NodeId, u64)],
    answers: &[(NodeId, Vec<Checkpoint>)],
) -> Vec<(Checkpoint, Vec<NodeId>)> {
    let mut tally: HashMap<Checkpoint, Vec<NodeId>> = HashMap::new();
    let mut seen: std::collections::HashSet<NodeId> = std::collections::HashSet::new();
    for (peer, list) in answers {
        // One answer per peer; one checkpoint per round within it.
        if !seen.insert(*peer) {
            continue;
        }
        let mut rounds = std::collections::HashSet::new();
        for checkpoint in list.iter().take(MAX_CHECKPOINTS) {
            if rounds.insert(checkpoint.round) {
                tally.entry(*checkpoint).or_default().push(*peer);
            }
        }
    }
    let mut out: Vec<(Checkpoint, Vec<NodeId>)> = tally
        .into_iter()
        .filter(|(_, peers)| more_than_a_third(roster, peers))
        .collect();
    out.sort_by(|a, b| b.0.round.cmp(&a.0.round).then(a.0.digest.cmp(&b.0.digest)));
    out
}

/// Runs one state sync; returns the installed round.
async fn sync(shared: &Arc<Shared>) -> Result<u64, String> {
    let core = &shared.core;
    let rosters = rosters(shared).await?;
    let ours = core
        .status()
        .await
        .map_err(|e| e.to_string())?
        .last_decided_round;
    let answers = gather(shared).await;
    let candidates = vouched_by_all(&rosters, &answers);
    let newest = candidates
        .first()
        .map(|(c, _)| c.round)
        .ok_or("no checkpoint is vouched for by more than a third of the stake")?;
    if newest <= ours {
        return Err(format!(
            "the newest vouched checkpoint (round {newest}) is not ahead of this node (round {ours})"
        ));
    }
    // Peers keep the state of their latest checkpoint only: the newest
    // vouched one may not be every voucher's latest yet, an older one may
    // be gone. Try them newest first.
    let mut last_err = String::from("no voucher served the state");
    for (checkpoint, vouchers) in candidates.into_iter().filter(|(c, _)| c.round > ours) {
        match fetch_vouched(shared, &checkpoint, vouchers).await {
            Ok((state, vouchers)) => return install(shared, checkpoint, state, &vouchers).await,
            Err(err) => last_err = err,
        }
    }
    Err(last_err)
}

/// The state of `checkpoint` from the first of its `vouchers` that serves
/// one matching it; with the vouchers (for the gap).
async fn fetch_vouched(
    shared: &Arc<Shared>,
    checkpoint: &Checkpoint,
    mut vouchers: Vec<NodeId>,
) -> Result<(Arc<Vec<u8>>, Vec<NodeId>), String> {
    let core = &shared.core;
    tracing::info!(
        round = checkpoint.round,
        vouchers = vouchers.len(),
        "state sync: fetching a vouched state"
    );
    vouchers.shuffle(&mut rand::thread_rng());
    let mut state = None;
    for peer in &vouchers {
        match fetch_state(shared, *peer, checkpoint).await {
            Ok(blob) => {
                let blob = Arc::new(blob);
                match core
                    .verify_state(blob.clone(), *checkpoint)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Ok(()) => {
                        state = Some(blob);
                        break;
                    }
                    Err(err) => {
                        // It vouched for this checkpoint and served
                        // something else.
                        shared.peers.penalise(peer);
                        tracing::warn!(peer = %display_id(peer), error = %err, "peer served a state that does not match its checkpoint");
                    }
                }
            }
            Err(err) => {
                tracing::info!(peer = %display_id(peer), error = %err, "cannot fetch a state")
            }
        }
    }
    let state = state.ok_or("no voucher served the state")?;
    Ok((state, vouchers))
}

/// Installs a verified state.
async fn install(
    shared: &Arc<Shared>,
    checkpoint: Checkpoint,
    state: Arc<Vec<u8>>,
    vouchers: &[NodeId],
) -> Result<u64, String> {
    let core = &shared.core;
    let position = core.sync_position().await.map_err(|e| e.to_string())?;
    // The node may go on replaying meanwhile: the core checks that what it
    // ordered since is the gap's start.
    let gap = if position.waiting_own_events && position.ordered < checkpoint.ordered {
        Some(OrderGap {
            from: position.ordered,
            from_hash: position.running_hash,
            ids: fetch_gap(shared, vouchers, position.ordered, checkpoint.ordered).await?,
        })
    } else {
        None
    };
    core.install(state, checkpoint, gap)
        .await
        .map_err(|e| e.to_string())?;
    Ok(checkpoint.round)
}

/// A state in chunks, bounded by what the header announced.
async fn fetch_state(
    shared: &Shared,
    peer: NodeId,
    checkpoint: &Checkpoint,
) -> Result<Vec<u8>, String> {
    let connection = super::gossip::connection_to(shared, peer).await?;
    let work = async {
        let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
        write_message(
            &mut send,
            &Message::StateRequest {
                round: checkpoint.round,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let _ = send.finish();
        let max = shared.limits.max_frame_bytes;
        let total = match read_message(&mut recv, max)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(Message::StateHeader {
                checkpoint: c,
                total,
            }) if c == *checkpoint => total,
            Some(Message::Unavailable) => return Err("the peer no longer has it".to_string()),
            _ => return Err("unexpected answer to a state request".to_string()),
        };
        if total > MAX_STATE_BYTES {
            return Err(format!("announced state of {total} bytes is too large"));
        }
        let mut blob = Vec::with_capacity(total as usize);
        loop {
            match read_message(&mut recv, max)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(Message::Chunk(bytes)) => {
                    if blob.len() as u64 + bytes.len() as u64 > total {
                        return Err("more state than announced".to_string());
                    }
                    blob.extend_from_slice(&bytes);
                }
                Some(Message::SyncDone) if blob.len() as u64 == total => return Ok(blob),
                _ => return Err("state answer broke off".to_string()),
            }
        }
    };
    timeout(STATE_TIMEOUT, work)
        .await
        .map_err(|_| "state transfer timed out".to_string())?
}

/// The ids ordered at positions `from..to`, from the first voucher that
/// has them all (the core checks them against the running hashes).
async fn fetch_gap(
    shared: &Shared,
    vouchers: &[NodeId],
    from: u64,
    to: u64,
) -> Result<Vec<[u8; 32]>, String> {
    'peers: for peer in vouchers {
        let mut ids = Vec::new();
        while from + (ids.len() as u64) < to {
            let at = from + ids.len() as u64;
            let max = (to - at).min(MAX_ORDER_IDS as u64) as u32;
            match ask(shared, *peer, &Message::OrderIdsRequest { from: at, max }).await {
                Ok(Message::OrderIds(page)) if !page.is_empty() && page.len() <= max as usize => {
                    ids.extend(page)
                }
                _ => continue 'peers,
            }
        }
        return Ok(ids);
    }
    Err("no voucher has the order between this node's position and the checkpoint".into())
}

/// After an install: wait for a checkpoint of this node past the installed
/// round and compare it with what peers vouch for.
async fn verify(shared: &Arc<Shared>, installed: u64) {
    let deadline = Instant::now() + VERIFY_FOR;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(mine) = shared.core.checkpoints().await else {
            return;
        };
        let mine: Vec<Checkpoint> = mine.into_iter().filter(|c| c.round > installed).collect();
        if mine.is_empty() {
            continue;
        }
        let Ok(rosters) = rosters(shared).await else {
            continue;
        };
        let answers = gather(shared).await;
        for own in &mine {
            let reports: Vec<(NodeId, Vec<Checkpoint>)> = answers
                .iter()
                .map(|(peer, list)| {
                    (
                        *peer,
                        list.iter()
                            .filter(|c| c.round == own.round)
                            .copied()
                            .collect(),
                    )
                })
                .collect();
            match vouched_by_all(&rosters, &reports).into_iter().next() {
                Some((theirs, _)) if theirs == *own => {
                    tracing::info!(round = own.round, "installed state verified");
                    let _ = shared.core.verified().await;
                    return;
                }
                Some((theirs, _)) => {
                    tracing::error!(
                        round = own.round,
                        ours = %crate::core::hex(&own.digest),
                        theirs = %crate::core::hex(&theirs.digest),
                        "after state sync this node computes a different checkpoint than its \
                         peers; syncing again"
                    );
                    shared
                        .state_sync
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .last_attempt = None;
                    start(shared);
                    return;
                }
                None => {}
            }
        }
    }
    tracing::warn!("could not verify the installed state against peers' checkpoints yet");
}

/// Serves a state-sync request from `peer`.
pub(super) async fn answer(
    shared: &Shared,
    peer: &NodeId,
    send: &mut quinn::SendStream,
    request: Message,
) {
    let store = shared.store.clone();
    match request {
        Message::CheckpointsRequest => {
            let list = tokio::task::spawn_blocking(move || store.checkpoints(MAX_CHECKPOINTS))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let _ = write_message(send, &Message::Checkpoints(list)).await;
        }
        Message::StateRequest { round } => {
            let allowed = {
                let mut progress = shared.state_sync.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let ok = progress
                    .served
                    .get(peer)
                    .is_none_or(|t| now.duration_since(*t) >= STATE_INTERVAL);
                if ok {
                    progress.served.insert(*peer, now);
                }
                ok
            };
            if !allowed {
                shared.metrics.reject_message("rate_limited");
                let _ = write_message(send, &Message::Unavailable).await;
                return;
            }
            let state = tokio::task::spawn_blocking(move || store.state())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            let Some((blob, checkpoint)) = state.filter(|(_, c)| c.round == round) else {
                let _ = write_message(send, &Message::Unavailable).await;
                return;
            };
            let header = Message::StateHeader {
                checkpoint,
                total: blob.len() as u64,
            };
            if write_message(send, &header).await.is_err() {
                return;
            }
            for chunk in blob.chunks(STATE_CHUNK_BYTES) {
                if write_message(send, &Message::Chunk(chunk.to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let _ = write_message(send, &Message::SyncDone).await;
        }
        Message::OrderIdsRequest { from, max } => {
            let limit = (max as usize).min(MAX_ORDER_IDS);
            let ids = tokio::task::spawn_blocking(move || store.order_ids(from, limit))
                .await
                .ok()
                .and_then(Result::ok);
            let answer = match ids {
                Some(ids) if !ids.is_empty() => Message::OrderIds(ids),
                _ => Message::Unavailable,
            };
            let _ = write_message(send, &answer).await;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(round: u64, digest: u8) -> Checkpoint {
        Checkpoint {
            round,
            ordered: round * 10,
            running_hash: [digest; 32],
            next_tx: round,
            digest: [digest; 32],
        }
    }

    #[test]
    fn one_lying_peer_cannot_start_a_state_sync() {
        let roster = [([1; 32], 1), ([2; 32], 1), ([3; 32], 1), ([4; 32], 1)];
        assert!(!more_than_a_third(&roster, &[[2; 32]]));
        assert!(
            !more_than_a_third(&roster, &[[9; 32], [8; 32]]),
            "strangers weigh nothing"
        );
        assert!(more_than_a_third(&roster, &[[2; 32], [3; 32]]));
        let uneven = [([1; 32], 10), ([2; 32], 1), ([3; 32], 1)];
        assert!(more_than_a_third(&uneven, &[[1; 32]]));
        assert!(!more_than_a_third(&uneven, &[[2; 32], [3; 32]]));
    }

    /// A node that knows only the genesis roster: two members it knows left
    /// since (the chain no longer lists them) vouch for a forged state;
    /// the current ones vouch for the real one. Only the real one counts.
    #[test]
    fn members_that_left_cannot_vouch_alone() {
        let genesis = vec![([1; 32], 1), ([2; 32], 1), ([3; 32], 1), ([4; 32], 1)];
        let chain = vec![([3; 32], 1), ([4; 32], 1), ([5; 32], 1), ([6; 32], 1)];
        let forged = checkpoint(40, 9);
        let real = checkpoint(32, 1);
        let answers = vec![
            ([1; 32], vec![forged]),
            ([2; 32], vec![forged]),
            ([3; 32], vec![real]),
            ([4; 32], vec![real]),
            ([5; 32], vec![real]),
        ];
        // By the genesis roster alone the forged state is the newest vouched.
        assert_eq!(vouched(&genesis, &answers).unwrap().0, forged);
        let both = vouched_by_all(&[genesis.clone(), chain.clone()], &answers);
        assert_eq!(both.len(), 1);
        assert_eq!(both[0].0, real);
        // With no roster at all nothing is vouched.
        assert!(vouched_by_all(&[], &answers).is_empty());
    }

    #[test]
    fn a_checkpoint_counts_only_with_more_than_a_third_of_the_stake() {
        let roster = [([1; 32], 1), ([2; 32], 1), ([3; 32], 1), ([4; 32], 1)];
        // One honest peer alone (1 of 4) is not enough; two are.
        let one = vec![([1; 32], vec![checkpoint(16, 7)])];
        assert!(vouched(&roster, &one).is_none());
        let two = vec![
            ([1; 32], vec![checkpoint(16, 7), checkpoint(8, 6)]),
            ([2; 32], vec![checkpoint(16, 7)]),
        ];
        let (c, peers) = vouched(&roster, &two).unwrap();
        assert_eq!(c, checkpoint(16, 7));
        assert_eq!(peers.len(), 2);
        // A liar repeating itself, claiming rounds twice, or a stranger with
        // no stake adds nothing.
        let lies = vec![
            ([4; 32], vec![checkpoint(99, 1), checkpoint(99, 2)]),
            ([4; 32], vec![checkpoint(99, 1)]),
            ([9; 32], vec![checkpoint(99, 1)]),
            ([1; 32], vec![checkpoint(16, 7)]),
            ([2; 32], vec![checkpoint(16, 7)]),
        ];
        assert_eq!(vouched(&roster, &lies).unwrap().0, checkpoint(16, 7));
        // Disagreeing honest-looking answers at one round do not add up.
        let split = vec![
            ([1; 32], vec![checkpoint(16, 7)]),
            ([2; 32], vec![checkpoint(16, 8)]),
        ];
        assert!(vouched(&roster, &split).is_none());
    }
}
