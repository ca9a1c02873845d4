//! The abuse harness, short: a byzantine member attacks three honest nodes
//! with every attack it has while they order a steady load. They must
//! order every accepted transaction, identically, and the attacks must
//! have happened and been refused (figures: see the README).

use std::process::Command;

#[test]
fn every_attack_at_once_leaves_the_honest_nodes_ordering() {
    let output = Command::new(env!("CARGO_BIN_EXE_dagger-devnet"))
        .args([
            "bench",
            "--nodes",
            "4",
            "--duration",
            "6",
            "--rate",
            "500",
            "--idle",
            "0",
            "--abuse",
            "all",
            "--json",
        ])
        .output()
        .expect("the bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON report");
    assert_eq!(report["digests_match"], true, "{report}");
    assert_eq!(report["per_node"].as_array().unwrap().len(), 3);
    assert_eq!(report["ordered_tx"], report["submitted_tx"], "{report}");
    assert!(report["submitted_tx"].as_u64().unwrap() > 1_000, "{report}");
    let abuse = &report["abuse"];
    for counter in [
        "handshakes_started",
        "frames_sent",
        "http_requests",
        "http_idle_opened",
        "catchups",
    ] {
        assert!(abuse[counter].as_u64().unwrap() > 0, "{counter}: {abuse}");
    }
    // The victims pushed back: the flood hit the push rate limit and the
    // handshakes beyond the cap were turned away.
    let rejected = &abuse["victims_rejected"];
    assert!(
        rejected["rate_limited"].as_f64().unwrap_or(0.0) > 0.0,
        "{abuse}"
    );
}
