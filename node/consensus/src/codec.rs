//! Canonical binary encoding of events (little-endian, version byte first).
//!
//! ```text
//! u8  version (= 2)
//! [32] creator
//! u64 seq
//! u64 birth_round
//! u8  has_self_parent  ([32] id, u64 birth_round if 1)
//! u8  has_other_parent ([32] id, u64 birth_round if 1)
//! u64 created_at_ns
//! [32] txs_root
//! u32 tx_count                      <- end of header: id = blake3(header)
//! tx_count x (u32 len, len bytes)
//! [64] signature
//! ```
//! Flags other than 0/1 and trailing bytes are rejected, so every event has
//! exactly one encoding.

use crate::error::DecodeError;
use crate::event::{Event, EventHeader};
use dagger_event_header::HeaderError;

pub(crate) fn write_header(h: &EventHeader, out: &mut Vec<u8>) {
    out.extend_from_slice(&h.encode());
}

pub(crate) fn encoded_len(h: &EventHeader, txs: &[Vec<u8>]) -> usize {
    h.encoded_len() + txs.iter().map(|t| 4 + t.len()).sum::<usize>() + 64
}

pub(crate) fn encode(e: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.encoded_len());
    encode_into(e, &mut out);
    out
}

/// Append the canonical encoding of `e` to `out` (snapshots write many
/// events into one buffer).
pub(crate) fn encode_into(e: &Event, out: &mut Vec<u8>) {
    write_header(e.header(), out);
    for tx in e.transactions() {
        // Lengths above u32::MAX cannot pass the verifier's limits; saturate
        // rather than panic so encode stays total.
        out.extend_from_slice(&u32::try_from(tx.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(tx);
    }
    out.extend_from_slice(e.signature());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let (header, used) = EventHeader::decode_prefix(bytes).map_err(|e| match e {
        HeaderError::Truncated => DecodeError::Truncated,
        HeaderError::UnsupportedVersion(v) => DecodeError::UnsupportedVersion(v),
        HeaderError::BadFlag(f) => DecodeError::BadFlag(f),
        // `decode_prefix` leaves the rest to its caller.
        HeaderError::TrailingBytes(n) => DecodeError::TrailingBytes(n),
    })?;
    let mut r = Reader {
        buf: bytes,
        pos: used,
    };
    let count = header.tx_count as usize;
    // Each transaction needs at least its 4-byte length: refuse counts the
    // input cannot hold before allocating anything for them.
    if count.saturating_mul(4) > r.remaining() {
        return Err(DecodeError::Truncated);
    }
    let mut txs = Vec::with_capacity(count);
    for _ in 0..count {
        let len = r.u32()? as usize;
        txs.push(r.take(len)?.to_vec());
    }
    let signature: [u8; 64] = r.array()?;
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes(r.remaining()));
    }
    Ok(Event::assemble(header, txs, signature))
}
