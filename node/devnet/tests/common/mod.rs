//! Running `dagger-devnet bench` from a test.

use std::process::Command;

use serde_json::Value;

/// Runs `dagger-devnet bench <args> --json`; the run must succeed and every
/// node must have ordered every accepted transaction, in one order.
pub fn bench(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_dagger-devnet"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("the bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("one JSON report");
    assert_eq!(report["digests_match"], true, "{report}");
    assert_eq!(report["ordered_tx"], report["submitted_tx"], "{report}");
    report
}
