//! The sync protocol over QUIC.
//!
//! - **Pull**: every tick the node picks a peer at random (never the one it
//!   synced with last, when there is a choice), opens a bidirectional stream
//!   and sends its tips — the heads of every creator's chains, fork heads
//!   included. The peer answers with every event it holds that is not an
//!   ancestor of one of those tips, parents first, in chunks, then
//!   `SyncDone`. Tips rather than per-creator heights keep this correct when
//!   a creator forks: a height cannot say *which* branch one has.
//!   After a pull the node creates an event whose other-parent is that
//!   peer's latest event (gossip about gossip). Pulls run side by side (a
//!   third of the peers plus one at most, never two from one peer), so a
//!   peer that accepts a sync and never answers holds up one pull, not
//!   gossip.
//! - **Push**: an own event goes to every connected peer as soon as it is
//!   durably stored, on a few long-lived unidirectional streams per peer
//!   taken in turn (`PUSH_STREAMS`), fed by a bounded queue: a peer that
//!   does not take its pushes loses them (it pulls instead) and never
//!   delays the others.
//! - **State sync**: a peer that answers a pull with `Behind` (the caller
//!   needs ordered events it no longer keeps) makes the node fetch a state
//!   vouched for by more than a third of the stake (see `state_sync`).
//!
//! Limits: QUIC caps concurrent streams and bytes in flight per peer; each
//! frame is length-checked before it is buffered; reads time out; token
//! buckets per peer (sync requests; pushes, per message whatever stream
//! carries them) reject floods, and a peer that keeps
//! flooding is disconnected. A peer that sends an event no honest node
//! would send (bad signature or Merkle root, malformed header, a birth
//! round consensus does not give it, ...: `Reject::is_fault`) is
//! disconnected and shut out for a back-off period that doubles with every
//! offence (`dagger_peer_penalties` in `/metrics`).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tracing::Instrument;

use dagger_consensus::{verify::SignatureMemo, Event};
use rand::seq::SliceRandom;
use serde::Serialize;
use tokio::{task::JoinSet, time::timeout};

use super::{
    limits::{PeerLimits, TokenBucket},
    transport::Transport,
    wire::{read_message, write_message, Message, WireError},
};
use crate::{
    core::{reject_label, CoreHandle, ForwardError, ReceiveSummary},
    identity::{display_id, NodeId},
    metrics::Metrics,
    store::Store,
};

/// A peer from the configuration (and later from the chain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddr {
    pub id: NodeId,
    pub addr: SocketAddr,
}

#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// Pause between pulls while transactions wait for consensus...
    pub busy_interval: Duration,
    /// ...and while there is nothing to do.
    pub idle_interval: Duration,
    /// Most events one sync answer may carry.
    pub max_events_per_sync: usize,
    /// Bytes per `Events` chunk on the wire.
    pub chunk_bytes: usize,
    /// A whole pull must finish within this time.
    pub sync_timeout: Duration,
    /// How often an idle node is reminded to create an event.
    pub heartbeat: Duration,
    /// A chain-backed node's view of the chain's active operators (node
    /// key, stake), kept current by its watcher. State sync weighs
    /// vouchers by it as well as by the consensus roster: a node that
    /// starts from the genesis roster must not believe members that have
    /// left since (see `state_sync::rosters`).
    pub chain_roster: Option<tokio::sync::watch::Receiver<Vec<(NodeId, u64)>>>,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            busy_interval: Duration::from_millis(5),
            idle_interval: Duration::from_millis(200),
            max_events_per_sync: 20_000,
            chunk_bytes: 1 << 20,
            sync_timeout: Duration::from_secs(20),
            heartbeat: Duration::from_millis(250),
            chain_roster: None,
        }
    }
}

/// What `GET /status` shows about a peer.
#[derive(Clone, Debug, Serialize)]
pub struct PeerStatus {
    pub id: String,
    pub addr: String,
    pub connected: bool,
    pub syncs: u64,
    pub failures: u64,
    pub last_sync_ms_ago: Option<u64>,
    pub last_error: Option<String>,
    /// Times this peer was penalised for invalid events.
    pub penalties: u32,
    /// Remaining time it is shut out, if it is.
    pub banned_for_ms: Option<u64>,
}

struct Peer {
    addr: SocketAddr,
    connection: Option<quinn::Connection>,
    syncs: u64,
    failures: u64,
    last_sync: Option<Instant>,
    last_error: Option<String>,
    /// Failures in a row; a peer that keeps failing is skipped for a while
    /// (exponential backoff) so a dead peer does not slow gossip down.
    consecutive_failures: u32,
    retry_at: Option<Instant>,
    penalties: u32,
    banned_until: Option<Instant>,
    /// When pushes to this peer were last dropped (its queue overflowed,
    /// a write timed out, or there was no connection).
    pushes_dropped_at: Option<Instant>,
}

impl Peer {
    /// A peer not contacted yet.
    fn new(addr: SocketAddr) -> Peer {
        Peer {
            addr,
            connection: None,
            syncs: 0,
            failures: 0,
            last_sync: None,
            last_error: None,
            consecutive_failures: 0,
            retry_at: None,
            penalties: 0,
            banned_until: None,
            pushes_dropped_at: None,
        }
    }

    fn banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|t| t > now)
    }

    /// This node's own connection to the peer, if it is open.
    fn live_connection(&self) -> Option<&quinn::Connection> {
        self.connection
            .as_ref()
            .filter(|c| c.close_reason().is_none())
    }
}

/// First shut-out period for a peer that sent invalid events; it doubles
/// with every further offence, up to [`MAX_PENALTY`].
pub const PENALTY: Duration = Duration::from_secs(10);
pub const MAX_PENALTY: Duration = Duration::from_secs(600);

