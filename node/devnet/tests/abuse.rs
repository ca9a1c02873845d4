//! The abuse harness, short: a byzantine member attacks three honest nodes
//! with every attack it has while they order a steady load. They must
//! order every accepted transaction, identically, and the attacks must
//! have happened and been refused (figures: see the README).

mod common;

#[test]
fn every_attack_at_once_leaves_the_honest_nodes_ordering() {
    // The bench itself checks every accepted transaction ordered, identically.
    let report = common::bench(&[
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
    ]);
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
