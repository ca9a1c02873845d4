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
    // The victims pushed back: the handshakes beyond the cap were turned
    // away. (Whether the push flood also reaches the push rate limit
    // depends on the machine: a victim slower at checking pushes than the
    // limit's rate throttles the flood through QUIC flow control first, and
    // then nothing is refused — seen once in a full debug suite. The limit
    // itself is tested where the flood is the only load:
    // `node/tests/cluster.rs`, `a_peer_flooding_one_push_stream_is_disconnected`.)
    let rejected = &abuse["victims_rejected"];
    assert!(
        rejected["handshake_busy"].as_f64().unwrap_or(0.0) > 0.0,
        "{abuse}"
    );
}
