//! The event log: an append-only file in front of redb that makes accepted
//! events durable with one `fdatasync` of a few kilobytes, instead of a redb
//! commit that rewrites and syncs B-tree pages (about 15× slower on the
//! same disk, see `docs/PERFORMANCE.md`).
//!
//! Every `Write::Events` the core emits is appended here before it is
//! applied to redb without durability. An append holding an own event is
//! synced before the event leaves the node; since the file is written in
//! order, that sync also covers every event appended before it (its
//! parents among them).
//!
//! Records are numbered (positions continue from file to file). Every redb
//! transaction that applies records also stores the position of the next
//! record it has not applied, so whatever redb state survives a crash —
//! whichever commit made it durable, ours or another thread's — says
//! exactly which records to apply again. From time to time the store makes
//! redb durable and starts a fresh file.
//!
//! File: a header (magic, position of its first record), then records
//! `[len u32][blake3 of the payload, 8 bytes][payload]`. A torn or corrupt
//! tail (a crash in the middle of an append) ends the log: nothing after it
//! was ever synced before anything that depended on it left the node.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write as _},
    path::{Path, PathBuf},
};

use super::{MempoolKey, StoreError, Write};

const MAGIC: &[u8; 8] = b"DGRLOG02";
const HEADER_LEN: usize = 16;
const RECORD_HEAD: usize = 12;
/// A record larger than this is corrupt (events are bounded far below).
const MAX_RECORD: usize = 256 << 20;

fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Db(format!("event log {}: {e}", path.display()))
}

/// The open log, positioned at its end.
pub(super) struct EventLog {
    file: File,
    path: PathBuf,
    /// Position of the next record appended.
    next: u64,
    /// Bytes appended since the header.
    len: u64,
    /// Reused encoding buffer.
    buf: Vec<u8>,
}

/// What a log held when it was opened.
pub(super) struct Found {
    /// Position of `writes[0]`.
    pub first: u64,
    pub writes: Vec<Write>,
}

impl Found {
    /// Position after the last record.
    pub fn end(&self) -> u64 {
        self.first + self.writes.len() as u64
    }
}

