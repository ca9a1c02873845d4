//! The gossip wire format: versioned, length-prefixed binary frames.
//!
//! ```text
//! frame   = len:u32be  body[len]
//! body    = version:u8  kind:u8  payload
//! kind 1  SyncRequest  ordered:u64be  count:u32be  tip:[u8;32] × count
//!                      missing:u32be  (id:[u8;32] birth_round:u64be) × missing
//! kind 2  Events       count:u32be  (len:u32be  event-bytes) × count
//! kind 3  SyncDone
//! kind 4  Push         event-bytes
//! kind 5  Behind       (ends a sync answer: the caller needs events the
//!                       responder no longer keeps; only a state sync helps)
//! kind 6  CheckpointsRequest
//! kind 7  Checkpoints  count:u32be  checkpoint[88] × count
//! kind 8  StateRequest round:u64be
//! kind 9  StateHeader  checkpoint[88]  total:u64be   (then Chunks, then SyncDone)
//! kind 10 Chunk        bytes
//! kind 11 OrderIdsRequest  from:u64be  max:u32be
//! kind 12 OrderIds     count:u32be  id[32] × count
//! kind 13 Unavailable  (the responder cannot answer that request)
//! kind 14 Forward      envelope-bytes  (see `core::forward`)
//! checkpoint = round:u64le ordered:u64le running_hash[32] next_tx:u64le digest[32]
//! ```
//! Events use the consensus crate's canonical encoding. Decoding is total:
//! any input yields a message or a typed error, never a panic, and a frame
//! length above [`MAX_FRAME_BYTES`] is refused before anything is buffered.

use dagger_consensus::{DecodeError, Event, EventId};