fn penalty(offences: u32) -> Duration {
    (PENALTY * 2u32.saturating_pow(offences.saturating_sub(1).min(16))).min(MAX_PENALTY)
}

/// Longest pause before retrying a failing peer. After a partition heals
/// this (plus the 2 s connect timeout) is how late the node may notice: at
/// 5 s a node cut off for a minute decided again 2.7-7.4 s after the heal.
/// A retry is one handshake attempt, cheap even with every peer down.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

fn backoff(consecutive_failures: u32) -> Duration {
    (Duration::from_millis(100) * 2u32.saturating_pow(consecutive_failures.min(10)))
        .min(MAX_BACKOFF)
}

/// The peers this node talks to, shared by the gossip tasks and the API:
/// the connections it dialed, and those it accepted (so both can be closed
/// the moment a peer leaves the roster).
#[derive(Clone, Default)]
pub struct Peers {
    map: Arc<Mutex<HashMap<NodeId, Peer>>>,
    incoming: Arc<Mutex<HashMap<NodeId, Vec<quinn::Connection>>>>,
}

/// Close code sent to a peer that is no longer in the roster.
const CLOSE_REMOVED: u32 = 5;

impl Peers {
    pub fn new(peers: &[PeerAddr]) -> Peers {
        let map = peers.iter().map(|p| (p.id, Peer::new(p.addr))).collect();
        Peers {
            map: Arc::new(Mutex::new(map)),
            incoming: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Peer>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_incoming(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Vec<quinn::Connection>>> {
        self.incoming
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records an accepted connection of `id`; false (and nothing kept)
    /// if it already holds [`MAX_CONNECTIONS_PER_PEER`] open.
    pub fn track_incoming(&self, id: NodeId, connection: quinn::Connection) -> bool {
        let mut incoming = self.lock_incoming();
        let list = incoming.entry(id).or_default();
        list.retain(|c| c.close_reason().is_none());
        if list.len() >= MAX_CONNECTIONS_PER_PEER {
            return false;
        }
        list.push(connection);
        true
    }

    /// Whether `id` is a current peer.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.lock().contains_key(id)
    }

    /// Every current peer that is not shut out.
    pub fn ids(&self) -> Vec<NodeId> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, p)| !p.banned(now))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn status(&self) -> Vec<PeerStatus> {
        let mut out: Vec<PeerStatus> = self
            .lock()
            .iter()
            .map(|(id, p)| PeerStatus {
                id: display_id(id),
                addr: p.addr.to_string(),
                connected: p.live_connection().is_some(),
                syncs: p.syncs,
                failures: p.failures,
                last_sync_ms_ago: p.last_sync.map(|t| t.elapsed().as_millis() as u64),
                last_error: p.last_error.clone(),
                penalties: p.penalties,
                banned_for_ms: p
                    .banned_until
                    .and_then(|t| t.checked_duration_since(Instant::now()))
                    .map(|d| d.as_millis() as u64),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Makes the peer set equal to `peers` (a roster change), keeping the
    /// connections and counters of peers that stay.
    /// Connections of peers that leave are closed at once, both ways.
    pub fn set(&self, peers: &[PeerAddr]) {
        let stays = |id: &NodeId| peers.iter().any(|p| p.id == *id);
        let mut map = self.lock();
        map.retain(|id, peer| {
            if stays(id) {
                return true;
            }
            if let Some(c) = peer.connection.take() {
                tracing::info!(peer = %display_id(id), "peer left the roster; disconnecting");
                c.close(quinn::VarInt::from_u32(CLOSE_REMOVED), b"not in the roster");
            }
            false
        });
        for p in peers {
            let entry = map.entry(p.id).or_insert_with(|| Peer::new(p.addr));
            if entry.addr != p.addr {
                entry.addr = p.addr;
                if let Some(c) = entry.connection.take() {
                    c.close(quinn::VarInt::from_u32(0), b"address changed");
                }
            }
        }
        drop(map);
        self.lock_incoming().retain(|id, connections| {
            if stays(id) {
                return true;
            }
            for c in connections.drain(..) {
                c.close(quinn::VarInt::from_u32(CLOSE_REMOVED), b"not in the roster");
            }
            false
        });
    }

    /// Peers worth trying now (not backing off); all of them if every peer
    /// is. Never a penalised peer.
    fn candidates(&self) -> Vec<NodeId> {
        let now = Instant::now();
        let peers = self.lock();
        let allowed: Vec<(&NodeId, &Peer)> = peers.iter().filter(|(_, p)| !p.banned(now)).collect();
        let ready: Vec<NodeId> = allowed
            .iter()
            .filter(|(_, p)| p.retry_at.is_none_or(|t| t <= now))
            .map(|(id, _)| **id)
            .collect();
        if ready.is_empty() {
            allowed.iter().map(|(id, _)| **id).collect()
        } else {
            ready
        }
    }

    /// Shut a peer out after it sent a provably invalid event: its
    /// connection is closed, and it is neither pulled from nor served until
    /// the back-off passes.
    pub fn penalise(&self, id: &NodeId) -> Duration {
        let mut peers = self.lock();
        let Some(p) = peers.get_mut(id) else {
            return Duration::ZERO;
        };
        p.penalties = p.penalties.saturating_add(1);
        let period = penalty(p.penalties);
        p.banned_until = Some(Instant::now() + period);
        if let Some(c) = p.connection.take() {
            c.close(quinn::VarInt::from_u32(4), b"invalid events");
        }
        period
    }

    /// Whether `id` is shut out right now.
    pub fn is_banned(&self, id: &NodeId) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|p| p.banned(Instant::now()))
    }

    /// Peers this node holds an open connection to.
    fn connected_ids(&self) -> Vec<NodeId> {
        self.live_connections()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// Every open connection of this node's own, by peer.
    fn live_connections(&self) -> Vec<(NodeId, quinn::Connection)> {
        self.lock()
            .iter()
            .filter_map(|(id, p)| Some((*id, p.live_connection()?.clone())))
            .collect()
    }

    /// How long an event this node just got may still be on its way to
    /// `id` in its creator's push: a round trip on this node's own
    /// connection to it, at most [`MAX_IN_FLIGHT`]. `None` (a pull answer
    /// holds nothing back) when this node has no connection of its own to
    /// the peer, so its pushes do not reach it, or dropped pushes to it
    /// lately: the peer then depends on pulls.
    fn pushes_flow_to(&self, id: &NodeId) -> Option<Duration> {
        let peers = self.lock();
        let peer = peers.get(id)?;
        if peer
            .pushes_dropped_at
            .is_some_and(|at| at.elapsed() < PUSHES_DROPPED_MEMORY)
        {
            return None;
        }
        Some(peer.live_connection()?.rtt().min(MAX_IN_FLIGHT))
    }

    /// The open connection to `id`, if any.
    fn connection(&self, id: &NodeId) -> Option<quinn::Connection> {
        self.lock().get(id)?.live_connection().cloned()
    }
}

/// The running gossip tasks; dropping it stops them.
pub struct Gossip {
    tasks: JoinSet<()>,
}

impl Gossip {
    pub fn start(
        transport: Transport,
        core: CoreHandle,
        store: Arc<Store>,
        peers: Peers,
        limits: PeerLimits,
        config: GossipConfig,
        metrics: Arc<Metrics>,
    ) -> Gossip {
        let mut tasks = JoinSet::new();
        let shared = Arc::new(Shared {
            transport,
            core,
            store,
            peers,
            limits,
            config,
            metrics,
            state_sync: Mutex::new(super::state_sync::Progress::default()),
            signatures: Arc::new(SignatureMemo::new(SIGNATURE_MEMO)),
        });
        tasks.spawn(accept_loop(shared.clone()).in_current_span());
        tasks.spawn(pull_loop(shared.clone()).in_current_span());
        tasks.spawn(push_loop(shared.clone()).in_current_span());
        tasks.spawn(heartbeat_loop(shared).in_current_span());
        Gossip { tasks }
    }

    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

pub(super) struct Shared {
    pub(super) transport: Transport,
    pub(super) core: CoreHandle,
    pub(super) store: Arc<Store>,
    pub(super) peers: Peers,
    pub(super) limits: PeerLimits,
    pub(super) config: GossipConfig,
    pub(super) metrics: Arc<Metrics>,
    pub(super) state_sync: Mutex<super::state_sync::Progress>,
    /// Signatures of pulled events checked lately.
    pub(super) signatures: Arc<SignatureMemo>,
}

/// Signatures [`Shared::signatures`] remembers (~5 MiB): more than two
/// catch-up pages, so the overlapping pages of side-by-side pulls are
/// checked once.
const SIGNATURE_MEMO: usize = 1 << 16;

async fn heartbeat_loop(shared: Arc<Shared>) {
    let mut last_path_log = Instant::now();
    loop {
        tokio::time::sleep(shared.config.heartbeat).await;
        if shared.core.heartbeat().await.is_err() {
            return;
        }
        if last_path_log.elapsed() >= PATH_LOG_INTERVAL {
            last_path_log = Instant::now();
            log_paths(&shared);
        }
    }
}

/// How often each peer connection's QUIC path is logged (at debug).
const PATH_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// What the transport sees of each peer path: the first place to look
/// when gossip is slow on a real network (losses, a collapsed window).
fn log_paths(shared: &Shared) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    for (id, connection) in shared.peers.live_connections() {
        let stats = connection.stats();
        tracing::debug!(
            peer = %display_id(&id),
            rtt_ms = stats.path.rtt.as_secs_f64() * 1e3,
            cwnd = stats.path.cwnd,
            congestion_events = stats.path.congestion_events,
            sent_packets = stats.path.sent_packets,
            lost_packets = stats.path.lost_packets,
            "peer path"
        );
    }
}

/// The longest a pull answer holds back events still in flight to the
/// peer in pushes: a bufferbloated connection's RTT estimate can reach
/// seconds, and the answer must not wait on it.
const MAX_IN_FLIGHT: Duration = Duration::from_millis(250);
/// A peer whose pushes were dropped this recently gets whole pull answers.
const PUSHES_DROPPED_MEMORY: Duration = Duration::from_secs(10);

/// Handshakes in progress at most: beyond, new attempts are refused at
/// once (a crowd of half-open handshakes cannot hold the door shut for
/// honest peers, which retry).
pub const MAX_HANDSHAKES: usize = 64;
/// A handshake must complete within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections one peer may hold open to this node at once.
pub const MAX_CONNECTIONS_PER_PEER: usize = 4;

/// Accepts connections: every handshake runs on its own, under
/// [`HANDSHAKE_TIMEOUT`], at most [`MAX_HANDSHAKES`] at a time.
async fn accept_loop(shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            incoming = shared.transport.incoming() => {
                let Some(incoming) = incoming else { break };
                if handshakes.len() >= MAX_HANDSHAKES {
                    shared.metrics.reject_message("handshake_busy");
                    incoming.refuse();
                    continue;
                }
                handshakes.spawn(tokio::time::timeout(
                    HANDSHAKE_TIMEOUT,
                    super::transport::handshake(incoming),
                ).in_current_span());
            }
            Some(done) = handshakes.join_next(), if !handshakes.is_empty() => {
                match done {
                    Ok(Ok(Ok((connection, id)))) if shared.peers.is_banned(&id) => {
                        shared.metrics.reject_message("banned");
                        connection.close(quinn::VarInt::from_u32(4), b"invalid events");
                    }
                    Ok(Ok(Ok((connection, id)))) => {
                        if !shared.peers.track_incoming(id, connection.clone()) {
                            shared.metrics.reject_message("too_many_connections");
                            connection.close(quinn::VarInt::from_u32(5), b"too many connections");
                            continue;
                        }
                        tracing::debug!(peer = %display_id(&id), "peer connected");
                        connections.spawn(serve(shared.clone(), connection, id).in_current_span());
                    }
                    Ok(Ok(Err(err))) => {
                        shared.metrics.reject_message("handshake");
                        tracing::info!(error = %err, "connection refused");
                    }
                    Ok(Err(_)) => shared.metrics.reject_message("handshake_timeout"),
                    Err(_) => {}
                }
            }
        }
        // Reap finished connection tasks.
        while connections.try_join_next().is_some() {}
    }
}

/// Serves one peer's requests until the connection closes.
async fn serve(shared: Arc<Shared>, connection: quinn::Connection, peer: NodeId) {
    let now = Instant::now();
    let limits = &shared.limits;
    let mut sync_bucket = TokenBucket::new(limits.syncs_per_second, limits.burst, now);
    let budget = Arc::new(PeerBudget::new(limits, now));
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            bi = connection.accept_bi() => {
                let Ok((mut send, recv)) = bi else { break };
                if !sync_bucket.try_take(Instant::now()) {
                    shared.metrics.reject_message("rate_limited");
                    let _ = send.reset(quinn::VarInt::from_u32(2));
                    budget.offence();
                } else {
                    let in_flight = shared.peers.pushes_flow_to(&peer);
                    streams.spawn(answer(shared.clone(), peer, send, recv, in_flight).in_current_span());
                }
            }
            uni = connection.accept_uni() => {
                let Ok(recv) = uni else { break };
                // Each push on it takes a token; the streams themselves are
                // bounded by `max_push_streams`.
                streams.spawn(accept_pushes(
                    shared.clone(),
                    peer,
                    recv,
                    connection.clone(),
                    budget.clone(),
                ).in_current_span());
            }
        }
        if shared.peers.is_banned(&peer) {
            connection.close(quinn::VarInt::from_u32(4), b"invalid events");
            break;
        }
        if budget.exhausted() {
            flooding(&peer, &connection);
            break;
        }
        while streams.try_join_next().is_some() {}
    }
}

