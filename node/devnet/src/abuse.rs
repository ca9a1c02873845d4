//! The abuse harness (`dagger-devnet bench --abuse ...`): a byzantine roster
//! member attacks every honest node while the bench measures finality.
//!
//! The member holds the last node's key and runs no honest node, so a
//! bench with `--abuse silent` (the member only stays quiet) is the
//! baseline the attacks are compared with. Every attack is one a stranger
//! or a member can mount for little cost:
//!
//! * `handshakes`: a stranger starts QUIC handshakes and never finishes
//!   them (each Initial packet makes the node do a TLS server handshake
//!   and hold its state until it times out);
//! * `frames`: the member floods its connections with valid events far
//!   above the push rate limit and with frames announcing the largest size
//!   and never sending it, reconnecting whenever it is thrown out;
//! * `http`: clients hold hundreds of idle connections to each node's read
//!   API (slowloris) and ask for the largest pages of `/order` and for
//!   `/status` as fast as the node answers;
//! * `catchup`: the member asks for catch-up from the very beginning (no
//!   tips) as fast as the node answers, on every stream it may open.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use dagger_node::{
    identity::{parse_id, Identity, NodeId},
    net::{
        limits::PeerLimits,
        tls::{self, Allowlist},
        transport::Transport,
        wire::{read_message, Message, MAX_FRAME_BYTES},
    },
};
use serde::Serialize;
use tokio::{io::AsyncWriteExt, task::JoinHandle};

use crate::bench::Cluster;

/// One kind of abuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attack {
    /// The member stays quiet (the baseline for the others).
    Silent,
    /// Half-open QUIC handshakes from a stranger.
    Handshakes,
    /// Event floods and never-finished frames from the member.
    Frames,
    /// Idle connections and the largest reads on the HTTP API.
    Http,
    /// Catch-up from the beginning, as fast as answered.
    Catchup,
    /// Every attack at once.
    All,
}

