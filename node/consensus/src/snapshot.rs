//! Snapshot and restore of the whole consensus state (crate docs,
//! "Restart").
//!
//! # Format, version 3
//! Integers are unsigned LEB128 varints in their shortest form unless a
//! width is given, `[n]` is `n` raw bytes and `bits(n)` is `n` booleans
//! packed least significant bit first into `ceil(n / 8)` bytes with zero
//! padding. Events are stored as `len, Event::encode` (canonical).
//!
//! ```text
//! [8] magic "DAGGERHG", u16 LE version (= 3), [32] network id
//! scalars:   last_decided, sealed, max_round, u8 fame_dirty, dropped,
//!            ordered_count, [32] running_hash, u8 has_last_time, (last_time)
//! schedule:  C, C x [32] creator                      (dense creator table)
//!            E, E x (first round, M, M x (creator index, stake))
//!                                                     (members by ascending id)
//! creators:  bits(C) irregular,
//!            L, L x (u8 present, ([32] id, seq, birth round, time))
//!                                                     (chain head per creator)
//! graph:     V, V x node                              (held events, insertion order;
//!                                                      round = birth round)
//!   node  =  event, u8 flags,
//!            (i - index of self-parent), (i - index of other-parent)   (if live)
//!            k, k x (top, fork)                       (the "see" summary)
//!   flags =  bit 0 ordered, bits 1-2 fame (0 undecided, 1 no, 2 yes),
//!            bit 3 self-parent live, bit 4 other-parent live,
//!            bit 5 strongly-seen cache, bit 6 first held event of its
//!            (creator, seq)
//!   top   =  0 (none) | i - index(top) + 1;  fork = 0 | round - fork_round + 1
//!            then, for each node with bit 5 in order: bits(W) over the
//!            witnesses of its previous round
//! votes:     K, K x (candidate index, n, n x (voter index << 1 | vote))
//!                                                     (indices ascending)
//! buffer:    B, B x (u8 waits: bit 0 self-parent, bit 1 other-parent, event)
//!                                                     (oldest first)
//! parked:    P, P x event                             (oldest first)
//! evidence:  Q, Q x (event, event)                    (oldest first)
//! discards:  D, D x [32] id                           (not yet reported)
//! [32] blake3 hash of everything above
//! ```
//!
//! # Stored, recomputed, normalised
//! Stored: everything that is history (events, rounds, fame, order flags,
//! "see" summaries, strongly-seen caches, fame votes, roster schedule,
//! order cursor, waiting areas, evidence, per-creator bookkeeping,
//! counters). Recomputed exactly on restore: slot numbers (events are
//! renumbered in insertion order), the id and round indices, witness flags
//! and positions, each event's witness on its own chain and its list of
//! seen witnesses, self-child counts and tips, dense roster stakes, the
//! buffer's waiting lists. Normalised, because no code path can observe
//! them: references into pruned rounds (parent slots, summary tops) become
//! "none", the strongly-seen cache of a witness whose previous round is
//! pruned is dropped (only witnesses of rounds `>= last_decided + 3` vote
//! with it), insertion counters and traversal marks restart. The encoding
//! is therefore canonical: two instances in the same observable state give
//! the same bytes, and `snapshot(restore(s)) == s` for every accepted `s`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::codec;
use crate::error::SnapshotError;
use crate::event::{CreatorId, Event, EventId};
use crate::evidence::Equivocation;
use crate::fame::Votes;
use crate::graph::{Graph, Node, RoundSlots, SeeEntry, NONE};
use crate::hashgraph::{parent_matches, ChainHead, Hashgraph, MAX_PENDING_EVIDENCE};
use crate::order::OrderState;
use crate::pending::{ParentBuffer, Parked};
use crate::roster::{Roster, Schedule};
use crate::{links, verify, Config, Limits, ANCIENT_HORIZON, ROSTER_DELAY};

