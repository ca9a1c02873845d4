//! The HTTP status API (axum).
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | `ok` while the node runs (liveness) |
//! | `GET /ready` | 200 when consensus decides, peers sync, the state is verified and the chain answers; 503 with the failing checks otherwise |
//! | `GET /status` | rounds, order, peers |
//! | `GET /events/{id}` | one event (hex id) with its consensus facts |
//! | `GET /order?from=N&limit=M[&wait_ms=W]` | ordered transactions with consensus timestamps; with `wait_ms`, waits up to W ms (≤ 30 000) for position N to be ordered (long poll) |
//! | `GET /evidence` | equivocations this node holds proof of, in the form `dagger slash --evidence` reads |
//! | `GET /checkpoints` | latest checkpoints (round, order, digest), newest first |
//! | `GET /leases/{request}` | where a provisioned request's VM is (chain-backed nodes) |
//! | `GET /images` | the images active operators boot, with their names, operators and stake (chain-backed nodes) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /explorer` | the live DAG explorer (HTML; its assets are compiled in) |
//! | `GET /dag?after=C` | held events inserted from cursor `C` on (all without it), with rounds, fame, order and the roster |
//! | `GET /dag/stream` | the same as server-sent events (`event: dag`), a slice every 500 ms with what is new or was unsettled; at most [`MAX_DAG_STREAMS`] at once |
//!
//! Transaction submission is a separate listener, off unless the operator
//! sets `submit` and `submit_token_file` ([`submit_router`]); every request
//! carries `Authorization: Bearer <token>`:
//!
//! | route | what |
//! |---|---|
//! | `POST /tx` | submit a transaction (raw body); returns the carrying event's id |
//! | `POST /txs` | submit many: the body is transactions each prefixed by its length (u32, little-endian), at most 10 000 transactions and 2 MiB; returns one result per transaction, in order |
//!
//! A transaction starting with the node-report tag is refused (403): node
//! reports are signed only by the node's own components.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};

use crate::{
    core::{hex, CoreHandle, CoreStatus, SubmitError},
    metrics::Metrics,
    net::gossip::{PeerStatus, Peers},
    store::Store,
};

/// Largest `limit` for `/order`.
pub const MAX_ORDER_PAGE: usize = 10_000;
/// Transaction bytes in one `/order` page at most (clients page on).
pub const MAX_ORDER_PAGE_BYTES: usize = 4 << 20;
/// Longest `/order` long poll.
pub const MAX_ORDER_WAIT_MS: u64 = 30_000;
/// Most transactions in one `POST /txs`.
pub const MAX_SUBMIT_BATCH: usize = 10_000;
/// Largest request body (a `POST /txs` of more is refused whole with 413).
pub const MAX_SUBMIT_BODY: usize = 2 << 20;

/// How many transactions of `tx_size` bytes fit in one `POST /txs`.
pub fn batch_capacity(tx_size: usize) -> usize {
    (MAX_SUBMIT_BODY / tx_size.saturating_add(4)).min(MAX_SUBMIT_BATCH)
}

#[derive(Clone)]
pub struct ApiState {
    pub core: CoreHandle,
    pub peers: Peers,
    pub metrics: Arc<Metrics>,
    pub store: Arc<Store>,
    pub health: Arc<crate::health::Health>,
    /// Present on chain-backed nodes.
    pub chain: Option<ChainView>,
    /// Explorer streams open at once (each asks the core twice a second).
    pub dag_streams: Arc<tokio::sync::Semaphore>,
}

/// Explorer streams served at once; more are refused with 503.
pub const MAX_DAG_STREAMS: usize = 8;
/// How often an explorer stream sends a slice.
pub const DAG_STREAM_PERIOD: std::time::Duration = std::time::Duration::from_millis(500);

/// What a chain-backed node adds to `/status`.
#[derive(Clone)]
pub struct ChainView {
    pub duties: tokio::sync::watch::Receiver<(u64, crate::controller::Duties)>,
    pub provisioner: &'static str,
    pub endpoints: crate::controller::Endpoints,
    pub catalog: crate::controller::ImageCatalog,
    /// VMs this node keeps booted ahead of leases.
    pub pools: std::sync::Arc<dyn Fn() -> Vec<crate::provisioner::PoolStatus> + Send + Sync>,
}