impl Attack {
    /// The attacks a list names (`all` expands, `silent` adds nothing).
    pub fn expand(list: &[Attack]) -> Vec<Attack> {
        let every = [
            Attack::Handshakes,
            Attack::Frames,
            Attack::Http,
            Attack::Catchup,
        ];
        let mut out: Vec<Attack> = Vec::new();
        for attack in list {
            let add: &[Attack] = match attack {
                Attack::All => &every,
                Attack::Silent => &[],
                one => std::slice::from_ref(one),
            };
            for a in add {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
        }
        out
    }
}

/// Half-open handshakes started per victim and second.
pub const HANDSHAKES_PER_SECOND: u64 = 200;
/// Idle HTTP connections held per victim (above the API's cap of 512).
pub const HTTP_IDLE_CONNECTIONS: usize = 600;
/// Concurrent HTTP readers per victim.
pub const HTTP_READERS: usize = 8;
/// Valid events sent per flood, on one stream.
const FLOOD_EVENTS: usize = 5_000;

/// What the attackers did, counted as they go.
#[derive(Default)]
struct Counters {
    handshakes_started: AtomicU64,
    peer_connections: AtomicU64,
    peer_connections_refused: AtomicU64,
    frames_sent: AtomicU64,
    http_requests: AtomicU64,
    http_idle_opened: AtomicU64,
    catchups: AtomicU64,
    catchup_events: AtomicU64,
}

/// The attackers' totals, for the bench report.
#[derive(Debug, Default, Serialize)]
pub struct AbuseReport {
    pub attacks: Vec<Attack>,
    /// Node id of the byzantine member.
    pub attacker: String,
    pub handshakes_started: u64,
    pub peer_connections: u64,
    pub peer_connections_refused: u64,
    pub frames_sent: u64,
    pub http_requests: u64,
    pub http_idle_opened: u64,
    pub catchups: u64,
    pub catchup_events: u64,
    /// CPU the bench process used while the attacks ran (100 = one core):
    /// the attackers compete with the nodes for the same cores.
    pub harness_cpu_percent: f64,
    /// What the victims refused, summed over them, by the reason their
    /// `/metrics` give (`dagger_messages_rejected_total`).
    pub victims_rejected: BTreeMap<String, f64>,
}

/// Running attackers.
pub struct Abuse {
    attacks: Vec<Attack>,
    attacker: String,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    started: Instant,
    cpu_before: f64,
    victim_apis: Vec<SocketAddr>,
}

struct Victim {
    gossip: SocketAddr,
    api: SocketAddr,
    id: NodeId,
}

/// Starts `attacks` from the member at `attacker` (a node of `cluster`
/// that is not running) against every other node of the cluster.
pub async fn start(
    attacks: &[Attack],
    cluster: &Cluster,
    attacker: usize,
    network: &str,
) -> Result<Abuse> {
    let attacks = Attack::expand(attacks);
    let key_file = cluster.nodes[attacker].config.with_extension("json");
    let identity = Identity::load(&key_file)
        .with_context(|| format!("loading the attacker's key {}", key_file.display()))?;
    let victims: Vec<Victim> = (0..cluster.nodes.len())
        .filter(|i| *i != attacker)
        .map(|i| {
            Ok(Victim {
                gossip: cluster.nodes[i].gossip,
                api: cluster.nodes[i].api,
                id: parse_id(&cluster.nodes[i].id).context("a node id")?,
            })
        })
        .collect::<Result<_>>()?;
    let victims = Arc::new(victims);
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let member = Arc::new(
        Transport::bind(
            &identity,
            Allowlist::new(victims.iter().map(|v| v.id)),
            "127.0.0.1:0".parse()?,
            &PeerLimits::default(),
        )
        .context("binding the member's QUIC endpoint")?,
    );
    for attack in &attacks {
        let (victims, counters, stop) = (victims.clone(), counters.clone(), stop.clone());
        match attack {
            Attack::Handshakes => {
                // A stranger: a key nobody listed.
                let config = stranger_client_config()?;
                tasks.push(tokio::spawn(async move {
                    if let Err(err) = handshakes(&victims, config, &counters, &stop).await {
                        tracing::warn!(error = %err, "handshake attacker stopped");
                    }
                }));
            }
            Attack::Frames => {
                let event = flood_event(&identity, network);
                for v in 0..victims.len() {
                    let (member, victims, counters, stop, event) = (
                        member.clone(),
                        victims.clone(),
                        counters.clone(),
                        stop.clone(),
                        event.clone(),
                    );
                    tasks.push(tokio::spawn(async move {
                        frames(&member, &victims[v], &event, &counters, &stop).await
                    }));
                }
            }
            Attack::Http => {
                for v in 0..victims.len() {
                    let api = victims[v].api;
                    let (c, s) = (counters.clone(), stop.clone());
                    tasks.push(tokio::spawn(async move { http_idle(api, &c, &s).await }));
                    for _ in 0..HTTP_READERS {
                        let (c, s) = (counters.clone(), stop.clone());
                        tasks.push(tokio::spawn(async move { http_reads(api, &c, &s).await }));
                    }
                }
            }
            Attack::Catchup => {
                for v in 0..victims.len() {
                    let (member, victims, counters, stop) = (
                        member.clone(),
                        victims.clone(),
                        counters.clone(),
                        stop.clone(),
                    );
                    tasks.push(tokio::spawn(async move {
                        catchup(&member, &victims[v], counters, &stop).await
                    }));
                }
            }
            Attack::Silent | Attack::All => {}
        }
    }
    Ok(Abuse {
        attacks,
        attacker: cluster.nodes[attacker].id.clone(),
        counters,
        stop,
        tasks,
        started: Instant::now(),
        victim_apis: victims.iter().map(|v| v.api).collect(),
        cpu_before: crate::bench::process_usage(std::process::id()).map_or(0.0, |u| u.0),
    })
}

impl Abuse {
    /// Stops every attacker; their totals.
    pub async fn stop(self) -> AbuseReport {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        let cpu = crate::bench::process_usage(std::process::id()).map_or(0.0, |u| u.0);
        let victims_rejected = rejections(&self.victim_apis).await;
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AbuseReport {
            attacks: self.attacks,
            attacker: self.attacker,
            handshakes_started: get(&c.handshakes_started),
            peer_connections: get(&c.peer_connections),
            peer_connections_refused: get(&c.peer_connections_refused),
            frames_sent: get(&c.frames_sent),
            http_requests: get(&c.http_requests),
            http_idle_opened: get(&c.http_idle_opened),
            catchups: get(&c.catchups),
            catchup_events: get(&c.catchup_events),
            harness_cpu_percent: 100.0 * (cpu - self.cpu_before)
                / self.started.elapsed().as_secs_f64().max(1e-9),
            victims_rejected,
        }
    }
}

/// `dagger_messages_rejected_total` by reason, summed over `apis`.
async fn rejections(apis: &[SocketAddr]) -> BTreeMap<String, f64> {
    let mut total = BTreeMap::new();
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    else {
        return total;
    };
    for api in apis {
        let Ok(response) = client.get(format!("http://{api}/metrics")).send().await else {
            continue;
        };
        let Ok(text) = response.text().await else {
            continue;
        };
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("dagger_messages_rejected_total{reason=\"") else {
                continue;
            };
            let Some((reason, value)) = rest.split_once("\"} ") else {
                continue;
            };
            if let Ok(value) = value.trim().parse::<f64>() {
                *total.entry(reason.to_string()).or_insert(0.0) += value;
            }
        }
    }
    total
}