const MAGIC: [u8; 8] = *b"DAGGERHG";
/// Version of the snapshot format written by [`Hashgraph::snapshot`].
pub(crate) const SNAPSHOT_VERSION: u16 = 3;
const HEAD: usize = MAGIC.len() + 2 + 32;
const SUM: usize = 32;
/// Shortest canonical event encoding (no parents, no transactions).
const MIN_EVENT: usize = 1 + 32 + 8 + 8 + 1 + 1 + 8 + 32 + 4 + 64;
/// Shortest stored event: length prefix (two bytes from 128 on) + event.
const MIN_STORED_EVENT: usize = 2 + MIN_EVENT;
/// Shortest node: event, flags, summary length and one entry.
const MIN_NODE: usize = MIN_STORED_EVENT + 1 + 1 + 2;
/// Bound on counters, rounds and sequence numbers, far above anything a
/// node reaches, so that no later `+ 1` or `+ ROSTER_DELAY` can overflow.
const MAX_VALUE: u64 = 1 << 62;
/// Entries a roster schedule can hold: the one in force at
/// `pruned_through + 1`, plus one per later round up to
/// `last_decided + ROSTER_DELAY`.
const MAX_SCHEDULE_ENTRIES: u64 = 1 + ROSTER_DELAY + ANCIENT_HORIZON;

type Result<T> = std::result::Result<T, SnapshotError>;

fn inconsistent<T>(what: &'static str) -> Result<T> {
    Err(SnapshotError::Inconsistent(what))
}

fn non_canonical<T>(what: &'static str) -> Result<T> {
    Err(SnapshotError::NonCanonical(what))
}

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
    fn var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }
    fn len(&mut self, n: usize) {
        self.var(n as u64);
    }
    fn event(&mut self, e: &Event) {
        self.len(e.encoded_len());
        codec::encode_into(e, &mut self.out);
    }
    fn bits(&mut self, bits: impl IntoIterator<Item = bool>) {
        let (mut byte, mut k) = (0u8, 0);
        for b in bits {
            byte |= u8::from(b) << k;
            k += 1;
            if k == 8 {
                self.out.push(byte);
                (byte, k) = (0, 0);
            }
        }
        if k > 0 {
            self.out.push(byte);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(SnapshotError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn flag(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => non_canonical("boolean other than 0 or 1"),
        }
    }
    /// Shortest-form LEB128.
    fn var(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return non_canonical("varint longer than 64 bits");
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return non_canonical("overlong varint");
                }
                return Ok(v);
            }
        }
        non_canonical("varint longer than 64 bits")
    }
    /// A counter, round or sequence number (bounded by [`MAX_VALUE`]).
    fn value(&mut self) -> Result<u64> {
        let v = self.var()?;
        if v > MAX_VALUE {
            return Err(SnapshotError::LimitExceeded {
                what: "counter, round or sequence number",
                count: v,
                max: MAX_VALUE,
            });
        }
        Ok(v)
    }
    /// A count of items taking at least `min_each` bytes each: refused
    /// before anything is allocated if the bytes left cannot hold them.
    fn count(&mut self, min_each: usize) -> Result<usize> {
        let n = self.var()?;
        if n > (self.remaining() / min_each.max(1)) as u64 {
            return Err(SnapshotError::Truncated);
        }
        Ok(n as usize)
    }
    /// An index into a table of `len` items.
    fn index(&mut self, len: usize, what: &'static str) -> Result<usize> {
        let v = self.var()?;
        match usize::try_from(v) {
            Ok(i) if i < len => Ok(i),
            _ => inconsistent(what),
        }
    }
    /// A stored event, held to the static rules every event passed when
    /// it was inserted (a resealed snapshot must not smuggle in a header
    /// no peer could have sent, such as a sequence number past the bound).
    fn event(&mut self, limits: &Limits) -> Result<Event> {
        let len = self.count(1)?;
        if len > limits.max_event_bytes {
            return Err(SnapshotError::LimitExceeded {
                what: "event bytes",
                count: len as u64,
                max: limits.max_event_bytes as u64,
            });
        }
        let event = Event::decode(self.take(len)?)?;
        verify::check_shape(&event, limits).map_err(SnapshotError::BadEvent)?;
        Ok(event)
    }
    fn bits(&mut self, n: usize) -> Result<Vec<bool>> {
        let bytes = self.take(n.div_ceil(8))?;
        if !n.is_multiple_of(8) && bytes[n / 8] >> (n % 8) != 0 {
            return non_canonical("nonzero padding bits");
        }
        Ok((0..n).map(|i| (bytes[i / 8] >> (i % 8)) & 1 == 1).collect())
    }
    /// Index of an earlier node, stored as the distance back from node `i`.
    fn back_ref(&mut self, i: usize) -> Result<usize> {
        let d = self.var()?;
        if d == 0 || d > i as u64 {
            return inconsistent("parent reference out of range");
        }
        Ok(i - d as usize)
    }
}

