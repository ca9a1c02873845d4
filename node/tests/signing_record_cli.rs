//! `dagger-node signing-record export|import` as an operator runs them:
//! moving a key's slashing protection to another machine, and every way
//! that can go wrong (a node still running, a copy already there, a record
//! of another key, no record at all).

use std::{path::Path, process::Command, time::Duration};

use dagger_node::signing_record::{default_path, Entry, RecordLock, SigningRecord};

const EXE: &str = env!("CARGO_BIN_EXE_dagger-node");
const NETWORK: [u8; 32] = [7; 32];

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(EXE).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn keygen(path: &Path) -> String {
    let (ok, text) = run(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(ok, "{text}");
    let (ok, key) = run(&["pubkey", path.to_str().unwrap()]);
    assert!(ok, "{key}");
    key.trim().to_string()
}

fn entry(seq: u64, birth_round: u64) -> Entry {
    Entry {
        seq: Some(seq),
        birth_round,
        head: None,
    }
}

#[test]
fn a_record_moves_between_machines_only_while_no_node_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("node.json");
    let key = keygen(&identity);
    let record = default_path(&identity);
    SigningRecord::open(&record, &key)
        .unwrap()
        .expect("keygen writes a record")
        .store(&NETWORK, entry(5_000, 40))
        .unwrap();
    let out = dir.path().join("exported");
    let export = |out: &Path| {
        run(&[
            "signing-record",
            "export",
            "--identity",
            identity.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };

    // A node holds the record: no copy (it would be stale at once).
    let node = RecordLock::acquire(&record, Duration::ZERO).unwrap();
    let (ok, text) = export(&out);
    assert!(!ok);
    assert!(text.contains("in use by another process"), "{text}");
    assert!(!out.exists());
    drop(node);

    let (ok, text) = export(&out);
    assert!(ok, "{text}");
    let copy = SigningRecord::open(&out, &key).unwrap().unwrap();
    assert_eq!(copy.entry(&NETWORK), entry(5_000, 40));
    // Never over an existing file.
    let (ok, text) = export(&out);
    assert!(!ok);
    assert!(text.contains("refusing to overwrite"), "{text}");

    // The other machine: same key, a record that went further on another
    // network field and less far on this one. The import keeps the higher.
    let there = dir.path().join("there");
    std::fs::create_dir(&there).unwrap();
    let there_identity = there.join("node.json");
    std::fs::copy(&identity, &there_identity).unwrap();
    let there_record = default_path(&there_identity);
    SigningRecord::create_fresh(&there_record, &key)
        .unwrap()
        .store(&NETWORK, entry(3_000, 55))
        .unwrap();
    let import = || {
        run(&[
            "signing-record",
            "import",
            "--identity",
            there_identity.to_str().unwrap(),
            "--from",
            out.to_str().unwrap(),
        ])
    };
    let node = RecordLock::acquire(&there_record, Duration::ZERO).unwrap();
    let (ok, text) = import();
    assert!(!ok);
    assert!(text.contains("in use by another process"), "{text}");
    drop(node);
    let (ok, text) = import();
    assert!(ok, "{text}");
    let merged = SigningRecord::open(&there_record, &key).unwrap().unwrap();
    assert_eq!(merged.entry(&NETWORK), entry(5_000, 55));

    // A record of another key, or none at all, is refused by name.
    let stranger = dir.path().join("stranger.json");
    keygen(&stranger);
    let (ok, text) = run(&[
        "signing-record",
        "import",
        "--identity",
        there_identity.to_str().unwrap(),
        "--from",
        default_path(&stranger).to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(text.contains("belongs to node key"), "{text}");
    let (ok, text) = run(&[
        "signing-record",
        "import",
        "--identity",
        there_identity.to_str().unwrap(),
        "--from",
        dir.path().join("nothing").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(text.contains("no signing record at"), "{text}");
}
