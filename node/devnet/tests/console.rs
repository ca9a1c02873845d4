//! What a newcomer sees: `dagger-devnet --demo --exit` tells the demo's
//! story on the console (addresses, explorer URLs, each step) with no node
//! log line unless something went wrong; each node's log is in its own
//! file in the data dir, and no hash there prints as a list of numbers.

use std::process::Command;

fn free_port_pair() -> u16 {
    // The devnet takes rpc, rpc + 1 (websocket) and rpc + 11.. (APIs).
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < 60_000
            && [1u16, 11, 12, 13, 14]
                .iter()
                .all(|d| std::net::TcpListener::bind(("127.0.0.1", port + d)).is_ok())
        {
            return port;
        }
    }
}

/// `[12, 34, 56` and longer: a byte array printed with `{:?}`.
fn has_number_list(line: &str) -> bool {
    line.split('[').skip(1).any(|rest| {
        let items: Vec<&str> = rest.split(',').take(4).map(str::trim).collect();
        items.len() == 4
            && items[..3]
                .iter()
                .all(|i| !i.is_empty() && i.parse::<u16>().is_ok())
    })
}

#[test]
fn the_demo_console_tells_the_story_and_node_logs_go_to_files() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_pair();
    let out = Command::new(env!("CARGO_BIN_EXE_dagger-devnet"))
        .args([
            "--demo",
            "--exit",
            "--rpc-port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{console}");
    for expected in [
        "demo completed",
        "explorer http://127.0.0.1:",
        "paid",
        "active",
        "closed",
    ] {
        assert!(console.contains(expected), "no {expected:?} in:\n{console}");
    }
    for line in console.lines() {
        let from_a_node = line.contains("node{") || line.contains("dagger_node::");
        let quiet = [" INFO ", " DEBUG ", " TRACE "]
            .iter()
            .any(|level| line.contains(level));
        assert!(
            !(from_a_node && quiet),
            "a node's routine line on the console: {line}\n{console}"
        );
        assert!(!has_number_list(line), "a number list: {line}");
    }
    for n in 0..4 {
        let log = std::fs::read_to_string(dir.path().join(format!("node{n}/node.log")))
            .unwrap_or_else(|e| panic!("node {n} has no log file: {e}"));
        assert!(log.contains("node started"), "node {n}:\n{log}");
        assert!(
            log.lines().all(|l| l.contains(&format!("node{{n={n}}}"))),
            "another node's line in node {n}'s file:\n{log}"
        );
        for line in log.lines() {
            assert!(
                !has_number_list(line),
                "a number list in node {n}'s log: {line}"
            );
        }
    }
    assert!(has_number_list(
        "vote=Provision { endpoint_hash: [12, 200, 3, 4] }"
    ));
    assert!(!has_number_list("ordered [ 0 ms] and [1 of 4]"));
}
