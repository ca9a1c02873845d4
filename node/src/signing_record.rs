//! Slashing protection: the signing record, kept apart from the ledger, as
//! validator clients keep one (EIP-3076's interchange is the model).
//!
//! Two events of one node key *conflict* (and cost half its stake) when
//! they share a sequence number, when the one with the lower sequence
//! number has the higher birth round, or when one is at the next sequence
//! number and names another self-parent. A node whose ledger is empty or
//! rolled back (a replaced disk, a restored backup, a wiped data dir) must
//! therefore not trust its ledger about what its key signed. The record
//! holds, per network:
//!
//! * `seq`: every sequence number up to it may have been signed. The node
//!   reserves ahead ([`RESERVE`] at a time), so the record is written (and
//!   fsynced) once per [`RESERVE`] events, always *before* an event beyond
//!   the reservation leaves the process;
//! * `birth_round`: the highest birth round it may have signed (written
//!   before an event born later leaves the process);
//! * `head`: after a clean stop, exactly the last event signed, so that a
//!   restart with its ledger intact continues the chain without a gap.
//!
//! On start the node resumes from the record, whatever the ledger says:
//! with the exact head, it continues after it (waiting for the event to
//! come back from peers if its ledger lost it); after a crash, it jumps to
//! `seq + 2` (past every reserved number, and not adjacent to any, so no
//! event it may have signed is at the next number) and never signs below
//! `birth_round`. Without a record (it was lost with the disk, or the key
//! predates records), the node signs nothing until peers holding more than
//! a third of the stake have answered its pulls, takes the newest event of
//! its own chain they hold, and jumps [`LOST_RECORD_JUMP`] past it (past
//! anything it could have signed and shown to nobody who answered).
//! `dagger-node keygen` writes a record saying the key never signed.
//!
//! The file is JSON, written to a temporary file, fsynced, renamed over the
//! old one and the directory fsynced. `dagger-node signing-record export`
//! and `import` move it between machines; an import never lowers what a
//! record already holds.
//!
//! One process at a time uses a record: it holds an exclusive lock on
//! `<record>.lock` ([`RecordLock`]) for as long as it may sign. Two
//! processes sharing a record (a node started twice by mistake, or an
//! export taken while the node runs) would each overwrite what the other
//! reserved, and a later restart of either could sign numbers the other
//! already used. The lock is the kernel's (`flock`): a crash releases it,
//! so it never outlives its process.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Sequence numbers reserved per write of the record.
pub const RESERVE: u64 = 1_024;

/// How far past the newest own event peers report a node resumes when its
/// record is lost: more events than it could have signed and shown to none
/// of the peers that answered (it pushes every event to every peer).
pub const LOST_RECORD_JUMP: u64 = 1 << 20;

const VERSION: u32 = 1;

/// How long [`RecordLock::acquire`] waits for another process to let go
/// (a supervisor restarting a node whose old process is still stopping).
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(
        "the signing record {path} is in use by another process (its lock {lock} is held): \
         stop the other node using this key first; two processes signing with one key are \
         slashed"
    )]
    InUse { path: String, lock: String },
    #[error("cannot lock the signing record {path}: {reason}")]
    Lock { path: String, reason: String },
    #[error("cannot read the signing record {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write the signing record {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("the signing record {path} belongs to node key {found}, not {expected}")]
    OtherKey {
        path: String,
        found: String,
        expected: String,
    },
}

/// What the record says of one network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Every sequence number up to this may have been signed (`None`: the
    /// key never signed on this network).
    pub seq: Option<u64>,
    /// The highest birth round that may have been signed.
    pub birth_round: u64,
    /// After a clean stop: exactly the last event signed.
    pub head: Option<Head>,
}

/// One signed event, as the record keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    #[serde(with = "hex32")]
    pub id: [u8; 32],
    pub seq: u64,
    pub birth_round: u64,
    pub created_at_ns: u64,
}

impl From<dagger_consensus::ChainHead> for Head {
    fn from(h: dagger_consensus::ChainHead) -> Head {
        Head {
            id: h.id.0,
            seq: h.seq,
            birth_round: h.birth_round,
            created_at_ns: h.created_at_ns,
        }
    }
}