fn note_bad_message(shared: &Shared, peer: &NodeId, what: &str, err: &WireError) {
    let reason = match err {
        WireError::FrameTooLarge(_) => "oversized",
        WireError::Io(_) => "stream",
        _ => "malformed",
    };
    shared.metrics.reject_message(reason);
    if matches!(err, WireError::Io(_)) {
        // A peer that goes away mid-stream (restart, shutdown) is routine.
        tracing::debug!(peer = %display_id(peer), %what, error = %err, "stream from peer broke");
    } else {
        tracing::warn!(peer = %display_id(peer), %what, error = %err, "bad message from peer");
    }
}

/// Answers one request stream: a pull, or one of the state-sync queries.
async fn answer(
    shared: Arc<Shared>,
    peer: NodeId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    in_flight: Option<Duration>,
) {
    let request = timeout(
        shared.limits.read_timeout,
        read_message(&mut recv, shared.limits.max_frame_bytes),
    )
    .await;
    let request = match request {
        Ok(Ok(Some(request))) => request,
        Ok(Ok(None)) => return,
        Ok(Err(err)) => return note_bad_message(&shared, &peer, "request", &err),
        Err(_) => {
            shared.metrics.reject_message("timeout");
            return;
        }
    };
    match request {
        Message::SyncRequest {
            tips,
            ordered,
            missing,
        } => answer_sync(&shared, &mut send, tips, ordered, missing, in_flight).await,
        Message::CheckpointsRequest
        | Message::StateRequest { .. }
        | Message::OrderIdsRequest { .. } => {
            super::state_sync::answer(&shared, &peer, &mut send, request).await
        }
        _ => {
            shared.metrics.reject_message("unexpected");
            return;
        }
    }
    let _ = send.finish();
}

