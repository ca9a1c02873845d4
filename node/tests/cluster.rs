//! Node processes over real QUIC on 127.0.0.1, driven through their HTTP API.

use std::time::{Duration, Instant};

use dagger_devnet::bench::{fetch_order, Cluster, OrderedTxJson};
use serde_json::Value;

const EXE: &str = env!("CARGO_BIN_EXE_dagger-node");

struct Net {
    cluster: Cluster,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Net {
    async fn start(n: usize, spawn: &[usize]) -> Net {
        Net::start_with(n, spawn, "").await
    }

    /// Starts with `extra` appended to every node's config file.
    async fn start_with(n: usize, spawn: &[usize], extra: &str) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Cluster::prepare(EXE.as_ref(), dir.path(), n, "dagger-test").unwrap();
        for node in &cluster.nodes {
            let mut text = std::fs::read_to_string(&node.config).unwrap();
            // Settings must come before the [[peers]] tables.
            text.insert_str(0, extra);
            std::fs::write(&node.config, text).unwrap();
        }
        for &i in spawn {
            cluster.start(i).unwrap();
        }
        let client = reqwest::Client::new();
        let net = Net {
            cluster,
            client,
            _dir: dir,
        };
        for &i in spawn {
            net.wait_healthy(i).await;
        }
        net
    }

    async fn wait_healthy(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self
                .client
                .get(self.cluster.url(i, "/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} never became healthy: {}",
                self.log(i)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.cluster.nodes[i].log).unwrap_or_default()
    }

    async fn submit(&self, i: usize, tx: &[u8]) -> String {
        let response = self
            .client
            .post(self.cluster.submit_url(i, "/tx"))
            .header("authorization", self.cluster.authorization())
            .body(tx.to_vec())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "submit to node {i}: {}",
            response.status()
        );
        let body: Value = response.json().await.unwrap();
        body["event_id"].as_str().unwrap().to_string()
    }