impl EventLog {
    /// Reads the log at `path` (if any): its intact records and where they
    /// start. A missing or headerless file holds nothing.
    pub fn read(path: &Path) -> Result<Option<Found>, StoreError> {
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => f.read_to_end(&mut bytes).map_err(|e| io_err(path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path, e)),
        };
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Ok(None);
        }
        let first = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let mut writes = Vec::new();
        let mut at = HEADER_LEN;
        while let Some(head) = bytes.get(at..at + RECORD_HEAD) {
            let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
            if len > MAX_RECORD {
                break;
            }
            let Some(payload) = bytes.get(at + RECORD_HEAD..at + RECORD_HEAD + len) else {
                break;
            };
            if blake3::hash(payload).as_bytes()[..8] != head[4..12] {
                break;
            }
            match decode(payload) {
                Some(write) => writes.push(write),
                None => break,
            }
            at += RECORD_HEAD + len;
        }
        Ok(Some(Found { first, writes }))
    }

    /// Starts an empty log at `path` whose first record will have position
    /// `next`; the header is synced.
    pub fn create(path: &Path, next: u64) -> Result<EventLog, StoreError> {
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&next.to_le_bytes());
        file.write_all(&header).map_err(|e| io_err(path, e))?;
        file.sync_all().map_err(|e| io_err(path, e))?;
        Ok(EventLog {
            file,
            path: path.to_path_buf(),
            next,
            len: 0,
            buf: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Position of the next record.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Bytes of records in this file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends the `Events` writes among `writes` in one `write`; with
    /// `sync`, they (and everything appended before) are on disk when it
    /// returns. Returns whether anything was appended.
    pub fn append(&mut self, writes: &[Write], sync: bool) -> Result<bool, StoreError> {
        self.buf.clear();
        for write in writes {
            if !matches!(write, Write::Events { .. }) {
                continue;
            }
            let start = self.buf.len();
            self.buf.extend_from_slice(&[0u8; RECORD_HEAD]);
            encode(write, &mut self.buf);
            let payload_len = self.buf.len() - start - RECORD_HEAD;
            let sum = blake3::hash(&self.buf[start + RECORD_HEAD..]);
            self.buf[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
            self.buf[start + 4..start + RECORD_HEAD].copy_from_slice(&sum.as_bytes()[..8]);
            self.next += 1;
        }
        if !self.buf.is_empty() {
            self.file
                .write_all(&self.buf)
                .map_err(|e| io_err(&self.path, e))?;
            self.len += self.buf.len() as u64;
        }
        if sync {
            self.file.sync_data().map_err(|e| io_err(&self.path, e))?;
        }
        Ok(!self.buf.is_empty())
    }
}

fn encode(write: &Write, out: &mut Vec<u8>) {
    let Write::Events {
        events,
        own_seq,
        mempool_taken,
    } = write
    else {
        return;
    };
    match own_seq {
        Some(seq) => {
            out.push(1);
            out.extend_from_slice(&seq.to_le_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for (id, bytes) in events {
        out.extend_from_slice(id);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(&(mempool_taken.len() as u32).to_le_bytes());
    for key in mempool_taken {
        out.extend_from_slice(key);
    }
}

/// Reads fields off the front of a record.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

fn decode(payload: &[u8]) -> Option<Write> {
    let mut c = Cursor(payload);
    let own_seq = match c.take(1)?[0] {
        0 => None,
        1 => Some(c.u64()?),
        _ => return None,
    };
    let n = c.u32()? as usize;
    // Each event needs at least 36 bytes: bound the allocation by the input.
    let mut events = Vec::with_capacity(n.min(payload.len() / 36));
    for _ in 0..n {
        let id = c.array::<32>()?;
        let len = c.u32()? as usize;
        events.push((id, c.take(len)?.to_vec()));
    }
    let n = c.u32()? as usize;
    let mut mempool_taken: Vec<MempoolKey> = Vec::with_capacity(n.min(payload.len() / 36));
    for _ in 0..n {
        mempool_taken.push(c.array::<36>()?);
    }
    c.0.is_empty().then_some(Write::Events {
        events,
        own_seq,
        mempool_taken,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn events_write(n: u8, own: Option<u64>) -> Write {
        Write::Events {
            events: (0..n).map(|i| ([i; 32], vec![i; i as usize * 7])).collect(),
            own_seq: own,
            mempool_taken: (0..n % 3).map(|i| [i; 36]).collect(),
        }
    }

    fn same(a: &Write, b: &Write) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn appended_records_read_back_in_order_and_other_writes_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let mut log = EventLog::create(&path, 7).unwrap();
        assert_eq!(log.next(), 7);
        let decided = Write::Decided {
            order: Vec::new(),
            txs: Vec::new(),
            snapshot: None,
            pruned: Vec::new(),
            forget_ordered_through_round: None,
            mempool_added: Vec::new(),
            mempool_removed: Vec::new(),
            checkpoint: None,
        };
        let a = events_write(3, None);
        let b = events_write(5, Some(9));
        assert!(log.append(&[a.clone(), decided.clone()], false).unwrap());
        assert!(!log.append(&[decided], true).unwrap());
        assert!(log.append(std::slice::from_ref(&b), true).unwrap());
        assert_eq!(log.next(), 9);
        let found = EventLog::read(&path).unwrap().unwrap();
        assert_eq!(found.first, 7);
        assert_eq!(found.end(), 9);
        assert_eq!(found.writes.len(), 2);
        assert!(same(&found.writes[0], &a));
        assert!(same(&found.writes[1], &b));
    }

    #[test]
    fn a_missing_or_headerless_log_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        assert!(EventLog::read(&path).unwrap().is_none());
        std::fs::write(&path, b"DGRL").unwrap();
        assert!(EventLog::read(&path).unwrap().is_none());
        std::fs::write(&path, b"not a log at all, but long enough").unwrap();
        assert!(EventLog::read(&path).unwrap().is_none());
    }

    proptest! {
        /// A crash can cut the file anywhere or leave garbage after the last
        /// complete record: reading yields exactly the records that were
        /// whole, never a partial or altered one.
        #[test]
        fn a_torn_or_corrupt_tail_ends_the_log(
            counts in proptest::collection::vec(0u8..6, 1..6),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            corrupt in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("events.log");
            let mut log = EventLog::create(&path, 1).unwrap();
            let writes: Vec<Write> = counts.iter().map(|&n| events_write(n, Some(n as u64))).collect();
            let mut ends = vec![HEADER_LEN];
            for w in &writes {
                log.append(std::slice::from_ref(w), false).unwrap();
                ends.push(HEADER_LEN + log.len() as usize);
            }
            let mut bytes = std::fs::read(&path).unwrap();
            let total = bytes.len();
            let (kept_bytes, whole) = if corrupt {
                // Flip one byte of one record: that record and all after go.
                let at = HEADER_LEN + flip.index(total - HEADER_LEN);
                bytes[at] ^= 0x5a;
                let hit = ends.iter().rposition(|&e| e <= at).unwrap();
                (total, hit)
            } else {
                let len = HEADER_LEN + cut.index(total - HEADER_LEN + 1);
                let whole = ends.iter().rposition(|&e| e <= len).unwrap();
                (len, whole)
            };
            bytes.truncate(kept_bytes);
            std::fs::write(&path, &bytes).unwrap();
            let found = EventLog::read(&path).unwrap().unwrap();
            prop_assert_eq!(found.writes.len(), whole);
            for (got, want) in found.writes.iter().zip(&writes) {
                prop_assert!(same(got, want));
            }
        }

        /// Arbitrary bytes after a valid header never panic the reader.
        #[test]
        fn garbage_records_are_refused_without_panicking(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("events.log");
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&3u64.to_le_bytes());
            bytes.extend_from_slice(&tail);
            std::fs::write(&path, &bytes).unwrap();
            let found = EventLog::read(&path).unwrap().unwrap();
            prop_assert_eq!(found.first, 3);
        }
    }
}