#[derive(Serialize)]
struct LeaseHere {
    request: String,
    running: bool,
    endpoint: Option<String>,
}

#[derive(Serialize)]
struct ChainStatus {
    provisioner: &'static str,
    controller_round: u64,
    roster: usize,
    leases_here: usize,
    provisioning_here: usize,
    /// This node's leases: the request, whether its VM must run (a quorum
    /// activated it) and where it is, once consensus recorded that.
    leases: Vec<LeaseHere>,
    votes_wanted: usize,
    /// VMs kept booted ahead of leases, per shape.
    pools: Vec<crate::provisioner::PoolStatus>,
}

/// The read-only API: nothing here changes what the node signs.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/status", get(status))
        .route("/events/{id}", get(event))
        .route("/order", get(order))
        .route("/checkpoints", get(checkpoints))
        .route("/evidence", get(evidence))
        .route("/leases/{request}", get(lease))
        .route("/images", get(images))
        .route("/metrics", get(metrics))
        .route("/dag", get(dag))
        .route("/dag/stream", get(dag_stream))
        .merge(crate::explorer::router())
        .with_state(state)
}

/// The transaction submission API, served on its own listener only when
/// the operator configures one (`submit` and `submit_token_file`): every
/// request must carry `Authorization: Bearer <token>`. Node reports (the
/// [`crate::core::REPORT_TAG`] prefix) are refused here whatever the
/// token: only the node's own components sign those.
pub fn submit_router(state: ApiState, token: SubmitToken) -> Router {
    Router::new()
        .route("/tx", post(submit))
        .route("/txs", post(submit_batch))
        .layer(axum::middleware::from_fn_with_state(token, require_token))
        .layer(DefaultBodyLimit::max(MAX_SUBMIT_BODY))
        .with_state(state)
}

/// The submission API's bearer token.
#[derive(Clone)]
pub struct SubmitToken(std::sync::Arc<String>);

/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

impl SubmitToken {
    /// Reads the token from `path` (surrounding whitespace ignored).
    pub fn load(path: &std::path::Path) -> Result<SubmitToken, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the submission token {}: {e}", path.display()))?;
        let token = text.trim();
        if token.len() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
            return Err(format!(
                "the submission token in {} must be one word of at least {MIN_TOKEN_LEN} characters",
                path.display()
            ));
        }
        Ok(SubmitToken(std::sync::Arc::new(token.to_string())))
    }

    /// Whether `offered` is the token (compared in constant time).
    fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

async fn require_token(
    State(token): State<SubmitToken>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let offered = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match offered {
        Some(t) if token.matches(t) => next.run(request).await,
        _ => error(
            StatusCode::UNAUTHORIZED,
            "the submission API needs `Authorization: Bearer <token>`",
        ),
    }
}

#[derive(Serialize)]
struct Status {
    #[serde(flatten)]
    core: CoreStatus,
    /// First transaction position `/order` serves: 0, or where the order
    /// resumed after this node joined by state sync.
    order_starts_at: u64,
    peers: Vec<PeerStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<ChainStatus>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

async fn ready(State(state): State<ApiState>) -> Response {
    let core = match state.core.status().await {
        Ok(core) => core,
        Err(e) => {
            let readiness = crate::health::Readiness {
                ready: false,
                failing: vec![format!("core: {e}")],
                last_decided_round: 0,
            };
            return (StatusCode::SERVICE_UNAVAILABLE, Json(readiness)).into_response();
        }
    };
    let peers = state.peers.status();
    let last_peer_sync = peers
        .iter()
        .filter_map(|p| p.last_sync_ms_ago)
        .min()
        .map(std::time::Duration::from_millis);
    let facts = state.health.facts(
        core.last_decided_round,
        core.unverified_install.is_some(),
        peers.len(),
        last_peer_sync,
    );
    let readiness = crate::health::judge(&facts);
    let code = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(readiness)).into_response()
}