async fn answer_sync(
    shared: &Shared,
    send: &mut quinn::SendStream,
    tips: Vec<dagger_consensus::EventId>,
    ordered: u64,
    missing: Vec<(dagger_consensus::EventId, u64)>,
    in_flight: Option<Duration>,
) {
    let max_events = shared.config.max_events_per_sync;
    let Ok(answer) = shared
        .core
        .sync_answer(tips, ordered, missing, max_events, in_flight)
        .await
    else {
        return;
    };
    // The ledger is read here, off the consensus actor (redb serves readers
    // beside its writer): a peer asking for catch-up nonstop costs this
    // task, bounded by the peer's sync streams, not everyone's consensus.
    let store = shared.store.clone();
    let (events, behind_horizon) = if answer.ledger == Default::default() {
        crate::core::complete_sync_answer(store.as_ref(), answer, max_events)
    } else {
        let complete =
            move || crate::core::complete_sync_answer(store.as_ref(), answer, max_events);
        match tokio::task::spawn_blocking(complete).await {
            Ok(complete) => complete,
            Err(_) => return,
        }
    };
    let mut chunk = Vec::new();
    let mut chunk_bytes = 0;
    for event in events {
        chunk_bytes += event.encoded_len() + 4;
        chunk.push(event);
        if chunk_bytes >= shared.config.chunk_bytes {
            if write_message(send, &Message::Events(std::mem::take(&mut chunk)))
                .await
                .is_err()
            {
                return;
            }
            chunk_bytes = 0;
        }
    }
    if !chunk.is_empty() && write_message(send, &Message::Events(chunk)).await.is_err() {
        return;
    }
    if behind_horizon && write_message(send, &Message::Behind).await.is_err() {
        return;
    }
    let _ = write_message(send, &Message::SyncDone).await;
}