use crate::core::{checkpoint::CHECKPOINT_LEN, Checkpoint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const WIRE_VERSION: u8 = 1;

/// Largest frame accepted: bounds what one message can make a node buffer.
pub const MAX_FRAME_BYTES: usize = 8 << 20;

/// Most tips a sync request may carry (several per creator under forks).
/// Bytes allocated for a frame before its body arrives.
const FIRST_ALLOCATION: usize = 64 << 10;
/// Missing parents a sync request may name.
pub const MAX_MISSING: usize = 16;
pub const MAX_TIPS: usize = 4_096;

/// Most checkpoints one answer lists.
pub const MAX_CHECKPOINTS: usize = 64;

/// Largest state (snapshot) a node accepts in a state sync.
pub const MAX_STATE_BYTES: u64 = 1 << 30;

/// Bytes per state chunk.
pub const STATE_CHUNK_BYTES: usize = 4 << 20;

/// Most event ids one `OrderIds` answer carries.
pub const MAX_ORDER_IDS: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Pull request: the caller's tips (every creator's chain heads, fork
    /// heads included) and how many events it has in consensus order. The
    /// answer is every event the responder has that is not an ancestor of one
    /// of these, parents first — preceded, when the caller is far behind, by
    /// the ordered events it is missing (see `core`).
    SyncRequest {
        tips: Vec<EventId>,
        ordered: u64,
        /// Parents the caller's waiting events lack, oldest first, with
        /// the birth rounds they are described with (at most
        /// [`MAX_MISSING`]): a responder that pruned such a round sends the
        /// event from its ledger, or says `Behind` if it has none.
        missing: Vec<(EventId, u64)>,
    },
    /// A chunk of a sync answer, in topological order.
    Events(Vec<Event>),
    /// End of a sync answer.
    SyncDone,
    /// A node's own new event, sent as soon as it is persisted.
    Push(Event),
    /// Ends a sync answer (before `SyncDone`): the caller is behind what
    /// the responder keeps on disk.
    Behind,
    /// Asks for the responder's latest checkpoints.
    CheckpointsRequest,
    /// The responder's latest checkpoints, newest first.
    Checkpoints(Vec<Checkpoint>),
    /// Asks for the stored state (snapshot) of a checkpoint round.
    StateRequest { round: u64 },
    /// Starts a state answer: its checkpoint and size; `Chunk`s follow.
    StateHeader { checkpoint: Checkpoint, total: u64 },
    /// A piece of a state.
    Chunk(Vec<u8>),
    /// Asks for the ids of the ordered events from position `from`.
    OrderIdsRequest { from: u64, max: u32 },
    /// Ordered event ids, consecutive from the requested position.
    OrderIds(Vec<[u8; 32]>),
    /// The responder cannot answer that request.
    Unavailable,
    /// An envelope of the sender's forwarded transactions (its own events
    /// went stale), for the receiver to carry in its events; sent on a push
    /// stream.
    Forward(Vec<u8>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    FrameTooLarge(usize),
    #[error("frame is truncated")]
    Truncated,
    #[error("unsupported wire version {0}")]
    Version(u8),
    #[error("unknown message kind {0}")]
    Kind(u8),
    #[error("{0} tips exceed the limit of {MAX_TIPS}")]
    TooManyTips(usize),
    #[error("{what}: {count} exceeds the limit of {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("malformed checkpoint")]
    Checkpoint,
    #[error("trailing bytes after the message")]
    Trailing,
    #[error("bad event: {0}")]
    Event(#[from] DecodeError),
    #[error("stream: {0}")]
    Io(String),
}

impl Message {
    /// The frame body (without the length prefix).
    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = vec![WIRE_VERSION];
        match self {
            Message::SyncRequest {
                tips,
                ordered,
                missing,
            } => {
                out.push(1);
                out.extend_from_slice(&ordered.to_be_bytes());
                out.extend_from_slice(&(tips.len() as u32).to_be_bytes());
                for tip in tips {
                    out.extend_from_slice(&tip.0);
                }
                out.extend_from_slice(&(missing.len() as u32).to_be_bytes());
                for (id, birth) in missing {
                    out.extend_from_slice(&id.0);
                    out.extend_from_slice(&birth.to_be_bytes());
                }
            }
            Message::Events(events) => {
                out.push(2);
                out.extend_from_slice(&(events.len() as u32).to_be_bytes());
                for event in events {
                    let bytes = event.encode();
                    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                    out.extend_from_slice(&bytes);
                }
            }
            Message::SyncDone => out.push(3),
            Message::Push(event) => {
                out.push(4);
                out.extend_from_slice(&event.encode());
            }
            Message::Behind => out.push(5),
            Message::CheckpointsRequest => out.push(6),
            Message::Checkpoints(list) => {
                out.push(7);
                out.extend_from_slice(&(list.len() as u32).to_be_bytes());
                for c in list {
                    out.extend_from_slice(&c.encode());
                }
            }
            Message::StateRequest { round } => {
                out.push(8);
                out.extend_from_slice(&round.to_be_bytes());
            }
            Message::StateHeader { checkpoint, total } => {
                out.push(9);
                out.extend_from_slice(&checkpoint.encode());
                out.extend_from_slice(&total.to_be_bytes());
            }
            Message::Chunk(bytes) => {
                out.push(10);
                out.extend_from_slice(bytes);
            }
            Message::OrderIdsRequest { from, max } => {
                out.push(11);
                out.extend_from_slice(&from.to_be_bytes());
                out.extend_from_slice(&max.to_be_bytes());
            }
            Message::OrderIds(ids) => {
                out.push(12);
                out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
                for id in ids {
                    out.extend_from_slice(id);
                }
            }
            Message::Unavailable => out.push(13),
            Message::Forward(bytes) => {
                out.push(14);
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// A whole frame: length prefix and body.
    pub fn encode_frame(&self) -> Vec<u8> {
        let body = self.encode_body();
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        frame
    }

    /// Parses a frame body.
    pub fn decode_body(body: &[u8]) -> Result<Message, WireError> {
        let mut reader = Reader(body);
        let version = reader.u8()?;
        if version != WIRE_VERSION {
            return Err(WireError::Version(version));
        }
        let message = match reader.u8()? {
            1 => {
                let ordered = u64::from_be_bytes(reader.array()?);
                let count = reader.u32()? as usize;
                if count > MAX_TIPS {
                    return Err(WireError::TooManyTips(count));
                }
                let mut tips = Vec::with_capacity(count);
                for _ in 0..count {
                    tips.push(EventId(reader.array()?));
                }
                let count = reader.u32()? as usize;
                if count > MAX_MISSING {
                    return Err(WireError::TooManyTips(count));
                }
                let mut missing = Vec::with_capacity(count);
                for _ in 0..count {
                    missing.push((
                        EventId(reader.array()?),
                        u64::from_be_bytes(reader.array()?),
                    ));
                }
                Message::SyncRequest {
                    tips,
                    ordered,
                    missing,
                }
            }
            2 => {
                let count = reader.u32()? as usize;
                // Each event needs at least its 4-byte length: bound the allocation.
                let mut events = Vec::with_capacity(count.min(reader.0.len() / 4));
                for _ in 0..count {
                    let len = reader.u32()? as usize;
                    events.push(Event::decode(reader.take(len)?)?);
                }
                Message::Events(events)
            }
            3 => Message::SyncDone,
            4 => Message::Push(Event::decode(std::mem::take(&mut reader.0))?),
            5 => Message::Behind,
            6 => Message::CheckpointsRequest,
            7 => {
                let count = reader.u32()? as usize;
                if count > MAX_CHECKPOINTS {
                    return Err(WireError::TooMany {
                        what: "checkpoints",
                        count,
                        max: MAX_CHECKPOINTS,
                    });
                }
                let mut list = Vec::with_capacity(count);
                for _ in 0..count {
                    list.push(reader.checkpoint()?);
                }
                Message::Checkpoints(list)
            }
            8 => Message::StateRequest {
                round: u64::from_be_bytes(reader.array()?),
            },
            9 => Message::StateHeader {
                checkpoint: reader.checkpoint()?,
                total: u64::from_be_bytes(reader.array()?),
            },
            10 => Message::Chunk(std::mem::take(&mut reader.0).to_vec()),
            11 => Message::OrderIdsRequest {
                from: u64::from_be_bytes(reader.array()?),
                max: reader.u32()?,
            },
            12 => {
                let count = reader.u32()? as usize;
                if count > MAX_ORDER_IDS {
                    return Err(WireError::TooMany {
                        what: "order ids",
                        count,
                        max: MAX_ORDER_IDS,
                    });
                }
                let mut ids = Vec::with_capacity(count.min(reader.0.len() / 32));
                for _ in 0..count {
                    ids.push(reader.array()?);
                }
                Message::OrderIds(ids)
            }
            13 => Message::Unavailable,
            14 => Message::Forward(std::mem::take(&mut reader.0).to_vec()),
            kind => return Err(WireError::Kind(kind)),
        };
        if !reader.0.is_empty() {
            return Err(WireError::Trailing);
        }
        Ok(message)
    }

    /// Parses a whole frame (length prefix included).
    pub fn decode_frame(frame: &[u8]) -> Result<Message, WireError> {
        let mut reader = Reader(frame);
        let len = reader.u32()? as usize;
        if len > MAX_FRAME_BYTES {
            return Err(WireError::FrameTooLarge(len));
        }
        let body = reader.take(len)?;
        if !reader.0.is_empty() {
            return Err(WireError::Trailing);
        }
        Message::decode_body(body)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn checkpoint(&mut self) -> Result<Checkpoint, WireError> {
        Checkpoint::decode(self.take(CHECKPOINT_LEN)?).map_err(|_| WireError::Checkpoint)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

/// Writes one message as a frame.
pub async fn write_message<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &Message,
) -> Result<(), WireError> {
    let frame = message.encode_frame();
    if frame.len() - 4 > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge(frame.len() - 4));
    }
    writer
        .write_all(&frame)
        .await
        .map_err(|e| WireError::Io(e.to_string()))
}

/// Reads one frame and decodes it; `Ok(None)` at a clean end of stream.
/// The length is checked before the body is read, so an oversized frame
/// costs the reader nothing.
pub async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame: usize,
) -> Result<Option<Message>, WireError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(WireError::Io(e.to_string())),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max_frame.min(MAX_FRAME_BYTES) {
        return Err(WireError::FrameTooLarge(len));
    }
    // Memory grows with the bytes that actually arrive, not with what the
    // header announces: a peer cannot make this node hold megabytes per
    // stream by sending headers alone.
    let mut body = Vec::with_capacity(len.min(FIRST_ALLOCATION));
    let read = reader
        .take(len as u64)
        .read_to_end(&mut body)
        .await
        .map_err(|e| WireError::Io(e.to_string()))?;
    if read != len {
        return Err(WireError::Truncated);
    }
    Message::decode_body(&body).map(Some)
}
