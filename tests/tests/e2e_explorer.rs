//! The DAG explorer in a real browser: Debian's headless chromium, driven
//! over WebDriver (chromedriver), against a running devnet. The page loads
//! without an error, draws events of every creator, a click on an event
//! opens details that match `/events/{id}`, and a fork handed to a node
//! shows up marked. A screenshot is saved (`DAGGER_EXPLORER_SCREENSHOT`,
//! default `explorer.png` in the test's temporary directory).
//!
//! Without chromedriver the test skips, unless `CI` is set: then it fails
//! (`.ci/run` and `scripts/setup-vm-host.sh` install chromium).

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod e2e;

use e2e::{devnet_with_nodes, funded_customer, get_json, spec, wait_active};
use fantoccini::{
    actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT},
    Client, ClientBuilder, Locator,
};
use serde_json::{json, Value};
use solana_sdk::signer::Signer;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_chromedriver() -> Option<Driver> {
    if !std::path::Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {CHROMEDRIVER} is missing: run scripts/setup-vm-host.sh"
        );
        eprintln!("skipped: {CHROMEDRIVER} is not installed (apt-get install chromium-driver)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(Driver(child, port))
}

/// Clicks "follow newest" (on to off, or back).
async fn toggle_follow(client: &Client) {
    let follow = client.find(Locator::Id("follow")).await.unwrap();
    follow.click().await.unwrap();
}

async fn script(client: &Client, js: &str) -> Value {
    client.execute(js, vec![]).await.unwrap()
}