/// Penalise `peer` if `summary` shows it sent a provably invalid event.
/// Returns whether it did.
fn penalise_if_faulty(shared: &Shared, peer: &NodeId, summary: &ReceiveSummary) -> bool {
    let Some((id, reject)) = summary.fault() else {
        return false;
    };
    let period = shared.peers.penalise(peer);
    shared.metrics.penalise_peer(reject_label(reject));
    tracing::warn!(
        peer = %display_id(peer),
        event = %crate::core::hex(&id.0),
        %reject,
        shut_out_s = period.as_secs(),
        "peer sent an invalid event; disconnecting it"
    );
    true
}

/// What one peer may still send before it is cut off: its push rate
/// (shared by all its push streams) and its offences so far.
struct PeerBudget {
    pushes: Mutex<TokenBucket>,
    /// Pushes of this peer being inserted at once.
    inserting: Arc<tokio::sync::Semaphore>,
    violations: std::sync::atomic::AtomicU32,
    max_violations: u32,
}

impl PeerBudget {
    fn new(limits: &PeerLimits, now: Instant) -> PeerBudget {
        PeerBudget {
            pushes: Mutex::new(TokenBucket::new(
                limits.pushes_per_second,
                limits.burst,
                now,
            )),
            inserting: Arc::new(tokio::sync::Semaphore::new(
                limits.max_push_streams as usize,
            )),
            violations: Default::default(),
            max_violations: limits.max_violations,
        }
    }

    /// One push's worth of the rate; false (an offence) when over it.
    fn take_push(&self) -> bool {
        let taken = self
            .pushes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_take(Instant::now());
        if !taken {
            self.offence();
        }
        taken
    }

    fn offence(&self) {
        self.violations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn exhausted(&self) -> bool {
        self.violations.load(std::sync::atomic::Ordering::Relaxed) > self.max_violations
    }
}

/// Reads a peer's pushes (events, and envelopes of forwarded transactions)
/// from one stream until it ends, is idle for the connection's idle
/// timeout (the sender opens another when it has more), or carries
/// something no honest node sends. Each push is checked and inserted on its
/// own task (up to `max_push_streams` per peer at once):
/// reading the next must not wait for the core to answer the last, or a
/// busy core would make every peer's pushes arrive late.
async fn accept_pushes(
    shared: Arc<Shared>,
    peer: NodeId,
    mut recv: quinn::RecvStream,
    connection: quinn::Connection,
    budget: Arc<PeerBudget>,
) {
    loop {
        let message = timeout(
            shared.limits.idle_timeout,
            read_message(&mut recv, shared.limits.max_frame_bytes),
        )
        .await;
        let message = match message {
            Ok(Ok(Some(m @ (Message::Push(_) | Message::Forward(_))))) => m,
            Ok(Ok(Some(_))) => return shared.metrics.reject_message("unexpected"),
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(err)) => return note_bad_message(&shared, &peer, "push", &err),
        };
        if !budget.take_push() {
            shared.metrics.reject_message("rate_limited");
            if budget.exhausted() {
                flooding(&peer, &connection);
                return;
            }
            continue;
        }
        let Ok(permit) = budget.inserting.clone().acquire_owned().await else {
            return;
        };
        let (shared, connection) = (shared.clone(), connection.clone());
        crate::task::spawn(async move {
            let _permit = permit;
            match message {
                Message::Push(event) => {
                    // Checked here, on whichever worker runs this task, so
                    // pushes are verified in parallel; the core skips the
                    // check for an event marked verified.
                    let _ = dagger_consensus::verify::signature_ok(&event, &shared.core.network_id);
                    if let Ok(summary) = shared.core.receive_push(vec![event]).await {
                        if penalise_if_faulty(&shared, &peer, &summary) {
                            connection.close(quinn::VarInt::from_u32(4), b"invalid events");
                        }
                    }
                }
                Message::Forward(envelope) => {
                    carry_envelope(&shared, peer, envelope, &connection).await
                }
                _ => {}
            }
        });
    }
}

/// Hands a peer's envelope to the core; a forged one shuts the peer out.
async fn carry_envelope(
    shared: &Shared,
    peer: NodeId,
    envelope: Vec<u8>,
    connection: &quinn::Connection,
) {
    let Err(crate::core::CoreError::Forward(err)) =
        shared.core.receive_forward(peer, envelope).await
    else {
        return;
    };
    tracing::debug!(peer = %display_id(&peer), error = %err, "envelope refused");
    shared.metrics.reject_message("envelope");
    if forged(&err) {
        let period = shared.peers.penalise(&peer);
        shared.metrics.penalise_peer("envelope");
        tracing::warn!(
            peer = %display_id(&peer),
            error = %err,
            shut_out_s = period.as_secs(),
            "peer sent a forged envelope; disconnecting it"
        );
        connection.close(quinn::VarInt::from_u32(4), b"invalid envelope");
    }
}

/// Whether a refused envelope proves its sender broke the rules: honest
/// nodes send only their own envelopes, well formed and signed. (Expired,
/// too far ahead or over a limit can be an accident of timing or load.)
fn forged(err: &ForwardError) -> bool {
    matches!(
        err,
        ForwardError::NotFromSender
            | ForwardError::BadSignature
            | ForwardError::BadKey
            | ForwardError::Malformed
            | ForwardError::NotAnEnvelope
            | ForwardError::BadTransaction
            | ForwardError::TooManyTransactions(_)
    )
}