/// A TLS client configuration for a key no roster lists.
fn stranger_client_config() -> Result<quinn::ClientConfig> {
    let stranger = Identity::generate();
    let crypto = tls::client_config(&stranger, Allowlist::new([]))?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto)
        .map_err(|e| anyhow::anyhow!("QUIC client config: {e}"))?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// Sends the first packet of a new handshake to every victim, paced at
/// [`HANDSHAKES_PER_SECOND`] each, and never answers: the handshakes stay
/// half-open on the victims' side until they time out. Built on the
/// sans-IO `quinn-proto`, which hands over the packet without driving the
/// connection any further.
async fn handshakes(
    victims: &[Victim],
    config: quinn::ClientConfig,
    counters: &Counters,
    stop: &AtomicBool,
) -> Result<()> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let new_endpoint = || {
        quinn_proto::Endpoint::new(
            Arc::new(quinn_proto::EndpointConfig::default()),
            None,
            false,
            None,
        )
    };
    let mut endpoint = new_endpoint();
    let mut started_here = 0u64;
    let tick = Duration::from_millis(10);
    let per_tick = (HANDSHAKES_PER_SECOND / 100).max(1);
    let mut interval = tokio::time::interval(tick);
    let mut buf = Vec::with_capacity(1_500);
    let mut answers = [0u8; 2_048];
    while !stop.load(Ordering::Relaxed) {
        interval.tick().await;
        // The victims' answers are read and dropped (never processed).
        while socket.try_recv_from(&mut answers).is_ok() {}
        for victim in victims {
            for _ in 0..per_tick {
                let now = Instant::now();
                let Ok((_, mut connection)) =
                    endpoint.connect(now, config.clone(), victim.gossip, "dagger-node")
                else {
                    continue;
                };
                buf.clear();
                if let Some(transmit) = connection.poll_transmit(now, 1, &mut buf) {
                    let _ = socket
                        .send_to(&buf[..transmit.size], transmit.destination)
                        .await;
                    counters.handshakes_started.fetch_add(1, Ordering::Relaxed);
                    started_here += 1;
                }
            }
        }
        // A fresh endpoint now and then: the abandoned connections' state
        // goes with the old one.
        if started_here > 10_000 {
            endpoint = new_endpoint();
            started_here = 0;
        }
    }
    Ok(())
}