/// Polls `js` in the page until it returns true.
async fn until(client: &Client, what: &str, js: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if script(client, js).await == Value::Bool(true) {
            return;
        }
        if Instant::now() > deadline {
            let errors = script(
                client,
                "return window.explorer ? window.explorer.errors : 'no explorer'",
            )
            .await;
            panic!("{what}: not within {within:?}; page errors: {errors}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_explorer_shows_the_live_dag_and_a_fork_in_a_browser() {
    let Some(driver) = start_chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let devnet = devnet_with_nodes(dir.path(), 4).await;
    let api: SocketAddr = devnet.api(0).unwrap();
    let creators: Vec<String> = (0..4)
        .map(|i| devnet.keys.operators[i].node.pubkey().to_string())
        .collect();

    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--window-size=1500,950"],
        }),
    );
    let connect_deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.1))
            .await
        {
            Ok(client) => break client,
            Err(e) if Instant::now() < connect_deadline => {
                eprintln!("chromedriver not ready: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("cannot start a browser session: {e}"),
        }
    };

    client
        .goto(&format!("http://{api}/explorer"))
        .await
        .unwrap();
    // Live: events of every creator arrive over the stream.
    let every_creator = format!(
        "const seen = new Set([...window.explorer.state.events.values()].map(e => e.creator));
         return {} .every(c => seen.has(c)) && window.explorer.state.decided > 2;",
        serde_json::to_string(&creators).unwrap()
    );
    until(
        &client,
        "events of every creator",
        &every_creator,
        Duration::from_secs(60),
    )
    .await;
    let lanes = script(
        &client,
        "return [...document.querySelectorAll('#lanes div')].map(d => d.dataset.creator)",
    )
    .await;
    for c in &creators {
        assert!(
            lanes.as_array().unwrap().contains(&json!(c)),
            "no lane for {c}: {lanes}"
        );
    }

    // Stop following, pick a drawn event of a decided round and click it
    // where it is drawn, as a person would.
    toggle_follow(&client).await;
    let target = script(
        &client,
        "window.explorer.render();
         const s = window.explorer.state;
         const rect = document.getElementById('dag').getBoundingClientRect();
         const fits = ([x, y, id]) => s.events.get(id).round < s.decided - 1
                                     && y > 20 && y < rect.height - 20;
         // One carrying a node report if there is one (decoded in details).
         const p = s.positions.find((p) => fits(p) && s.events.get(p[2]).txs > 0)
                   || s.positions.find(fits);
         return p ? [Math.round(rect.left + p[0]), Math.round(rect.top + p[1]), p[2]] : null;",
    )
    .await;
    let target = target
        .as_array()
        .expect("an event of a decided round is drawn");
    let (x, y, id) = (
        target[0].as_f64().unwrap(),
        target[1].as_f64().unwrap(),
        target[2].as_str().unwrap().to_string(),
    );
    let click = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x,
            y,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    client.perform_actions(click).await.unwrap();
    until(
        &client,
        "the clicked event's details",
        &format!("const d = document.getElementById('detail-id'); return !!d && d.textContent === '{id}';"),
        Duration::from_secs(10),
    )
    .await;
    let served: Value = get_json(&format!("http://{api}/events/{id}")).await;
    let shown = script(
        &client,
        "return Object.fromEntries([...document.querySelectorAll('#details tr')]
                 .map(r => [r.cells[0].textContent, r.cells[1].textContent]));",
    )
    .await;
    assert_eq!(
        shown["creator"]
            .as_str()
            .unwrap()
            .split(' ')
            .next()
            .unwrap(),
        served["creator"]
    );
    assert_eq!(shown["sequence"], served["seq"].to_string());
    assert_eq!(shown["round"], served["round"].to_string());
    assert_eq!(
        shown["witness"],
        if served["witness"] == true {
            "yes"
        } else {
            "no"
        }
    );
    assert_eq!(
        shown["ordered"],
        if served["ordered"] == true {
            "yes"
        } else {
            "not yet"
        }
    );
    assert_eq!(shown["transactions root"], served["txs_root"]);
    // Node reports are shown decoded, one block per transaction.
    let decoded = served["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r.is_null())
        .count();
    let blocks = script(
        &client,
        "return [document.querySelectorAll('#details pre.report').length,
                 document.querySelectorAll('#details pre.tx').length]",
    )
    .await;
    assert_eq!(
        blocks,
        json!([decoded, served["transactions"].as_array().unwrap().len()])
    );

    // A fork: node 3's newest event on node 0, re-signed with another
    // timestamp (the same sequence number), handed to node 0.
    let dag: Value = get_json(&format!("http://{api}/dag")).await;
    let newest = dag["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["creator"] == creators[3].as_str())
        .max_by_key(|e| e["seq"].as_u64().unwrap())
        .expect("node 3 has events on node 0")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let core = devnet.nodes[0].as_ref().unwrap().core.clone();
    let mut raw = [0u8; 32];
    hex_decode(&newest, &mut raw);
    let dagger_node::core::EventLookup::Held(original, _) =
        core.event(dagger_consensus::EventId(raw)).await.unwrap()
    else {
        panic!("node 0 holds node 3's newest event");
    };
    let mut edited = dagger_consensus::UnsignedEvent::from(original.header().clone());
    edited.created_at_ns += 1;
    let secret: [u8; 32] = devnet.keys.operators[3].node.to_bytes()[..32]
        .try_into()
        .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&secret);
    let fork = edited.sign(&key, &core.network_id);
    assert_eq!(fork.seq(), original.seq());
    let fork_id = hex(&fork.id().0);
    core.receive(vec![fork]).await.unwrap();
    until(
        &client,
        "the fork marked",
        &format!(
            "const s = window.explorer.state;
             const lane = document.querySelector('#lanes div[data-creator=\"{}\"]');
             return s.accused.has('{}') && s.events.has('{fork_id}') && !!lane
                    && lane.className === 'accused';",
            creators[3], creators[3]
        ),
        Duration::from_secs(15),
    )
    .await;
    // Back to the newest rounds for the picture, with the fork in view.
    toggle_follow(&client).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let errors = script(&client, "return window.explorer.errors").await;
    assert_eq!(errors, json!([]), "the page logged errors");
    let png = client.screenshot().await.unwrap();
    // What 10 000 events in view cost the page (printed, not asserted: a
    // figure for the README, measured on whatever machine runs this).
    let cost = script(
        &client,
        "const s = window.explorer.state;
         const creators = s.creators.map((c) => c.id);
         const base = s.maxRound + 1, events = [];
         for (let i = 0; i < 10000; i++) {
           events.push({ id: 'synthetic' + i, creator: creators[i % creators.length],
             seq: 1e6 + i, round: base + Math.floor(i / 40),
             self_parent: i >= creators.length ? 'synthetic' + (i - creators.length) : null,
             other_parent: i > 0 ? 'synthetic' + (i - 1) : null,
             witness: i % 10 === 0, famous: null, ordered: false, sound: true, txs: 0 });
         }
         const t0 = performance.now();
         window.explorer.merge({ node: s.node, last_decided_round: s.decided,
           pruned_through: s.pruned, creators: [], accused: [...s.accused], events });
         const t1 = performance.now();
         const frames = [];
         for (let k = 0; k < 20; k++) { window.explorer.render(); frames.push(s.lastRenderMs); }
         frames.sort((a, b) => a - b);
         return { merge_ms: t1 - t0, frame_ms_median: frames[10], frame_ms_max: frames[19],
                  events: s.events.size };",
    )
    .await;
    eprintln!("explorer with 10 000 events: {cost}");
    assert_eq!(cost["events"], 10_000, "the page keeps 10 000 events");
    let path = std::env::var_os("DAGGER_EXPLORER_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("explorer.png"));
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {} ({} bytes)", path.display(), png.len());
    // A lease: the node running it lists it with its endpoint.
    let customer = funded_customer(&devnet.reader).await;
    let request = devnet
        .reader
        .pay_for_vm(&customer, 1, spec(), 1_000, 600)
        .await
        .unwrap();
    let lease = wait_active(&devnet, &request).await;
    let host = (0..4)
        .find(|&i| {
            dagger_client::pda::operator(&devnet.keys.operators[i].node.pubkey()).0
                == lease.assigned_operator
        })
        .expect("a devnet operator runs it");
    client
        .goto(&format!("http://{}/explorer", devnet.api(host).unwrap()))
        .await
        .unwrap();
    until(
        &client,
        "the lease listed on its node",
        &format!(
            "const row = document.querySelector('#lease-list tr[data-request=\"{request}\"]');
             return !!row && row.cells[1].textContent === 'running'
                    && row.cells[2].textContent.startsWith('sim://');"
        ),
        Duration::from_secs(20),
    )
    .await;
    client.close().await.unwrap();
    devnet.stop().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str, out: &mut [u8; 32]) {
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
}