async fn status(State(state): State<ApiState>) -> Response {
    // The ledger's part, read in one trip off the runtime.
    let store = state.store.clone();
    let (starts_at, stored_events) = tokio::task::spawn_blocking(move || {
        (
            store.txs_start().unwrap_or(0),
            store.event_count().unwrap_or(0),
        )
    })
    .await
    .unwrap_or((0, 0));
    match state.core.status().await {
        Ok(core) => Json(Status {
            core: crate::core::CoreStatus {
                stored_events,
                ..core
            },
            order_starts_at: starts_at,
            peers: state.peers.status(),
            chain: state.chain.as_ref().map(|view| {
                let (round, duties) = view.duties.borrow().clone();
                let endpoints = view.endpoints.read().unwrap_or_else(|p| p.into_inner());
                let leases = duties
                    .leases
                    .iter()
                    .map(|request| LeaseHere {
                        request: request.to_string(),
                        running: duties.running.contains(request),
                        endpoint: endpoints.get(request).map(|e| e.endpoint.clone()),
                    })
                    .collect();
                ChainStatus {
                    leases,
                    provisioner: view.provisioner,
                    controller_round: round,
                    roster: duties.peers.len(),
                    leases_here: duties.leases.len(),
                    provisioning_here: duties.provision.len(),
                    votes_wanted: duties.votes.len(),
                    pools: (view.pools)(),
                }
            }),
        })
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Serialize)]
struct EventView {
    id: String,
    creator: String,
    seq: u64,
    self_parent: Option<String>,
    other_parent: Option<String>,
    created_at_ns: u64,
    txs_root: String,
    transactions: Vec<String>,
    /// Per transaction: the node report it is, decoded (`kind` and fields),
    /// or null for a client's opaque transaction.
    reports: Vec<Option<serde_json::Value>>,
    round: Option<u64>,
    witness: Option<bool>,
    famous: Option<bool>,
    ordered: Option<bool>,
}

/// Exactly 64 hex digits (no sign, no prefix).
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    ::hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