/// Connects as the member, counting the attempt; `None` (after a short
/// pause) when the victim refuses, as it does a peer it threw out.
async fn connect(
    member: &Transport,
    victim: &Victim,
    counters: &Counters,
) -> Option<quinn::Connection> {
    match member.connect(victim.gossip, &victim.id).await {
        Ok(connection) => {
            counters.peer_connections.fetch_add(1, Ordering::Relaxed);
            Some(connection)
        }
        Err(_) => {
            counters
                .peer_connections_refused
                .fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// The member's first event: valid, so every copy gets past decoding and
/// costs the victim a rate-limit token or more. It carries no transaction
/// (it may well be ordered, once, like any member's event; the bench
/// counts only its own transactions).
fn flood_event(identity: &Identity, network: &str) -> Vec<u8> {
    let event = dagger_consensus::UnsignedEvent {
        seq: 0,
        birth_round: 1,
        self_parent: None,
        other_parent: None,
        created_at_ns: 1,
        txs: Vec::new(),
    }
    .sign(
        identity.signing_key(),
        &dagger_node::config::network_id(network),
    );
    Message::Push(event).encode_frame()
}

/// Connects as the member and floods: thousands of copies of one valid
/// event on one stream, and on every other stream it may open a frame
/// header announcing the largest frame, never followed by its body.
/// Thrown out, it reconnects at once.
async fn frames(
    member: &Transport,
    victim: &Victim,
    event_frame: &[u8],
    counters: &Counters,
    stop: &AtomicBool,
) {
    let flood: Vec<u8> = std::iter::repeat_n(event_frame, FLOOD_EVENTS)
        .flatten()
        .copied()
        .collect();
    let header = (MAX_FRAME_BYTES as u32).to_be_bytes();
    while !stop.load(Ordering::Relaxed) {
        let Some(connection) = connect(member, victim, counters).await else {
            continue;
        };
        // The flood first, on its own stream; then every other stream the
        // victim allows holds a header whose body never comes.
        let open = Duration::from_secs(1);
        if let Ok(Ok(mut stream)) = tokio::time::timeout(open, connection.open_uni()).await {
            if stream.write_all(&flood).await.is_ok() {
                counters
                    .frames_sent
                    .fetch_add(FLOOD_EVENTS as u64, Ordering::Relaxed);
            }
        }
        let mut held = Vec::new();
        for _ in 1..PeerLimits::default().max_push_streams {
            let Ok(Ok(mut stream)) = tokio::time::timeout(open, connection.open_uni()).await else {
                break;
            };
            if stream.write_all(&header).await.is_err() {
                break;
            }
            held.push(stream);
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), connection.closed()).await;
        drop(held);
    }
}

/// Asks for catch-up from nothing (no tips: every event the victim holds)
/// on every sync stream the member may open, as fast as answered.
async fn catchup(member: &Transport, victim: &Victim, counters: Arc<Counters>, stop: &AtomicBool) {
    let request = Message::SyncRequest {
        tips: Vec::new(),
        ordered: 0,
        missing: Vec::new(),
    }
    .encode_frame();
    while !stop.load(Ordering::Relaxed) {
        let Some(connection) = connect(member, victim, &counters).await else {
            continue;
        };
        let mut streams = tokio::task::JoinSet::new();
        for _ in 0..PeerLimits::default().max_sync_streams {
            let (connection, request, counters) =
                (connection.clone(), request.clone(), counters.clone());
            streams.spawn(async move {
                loop {
                    let Ok((mut send, mut recv)) = connection.open_bi().await else {
                        return;
                    };
                    if send.write_all(&request).await.is_err() {
                        return;
                    }
                    let _ = send.finish();
                    loop {
                        match read_message(&mut recv, MAX_FRAME_BYTES).await {
                            Ok(Some(Message::Events(batch))) => {
                                counters
                                    .catchup_events
                                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                            }
                            Ok(Some(Message::SyncDone)) | Ok(None) => break,
                            Ok(Some(_)) => {}
                            Err(_) => return,
                        }
                    }
                    counters.catchups.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while streams.join_next().await.is_some() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
        }
    }
}

/// Holds [`HTTP_IDLE_CONNECTIONS`] connections to the API, each with half
/// a request line sent, reopening those the node closes.
async fn http_idle(api: SocketAddr, counters: &Counters, stop: &AtomicBool) {
    let mut held: Vec<tokio::net::TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Drop the ones the node closed (a read of 0 bytes or an error).
        let mut open = Vec::with_capacity(held.len());
        for stream in held.drain(..) {
            let mut probe = [0u8; 1];
            match stream.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open.push(stream),
                _ => {}
            }
        }
        held = open;
        while held.len() < HTTP_IDLE_CONNECTIONS && !stop.load(Ordering::Relaxed) {
            let Ok(Ok(mut stream)) = tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(api),
            )
            .await
            else {
                break;
            };
            let _ = stream
                .write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n")
                .await;
            counters.http_idle_opened.fetch_add(1, Ordering::Relaxed);
            held.push(stream);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads the largest pages the API serves, back to back.
async fn http_reads(api: SocketAddr, counters: &Counters, stop: &AtomicBool) {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    else {
        return;
    };
    let urls = [
        format!("http://{api}/order?from=0&limit=100000"),
        format!("http://{api}/status"),
        format!("http://{api}/evidence"),
    ];
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let url = &urls[i % urls.len()];
        i += 1;
        if let Ok(response) = client.get(url).send().await {
            let _ = response.bytes().await;
            counters.http_requests.fetch_add(1, Ordering::Relaxed);
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