    async fn order(&self, i: usize) -> Vec<OrderedTxJson> {
        let mut all = Vec::new();
        loop {
            let page = fetch_order(
                &self.client,
                &self.cluster.url(i, "/order"),
                all.len() as u64,
                0,
            )
            .await
            .unwrap();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    async fn get(&self, i: usize, path: &str) -> String {
        match self.client.get(self.cluster.url(i, path)).send().await {
            Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, i: usize, path: &str) -> T {
        self.client
            .get(self.cluster.url(i, path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn status(&self, i: usize) -> Value {
        self.get_json(i, "/status").await
    }

    async fn metrics(&self, i: usize) -> String {
        self.client
            .get(self.cluster.url(i, "/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until each node in `nodes` ordered at least `count` transactions.
    async fn wait_ordered(&self, nodes: &[usize], count: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let mut done = true;
            for &i in nodes {
                if self.order(i).await.len() < count {
                    done = false;
                }
            }
            if done {
                return;
            }
            if Instant::now() > deadline {
                for &i in nodes {
                    eprintln!(
                        "node {i}: {} ordered; status {}",
                        self.order(i).await.len(),
                        self.status(i).await
                    );
                }
                panic!("nodes {nodes:?} did not order {count} transactions in time");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// All `nodes` hold the same order: same transactions, positions and
    /// consensus timestamps, over their common prefix of at least `count`.
    async fn assert_same_order(&self, nodes: &[usize], count: usize) {
        let orders: Vec<Vec<OrderedTxJson>> = {
            let mut v = Vec::new();
            for &i in nodes {
                v.push(self.order(i).await);
            }
            v
        };
        let common = orders.iter().map(|o| o.len()).min().unwrap();
        assert!(common >= count, "common prefix {common} < {count}");
        for (k, order) in orders.iter().enumerate().skip(1) {
            for p in 0..common {
                let (a, b) = (&orders[0][p], &order[p]);
                assert_eq!(
                    (a.position, &a.tx, &a.event_id, a.consensus_time_ns),
                    (b.position, &b.tx, &b.event_id, b.consensus_time_ns),
                    "node {} and node {} differ at position {p}",
                    nodes[0],
                    nodes[k]
                );
            }
        }
    }
}

impl Net {
    /// Waits until node `i`'s order holds every one of `txs`; past
    /// `within`, returns the indices of those still missing.
    async fn wait_for_txs(
        &self,
        i: usize,
        txs: &[Vec<u8>],
        within: Duration,
    ) -> Result<(), Vec<usize>> {
        let wanted: Vec<String> = txs.iter().map(|t| hex(t)).collect();
        let deadline = Instant::now() + within;
        loop {
            let order = self.order(i).await;
            let missing: Vec<usize> = (0..wanted.len())
                .filter(|&k| !order.iter().any(|o| o.tx == wanted[k]))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(missing);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Node `i`'s order holds each of `txs` exactly once.
    async fn assert_ordered_once(&self, i: usize, txs: &[Vec<u8>]) {
        let order = self.order(i).await;
        for (k, t) in txs.iter().enumerate() {
            let wanted = hex(t);
            assert_eq!(order.iter().filter(|o| o.tx == wanted).count(), 1, "tx {k}");
        }
    }
}

/// Node 3's key in an attacker's hands: in the roster, but not an honest
/// node, connected to node 0 over its own QUIC endpoint.
struct Attacker {
    identity: dagger_node::identity::Identity,
    transport: dagger_node::net::transport::Transport,
    victim_id: dagger_node::identity::NodeId,
    connection: quinn::Connection,
}

impl Net {
    async fn attack_node0_as_node3(&self) -> Attacker {
        use dagger_node::net::{limits::PeerLimits, tls::Allowlist, transport::Transport};
        let dir = self.cluster.nodes[3].config.parent().unwrap().to_path_buf();
        let identity = dagger_node::identity::Identity::load(&dir.join("node3.json")).unwrap();
        let victim_id = dagger_node::identity::parse_id(&self.cluster.nodes[0].id).unwrap();
        let transport = Transport::bind(
            &identity,
            Allowlist::new([victim_id]),
            "127.0.0.1:0".parse().unwrap(),
            &PeerLimits::default(),
        )
        .unwrap();
        let connection = transport
            .connect(self.cluster.nodes[0].gossip, &victim_id)
            .await
            .unwrap();
        Attacker {
            identity,
            transport,
            victim_id,
            connection,
        }
    }
}

/// `signer`'s first event (sequence 0, round 1, no parents) on the test
/// network: what an attacker holding a roster key can sign at will.
fn first_event(
    signer: &dagger_node::identity::Identity,
    txs: Vec<Vec<u8>>,
) -> dagger_consensus::Event {
    dagger_consensus::UnsignedEvent {
        seq: 0,
        birth_round: 1,
        self_parent: None,
        other_parent: None,
        created_at_ns: 1,
        txs,
    }
    .sign(
        signer.signing_key(),
        &dagger_node::config::network_id("dagger-test"),
    )
}

fn tx(tag: u8, n: u32) -> Vec<u8> {
    let mut tx = vec![tag; 24];
    tx[..4].copy_from_slice(&n.to_le_bytes());
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_order_transactions_identically() {
    let net = Net::start(4, &[0, 1, 2, 3]).await;
    for n in 0..120u32 {
        net.submit(n as usize % 4, &tx(1, n)).await;
    }
    net.wait_ordered(&[0, 1, 2, 3], 120, Duration::from_secs(60))
        .await;
    net.assert_same_order(&[0, 1, 2, 3], 120).await;
    // Every submitted transaction is there exactly once.
    let order = net.order(0).await;
    let mut seen: Vec<&str> = order.iter().map(|o| o.tx.as_str()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 120);
    // Consensus timestamps strictly increase along the order.
    assert!(order
        .windows(2)
        .all(|w| w[0].consensus_time_ns < w[1].consensus_time_ns));
    let status = net.status(0).await;
    assert!(status["last_decided_round"].as_u64().unwrap() > 0);
    assert_eq!(status["peers"].as_array().unwrap().len(), 3);
    let metrics = net.metrics(0).await;
    assert!(metrics.contains("dagger_ordered_txs_total"), "{metrics}");

    // Batches: one answer per transaction, in order; a refused one does
    // not take the others down with it.
    use dagger_node::api::frame_batch as frame;
    let huge = vec![9u8; (64 << 10) + 1];
    let post = |body: Vec<u8>| {
        net.client
            .post(net.cluster.submit_url(1, "/txs"))
            .header("authorization", net.cluster.authorization())
            .body(body)
            .send()
    };
    let answer = post(frame(&[&tx(11, 0), &huge, &tx(11, 1), &tx(11, 2)]))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let results: Vec<Value> = answer.json().await.unwrap();
    assert_eq!(results.len(), 4);
    for i in [0, 2, 3] {
        assert_eq!(
            results[i]["event_id"].as_str().unwrap().len(),
            64,
            "{results:?}"
        );
    }
    assert_eq!(results[1]["status"], 400, "{results:?}");
    assert!(results[1]["error"].as_str().unwrap().contains("limit"));
    // Malformed bodies are refused whole, with the reason.
    let mut truncated = frame(&[&tx(12, 0)]);
    truncated.truncate(truncated.len() - 1);
    let mut many = Vec::new();
    for _ in 0..=dagger_node::api::MAX_SUBMIT_BATCH {
        many.extend_from_slice(&frame(&[b"x"]));
    }
    for (body, reason) in [
        (Vec::new(), "empty"),
        (vec![1, 0], "truncated length prefix"),
        (truncated, "remain"),
        (many, "more than"),
    ] {
        let answer = post(body).await.unwrap();
        assert_eq!(answer.status(), 400);
        let text = answer.text().await.unwrap();
        assert!(text.contains(reason), "{reason}: {text}");
    }
    // A body over the limit is refused whole before it is read.
    let fits = dagger_node::api::batch_capacity(1 << 10);
    let big = frame(&vec![vec![7u8; 1 << 10]; fits + 1]);
    assert!(big.len() > dagger_node::api::MAX_SUBMIT_BODY);
    let answer = post(big).await.unwrap();
    assert_eq!(answer.status(), 413);
    // A long poll answers once the batch is ordered (node 2 was not sent
    // it), and an empty page after its wait when nothing comes.
    let mut got: Vec<OrderedTxJson> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < 3 {
        assert!(Instant::now() < deadline, "the batch was not ordered");
        let from = 120 + got.len();
        let page: Vec<OrderedTxJson> = net
            .get_json(2, &format!("/order?from={from}&wait_ms=10000"))
            .await;
        got.extend(page);
    }
    assert_eq!(got.len(), 3);
    let far: Vec<OrderedTxJson> = net.get_json(2, "/order?from=1000000&wait_ms=200").await;
    assert!(far.is_empty());
    // Submission is its own, authenticated listener: the read-only API
    // takes no transactions, the submission API none without the token,
    // and nobody's token lets a transaction pass as a node report.
    let read_only = net
        .client
        .post(net.cluster.url(1, "/tx"))
        .body(tx(13, 0))
        .send()
        .await
        .unwrap();
    assert!(
        read_only.status() == 404 || read_only.status() == 405,
        "{}",
        read_only.status()
    );
    for authorization in [
        None,
        Some("Bearer wrong-token-wrong-token"),
        Some("Basic x"),
    ] {
        let mut request = net
            .client
            .post(net.cluster.submit_url(1, "/tx"))
            .body(tx(13, 1));
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            401,
            "{authorization:?}"
        );
    }
    let mut forged = dagger_node::core::REPORT_TAG.to_vec();
    forged.extend_from_slice(b"anything after the tag");
    let forged_status = net
        .client
        .post(net.cluster.submit_url(1, "/tx"))
        .header("authorization", net.cluster.authorization())
        .body(forged.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged_status.status(), 403);
    let answer = post(frame(&[&forged, &tx(13, 2)])).await.unwrap();
    let results: Vec<Value> = answer.json().await.unwrap();
    assert_eq!(results[0]["status"], 403, "{results:?}");
    assert!(results[1]["event_id"].is_string(), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_does_not_stop_the_others_and_catches_up() {
    let mut net = Net::start(4, &[0, 1, 2, 3]).await;
    for n in 0..20u32 {
        net.submit(n as usize % 4, &tx(2, n)).await;
    }
    net.wait_ordered(&[0, 1, 2, 3], 20, Duration::from_secs(60))
        .await;

    // Freeze node 3 (a partition: it neither sends nor answers).
    net.cluster.signal(3, "STOP").unwrap();
    for n in 20..80u32 {
        net.submit(n as usize % 3, &tx(2, n)).await;
    }
    net.wait_ordered(&[0, 1, 2], 80, Duration::from_secs(60))
        .await;
    net.assert_same_order(&[0, 1, 2], 80).await;

    // Back: it converges on the same order.
    net.cluster.signal(3, "CONT").unwrap();
    net.wait_ordered(&[3], 80, Duration::from_secs(60)).await;
    net.assert_same_order(&[0, 1, 2, 3], 80).await;
    let _ = &mut net;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_restarts_catches_up_and_never_forks_itself() {
    let mut net = Net::start(4, &[0, 1, 2, 3]).await;
    let mut carriers = Vec::new();
    for n in 0..40u32 {
        carriers.push((
            n,
            n as usize % 4,
            net.submit(n as usize % 4, &tx(3, n)).await,
        ));
    }
    // kill -9 while transactions are in flight: node 3's latest events may
    // not have reached anyone.
    net.cluster.kill(3);
    for n in 40..100u32 {
        carriers.push((
            n,
            n as usize % 3,
            net.submit(n as usize % 3, &tx(3, n)).await,
        ));
    }
    // The other three order everything they were given.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let order = net.order(0).await;
        let after_kill = order
            .iter()
            .filter(|o| (40..100).any(|n| o.tx == hex(&tx(3, n))))
            .count();
        if after_kill == 60 {
            break;
        }
        assert!(Instant::now() < deadline, "only {after_kill} of 60 ordered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    net.cluster.start(3).unwrap();
    net.wait_healthy(3).await;
    for n in 100..120u32 {
        carriers.push((
            n,
            n as usize % 4,
            net.submit(n as usize % 4, &tx(3, n)).await,
        ));
    }
    // Every accepted transaction is ordered; if not, say which are missing
    // and where their events are.
    let sent: Vec<Vec<u8>> = carriers.iter().map(|(n, _, _)| tx(3, *n)).collect();
    if let Err(missing) = net.wait_for_txs(0, &sent, Duration::from_secs(120)).await {
        for (n, node, event) in missing.into_iter().map(|k| &carriers[k]) {
            let mut seen = Vec::new();
            for i in 0..4 {
                seen.push(net.get(i, &format!("/events/{event}")).await);
            }
            eprintln!("tx {n} (sent to node {node}) not ordered; event {event}: {seen:?}");
        }
        for i in 0..4 {
            eprintln!("---- node {i} log ----\n{}", net.log(i));
        }
        panic!("accepted transactions were not ordered");
    }
    net.wait_ordered(&[0, 1, 2, 3], 120, Duration::from_secs(120))
        .await;
    net.assert_same_order(&[0, 1, 2, 3], 120).await;
    let all: Vec<Vec<u8>> = (0..120u32).map(|n| tx(3, n)).collect();
    net.assert_ordered_once(0, &all).await;
    // Nobody saw node 3 (or anyone) sign two events with one sequence.
    for i in 0..4 {
        assert_eq!(net.status(i).await["equivocations"], 0, "node {i}");
    }
}

/// Pushes share one long-lived stream per peer, so the push rate limit
/// applies per message, not per stream: a peer pouring thousands of pushes
/// down one stream is cut off, and the others go on ordering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_one_push_stream_is_disconnected() {
    use dagger_node::net::wire::Message;

    let net = Net::start(4, &[0, 1, 2]).await;
    let Attacker {
        identity: attacker,
        connection,
        ..
    } = net.attack_node0_as_node3().await;
    // A valid event, so each copy gets past decoding and costs a token.
    let event = first_event(&attacker, vec![b"flood".to_vec()]);
    let frame = Message::Push(event).encode_frame();
    let flood: Vec<u8> = std::iter::repeat_n(frame, 5_000).flatten().collect();
    let mut stream = connection.open_uni().await.unwrap();
    let _ = stream.write_all(&flood).await;
    let reason = tokio::time::timeout(Duration::from_secs(20), connection.closed())
        .await
        .expect("the flooding peer is disconnected");
    assert!(
        matches!(reason, quinn::ConnectionError::ApplicationClosed(ref c) if c.error_code == quinn::VarInt::from_u32(3)),
        "{reason:?}"
    );
    let limited = metric(
        &net.metrics(0).await,
        "dagger_messages_rejected_total{reason=\"rate_limited\"}",
    );
    assert!(limited > 100.0, "{limited} pushes refused for rate");
    for n in 0..9u32 {
        net.submit(n as usize % 3, &tx(13, n)).await;
    }
    net.wait_ordered(&[0, 1, 2], 9, Duration::from_secs(60))
        .await;
    net.assert_same_order(&[0, 1, 2], 9).await;
}

/// The worst timing for the test above, made certain: node 3 acknowledges
/// transactions while no peer can hear it, then dies before its events go
/// out. The others move on without it; back, it must carry those
/// transactions again (its old events are too old for anyone to use).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_acknowledged_by_an_isolated_node_that_dies_are_still_ordered() {
    let mut net = Net::start(4, &[0, 1, 2, 3]).await;
    for n in 0..8u32 {
        net.submit(n as usize % 4, &tx(12, n)).await;
    }
    net.wait_ordered(&[0, 1, 2, 3], 8, Duration::from_secs(60))
        .await;
    for i in 0..3 {
        net.cluster.signal(i, "STOP").unwrap();
    }
    let mut lost = Vec::new();
    for n in 8..18u32 {
        lost.push((n, net.submit(3, &tx(12, n)).await));
    }
    net.cluster.kill(3);
    for i in 0..3 {
        net.cluster.signal(i, "CONT").unwrap();
    }
    for n in 18..78u32 {
        net.submit(n as usize % 3, &tx(12, n)).await;
    }
    // A liveness bound, not a speed figure: the dead node's connection stays
    // open until its idle timeout, and gossip used to wait on it (pushes
    // queued behind its exhausted stream credit, pulls for the 20-s sync
    // timeout). Now it takes a second or two.
    net.wait_ordered(&[0, 1, 2], 68, Duration::from_secs(15))
        .await;

    net.cluster.start(3).unwrap();
    net.wait_healthy(3).await;
    for n in 78..86u32 {
        net.submit(n as usize % 4, &tx(12, n)).await;
    }
    let all: Vec<Vec<u8>> = (0..86u32).map(|n| tx(12, n)).collect();
    if let Err(missing) = net.wait_for_txs(0, &all, Duration::from_secs(90)).await {
        for (n, event) in &lost {
            eprintln!("tx {n} was acknowledged in event {event}");
        }
        eprintln!("---- node 3 log ----\n{}", net.log(3));
        panic!("not ordered: {missing:?}");
    }
    net.wait_ordered(&[0, 1, 2, 3], 86, Duration::from_secs(60))
        .await;
    net.assert_same_order(&[0, 1, 2, 3], 86).await;
    net.assert_ordered_once(0, &all).await;
    for i in 0..4 {
        assert_eq!(net.status(i).await["equivocations"], 0, "node {i}");
    }
}

fn hex(bytes: &[u8]) -> String {
    dagger_node::core::hex(bytes)
}

/// Counter value of a Prometheus series line starting with `series`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_is_rejected_and_honest_nodes_are_unaffected() {
    use dagger_consensus::{Event, EventHeader};
    use dagger_node::{
        identity::Identity,
        net::{limits::PeerLimits, tls::Allowlist, transport::Transport, wire::Message},
    };

    // Node 3's key belongs to the attacker: in the roster, but not an honest node.
    let net = Net::start(4, &[0, 1, 2]).await;
    let Attacker {
        identity: attacker,
        transport,
        victim_id,
        connection,
    } = net.attack_node0_as_node3().await;
    let send_raw = |bytes: Vec<u8>| {
        let connection = connection.clone();
        async move {
            let mut stream = connection.open_uni().await.unwrap();
            let _ = stream.write_all(&bytes).await;
            let _ = stream.finish();
            let _ = stream.stopped().await;
        }
    };
    let signed = |txs: Vec<Vec<u8>>| first_event(&attacker, txs);

    // Garbage, an oversized frame, a fork, then a forged signature (which
    // gets the attacker disconnected and shut out).
    send_raw(vec![0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x00]).await;
    send_raw(vec![0x7f, 0xff, 0xff, 0xff, 1, 4]).await;
    send_raw(Message::Push(signed(vec![b"left".to_vec()])).encode_frame()).await;
    send_raw(Message::Push(signed(vec![b"right".to_vec()])).encode_frame()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&net.metrics(0).await, "dagger_equivocations_total") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "fork not detected\n{}",
            net.log(0)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let good = signed(vec![b"a".to_vec()]);
    let mut forged_signature = *good.signature();
    forged_signature[0] ^= 1;
    let header: EventHeader = good.header().clone();
    let forged = Event::assemble(header, good.transactions().to_vec(), forged_signature);
    send_raw(Message::Push(forged).encode_frame()).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = net.metrics(0).await;
        let malformed = metric(
            &text,
            "dagger_messages_rejected_total{reason=\"malformed\"}",
        );
        let oversized = metric(
            &text,
            "dagger_messages_rejected_total{reason=\"oversized\"}",
        );
        let bad_sig = metric(
            &text,
            "dagger_events_rejected_total{reason=\"bad_signature\"}",
        );
        let forks = metric(&text, "dagger_equivocations_total");
        let penalties = metric(
            &text,
            "dagger_peer_penalties_total{reason=\"bad_signature\"}",
        );
        if malformed >= 1.0
            && oversized >= 1.0
            && bad_sig >= 1.0
            && forks >= 1.0
            && penalties >= 1.0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rejections not all recorded: malformed {malformed} oversized {oversized} bad signature {bad_sig} forks {forks} penalties {penalties}\n{}",
            net.log(0)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = net.log(0);
    assert!(log.contains("bad message from peer"), "{log}");
    assert!(log.contains("equivocation detected"), "{log}");
    assert!(log.contains("peer sent an invalid event"), "{log}");
    // The penalised peer's connection is closed, and a new one is shut
    // right after the handshake while the back-off lasts.
    tokio::time::timeout(Duration::from_secs(10), connection.closed())
        .await
        .expect("the attacker's connection is closed");
    let again = transport
        .connect(net.cluster.nodes[0].gossip, &victim_id)
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), again.closed())
        .await
        .expect("a new connection is refused too");
    assert!(
        matches!(reason, quinn::ConnectionError::ApplicationClosed(ref c) if c.error_code == quinn::VarInt::from_u32(4)),
        "{reason:?}"
    );

    // The honest three keep ordering, identically.
    for n in 0..30u32 {
        net.submit(n as usize % 3, &tx(4, n)).await;
    }
    net.wait_ordered(&[0, 1, 2], 30, Duration::from_secs(60))
        .await;
    net.assert_same_order(&[0, 1, 2], 30).await;

    // A key outside the roster does not get a working connection.
    let stranger = Identity::generate();
    let outsider = Transport::bind(
        &stranger,
        Allowlist::new([victim_id]),
        "127.0.0.1:0".parse().unwrap(),
        &PeerLimits::default(),
    )
    .unwrap();
    match outsider
        .connect(net.cluster.nodes[0].gossip, &victim_id)
        .await
    {
        Err(_) => {}
        Ok(connection) => {
            let reason = tokio::time::timeout(Duration::from_secs(5), connection.closed())
                .await
                .expect("the node closes a stranger's connection");
            assert!(
                matches!(reason, quinn::ConnectionError::ConnectionClosed(_)),
                "{reason}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_disk_stay_bounded_as_rounds_are_pruned() {
    // Ordered events stay on disk 16 decided rounds here (for catch-ups).
    let net = Net::start_with(4, &[0, 1, 2, 3], "disk_horizon_rounds = 16\n").await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut n = 0u32;
    loop {
        // Keep transactions flowing so consensus runs at full speed.
        for _ in 0..8 {
            net.submit(n as usize % 4, &tx(5, n)).await;
            n += 1;
        }
        let status = net.status(0).await;
        let decided = status["last_decided_round"].as_u64().unwrap();
        if decided >= 60 {
            let held = status["held_events"].as_u64().unwrap();
            let stored = status["stored_events"].as_u64().unwrap();
            let ordered = status["ordered_events"].as_u64().unwrap();
            // Far more events went through consensus than are kept.
            assert!(stored < ordered, "stored {stored} ordered {ordered}");
            assert!(held < ordered, "held {held} ordered {ordered}");
            break;
        }
        assert!(Instant::now() < deadline, "consensus too slow: {status}");
    }
}

/// The worst crash for a self-fork-free chain: a node durably stores the
/// event it just signed and dies before sending it. It comes back only after
/// the others pruned that event's parents, so they could never place it nor
/// anything naming it. The node must rejoin anyway (it re-anchors its chain
/// once its tip is pruned), and the lost event's transaction is submitted
/// again and ordered, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_last_event_never_went_out_rejoins_after_a_long_outage() {
    use dagger_consensus::{Config, CreatorId, Event, Hashgraph, Limits};
    use dagger_node::{
        identity::Identity,
        store::{Store, Write},
    };

    let mut net = Net::start(4, &[0, 1, 2, 3]).await;
    for n in 0..20u32 {
        net.submit(n as usize % 4, &tx(7, n)).await;
    }
    net.wait_ordered(&[0, 1, 2, 3], 20, Duration::from_secs(60))
        .await;
    // Node 3 has stored a snapshot (every 8 decided rounds).
    let mut filler = 0u32;
    while net.status(3).await["last_decided_round"].as_u64().unwrap() < 12 {
        net.submit(3, &tx(8, filler)).await;
        filler += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A clean stop: the ledger (snapshot included) is durable in redb. A
    // kill -9 would leave the latest records in the event log for the next
    // start to apply, and this test reads the ledger itself first.
    net.cluster.stop(3).unwrap();
    let network_id = dagger_node::config::network_id("dagger-test");

    // Sign and store one more event as node 3, exactly as it does before
    // sending: durable, own sequence recorded. Nobody ever receives it.
    let lost_tx = tx(7, 999);
    {
        let store = Store::open(&net.cluster.dir.join("data3")).unwrap();
        let recovered = store.recover().unwrap();
        let identity = Identity::load(&net.cluster.dir.join("node3.json")).unwrap();
        let me = CreatorId(identity.id());
        let own_seq = recovered.own_seq.expect("node 3 signed events");
        // Node 3's state as it will rebuild it: snapshot plus later events.
        let mut hg = Hashgraph::restore(
            Config {
                network_id,
                limits: Limits::default(),
            },
            dagger_node::core::split_snapshot(
                recovered.snapshot.as_deref().expect("a snapshot was taken"),
            )
            .expect("a well-formed snapshot")
            .0,
        )
        .unwrap();
        for bytes in &recovered.events {
            let _ = hg.insert(Event::decode(bytes).unwrap());
        }
        let head = hg.chain_head(&me).expect("node 3 signed events");
        assert_eq!(head.seq, own_seq);
        let tip = hg.event(&head.id).expect("the tip is held");
        let other = hg
            .tips()
            .iter()
            .filter_map(|id| hg.event(id))
            .find(|e| e.creator() != me)
            .expect("a peer's event");
        let lost = hg
            .build_event(
                identity.signing_key(),
                Some(tip.id()),
                Some(other.id()),
                tip.created_at_ns().max(other.created_at_ns()) + 1,
                vec![lost_tx.clone()],
            )
            .expect("parents held");
        assert_eq!(lost.seq(), own_seq + 1);
        store
            .commit(
                &[Write::Events {
                    events: vec![(lost.id().0, lost.encode())],
                    own_seq: Some(own_seq + 1),
                    mempool_taken: Vec::new(),
                }],
                true,
            )
            .unwrap();
    }

    // The others go on far past the pruning horizon.
    let start_round = net.status(0).await["last_decided_round"].as_u64().unwrap();
    let mut n = 20u32;
    while net.status(0).await["last_decided_round"].as_u64().unwrap()
        < start_round + 4 * dagger_consensus::ANCIENT_HORIZON
    {
        net.submit(n as usize % 3, &tx(7, n)).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    net.cluster.start(3).unwrap();
    net.wait_healthy(3).await;
    let before = n;
    for _ in 0..12 {
        net.submit(n as usize % 4, &tx(7, n)).await;
        n += 1;
    }
    // Everything, including what only node 3 was given, is ordered exactly
    // once on all four nodes, and nobody saw node 3 fork.
    let wanted: Vec<String> = (0..n)
        .map(|k| tx(7, k))
        .chain([lost_tx])
        .map(|t| hex(&t))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..4 {
        loop {
            let order = net.order(i).await;
            let missing = wanted
                .iter()
                .filter(|w| !order.iter().any(|o| &o.tx == *w))
                .count();
            if missing == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} misses {missing} transactions; status {}",
                net.status(i).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    net.assert_same_order(&[0, 1, 2, 3], wanted.len()).await;
    let order = net.order(0).await;
    for w in &wanted {
        assert_eq!(order.iter().filter(|o| &o.tx == w).count(), 1);
    }
    assert!(before < n);
    for i in 0..4 {
        assert_eq!(net.status(i).await["equivocations"], 0, "node {i}");
    }
}

impl Net {
    /// The ordered transactions node `i` serves, from where its order
    /// starts (after a state sync, where the installed state's order did).
    /// A state install can move the start between reading it and reading
    /// the pages (a node that has just restarted may be installing): then
    /// it starts over from the new start; any other error fails the test.
    async fn order_from_start(&self, i: usize) -> Vec<OrderedTxJson> {
        let starts_at = || async { self.status(i).await["order_starts_at"].as_u64().unwrap() };
        let mut start = starts_at().await;
        let mut all: Vec<OrderedTxJson> = Vec::new();
        loop {
            let page = match fetch_order(
                &self.client,
                &self.cluster.url(i, "/order"),
                start + all.len() as u64,
                0,
            )
            .await
            {
                Ok(page) => page,
                Err(err) => {
                    let moved = starts_at().await;
                    assert_ne!(moved, start, "node {i}: reading its order failed: {err}");
                    (start, all) = (moved, Vec::new());
                    continue;
                }
            };
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    async fn checkpoints(&self, i: usize) -> Vec<Value> {
        self.get_json(i, "/checkpoints").await
    }

    async fn decided(&self, i: usize) -> u64 {
        self.status(i).await["last_decided_round"].as_u64().unwrap()
    }

    /// Submits to the nodes in `to` until node 0 decided `rounds` more
    /// rounds; returns the transactions submitted.
    async fn run_rounds(&self, to: &[usize], rounds: u64, tag: u8, next: &mut u32) -> Vec<Vec<u8>> {
        let target = self.decided(0).await + rounds;
        let mut sent = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.decided(0).await < target {
            assert!(Instant::now() < deadline, "rounds did not advance");
            let t = tx(tag, *next);
            self.submit(to[*next as usize % to.len()], &t).await;
            sent.push(t);
            *next += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    }

    /// Node `i` has the same order as node 0 wherever both have it, and
    /// orders what is submitted to it now.
    async fn rejoined(&self, i: usize, tag: u8, next: &mut u32) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let fresh = tx(tag, *next);
        *next += 1;
        loop {
            let theirs = self.order(0).await;
            let mine = self.order_from_start(i).await;
            let start = self.status(i).await["order_starts_at"].as_u64().unwrap();
            for record in &mine {
                if let Some(reference) = theirs.get(record.position as usize) {
                    assert_eq!(
                        (&record.tx, &record.event_id, record.consensus_time_ns),
                        (
                            &reference.tx,
                            &reference.event_id,
                            reference.consensus_time_ns
                        ),
                        "node {i} differs at position {}",
                        record.position
                    );
                }
            }
            let caught_up = start + mine.len() as u64 + 5 >= theirs.len() as u64;
            if caught_up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} did not catch up: {} + {} of {}; status {}",
                start,
                mine.len(),
                theirs.len(),
                self.status(i).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Its consensus is seen to match its peers' at a later checkpoint.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.status(i).await["unverified_install"].is_null() {
            assert!(
                Instant::now() < deadline,
                "node {i}'s installed state was never verified: {}",
                self.log(i)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // It takes part again: what it is given is ordered everywhere.
        self.submit(i, &fresh).await;
        let wanted = hex(&fresh);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let everywhere = {
                let mut all = true;
                for j in 0..4 {
                    all &= self
                        .order_from_start(j)
                        .await
                        .iter()
                        .any(|o| o.tx == wanted);
                }
                all
            };
            if everywhere {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {i}'s transaction was not ordered"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The others keep ordered events on disk for only two decided rounds: a
/// node away longer cannot catch up by replay. Stopped with its ledger, it
/// comes back by state sync and every transaction it had acknowledged is
/// ordered exactly once; with its ledger deleted, it comes back too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_behind_the_disk_horizon_rejoin_by_state_sync() {
    let mut net = Net::start_with(4, &[0, 1, 2, 3], "disk_horizon_rounds = 2\n").await;
    let mut next = 0u32;
    let mut acknowledged = Vec::new();
    for _ in 0..20 {
        let t = tx(5, next);
        net.submit(next as usize % 4, &t).await;
        acknowledged.push(t);
        next += 1;
    }
    net.wait_ordered(&[0, 1, 2, 3], 20, Duration::from_secs(60))
        .await;

    // Node 3 acknowledges a few more, is killed, and stays away while the
    // others decide far past their disk horizon.
    for _ in 0..5 {
        let t = tx(5, next);
        net.submit(3, &t).await;
        acknowledged.push(t);
        next += 1;
    }
    net.cluster.kill(3);
    acknowledged.extend(net.run_rounds(&[0, 1, 2], 60, 5, &mut next).await);
    net.cluster.start(3).unwrap();
    net.wait_healthy(3).await;
    net.rejoined(3, 5, &mut next).await;
    let status = net.status(3).await;
    assert!(
        status["order_starts_at"].as_u64().unwrap() > 0,
        "node 3 came back by replay, not by state sync: {status}"
    );

    // Node 2 loses its ledger while away.
    net.cluster.kill(2);
    acknowledged.extend(net.run_rounds(&[0, 1, 3], 60, 5, &mut next).await);
    std::fs::remove_dir_all(net._dir.path().join("data2")).unwrap();
    net.cluster.start(2).unwrap();
    net.wait_healthy(2).await;
    net.rejoined(2, 5, &mut next).await;
    assert!(net.status(2).await["order_starts_at"].as_u64().unwrap() > 0);
    assert!(net
        .log(2)
        .contains("installed a state vouched for by peers"));
    assert!(net.log(3).contains("installed state verified"));

    // Everything acknowledged is ordered exactly once; nobody forked.
    let order = net.order(0).await;
    for t in &acknowledged {
        let wanted = hex(t);
        assert_eq!(
            order.iter().filter(|o| o.tx == wanted).count(),
            1,
            "tx {wanted}"
        );
    }
    for i in 0..4 {
        assert_eq!(net.status(i).await["equivocations"], 0, "node {i}");
    }
    let _ = &mut net;
}

/// SIGKILLs a random node at random moments (one down at a time, so more
/// than two thirds of the stake stays up) while transactions are submitted
/// to random nodes throughout. At the end every node holds the same order
/// with the same running hash, and every transaction a node acknowledged
/// is in it exactly once.
async fn chaos(kills: usize, seed: u64) {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use std::sync::{atomic::AtomicBool, Arc, Mutex};

    let mut net = Net::start(4, &[0, 1, 2, 3]).await;
    let urls: Vec<String> = (0..4).map(|i| net.cluster.submit_url(i, "/tx")).collect();
    let acknowledged: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let submitter = {
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        let client = net
            .cluster
            .submit_client(Some(Duration::from_secs(5)))
            .unwrap();
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ 0xC4A05);
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = tx(7, n);
                n += 1;
                let url = &urls[rng.gen_range(0..urls.len())];
                let ok = client
                    .post(url)
                    .body(t.clone())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    acknowledged.lock().unwrap().push(t);
                }
                tokio::time::sleep(Duration::from_millis(rng.gen_range(5..40))).await;
            }
        })
    };
    let mut rng = StdRng::seed_from_u64(seed);
    for kill in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1_500))).await;
        let victim = rng.gen_range(0..4);
        eprintln!("kill {kill}: node {victim}");
        net.cluster.kill(victim);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..1_000))).await;
        net.cluster.start(victim).unwrap();
        net.wait_healthy(victim).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    submitter.await.unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 20, "too few transactions got through");

    // Everything acknowledged gets ordered...
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let order = net.order(0).await;
        let ordered: std::collections::HashSet<&str> =
            order.iter().map(|o| o.tx.as_str()).collect();
        let missing = acknowledged
            .iter()
            .filter(|t| !ordered.contains(hex(t).as_str()))
            .count();
        if missing == 0 {
            break;
        }
        if Instant::now() >= deadline {
            // What each node was doing, for whoever reads the failure.
            for i in 0..4 {
                let log = net.log(i);
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!(
                    "---- node {i} log (last 40 lines, newest first)\n{}",
                    tail.join("\n")
                );
                let status = net.status(i).await;
                eprintln!("---- node {i} status: {status}");
                for id in status["missing_parents"].as_array().into_iter().flatten() {
                    let id = id.as_str().unwrap_or_default();
                    for j in 0..4 {
                        let held = net.get(j, &format!("/events/{id}")).await;
                        eprintln!(
                            "     missing {id} at node {j}: {}",
                            &held[..held.len().min(400)]
                        );
                    }
                }
            }
            panic!(
                "{missing} of {} acknowledged transactions never ordered",
                acknowledged.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // ...exactly once, and every node ends with the same order and running
    // hash.
    let order = net.order(0).await;
    let mut counts = std::collections::HashMap::new();
    for o in &order {
        *counts.entry(o.tx.clone()).or_insert(0) += 1;
    }
    assert!(
        counts.values().all(|c| *c == 1),
        "a transaction was ordered twice"
    );
    // Every node's checkpoints (ordered count, running hash, digest of
    // everything consensus determines) agree at every round they share.
    let deadline = Instant::now() + Duration::from_secs(60);
    let target = net.decided(0).await + 16;
    loop {
        let mut lists = Vec::new();
        for i in 0..4 {
            lists.push(net.checkpoints(i).await);
        }
        let shared: Vec<u64> = lists[0]
            .iter()
            .map(|c| c["round"].as_u64().unwrap())
            .filter(|r| *r >= target)
            .filter(|r| lists.iter().all(|l| l.iter().any(|c| c["round"] == *r)))
            .collect();
        if let Some(round) = shared.first() {
            let at: Vec<&Value> = lists
                .iter()
                .map(|l| l.iter().find(|c| c["round"] == *round).unwrap())
                .collect();
            assert!(
                at.iter().all(|c| *c == at[0]),
                "checkpoints differ at round {round}: {at:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no common checkpoint past round {target}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    net.assert_same_order(&[0, 1, 2, 3], order.len()).await;
    for i in 0..4 {
        assert_eq!(net.status(i).await["equivocations"], 0, "node {i}");
    }
    let _ = &mut net;
}

/// The short form of the chaos test (part of every run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kills_lose_nothing_acknowledged() {
    chaos(5, 1).await;
}

/// The long form: 24 kills over a few minutes.
/// `cargo test -p dagger-node --test cluster chaos_long -- --ignored`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn chaos_long() {
    chaos(24, 2).await;
}

/// `/ready` turns 200 once the nodes decide rounds and sync, and 503 with
/// the failing checks named once a node is left alone; `/health` (liveness)
/// stays 200 throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_consensus_and_peers() {
    let mut net = Net::start(4, &[0, 1, 2, 3]).await;
    let ready = |net: &Net, i: usize| {
        let request = net.client.get(net.cluster.url(i, "/ready")).send();
        async move {
            let response = request.await.unwrap();
            let code = response.status().as_u16();
            (code, response.json::<Value>().await.unwrap())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = ready(&net, 0).await;
        if code == 200 {
            assert_eq!(body["ready"], true);
            assert!(body["last_decided_round"].as_u64().unwrap() > 0);
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in 1..4 {
        net.cluster.kill(i);
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (code, body) = ready(&net, 0).await;
        // The peers check (no successful sync for 10 s) may fail before the
        // consensus one: wait until consensus is named too.
        if code == 503 {
            assert_eq!(body["ready"], false);
            if body["failing"].to_string().contains("consensus") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "still ready alone, or consensus never named: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let health = net
        .client
        .get(net.cluster.url(0, "/health"))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// An honest operator never slashes itself, whatever happened to its disk:
/// node 3's ledger is wiped (key and signing record kept), then replaced by
/// an older backup, then wiped together with its signing record, each time
/// while its old events are still held by its peers. Each time it decides
/// rounds again, its transactions are ordered, and no node ever holds
/// evidence against anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_or_rolled_back_ledger_never_makes_a_node_sign_twice() {
    let mut net = Net::start(4, &[0, 1, 2, 3]).await;
    let mut next = 0u32;
    net.run_rounds(&[0, 1, 2, 3], 4, 40, &mut next).await;
    let data = net.cluster.dir.join("data3");
    let backup = net.cluster.dir.join("backup3");
    let record = net.cluster.dir.join("node3.json.signing-record");
    assert!(record.exists(), "keygen writes a signing record");
    // An older backup of node 3's ledger, then more signing on top of it.
    net.cluster.kill(3);
    copy_dir(&data, &backup);
    net.cluster.start(3).unwrap();
    net.wait_healthy(3).await;
    net.run_rounds(&[0, 1, 2, 3], 4, 40, &mut next).await;

    type Damage = fn(&std::path::Path, &std::path::Path, &std::path::Path);
    let cases: [(&str, Damage); 3] = [
        ("wiped ledger", |data, _, _| {
            std::fs::remove_dir_all(data).unwrap()
        }),
        ("older backup restored", |data, backup, _| {
            std::fs::remove_dir_all(data).unwrap();
            copy_dir(backup, data);
        }),
        ("wiped ledger and signing record", |data, _, record| {
            std::fs::remove_dir_all(data).unwrap();
            std::fs::remove_file(record).unwrap();
        }),
    ];
    for (case, damage) in cases {
        net.cluster.kill(3);
        damage(&data, &backup, &record);
        net.cluster.start(3).unwrap();
        net.wait_healthy(3).await;
        // Work for node 3 at once: it wants to sign before it has heard
        // from anyone.
        let first = tx(43, next);
        next += 1;
        net.submit(3, &first).await;
        // The network goes on with node 3 back in it.
        let before = net.decided(0).await;
        let mut sent = net.run_rounds(&[0, 1, 2, 3], 6, 41, &mut next).await;
        sent.push(first);
        if let Err(missing) = net.wait_for_txs(0, &sent, Duration::from_secs(120)).await {
            panic!(
                "{case}: {} transactions not ordered\n{}",
                missing.len(),
                net.log(3)
            );
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while net.decided(3).await <= before {
            assert!(Instant::now() < deadline, "{case}: node 3 decides nothing");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Node 3 signs again: a transaction given to it is ordered.
        let own = tx(42, next);
        next += 1;
        net.submit(3, &own).await;
        if net
            .wait_for_txs(0, &[own], Duration::from_secs(60))
            .await
            .is_err()
        {
            panic!(
                "{case}: node 3's transaction was not ordered\n{}",
                net.log(3)
            );
        }
        for i in 0..4 {
            assert_eq!(
                net.status(i).await["equivocations"],
                0,
                "{case}: node {i} holds evidence\n{}",
                net.log(3)
            );
        }
    }
}