impl Hashgraph {
    /// Exact, versioned, self-contained encoding of the whole consensus
    /// state; [`Hashgraph::restore`] turns it back into an instance that
    /// behaves identically. Canonical (the same observable state always
    /// gives the same bytes) and checksummed. Costs one pass over the held
    /// events; see `BENCHMARKS.md` for sizes and times.
    pub fn snapshot(&self) -> Vec<u8> {
        let g = &self.g;
        let pt = g.pruned_through;
        let mut w = Writer {
            out: Vec::with_capacity(
                HEAD + SUM + 256 + g.len * (260 + 4 * self.sched.creators.len()),
            ),
        };
        w.raw(&MAGIC);
        w.raw(&SNAPSHOT_VERSION.to_le_bytes());
        w.raw(&self.config.network_id);

        w.var(self.last_decided);
        w.var(self.sealed);
        w.var(self.max_round);
        w.u8(u8::from(self.fame_dirty));
        w.var(self.dropped);
        w.var(self.order.count);
        w.raw(&self.order.running_hash);
        match self.order.last_time {
            None => w.u8(0),
            Some(t) => {
                w.u8(1);
                w.var(t);
            }
        }

        let sched = &self.sched;
        let k_all = sched.creators.len();
        w.len(k_all);
        for c in &sched.creators {
            w.raw(&c.0);
        }
        let entries: Vec<(u64, &Roster)> = sched.entries().collect();
        w.len(entries.len());
        for (from, roster) in entries {
            w.var(from);
            w.len(roster.len());
            for (c, stake) in roster.members() {
                w.var(sched.index.get(c).copied().map_or(u64::MAX, u64::from));
                w.var(*stake);
            }
        }

        w.bits((0..k_all).map(|c| g.irregular.get(c).copied().unwrap_or(false)));
        w.len(self.latest.len());
        for l in &self.latest {
            match l {
                None => w.u8(0),
                Some(h) => {
                    w.u8(1);
                    w.raw(&h.id.0);
                    w.var(h.seq);
                    w.var(h.birth_round);
                    w.var(h.created_at_ns);
                }
            }
        }

        // Held events in insertion order; `idx` maps a slot to its index.
        let mut order: Vec<(u64, u32)> = g.live_slots().map(|s| (g.node(s).insert_no, s)).collect();
        order.sort_unstable();
        let mut idx = vec![NONE; g.slots.len()];
        for (i, &(_, s)) in order.iter().enumerate() {
            idx[s as usize] = i as u32;
        }
        // Only references whose round is above the pruned horizon still
        // point at the event they were made for.
        let live_idx = |slot: u32, round: u64| -> Option<u64> {
            if !g.live(slot, round) {
                return None;
            }
            let i = *idx.get(slot as usize)?;
            (i != NONE).then_some(u64::from(i))
        };
        w.len(order.len());
        let mut strongly_seen = Vec::new();
        for (i, &(_, s)) in order.iter().enumerate() {
            let i = i as u64;
            let n = g.node(s);
            w.event(&n.event);
            let sp = live_idx(n.sp, n.sp_round);
            let op = live_idx(n.op, n.op_round);
            let ss = n
                .strongly_seen
                .as_deref()
                .filter(|_| n.round >= 2 && n.round - 1 > pt);
            let fame: u8 = match n.fame {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            };
            let owner = g
                .chains
                .get(n.creator as usize)
                .and_then(|chain| chain.get(&n.seq))
                == Some(&s);
            w.u8(u8::from(n.ordered)
                | fame << 1
                | u8::from(sp.is_some()) << 3
                | u8::from(op.is_some()) << 4
                | u8::from(ss.is_some()) << 5
                | u8::from(owner) << 6
                | u8::from(n.sound) << 7);
            for p in [sp, op].into_iter().flatten() {
                w.var(i.saturating_sub(p));
            }
            w.len(n.see.len());
            for e in n.see.iter() {
                w.var(live_idx(e.top, e.top_round).map_or(0, |t| i.saturating_sub(t) + 1));
                w.var(if e.fork_round == 0 {
                    0
                } else {
                    n.round.saturating_sub(e.fork_round) + 1
                });
            }
            if let Some(list) = ss {
                strongly_seen.push((n.round - 1, list));
            }
        }
        for (rho, list) in strongly_seen {
            // The list is a subsequence of its round's witness list.
            let witnesses = g.rounds.get(&rho).map_or(&[][..], |rs| &rs.witnesses[..]);
            let mut k = 0;
            w.bits(witnesses.iter().map(|x| {
                let hit = list.get(k) == Some(x);
                k += usize::from(hit);
                hit
            }));
        }

        let slot_idx = |s: u32| -> Option<u32> {
            let i = *idx.get(s as usize)?;
            (i != NONE).then_some(i)
        };
        let mut candidates: Vec<(u32, Vec<(u32, bool)>)> = self
            .votes
            .by_candidate
            .iter()
            .filter_map(|(c, m)| {
                let mut voters: Vec<(u32, bool)> = m
                    .iter()
                    .filter_map(|(v, b)| Some((slot_idx(*v)?, *b)))
                    .collect();
                voters.sort_unstable();
                (!voters.is_empty()).then_some((slot_idx(*c)?, voters))
            })
            .collect();
        candidates.sort_unstable_by_key(|c| c.0);
        w.len(candidates.len());
        for (c, voters) in candidates {
            w.var(c.into());
            w.len(voters.len());
            for (v, b) in voters {
                w.var(u64::from(v) << 1 | u64::from(b));
            }
        }

        let buffered = self.buffer.entries();
        w.len(buffered.len());
        for (e, sp, op) in buffered {
            w.u8(u8::from(sp) | u8::from(op) << 1);
            w.event(e);
        }
        w.len(self.parked.len());
        for e in self.parked.events() {
            w.event(e);
        }
        w.len(self.evidence.len());
        for ev in &self.evidence {
            w.event(&ev.first);
            w.event(&ev.second);
        }
        w.len(self.pending_discards.len());
        for id in &self.pending_discards {
            w.raw(&id.0);
        }

        let sum = blake3::hash(&w.out);
        w.raw(sum.as_bytes());
        w.out
    }