fn flooding(peer: &NodeId, connection: &quinn::Connection) {
    tracing::warn!(peer = %display_id(peer), "peer keeps flooding; disconnecting");
    connection.close(quinn::VarInt::from_u32(3), b"rate limit");
}

/// Picks the next peer to pull from: at random, never the last one when
/// there is another.
fn choose_peer(candidates: &[NodeId], last: Option<NodeId>) -> Option<NodeId> {
    let mut rng = rand::thread_rng();
    let others: Vec<NodeId> = candidates
        .iter()
        .copied()
        .filter(|c| Some(*c) != last)
        .collect();
    if others.is_empty() {
        candidates.choose(&mut rng).copied()
    } else {
        others.choose(&mut rng).copied()
    }
}

/// Starts a pull every tick while fewer than `peers / 3 + 1` are under
/// way, each from a peer not already being pulled: a peer that accepts a
/// sync and never answers (frozen, gone without closing, or byzantine)
/// holds one slot until its pull times out, never the others.
async fn pull_loop(shared: Arc<Shared>) {
    let mut last = None;
    let mut pulls: JoinSet<()> = JoinSet::new();
    let mut pulling: HashMap<tokio::task::Id, NodeId> = HashMap::new();
    loop {
        let busy = match shared.core.has_work().await {
            Ok(busy) => busy,
            Err(_) => return,
        };
        tokio::time::sleep(if busy {
            shared.config.busy_interval
        } else {
            shared.config.idle_interval
        })
        .await;
        while let Some(done) = pulls.try_join_next_with_id() {
            let id = match done {
                Ok((id, ())) => id,
                Err(err) => err.id(),
            };
            pulling.remove(&id);
        }
        let candidates = shared.peers.candidates();
        if pulling.len() > candidates.len() / 3 {
            continue;
        }
        let free: Vec<NodeId> = candidates
            .into_iter()
            .filter(|c| !pulling.values().any(|p| p == c))
            .collect();
        let Some(peer) = choose_peer(&free, last) else {
            continue;
        };
        last = Some(peer);
        let task = pulls.spawn(pull_and_record(shared.clone(), peer).in_current_span());
        pulling.insert(task.id(), peer);
    }
}

/// One pull from `peer`, and what follows from it: the peer's record, a
/// state sync if it said this node is behind, an event linking the peer.
async fn pull_and_record(shared: Arc<Shared>, peer: NodeId) {
    let started = Instant::now();
    let result = pull_from(&shared, peer).await;
    if matches!(result, Ok(true)) {
        super::state_sync::behind_reported(&shared, peer);
    }
    let succeeded = {
        let mut peers = shared.peers.lock();
        let Some(entry) = peers.get_mut(&peer) else {
            return;
        };
        match result {
            Ok(_) => {
                shared
                    .metrics
                    .sync_latency
                    .observe(started.elapsed().as_secs_f64());
                entry.syncs += 1;
                entry.last_sync = Some(Instant::now());
                entry.last_error = None;
                entry.consecutive_failures = 0;
                entry.retry_at = None;
                true
            }
            Err(err) => {
                entry.failures += 1;
                entry.consecutive_failures += 1;
                entry.retry_at = Some(Instant::now() + backoff(entry.consecutive_failures));
                tracing::debug!(peer = %display_id(&peer), error = %err, "pull failed");
                entry.last_error = Some(err);
                entry.connection = None;
                false
            }
        }
    };
    if succeeded && shared.core.after_sync(peer).await.is_err() {
        return;
    }
    let connected = shared.peers.connected_ids().len();
    shared.metrics.peers_connected.set(connected as i64);
}

pub(super) async fn connection_to(
    shared: &Shared,
    peer: NodeId,
) -> Result<quinn::Connection, String> {
    let (existing, addr) = {
        let peers = shared.peers.lock();
        let entry = peers.get(&peer).ok_or("unknown peer")?;
        (entry.live_connection().cloned(), entry.addr)
    };
    if let Some(connection) = existing {
        return Ok(connection);
    }
    let connection = timeout(
        Duration::from_secs(2),
        shared.transport.connect(addr, &peer),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    if let Some(entry) = shared.peers.lock().get_mut(&peer) {
        entry.connection = Some(connection.clone());
    }
    Ok(connection)
}

/// Pulls from `peer`; `Ok(true)` if it said this node is behind what it
/// keeps (a state sync is needed).
async fn pull_from(shared: &Shared, peer: NodeId) -> Result<bool, String> {
    let connection = connection_to(shared, peer).await?;
    let tips = shared.core.tips().await.map_err(|e| e.to_string())?;
    let status = shared.core.status().await.map_err(|e| e.to_string())?;
    let mut missing = shared
        .core
        .missing_parents()
        .await
        .map_err(|e| e.to_string())?;
    missing.truncate(super::wire::MAX_MISSING);
    let request = Message::SyncRequest {
        tips,
        ordered: status.ordered_events,
        missing,
    };
    let work = async {
        let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
        write_message(&mut send, &request)
            .await
            .map_err(|e| e.to_string())?;
        let _ = send.finish();
        let mut received = 0usize;
        let mut behind = false;
        loop {
            // Each chunk must come within the read timeout, the whole
            // answer within the sync timeout.
            let message = timeout(
                shared.limits.read_timeout,
                read_message(&mut recv, shared.limits.max_frame_bytes),
            )
            .await
            .map_err(|_| "peer stopped answering".to_string())?;
            match message {
                Ok(Some(Message::Behind)) => behind = true,
                Ok(Some(Message::Events(events))) => {
                    received += events.len();
                    if received > shared.config.max_events_per_sync {
                        shared.metrics.reject_message("oversized");
                        return Err("peer sent more events than asked".to_string());
                    }
                    verify_off_core(&events, shared.core.network_id, &shared.signatures).await;
                    let summary = shared
                        .core
                        .receive(events)
                        .await
                        .map_err(|e| e.to_string())?;
                    if penalise_if_faulty(shared, &peer, &summary) {
                        return Err("peer sent invalid events".to_string());
                    }
                }
                Ok(Some(Message::SyncDone)) => return Ok(behind),
                Ok(Some(_)) => {
                    shared.metrics.reject_message("unexpected");
                    return Err("unexpected message in a sync answer".to_string());
                }
                Ok(None) => return Err("sync answer ended early".to_string()),
                Err(err) => {
                    note_bad_message(shared, &peer, "sync answer", &err);
                    return Err(err.to_string());
                }
            }
        }
    };
    timeout(shared.config.sync_timeout, work)
        .await
        .map_err(|_| "sync timed out".to_string())?
}

/// Checks the signatures of a pulled chunk on blocking threads, two halves
/// at once when it is large. The result is cached on each event (clones
/// share it), so the core does not check again; events whose check did not
/// run are simply checked by the core.
async fn verify_off_core(events: &[Event], network_id: [u8; 32], memo: &Arc<SignatureMemo>) {
    let halves = if events.len() < 16 { 1 } else { 2 };
    let checks: Vec<_> = events
        .chunks(events.len().div_ceil(halves).max(1))
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let memo = memo.clone();
            tokio::task::spawn_blocking(move || {
                for event in &chunk {
                    let _ = memo.check(event, &network_id);
                }
            })
        })
        .collect();
    for check in checks {
        let _ = check.await;
    }
}