impl From<Head> for dagger_consensus::ChainHead {
    fn from(h: Head) -> dagger_consensus::ChainHead {
        dagger_consensus::ChainHead {
            id: dagger_consensus::EventId(h.id),
            seq: h.seq,
            birth_round: h.birth_round,
            created_at_ns: h.created_at_ns,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileForm {
    version: u32,
    node_key: String,
    /// Hex network id -> entry.
    networks: BTreeMap<String, Entry>,
}

mod hex32 {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        let bytes = hex::decode(text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

/// The record file of one node key.
#[derive(Debug)]
pub struct SigningRecord {
    path: PathBuf,
    node_key: String,
    form: FileForm,
}

/// The exclusive right to use the record at one path, held until dropped.
#[derive(Debug)]
pub struct RecordLock {
    _file: std::fs::File,
}

impl RecordLock {
    /// Takes the lock of the record at `record`, waiting up to `wait` for
    /// another holder to let go.
    pub fn acquire(record: &Path, wait: std::time::Duration) -> Result<RecordLock, RecordError> {
        let lock = lock_path(record);
        let err = |e: std::io::Error| RecordError::Lock {
            path: record.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = lock.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(err)?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(RecordLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(RecordError::InUse {
                            path: record.display().to_string(),
                            lock: lock.display().to_string(),
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
            }
        }
    }
}

/// The lock file of the record at `record`: beside it, never renamed.
pub fn lock_path(record: &Path) -> PathBuf {
    let mut name = record.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Where a key's record lives unless configured: beside the key file.
pub fn default_path(identity: &Path) -> PathBuf {
    let mut name = identity.as_os_str().to_owned();
    name.push(".signing-record");
    PathBuf::from(name)
}

impl SigningRecord {
    /// A record saying `node_key` never signed (written at key creation).
    pub fn create_fresh(path: &Path, node_key: &str) -> Result<SigningRecord, RecordError> {
        let record = SigningRecord {
            path: path.to_path_buf(),
            node_key: node_key.to_string(),
            form: FileForm {
                version: VERSION,
                node_key: node_key.to_string(),
                networks: BTreeMap::new(),
            },
        };
        record.write()?;
        Ok(record)
    }

    /// The record at `path`, `None` if there is none.
    pub fn open(path: &Path, node_key: &str) -> Result<Option<SigningRecord>, RecordError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(RecordError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        let form: FileForm = serde_json::from_str(&text).map_err(|e| RecordError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if form.node_key != node_key {
            return Err(RecordError::OtherKey {
                path: path.display().to_string(),
                found: form.node_key,
                expected: node_key.to_string(),
            });
        }
        Ok(Some(SigningRecord {
            path: path.to_path_buf(),
            node_key: node_key.to_string(),
            form,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the record holds for `network`.
    pub fn entry(&self, network: &[u8; 32]) -> Entry {
        self.form
            .networks
            .get(&hex::encode(network))
            .copied()
            .unwrap_or_default()
    }

    /// Replaces `network`'s entry, durably.
    pub fn store(&mut self, network: &[u8; 32], entry: Entry) -> Result<(), RecordError> {
        self.form.networks.insert(hex::encode(network), entry);
        self.write()
    }

    /// Takes in what another record of the same key holds, keeping the
    /// higher of each value (an import never lowers a record).
    pub fn merge(&mut self, other: &SigningRecord) -> Result<(), RecordError> {
        if other.node_key != self.node_key {
            return Err(RecordError::OtherKey {
                path: other.path.display().to_string(),
                found: other.node_key.clone(),
                expected: self.node_key.clone(),
            });
        }
        for (network, theirs) in &other.form.networks {
            let ours = self.form.networks.entry(network.clone()).or_default();
            *ours = higher(*ours, *theirs);
        }
        self.write()
    }

    fn write(&self) -> Result<(), RecordError> {
        let err = |e: std::io::Error| RecordError::Write {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        };
        let text = serde_json::to_string_pretty(&self.form).expect("plain data serialises");
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = self.path.with_extension("tmp");
        {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp).map_err(err)?;
            file.write_all(text.as_bytes()).map_err(err)?;
            file.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
        Ok(())
    }
}

/// The higher of two entries, field by field (an exact head survives only
/// if it is still the highest signed number).
fn higher(a: Entry, b: Entry) -> Entry {
    let seq = a.seq.max(b.seq);
    let head = [a.head, b.head]
        .into_iter()
        .flatten()
        .max_by_key(|h| h.seq)
        .filter(|h| Some(h.seq) == seq);
    Entry {
        seq,
        birth_round: a.birth_round.max(b.birth_round),
        head,
    }
}

/// How a node resumes signing, from its record and ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// The key never signed here: start the chain.
    Fresh,
    /// Continue right after this exact event.
    After(Head),
    /// Jump: the next event gets this sequence number (its self-parent is
    /// the newest own event this node holds, which it does not follow), and
    /// no event is born below `birth_round`.
    Jump { seq: u64, birth_round: u64 },
    /// No record: wait for peers, then jump past what they report.
    Lost,
}

/// What to do given the record's entry (`None`: no record at all) and the
/// newest own event the ledger holds.
pub fn resume(entry: Option<Entry>, ledger_head: Option<Head>) -> Resume {
    let Some(entry) = entry else {
        return Resume::Lost;
    };
    match (entry.seq, entry.head) {
        (None, _) => match ledger_head {
            // The record says never, the ledger says otherwise: believe
            // the higher, but only exactly what the ledger holds.
            None => Resume::Fresh,
            Some(h) => Resume::Jump {
                seq: h.seq + 2,
                birth_round: h.birth_round,
            },
        },
        (Some(seq), Some(head)) if head.seq == seq => Resume::After(head),
        (Some(seq), _) => Resume::Jump {
            seq: seq.max(ledger_head.map_or(0, |h| h.seq)) + 2,
            birth_round: entry
                .birth_round
                .max(ledger_head.map_or(0, |h| h.birth_round)),
        },
    }
}

/// What the machine keeps while it signs: the floor below which it never
/// signs, and how far the record reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guard {
    /// No event at or below this sequence number is signed.
    pub floor_seq: Option<u64>,
    /// No event born below this round is signed.
    pub min_birth: u64,
    /// The record covers sequence numbers up to this and birth rounds up
    /// to `birth_round`.
    pub reserved_seq: Option<u64>,
    pub birth_round: u64,
}

/// Why the guard refused to sign.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("sequence number {seq} is not above {floor}, which this key may have signed")]
    Sequence { seq: u64, floor: u64 },
    #[error("birth round {birth} is below {min}, which this key may have signed")]
    BirthRound { birth: u64, min: u64 },
}

impl Guard {
    /// A guard resuming as `resume` says.
    pub fn new(resume: Resume, entry: Entry) -> Guard {
        let (floor_seq, min_birth) = match resume {
            Resume::Fresh | Resume::Lost => (None, entry.birth_round),
            Resume::After(h) => (Some(h.seq), h.birth_round.max(entry.birth_round)),
            Resume::Jump { seq, birth_round } => {
                (Some(seq - 1), birth_round.max(entry.birth_round))
            }
        };
        Guard {
            floor_seq,
            min_birth,
            reserved_seq: entry.seq,
            birth_round: entry.birth_round,
        }
    }

    /// Checks an event about to be signed; returns the entry to store
    /// durably first if the record does not cover it yet.
    pub fn permit(&mut self, seq: u64, birth_round: u64) -> Result<Option<Entry>, Refused> {
        if let Some(floor) = self.floor_seq {
            if seq <= floor {
                return Err(Refused::Sequence { seq, floor });
            }
        }
        if birth_round < self.min_birth {
            return Err(Refused::BirthRound {
                birth: birth_round,
                min: self.min_birth,
            });
        }
        let covered =
            self.reserved_seq.is_some_and(|r| seq <= r) && birth_round <= self.birth_round;
        self.floor_seq = Some(seq);
        self.min_birth = birth_round;
        if covered {
            return Ok(None);
        }
        let reserved = self.reserved_seq.map_or(seq, |r| r.max(seq)) + RESERVE;
        self.reserved_seq = Some(reserved);
        self.birth_round = self.birth_round.max(birth_round);
        Ok(Some(Entry {
            seq: Some(reserved),
            birth_round: self.birth_round,
            head: None,
        }))
    }

    /// The entry after a clean stop whose last signed event is `head`.
    pub fn exact(&self, head: Head) -> Entry {
        Entry {
            seq: Some(head.seq),
            birth_round: self.birth_round.max(head.birth_round),
            head: Some(head),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(seq: u64, birth_round: u64) -> Head {
        Head {
            id: [seq as u8; 32],
            seq,
            birth_round,
            created_at_ns: seq * 10,
        }
    }

    #[test]
    fn the_file_round_trips_and_belongs_to_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.json.signing-record");
        let mut record = SigningRecord::create_fresh(&path, "key-a").unwrap();
        let net = [3u8; 32];
        assert_eq!(record.entry(&net), Entry::default());
        let entry = Entry {
            seq: Some(2_000),
            birth_round: 17,
            head: Some(head(2_000, 17)),
        };
        record.store(&net, entry).unwrap();
        let again = SigningRecord::open(&path, "key-a").unwrap().unwrap();
        assert_eq!(again.entry(&net), entry);
        assert!(matches!(
            SigningRecord::open(&path, "key-b"),
            Err(RecordError::OtherKey { .. })
        ));
        assert!(SigningRecord::open(&dir.path().join("none"), "key-a")
            .unwrap()
            .is_none());
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(
            SigningRecord::open(&path, "key-a"),
            Err(RecordError::Read { .. })
        ));
    }

    #[test]
    fn one_process_at_a_time_holds_a_record() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("node.json.signing-record");
        let held = RecordLock::acquire(&path, Duration::ZERO).unwrap();
        // A second holder (another process, or a second node in this one:
        // `flock` locks conflict between open files) is refused, after
        // waiting, with the paths named.
        let started = std::time::Instant::now();
        let second = RecordLock::acquire(&path, Duration::from_millis(200));
        assert!(started.elapsed() >= Duration::from_millis(200));
        match second {
            Err(RecordError::InUse { path: p, lock }) => {
                assert_eq!(p, path.display().to_string());
                assert!(lock.ends_with(".signing-record.lock"), "{lock}");
            }
            other => panic!("{other:?}"),
        }
        drop(held);
        let again = RecordLock::acquire(&path, Duration::ZERO).unwrap();
        // The lock never touches the record itself.
        assert!(!path.exists());
        drop(again);
        // A holder that lets go while another waits hands it over.
        let held = RecordLock::acquire(&path, Duration::ZERO).unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || RecordLock::acquire(&path, Duration::from_secs(10)))
        };
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn an_import_never_lowers_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let net = [1u8; 32];
        let mut ours = SigningRecord::create_fresh(&dir.path().join("a"), "k").unwrap();
        ours.store(
            &net,
            Entry {
                seq: Some(5_000),
                birth_round: 40,
                head: None,
            },
        )
        .unwrap();
        let mut theirs = SigningRecord::create_fresh(&dir.path().join("b"), "k").unwrap();
        theirs
            .store(
                &net,
                Entry {
                    seq: Some(3_000),
                    birth_round: 55,
                    head: Some(head(3_000, 55)),
                },
            )
            .unwrap();
        ours.merge(&theirs).unwrap();
        assert_eq!(
            ours.entry(&net),
            Entry {
                seq: Some(5_000),
                birth_round: 55,
                head: None
            }
        );
        let other = SigningRecord::create_fresh(&dir.path().join("c"), "other").unwrap();
        assert!(ours.merge(&other).is_err());
    }

    #[test]
    fn resuming_follows_the_record_not_the_ledger() {
        assert_eq!(resume(None, Some(head(9, 3))), Resume::Lost);
        assert_eq!(resume(Some(Entry::default()), None), Resume::Fresh);
        // A clean stop: continue after the exact head, whatever the ledger.
        let exact = Entry {
            seq: Some(9),
            birth_round: 3,
            head: Some(head(9, 3)),
        };
        assert_eq!(
            resume(Some(exact), Some(head(4, 2))),
            Resume::After(head(9, 3))
        );
        assert_eq!(resume(Some(exact), None), Resume::After(head(9, 3)));
        // A crash: past the reservation, not adjacent to it.
        let reserved = Entry {
            seq: Some(1_033),
            birth_round: 7,
            head: None,
        };
        assert_eq!(
            resume(Some(reserved), Some(head(12, 6))),
            Resume::Jump {
                seq: 1_035,
                birth_round: 7
            }
        );
    }

    // Whatever the order of signing requests, a guard never permits an
    // event that could conflict with one it permitted before, nor one the
    // record it resumed from says may exist, and the record covers every
    // permitted event before it is used.
    proptest! {
        #[test]
        fn the_guard_never_permits_a_conflict(
            start_seq in proptest::option::of(0u64..5_000),
            start_birth in 0u64..50,
            asks in proptest::collection::vec((0u64..12_000, 0u64..80), 1..200),
        ) {
            let entry = Entry { seq: start_seq, birth_round: start_birth, head: None };
            let resume = resume(Some(entry), None);
            let mut guard = Guard::new(resume, entry);
            let mut record = entry;
            let mut signed: Vec<(u64, u64)> = Vec::new();
            for (seq, birth) in asks {
                if let Ok(store) = guard.permit(seq, birth) {
                    {
                        if let Some(e) = store {
                            prop_assert!(e.seq >= record.seq && e.birth_round >= record.birth_round);
                            record = e;
                        }
                        prop_assert!(record.seq.is_some_and(|r| seq <= r));
                        prop_assert!(birth <= record.birth_round);
                        if let Some(r) = start_seq {
                            // Past every reserved number and not adjacent.
                            prop_assert!(seq >= r + 2);
                            prop_assert!(birth >= start_birth);
                        }
                        for &(s, b) in &signed {
                            prop_assert!(seq > s, "sequence not increasing");
                            prop_assert!(birth >= b, "lower sequence with a higher birth round");
                        }
                        signed.push((seq, birth));
                    }
                }
            }
        }
    }
}