    /// Rebuild the instance a [`Hashgraph::snapshot`] was taken of. It
    /// behaves identically to the original from that point on (same
    /// outputs for the same calls), provided `config` equals the original
    /// configuration. Never panics: every field is range- and
    /// cross-checked, and the checksum catches corruption.
    pub fn restore(config: Config, bytes: &[u8]) -> std::result::Result<Hashgraph, SnapshotError> {
        let m = bytes.len().min(MAGIC.len());
        if bytes[..m] != MAGIC[..m] {
            return Err(SnapshotError::BadMagic);
        }
        if bytes.len() < HEAD + SUM {
            return Err(SnapshotError::Truncated);
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != SNAPSHOT_VERSION && version != 2 {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let (body, sum) = bytes.split_at(bytes.len() - SUM);
        if blake3::hash(body).as_bytes()[..] != sum[..] {
            return Err(SnapshotError::ChecksumMismatch);
        }
        let mut found = [0u8; 32];
        found.copy_from_slice(&body[10..HEAD]);
        if found != config.network_id {
            return Err(SnapshotError::NetworkMismatch {
                expected: config.network_id,
                found,
            });
        }
        let mut r = Reader {
            buf: &body[HEAD..],
            pos: 0,
        };
        let hg = decode(config, &mut r, version)?;
        if r.remaining() != 0 {
            return Err(SnapshotError::TrailingBytes(r.remaining()));
        }
        Ok(hg)
    }
}

/// Version 2 (before sound events) is read too: every event it holds was
/// checked against its parents when inserted (the rules then refused
/// anything else), so each is sound.
fn decode(config: Config, r: &mut Reader<'_>, version: u16) -> Result<Hashgraph> {
    let limits = config.limits.clone();

    let last_decided = r.value()?;
    let sealed = r.value()?;
    // `poll` seals the last decided round before deciding the next one.
    if sealed > last_decided || sealed + 1 < last_decided {
        return inconsistent("sealed round is neither the last decided round nor the one before");
    }
    let max_round = r.value()?;
    if max_round < last_decided || max_round > sealed + ROSTER_DELAY {
        return inconsistent("last created round out of range");
    }
    let fame_dirty = r.flag()?;
    // Plain tallies, incremented saturating: any u64 is a valid state.
    let dropped = r.var()?;
    let count = r.var()?;
    let running_hash = r.array::<32>()?;
    let last_time = if r.flag()? { Some(r.var()?) } else { None };
    if last_time.is_some() != (count > 0) {
        return inconsistent("order time and ordered count disagree");
    }
    let pruned_through = last_decided.saturating_sub(ANCIENT_HORIZON);

    // Roster schedule.
    let k_all = r.count(32)?;
    if k_all >= NONE as usize {
        return Err(SnapshotError::LimitExceeded {
            what: "creators",
            count: k_all as u64,
            max: u64::from(NONE) - 1,
        });
    }
    let mut creators = Vec::with_capacity(k_all);
    let mut known = HashSet::with_capacity(k_all);
    for _ in 0..k_all {
        let c = CreatorId(r.array()?);
        if !known.insert(c) {
            return inconsistent("creator listed twice");
        }
        creators.push(c);
    }
    drop(known);
    let n_entries = r.count(3)?;
    if n_entries == 0 {
        return inconsistent("empty roster schedule");
    }
    if n_entries as u64 > MAX_SCHEDULE_ENTRIES {
        return Err(SnapshotError::LimitExceeded {
            what: "roster schedule entries",
            count: n_entries as u64,
            max: MAX_SCHEDULE_ENTRIES,
        });
    }
    let mut entries = Vec::with_capacity(n_entries);
    let mut prev = 0;
    for k in 0..n_entries {
        let from = r.value()?;
        let ok = if k == 0 {
            from >= 1 && from <= pruned_through + 1
        } else {
            from > prev && from > pruned_through + 1 && from <= last_decided + ROSTER_DELAY
        };
        if !ok {
            return inconsistent("roster schedule round out of range");
        }
        prev = from;
        let m = r.count(2)?;
        let mut members = Vec::with_capacity(m);
        let mut last: Option<CreatorId> = None;
        for _ in 0..m {
            let c = creators[r.index(k_all, "roster member missing from the creator table")?];
            if last.is_some_and(|l| l >= c) {
                return non_canonical("roster members not in ascending order");
            }
            last = Some(c);
            members.push((c, r.var()?));
        }
        entries.push((from, Roster::new(members)?));
    }
    let sched = Schedule::from_parts(creators, entries);

    // Per creator.
    let irregular = r.bits(k_all)?;
    let n_latest = r.count(1)?;
    if n_latest > k_all {
        return inconsistent("latest event recorded for an unknown creator");
    }
    let mut latest = Vec::with_capacity(n_latest);
    for _ in 0..n_latest {
        latest.push(if r.flag()? {
            Some(ChainHead {
                id: EventId(r.array()?),
                seq: r.value()?,
                birth_round: r.value()?,
                created_at_ns: r.var()?,
            })
        } else {
            None
        });
    }

    // Held events, in insertion order: node `i` gets slot `i`.
    let v = r.count(MIN_NODE)?;
    if v >= NONE as usize {
        return Err(SnapshotError::LimitExceeded {
            what: "held events",
            count: v as u64,
            max: u64::from(NONE) - 1,
        });
    }
    let mut nodes: Vec<Node> = Vec::with_capacity(v);
    let mut ids: HashMap<EventId, u32> = HashMap::with_capacity(v);
    let mut chains: Vec<BTreeMap<u64, u32>> = vec![BTreeMap::new(); k_all];
    let mut with_strongly_seen = Vec::new();
    for i in 0..v {
        let event = r.event(&limits)?;
        let id = event.id();
        let Some(&creator) = sched.index.get(&event.creator()) else {
            return inconsistent("held event by a creator missing from the creator table");
        };
        let seq = event.seq();
        if seq > MAX_VALUE {
            return inconsistent("held event sequence number out of range");
        }
        let round = event.birth_round();
        if round <= pruned_through || round > max_round {
            return inconsistent("held event round out of range");
        }
        let flags = r.u8()?;
        let ordered = flags & 1 != 0;
        let sound = match version {
            2 if flags & 0x80 != 0 => return non_canonical("unknown node flag"),
            2 => true,
            _ => flags & 0x80 != 0,
        };
        let fame = match (flags >> 1) & 3 {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return non_canonical("fame code 3"),
        };

        let sp = if flags & 0x08 != 0 {
            let j = r.back_ref(i)?;
            if !followed(&event, creator, true, &nodes[j]) {
                return inconsistent("self-parent reference does not match the event");
            }
            Some(j)
        } else {
            if unreferenced_but_followed(&event, creator, true, &ids, &nodes) {
                return inconsistent("held self-parent not referenced");
            }
            None
        };
        let op = if flags & 0x10 != 0 {
            let j = r.back_ref(i)?;
            if !followed(&event, creator, false, &nodes[j]) {
                return inconsistent("other-parent reference does not match the event");
            }
            Some(j)
        } else {
            if unreferenced_but_followed(&event, creator, false, &ids, &nodes) {
                return inconsistent("held other-parent not referenced");
            }
            None
        };
        // A parent in pruned rounds is below every held round, so only a
        // live self-parent of the same round makes a non-witness.
        let witness = sp.is_none_or(|j| nodes[j].round < round);
        if fame.is_some() && (!witness || round > last_decided + 1) {
            return inconsistent("fame recorded for an event that is not being elected");
        }
        if witness && round <= last_decided && fame.is_none() {
            return inconsistent("undecided witness in a decided round");
        }
        if ordered && round > last_decided {
            return inconsistent("ordered event above the last decided round");
        }
        let first_witness = match sp {
            Some(j) if !witness => nodes[j].first_witness,
            _ => i as u32,
        };

        let k = r.count(2)?;
        if k > k_all || k <= creator as usize {
            return inconsistent("see summary length");
        }
        let mut see = Vec::with_capacity(k);
        let mut sees_witness = Vec::with_capacity(k);
        for m in 0..k {
            let top_code = r.var()?;
            let fork_code = r.var()?;
            let fork_round = match fork_code {
                0 => 0,
                f if f - 1 < round => round - (f - 1),
                _ => return inconsistent("fork round above the event's round"),
            };
            let own = m == creator as usize;
            let (top, top_round) = if top_code == 0 {
                (NONE, 0)
            } else {
                let d = top_code - 1;
                if d > i as u64 {
                    return inconsistent("see reference out of range");
                }
                let j = i - d as usize;
                if own != (j == i) {
                    return inconsistent("see reference to the wrong event");
                }
                if j == i {
                    (j as u32, round)
                } else {
                    let t = &nodes[j];
                    if t.creator as usize != m || t.round > round {
                        return inconsistent("see reference to the wrong creator or round");
                    }
                    (j as u32, t.round)
                }
            };
            if own && (top != NONE) != (round > fork_round) {
                return inconsistent("own see entry disagrees with its fork round");
            }
            let seen_witness = if own && top != NONE {
                first_witness
            } else if top != NONE && top_round == round && fork_round < round {
                nodes[top as usize].first_witness
            } else {
                NONE
            };
            see.push(SeeEntry {
                top,
                top_round,
                fork_round,
            });
            sees_witness.push(seen_witness);
        }
        if flags & 0x20 != 0 {
            if !witness || round < 2 || round - 1 <= pruned_through {
                return inconsistent("strongly-seen cache on an event that cannot use one");
            }
            with_strongly_seen.push(i);
        }
        if flags & 0x40 != 0 && chains[creator as usize].insert(seq, i as u32).is_some() {
            return inconsistent("two first events for one (creator, seq)");
        }
        if ids.insert(id, i as u32).is_some() {
            return inconsistent("event held twice");
        }
        if let Some(j) = sp {
            nodes[j].self_children += 1;
        }
        let time = event.created_at_ns();
        nodes.push(Node {
            event,
            creator,
            seq,
            time,
            sp: sp.map_or(NONE, |j| j as u32),
            sp_round: sp.map_or(0, |j| nodes[j].round),
            op: op.map_or(NONE, |j| j as u32),
            op_round: op.map_or(0, |j| nodes[j].round),
            round,
            witness,
            first_witness,
            witness_pos: NONE,
            see: see.into_boxed_slice(),
            sees_witness: sees_witness.into_boxed_slice(),
            strongly_seen: None,
            fame,
            sound,
            ordered,
            insert_no: i as u64,
            self_children: 0,
            mark: 0,
        });
    }

    let mut rounds: BTreeMap<u64, RoundSlots> = BTreeMap::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        let rs = rounds.entry(n.round).or_default();
        rs.events.push(i as u32);
        if n.witness {
            n.witness_pos = rs.witnesses.len() as u32;
            rs.witnesses.push(i as u32);
        }
    }
    for i in with_strongly_seen {
        let witnesses = rounds
            .get(&(nodes[i].round - 1))
            .map_or(&[][..], |rs| &rs.witnesses[..]);
        let bits = r.bits(witnesses.len())?;
        let list: Vec<u32> = witnesses
            .iter()
            .zip(bits)
            .filter(|(_, b)| *b)
            .map(|(&w, _)| w)
            .collect();
        nodes[i].strongly_seen = Some(list.into_boxed_slice());
    }

    // Fame votes: only witnesses of round `last_decided + 1` are ever
    // candidates, and only witnesses of later rounds vote.
    let n_candidates = r.count(2)?;
    let mut votes = Votes::default();
    let mut prev_candidate = None;
    for _ in 0..n_candidates {
        let c = r.index(v, "vote for an unknown candidate")?;
        if prev_candidate.is_some_and(|p| p >= c) {
            return non_canonical("vote candidates not in ascending order");
        }
        prev_candidate = Some(c);
        let cn = &nodes[c];
        if !cn.witness || cn.round != last_decided + 1 {
            return inconsistent("vote for an event that is not being elected");
        }
        let n_voters = r.count(1)?;
        if n_voters == 0 {
            return non_canonical("candidate without votes");
        }
        let mut cast = HashMap::with_capacity(n_voters);
        let mut prev_voter = None;
        for _ in 0..n_voters {
            let x = r.var()?;
            let voter = x >> 1;
            if prev_voter.is_some_and(|p| p >= voter) {
                return non_canonical("voters not in ascending order");
            }
            prev_voter = Some(voter);
            let vn = match usize::try_from(voter).ok().and_then(|y| nodes.get(y)) {
                Some(vn) => vn,
                None => return inconsistent("vote by an unknown event"),
            };
            if !vn.witness || vn.round <= cn.round {
                return inconsistent("vote by an event that cannot vote");
            }
            cast.insert(voter as u32, x & 1 == 1);
        }
        votes.by_candidate.insert(c as u32, cast);
    }

    // Waiting areas and evidence.
    let mut waiting_ids: HashSet<EventId> = HashSet::new();
    let cap = config.limits.max_buffered_events.max(1);
    let n_buffered = r.count(1 + MIN_STORED_EVENT)?;
    if n_buffered > cap {
        return Err(SnapshotError::LimitExceeded {
            what: "buffered events",
            count: n_buffered as u64,
            max: cap as u64,
        });
    }
    let mut buffered = Vec::with_capacity(n_buffered);
    for _ in 0..n_buffered {
        let waits = r.u8()?;
        if waits > 3 {
            return non_canonical("unknown waiting flag");
        }
        let e = r.event(&limits)?;
        let lacks = |p: Option<EventId>| p.is_some_and(|p| !ids.contains_key(&p));
        let (wsp, wop) = (waits & 1 != 0, waits & 2 != 0);
        if waits == 0
            || (wsp && !lacks(e.self_parent()))
            || (wop && !lacks(e.other_parent()))
            || (wsp && wop && e.self_parent() == e.other_parent())
        {
            return inconsistent("buffered event does not wait for a missing parent");
        }
        if !sched.index.contains_key(&e.creator()) {
            return inconsistent("buffered event by a creator missing from the creator table");
        }
        if ids.contains_key(&e.id()) || !waiting_ids.insert(e.id()) {
            return inconsistent("buffered event is held or buffered twice");
        }
        buffered.push((e, wsp, wop));
    }
    let cap = config.limits.max_parked_events;
    let n_parked = r.count(MIN_STORED_EVENT)?;
    if n_parked > cap {
        return Err(SnapshotError::LimitExceeded {
            what: "parked events",
            count: n_parked as u64,
            max: cap as u64,
        });
    }
    let mut parked = Vec::with_capacity(n_parked);
    for _ in 0..n_parked {
        let e = r.event(&limits)?;
        if !sched.index.contains_key(&e.creator()) {
            return inconsistent("parked event by a creator missing from the creator table");
        }
        if ids.contains_key(&e.id()) || !waiting_ids.insert(e.id()) {
            return inconsistent("parked event is held, buffered or parked twice");
        }
        parked.push(e);
    }
    let n_evidence = r.count(2 * MIN_STORED_EVENT)?;
    if n_evidence > MAX_PENDING_EVIDENCE {
        return Err(SnapshotError::LimitExceeded {
            what: "pending evidence",
            count: n_evidence as u64,
            max: MAX_PENDING_EVIDENCE as u64,
        });
    }
    let mut evidence = VecDeque::with_capacity(n_evidence);
    for _ in 0..n_evidence {
        let first = r.event(&limits)?;
        let second = r.event(&limits)?;
        if first.creator() != second.creator() || first.id() == second.id() {
            return inconsistent("evidence is not two events of one creator");
        }
        evidence.push_back(Equivocation { first, second });
    }
    let n_discards = r.count(32)?;
    let mut pending_discards = Vec::with_capacity(n_discards);
    for _ in 0..n_discards {
        pending_discards.push(EventId(r.array()?));
    }

    // Tips: held events without a held self-child, in insertion order.
    let mut tips = vec![Vec::new(); k_all];
    for (i, n) in nodes.iter().enumerate() {
        if n.self_children == 0 {
            tips[n.creator as usize].push(i as u32);
        }
    }
    let len = nodes.len();
    let g = Graph {
        slots: nodes.into_iter().map(Some).collect(),
        free: Vec::new(),
        ids,
        rounds,
        chains,
        tips,
        irregular,
        pruned_through,
        next_insert: len as u64,
        next_mark: 0,
        len,
    };
    Ok(Hashgraph {
        config,
        g,
        sched,
        votes,
        order: OrderState {
            count,
            running_hash,
            last_time,
        },
        buffer: ParentBuffer::from_entries(buffered),
        parked: Parked::from_events(parked),
        last_decided,
        sealed,
        fame_dirty,
        max_round,
        evidence,
        dropped,
        latest,
        pending_discards,
    })
}

/// Does `event` (by creator index `c`) link `parent` through its self- or
/// other-parent reference, describing it truthfully?
fn followed(event: &Event, c: u32, is_self: bool, parent: &Node) -> bool {
    let reference = if is_self {
        event.self_parent_ref()
    } else {
        event.other_parent_ref()
    };
    reference.is_some_and(|r| {
        r.id == parent.event.id()
            && links(event.birth_round(), r.birth_round)
            && parent_matches(event, c, is_self, r, parent)
    })
}

/// Whether `event` links an earlier held event that it describes
/// truthfully, although the snapshot stores no link (which `insert` never
/// produces: such a parent is followed).
fn unreferenced_but_followed(
    event: &Event,
    c: u32,
    is_self: bool,
    ids: &HashMap<EventId, u32>,
    nodes: &[Node],
) -> bool {
    let reference = if is_self {
        event.self_parent_ref()
    } else {
        event.other_parent_ref()
    };
    reference
        .and_then(|r| ids.get(&r.id))
        .is_some_and(|&j| followed(event, c, is_self, &nodes[j as usize]))
}