async fn event(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_hex32(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "event id must be 64 hex characters",
        );
    };
    let found = match state.core.event(dagger_consensus::EventId(id)).await {
        Ok(crate::core::EventLookup::Held(event, info)) => Ok(Some((event, info))),
        Ok(crate::core::EventLookup::NotYet) => Ok(None),
        // Older events come from the ledger, read here rather than in the
        // consensus actor.
        Ok(crate::core::EventLookup::AskLedger) => {
            let store = state.store.clone();
            let id = dagger_consensus::EventId(id);
            let stored =
                tokio::task::spawn_blocking(move || crate::core::stored_event(store.as_ref(), &id))
                    .await
                    .ok()
                    .flatten();
            Ok(stored.map(|e| (e, None)))
        }
        Err(e) => Err(e),
    };
    match found {
        Ok(Some((event, info))) => Json(EventView {
            id: hex(&event.id().0),
            creator: crate::identity::display_id(&event.creator().0),
            seq: event.seq(),
            self_parent: event.self_parent().map(|p| hex(&p.0)),
            other_parent: event.other_parent().map(|p| hex(&p.0)),
            created_at_ns: event.created_at_ns(),
            txs_root: hex(&event.txs_root()),
            transactions: event.transactions().iter().map(|t| hex(t)).collect(),
            reports: event
                .transactions()
                .iter()
                .map(|t| crate::controller::NodeTx::decode(t).map(|r| r.describe()))
                .collect(),
            round: info.map(|i| i.round),
            witness: info.map(|i| i.witness),
            famous: info.and_then(|i| i.famous),
            ordered: info.map(|i| i.ordered),
        })
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such event here"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
struct OrderQuery {
    #[serde(default)]
    from: u64,
    limit: Option<usize>,
    /// Long poll: wait this long for something at `from`.
    wait_ms: Option<u64>,
}

#[derive(Serialize)]
struct OrderedTx {
    position: u64,
    tx: String,
    event_id: String,
    consensus_time_ns: u64,
}

async fn order(State(state): State<ApiState>, Query(query): Query<OrderQuery>) -> Response {
    // A page also ends at MAX_ORDER_PAGE_BYTES of transactions, whatever
    // `limit` asked (clients page on): one answer cannot take the node's
    // memory. It always holds at least one.
    let limit = crate::store::PageLimit {
        records: query.limit.unwrap_or(1_000).min(MAX_ORDER_PAGE),
        bytes: MAX_ORDER_PAGE_BYTES,
    };
    let from = query.from;
    let wait = std::time::Duration::from_millis(query.wait_ms.unwrap_or(0).min(MAX_ORDER_WAIT_MS));
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribe before reading, so news in between is not missed. Only
    // news from consensus is waited for: positions older than the window
    // kept in memory were applied to the ledger before they left it.
    let mut ordered = state.core.ordered_watch();
    let result = loop {
        // What consensus just decided is served from memory; older
        // positions from the ledger.
        let page = match state.core.recent_order(from, limit) {
            Some(records) => Ok(Ok(records)),
            None => {
                let store = state.store.clone();
                tokio::task::spawn_blocking(move || store.txs_page(from, limit)).await
            }
        };
        let empty = matches!(&page, Ok(Ok(records)) if records.is_empty());
        if !empty || tokio::time::Instant::now() >= deadline {
            break page;
        }
        match tokio::time::timeout_at(deadline, ordered.changed()).await {
            Ok(Ok(())) => continue,
            // Timed out, or the node is stopping: answer what there is.
            _ => break page,
        }
    };
    match result {
        Ok(Ok(records)) => Json(
            records
                .into_iter()
                .map(|r| OrderedTx {
                    position: r.position,
                    tx: hex(&r.tx),
                    event_id: hex(&r.event_id),
                    consensus_time_ns: r.consensus_time_ns,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        // A hole in this node's ledger: say so rather than skip it.
        Ok(Err(e @ crate::store::StoreError::Gap { .. })) => {
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        // Older than what this node keeps: for good, here.
        Ok(Err(e @ crate::store::StoreError::Pruned { .. })) => {
            error(StatusCode::GONE, e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Where the VM of a provisioned request is. The answer is what consensus
/// recorded from the assigned node's report; a client checks it against
/// the quorum-attested `endpoint_hash` on-chain before trusting it.
async fn lease(State(state): State<ApiState>, Path(request): Path<String>) -> Response {
    let Some(view) = state.chain.as_ref() else {
        return error(
            StatusCode::NOT_FOUND,
            "this node does not follow a chain: it has no leases",
        );
    };
    let Ok(request) = request.parse::<anchor_lang::prelude::Pubkey>() else {
        return error(StatusCode::BAD_REQUEST, "request must be a base58 address");
    };
    let endpoints = view.endpoints.read().unwrap_or_else(|p| p.into_inner());
    match endpoints.get(&request) {
        Some(lease) => Json(lease.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "no VM is reported for this request (not provisioned yet, or gone)",
        ),
    }
}

/// The image catalog consensus knows: what customers choose from by name.
async fn images(State(state): State<ApiState>) -> Response {
    let Some(view) = state.chain.as_ref() else {
        return error(
            StatusCode::NOT_FOUND,
            "this node does not follow a chain: it knows no operators' images",
        );
    };
    let images = view
        .catalog
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Json(serde_json::json!({ "images": images })).into_response()
}

#[derive(Serialize)]
struct CheckpointView {
    round: u64,
    ordered_events: u64,
    ordered_txs: u64,
    running_hash: String,
    digest: String,
}

/// This node's latest checkpoints, newest first (what peers compare in
/// state sync; equal on every honest node for a round).
async fn checkpoints(State(state): State<ApiState>) -> Response {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.checkpoints(64)).await {
        Ok(Ok(list)) => Json(
            list.into_iter()
                .map(|c| CheckpointView {
                    round: c.round,
                    ordered_events: c.ordered,
                    ordered_txs: c.next_tx,
                    running_hash: hex(&c.running_hash),
                    digest: hex(&c.digest),
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Every equivocation proof this node holds: the two signed headers (what
/// `report_equivocation` takes), plus the creator and the pair's hash for
/// people.
async fn evidence(State(state): State<ApiState>) -> Response {
    match state.core.evidence().await {
        Ok(pairs) => Json(
            pairs
                .iter()
                .map(|pair| {
                    let evidence = crate::chain::slasher::to_evidence(pair);
                    let mut view = serde_json::to_value(&evidence).unwrap_or_default();
                    view["creator"] = bs58::encode(pair.first.creator().0).into_string().into();
                    view["evidence"] = hex(&evidence.hash()).into();
                    view
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn submit(State(state): State<ApiState>, body: Bytes) -> Response {
    match state.core.submit(body.to_vec()).await {
        Ok(id) => Json(serde_json::json!({ "event_id": hex(&id.0) })).into_response(),
        Err(e) => error(submit_status(&e), e.to_string()),
    }
}

/// A `POST /txs` body: each transaction prefixed by its length (u32,
/// little-endian). [`split_batch`] reads it back.
pub fn frame_batch<T: AsRef<[u8]>>(txs: &[T]) -> Vec<u8> {
    let mut body = Vec::with_capacity(txs.iter().map(|t| t.as_ref().len() + 4).sum());
    for tx in txs {
        let tx = tx.as_ref();
        body.extend_from_slice(&(tx.len() as u32).to_le_bytes());
        body.extend_from_slice(tx);
    }
    body
}

/// Splits a `POST /txs` body into transactions.
pub fn split_batch(body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut txs = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        if txs.len() == MAX_SUBMIT_BATCH {
            return Err(format!(
                "more than {MAX_SUBMIT_BATCH} transactions in one batch"
            ));
        }
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(format!(
                "truncated length prefix after {} transactions",
                txs.len()
            ));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return Err(format!(
                "transaction {} says {len} bytes but {} remain",
                txs.len(),
                tail.len()
            ));
        }
        txs.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    if txs.is_empty() {
        return Err("the batch is empty".into());
    }
    Ok(txs)
}

/// One transaction's outcome in a `POST /txs` answer.
#[derive(Serialize)]
#[serde(untagged)]
enum BatchResult {
    Carried { event_id: String },
    Refused { error: String, status: u16 },
}

async fn submit_batch(State(state): State<ApiState>, body: Bytes) -> Response {
    let txs = match split_batch(&body) {
        Ok(txs) => txs,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let results: Vec<BatchResult> = state
        .core
        .submit_batch(txs)
        .await
        .into_iter()
        .map(|result| match result {
            Ok(id) => BatchResult::Carried {
                event_id: hex(&id.0),
            },
            Err(e) => BatchResult::Refused {
                status: submit_status(&e).as_u16(),
                error: e.to_string(),
            },
        })
        .collect();
    Json(results).into_response()
}

/// The HTTP status a refused submission gets.
fn submit_status(e: &SubmitError) -> StatusCode {
    match e {
        SubmitError::Empty | SubmitError::TooLarge { .. } => StatusCode::BAD_REQUEST,
        SubmitError::Reserved => StatusCode::FORBIDDEN,
        SubmitError::Busy(_) | SubmitError::BusyBytes(_) => StatusCode::TOO_MANY_REQUESTS,
        SubmitError::Closed => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever was framed comes back, in order.
        #[test]
        fn a_framed_batch_splits_back(txs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..50)) {
            prop_assert_eq!(split_batch(&frame_batch(&txs)).unwrap(), txs);
        }

        /// Arbitrary bytes are split or refused, never a panic, and a
        /// length prefix can never make it allocate more than the body.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(txs) = split_batch(&body) {
                prop_assert!(txs.iter().map(|t| t.len() + 4).sum::<usize>() == body.len());
            }
        }
    }

    #[test]
    fn bad_batches_say_what_is_wrong() {
        assert!(split_batch(&[]).unwrap_err().contains("empty"));
        assert!(split_batch(&[1, 0]).unwrap_err().contains("truncated"));
        let mut lying = frame_batch(&[vec![7; 10]]);
        lying[0] = 200;
        assert!(split_batch(&lying).unwrap_err().contains("says 200 bytes"));
        let many = frame_batch(&vec![vec![1]; MAX_SUBMIT_BATCH + 1]);
        assert!(split_batch(&many).unwrap_err().contains("more than"));
        // u32::MAX as a length over a short body is refused, not allocated.
        assert!(split_batch(&[255, 255, 255, 255, 1]).is_err());
    }
}

#[derive(Deserialize)]
struct DagQuery {
    after: Option<u64>,
}

/// One event of `/dag`, ids in hex, creators in base58.
#[derive(Serialize)]
struct DagEventView {
    id: String,
    creator: String,
    seq: u64,
    round: u64,
    self_parent: Option<String>,
    other_parent: Option<String>,
    witness: bool,
    famous: Option<bool>,
    ordered: bool,
    sound: bool,
    txs: usize,
    created_at_ns: u64,
    received_ns: Option<u64>,
    ordered_ns: Option<u64>,
    position: Option<u64>,
    consensus_time_ns: Option<u64>,
}

#[derive(Serialize)]
struct RosterEntry {
    id: String,
    stake: u64,
}

#[derive(Serialize)]
struct DagView {
    node: String,
    last_decided_round: u64,
    pruned_through: u64,
    cursor: u64,
    creators: Vec<RosterEntry>,
    accused: Vec<String>,
    events: Vec<DagEventView>,
}

fn dag_view(node: &[u8; 32], slice: crate::core::DagSlice) -> DagView {
    use crate::identity::display_id;
    DagView {
        node: display_id(node),
        last_decided_round: slice.last_decided_round,
        pruned_through: slice.pruned_through,
        cursor: slice.cursor,
        creators: slice
            .roster
            .iter()
            .map(|(id, stake)| RosterEntry {
                id: display_id(id),
                stake: *stake,
            })
            .collect(),
        accused: slice.accused.iter().map(display_id).collect(),
        events: slice
            .events
            .into_iter()
            .map(|e| DagEventView {
                id: hex(&e.id.0),
                creator: display_id(&e.creator),
                seq: e.seq,
                round: e.round,
                self_parent: e.self_parent.map(|p| hex(&p.0)),
                other_parent: e.other_parent.map(|p| hex(&p.0)),
                witness: e.witness,
                famous: e.famous,
                ordered: e.ordered,
                sound: e.sound,
                txs: e.txs,
                created_at_ns: e.created_at_ns,
                received_ns: e.moments.received_ns,
                ordered_ns: e.moments.ordered_ns,
                position: e.moments.position,
                consensus_time_ns: e.moments.consensus_time_ns,
            })
            .collect(),
    }
}

async fn dag(State(state): State<ApiState>, Query(query): Query<DagQuery>) -> Response {
    let node = state.core.node_id;
    match state
        .core
        .dag(query.after.unwrap_or(0), Default::default())
        .await
    {
        Ok(slice) => Json(dag_view(&node, slice)).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Server-sent events: a first slice with every held event, then every
/// [`DAG_STREAM_PERIOD`] what was inserted since and what the last slices
/// showed unsettled (fame or order pending), so a view never misses a
/// witness's fame or an event's ordering.
async fn dag_stream(State(state): State<ApiState>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let Ok(permit) = state.dag_streams.clone().try_acquire_owned() else {
        state.metrics.reject_message("dag_streams");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("at most {MAX_DAG_STREAMS} explorer streams at once"),
        );
    };
    let node = state.core.node_id;
    let start = (
        state.core.clone(),
        0u64,
        std::collections::HashSet::new(),
        true,
    );
    let stream = futures_util::stream::unfold(start, move |(core, after, unsettled, first)| {
        let _held = &permit;
        async move {
            if !first {
                tokio::time::sleep(DAG_STREAM_PERIOD).await;
            }
            // The core stopped: end the stream.
            let slice = core.dag(after, unsettled).await.ok()?;
            let cursor = slice.cursor;
            let unsettled = slice
                .events
                .iter()
                .filter(|e| e.unsettled())
                .map(|e| e.id)
                .collect();
            let event = Event::default()
                .event("dag")
                .json_data(dag_view(&node, slice))
                .ok()?;
            Some((
                Ok::<_, std::convert::Infallible>(event),
                (core, cursor, unsettled, false),
            ))
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