/// Own events queued for one peer. A peer that does not keep up (slow,
/// frozen, or gone without closing its connection) loses pushes beyond
/// this and pulls what it missed; it never holds up pushes to the others.
/// Short on purpose: a push is worth sending only while it is news (at
/// full load 256 queued events were up to 256 MB, delivered seconds late).
const PUSH_QUEUE: usize = 16;
/// A push that cannot open its stream or hand over its bytes within this
/// is given up, with what is queued behind it for that peer.
const PUSH_TIMEOUT: Duration = Duration::from_secs(2);

async fn push_loop(shared: Arc<Shared>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut own = shared.core.own_events();
    let mut forwards = shared.core.forwards();
    let mut queues: HashMap<NodeId, tokio::sync::mpsc::Sender<Message>> = HashMap::new();
    loop {
        // Own events and envelopes of forwarded transactions go to every
        // peer the same way (an envelope is carried by whoever gets it).
        let frame = tokio::select! {
            event = own.recv() => match event {
                Ok(event) => Message::Push(event),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            envelope = forwards.recv() => match envelope {
                Ok(envelope) => Message::Forward(envelope.to_vec()),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
        };
        let connected = shared.peers.connected_ids();
        queues.retain(|id, _| connected.contains(id));
        for id in connected {
            let queue = queues.entry(id).or_insert_with(|| {
                let (tx, rx) = tokio::sync::mpsc::channel(PUSH_QUEUE);
                crate::task::spawn(push_to(shared.clone(), id, rx));
                tx
            });
            if queue.try_send(frame.clone()).is_err() {
                pushes_dropped(&shared, &id, 1);
            }
        }
    }
}

/// `count` pushes to `peer` were given up: counted, and remembered so pull
/// answers to it hold nothing back for a while (it depends on pulls).
fn pushes_dropped(shared: &Shared, peer: &NodeId, count: u64) {
    shared.metrics.pushes_dropped.inc_by(count);
    if let Some(entry) = shared.peers.lock().get_mut(peer) {
        entry.pushes_dropped_at = Some(Instant::now());
    }
}

/// Long-lived push streams per peer, taken in turn. QUIC delivers each
/// stream in order, so on one stream a lost datagram held every push
/// behind it for a retransmission (at least 1.25 round trips); across
/// several, only the pushes on that stream wait. A child that overtakes
/// its parent waits for it in the consensus buffer, as from any peer.
const PUSH_STREAMS: usize = 4;

/// Sends one peer its queued pushes on [`PUSH_STREAMS`] long-lived
/// streams (opened again after a failure or a reconnect): a stream per
/// event cost both sides a task and stream bookkeeping per push. Ends when
/// the peer leaves the connected set (its queue is dropped).
async fn push_to(
    shared: Arc<Shared>,
    peer: NodeId,
    mut queue: tokio::sync::mpsc::Receiver<Message>,
) {
    let mut streams: Vec<Option<(usize, quinn::SendStream)>> =
        (0..PUSH_STREAMS).map(|_| None).collect();
    let mut turn = 0;
    while let Some(frame) = queue.recv().await {
        let Some(connection) = shared.peers.connection(&peer) else {
            pushes_dropped(&shared, &peer, 1);
            streams.iter_mut().for_each(|s| *s = None);
            continue;
        };
        let stream = &mut streams[turn];
        turn = (turn + 1) % PUSH_STREAMS;
        let sent = timeout(PUSH_TIMEOUT, async {
            let current = stream
                .as_ref()
                .is_some_and(|(id, _)| *id == connection.stable_id());
            if !current {
                *stream = Some((connection.stable_id(), connection.open_uni().await.ok()?));
            }
            let (_, send) = stream.as_mut()?;
            write_message(send, &frame).await.ok()
        })
        .await;
        if !matches!(sent, Ok(Some(()))) {
            streams.iter_mut().for_each(|s| *s = None);
            let mut dropped = 1;
            while queue.try_recv().is_ok() {
                dropped += 1;
            }
            pushes_dropped(&shared, &peer, dropped);
            tracing::debug!(peer = %display_id(&peer), dropped, "peer is not taking pushes");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_chosen_at_random_but_not_twice_in_a_row() {
        let peers = [[1u8; 32], [2u8; 32], [3u8; 32]];
        let mut seen = std::collections::HashSet::new();
        let mut last = None;
        for _ in 0..300 {
            let next = choose_peer(&peers, last).unwrap();
            assert_ne!(Some(next), last);
            seen.insert(next);
            last = Some(next);
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(choose_peer(&peers[..1], Some(peers[0])), Some(peers[0]));
        assert_eq!(choose_peer(&[], None), None);
    }

    /// One peer cannot pile up accepted connections: beyond
    /// [`MAX_CONNECTIONS_PER_PEER`] open ones the next is not kept; once one
    /// closes, a new one is.
    #[tokio::test]
    async fn a_peer_holds_a_bounded_number_of_connections() {
        use crate::{identity::Identity, net::tls::Allowlist};
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let limits = PeerLimits::default();
        let ids: Vec<Identity> = (0..2).map(|_| Identity::generate()).collect();
        let allow = Allowlist::new(ids.iter().map(|i| i.id()));
        let t: Vec<Transport> = ids
            .iter()
            .map(|i| Transport::bind(i, allow.clone(), local, &limits).unwrap())
            .collect();
        let peers = Peers::new(&[]);
        let addr0 = t[0].local_addr().unwrap();
        let mut dialed = Vec::new();
        let mut accepted = Vec::new();
        for _ in 0..=MAX_CONNECTIONS_PER_PEER {
            let (t0, t1, id0) = (t[0].clone(), t[1].clone(), ids[0].id());
            let dial = tokio::spawn(async move { t1.connect(addr0, &id0).await.unwrap() });
            let (connection, id) = t0.accept().await.unwrap().unwrap();
            dialed.push(dial.await.unwrap());
            accepted.push((connection, id));
        }
        let kept: Vec<bool> = accepted
            .iter()
            .map(|(c, id)| peers.track_incoming(*id, c.clone()))
            .collect();
        assert_eq!(
            kept.iter().filter(|k| **k).count(),
            MAX_CONNECTIONS_PER_PEER
        );
        assert!(!kept[MAX_CONNECTIONS_PER_PEER]);
        accepted[0].0.close(quinn::VarInt::from_u32(0), b"");
        let (c, id) = &accepted[MAX_CONNECTIONS_PER_PEER];
        assert!(peers.track_incoming(*id, c.clone()));
    }

    /// A peer removed from the roster loses its connections at once, the
    /// one this node dialed and the one it accepted; peers that stay keep
    /// theirs.
    #[tokio::test]
    async fn removed_peers_are_disconnected_both_ways() {
        use crate::{identity::Identity, net::tls::Allowlist};
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let limits = PeerLimits::default();
        let ids: Vec<Identity> = (0..3).map(|_| Identity::generate()).collect();
        let allow = Allowlist::new(ids.iter().map(|i| i.id()));
        let t: Vec<Transport> = ids
            .iter()
            .map(|i| Transport::bind(i, allow.clone(), local, &limits).unwrap())
            .collect();
        let addr = |i: usize| t[i].local_addr().unwrap();
        let peers = Peers::new(&[
            PeerAddr {
                id: ids[1].id(),
                addr: addr(1),
            },
            PeerAddr {
                id: ids[2].id(),
                addr: addr(2),
            },
        ]);
        // Node 0 accepts from 1 and 2 and tracks what it accepted.
        let acceptor = {
            let (t0, peers) = (t[0].clone(), peers.clone());
            tokio::spawn(async move {
                for _ in 0..2 {
                    let (connection, id) = t0.accept().await.unwrap().unwrap();
                    assert!(peers.track_incoming(id, connection));
                }
            })
        };
        let from_1 = t[1].connect(addr(0), &ids[0].id()).await.unwrap();
        let from_2 = t[2].connect(addr(0), &ids[0].id()).await.unwrap();
        acceptor.await.unwrap();
        // ...and dials 1 and 2 (accepted and kept alive on their side).
        for i in [1, 2] {
            let ti = t[i].clone();
            tokio::spawn(async move {
                let (connection, _) = ti.accept().await.unwrap().unwrap();
                connection.closed().await;
            });
        }
        let to_1 = t[0].connect(addr(1), &ids[1].id()).await.unwrap();
        let to_2 = t[0].connect(addr(2), &ids[2].id()).await.unwrap();
        {
            let mut map = peers.lock();
            map.get_mut(&ids[1].id()).unwrap().connection = Some(to_1.clone());
            map.get_mut(&ids[2].id()).unwrap().connection = Some(to_2.clone());
        }

        peers.set(&[PeerAddr {
            id: ids[2].id(),
            addr: addr(2),
        }]);
        let wait = |c: quinn::Connection| async move {
            tokio::time::timeout(Duration::from_secs(5), c.closed())
                .await
                .expect("closed promptly")
        };
        // Both directions with node 1 are closed; node 1 sees why.
        assert!(to_1.close_reason().is_some());
        match wait(from_1).await {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, quinn::VarInt::from_u32(CLOSE_REMOVED))
            }
            other => panic!("unexpected close: {other}"),
        }
        assert!(!peers.contains(&ids[1].id()));
        // Node 2 stays connected both ways.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(from_2.close_reason().is_none());
        assert!(to_2.close_reason().is_none());
    }

    #[test]
    fn failing_peers_back_off_exponentially_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