/// The stream without a browser: slices arrive as `event: dag`, the first
/// with every held event; a node serves at most `MAX_DAG_STREAMS` at once
/// (each asks its core twice a second), more get 503 until one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dag_stream_sends_slices_and_is_bounded() {
    use dagger_node::api::MAX_DAG_STREAMS;
    let dir = tempfile::tempdir().unwrap();
    let devnet = devnet_with_nodes(dir.path(), 4).await;
    let api = devnet.api(1).unwrap();
    let url = format!("http://{api}/dag/stream");
    let http = reqwest::Client::new();
    let mut open = Vec::new();
    for _ in 0..MAX_DAG_STREAMS {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        open.push(response);
    }
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("explorer streams"),
        "{body}"
    );

    // A slice: `event: dag` and a JSON view of the held DAG.
    let mut first = open.pop().unwrap();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), first.chunk())
            .await
            .expect("a slice within 10 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("event: dag"));
    let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
    let slice: Value = serde_json::from_str(data).unwrap();
    assert_eq!(slice["creators"].as_array().unwrap().len(), 4);
    assert!(!slice["events"].as_array().unwrap().is_empty());
    assert!(slice["cursor"].as_u64().unwrap() > 0);

    // Closing one frees its place.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = http.get(&url).send().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a closed stream's place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A cursor past everything: an empty slice, not an error.
    let later: Value = get_json(&format!("http://{api}/dag?after=18446744073709551615")).await;
    assert_eq!(later["events"], json!([]));
    let bad = reqwest::get(format!("http://{api}/dag?after=-1"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    drop(open);
    devnet.stop().await;
}
