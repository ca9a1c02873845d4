//! Sans-IO, stake-weighted, fork-safe hashgraph consensus for DAGGER.
//!
//! No I/O, no clock, no randomness: events, times and keys come in as
//! arguments, decided rounds come out of [`Hashgraph::poll`], so tests and
//! simulators drive it directly (like `quinn-proto` beneath `quinn`).
//!
//! # Driver loop
//! ```text
//! for each event from the network:  hg.insert(event)?      // verify + add
//! loop { match hg.poll() {                                  // one decided round at a time
//!     Some(d) => { apply d.events in order;                 // opaque transactions
//!                  if they change the roster: hg.schedule_roster_change(d.round_received, roster)?; }
//!     None => break } }
//! own event:  hg.create_event(&key, batch.txs, now_ns, Some(other_parent))?
//! sync:       peer sends hg.tips(); we answer hg.events_unknown_to(&peer_tips)
//! ```
//!
//! # Public API
//! * Types: [`EventId`], [`CreatorId`], [`Roster`], [`Event`] (signed,
//!   cheap to clone), [`EventHeader`], [`UnsignedEvent`] (builder),
//!   [`Equivocation`], [`Ordered`], [`Decided`], [`Stats`].
//! * [`Event::encode`] / [`Event::decode`]: canonical, versioned, total
//!   (typed [`DecodeError`], never panics).
//! * [`Hashgraph::new`]`(Config, Roster)`, [`Hashgraph::insert`]`(Event) ->
//!   Result<InsertOutcome, Reject>`, [`Hashgraph::poll`]`() ->
//!   Option<Decided>`, [`Hashgraph::schedule_roster_change`],
//!   [`Hashgraph::create_event`], [`Hashgraph::tips`],
//!   [`Hashgraph::events_unknown_to`], [`Hashgraph::take_equivocations`],
//!   [`Hashgraph::stats`], [`Hashgraph::event_info`].
//! * [`Hashgraph::snapshot`] / [`Hashgraph::restore`] (typed
//!   [`SnapshotError`]): see "Restart".
//! * Forester ([`merkle`]): batches, Merkle roots, inclusion proofs.
//!
//! # Constants
//! * [`ROSTER_DELAY`] = 12: a roster change ordered in round `r` applies
//!   from round `r + 12`. Fame of round `r` is normally decided by round
//!   `r + 2` witnesses; 12 leaves room for ten more voting rounds, including
//!   the coin round at `d = 6` ([`COIN_PERIOD`]), before insertion has
//!   to wait for consensus.
//! * [`ANCIENT_HORIZON`] = 16: after round `D` is decided, rounds `<= D -
//!   16` are pruned; events in them that never reached consensus are stale
//!   and never will (the same on every node, since it depends on `D` only).
//!
//! # Waiting areas (bounded)
//! * Unknown parent: the event waits in a buffer of
//!   [`Limits::max_buffered_events`]; when full the *oldest* waiting event is
//!   evicted and reported in [`InsertOutcome::Buffered`].
//! * Round beyond the fixed rosters (`parent round + 1 > last sealed round +
//!   ROSTER_DELAY`): the event is parked ([`InsertOutcome::Parked`]) until a
//!   later `poll` seals more rounds; when [`Limits::max_parked_events`] are
//!   parked, new ones are refused with [`Reject::TooFarAhead`].
//! * A self-parent in pruned rounds is treated as absent (the event still
//!   needs a held other-parent); without any placeable parent the event is
//!   [`Reject::Ancient`].
//!
//! # Sync
//! [`Hashgraph::tips`] lists every held event without a held self-child, so
//! a forker's branch heads are all included. [`Hashgraph::events_unknown_to`]
//! returns, parents first, every held event that is not an ancestor of (or
//! equal to) a peer tip known here; unknown peer tips are ignored. It is one
//! linear pass over the held events (bounded by pruning), whatever the forks.
//!
//! # Restart
//! The node deletes pruned rounds from disk, so a restart cannot replay
//! everything since genesis. Instead:
//! ```text
//! every few decided rounds:  store hg.snapshot() (then events accepted
//!                            before it may be deleted from disk)
//! after each insert:         persist, in arrival order, every event insert
//!                            accepted (Inserted, Buffered or Parked;
//!                            buffered ones are placed later by themselves)
//! on restart:  let mut hg = Hashgraph::restore(config, &snapshot)?;
//!              re-insert the events accepted after the snapshot, in order,
//!              running the same driver loop (poll + schedule_roster_change)
//! ```
//! [`Hashgraph::snapshot`]`() -> Vec<u8>` is an exact, versioned,
//! canonical and checksummed encoding of the whole consensus state: held
//! events with their rounds, fame and cached "see" summaries, fame votes,
//! the roster schedule (including changes scheduled for later rounds), the
//! order cursor (count, running hash, last time), the parent buffer, parked
//! events, pending equivocation evidence, the latest event per creator and
//! every counter. [`Hashgraph::restore`]`(config, &bytes) ->
//! Result<Hashgraph, SnapshotError>` rebuilds an instance that behaves
//! identically (same [`Decided`] rounds, [`Stats`], tips, sync answers and
//! created events for the same calls), with `config` equal to the one the
//! snapshot was taken with: the network id must match
//! ([`SnapshotError::NetworkMismatch`]) and a snapshot holding more than
//! `config.limits` allow is refused. Restore never panics and allocates at
//! most a small multiple of the input length; corrupt or inconsistent input
//! is a typed [`SnapshotError`]; a trailing blake3 checksum catches
//! corruption, so stored signatures (verified on insertion) are not
//! checked again. A snapshot restored and taken again gives the same bytes.
//!
//! Take snapshots between driver steps: after the roster changes of every
//! round `poll` returned have been scheduled, never between a `poll` that
//! returned a round and the `schedule_roster_change` for it (that round
//! does not come out of `poll` again after a restore). Record with each
//! snapshot the position in the event log it covers. The format is
//! documented in `src/snapshot.rs`; tested in `tests/snapshot.rs` and
//! `tests/snapshot_corrupt.rs`. Without a snapshot, re-inserting every
//! event since genesis (if still on disk) reproduces the same order too.
//! Own events must be persisted before they are sent, so a restarted node
//! continues its own chain instead of forking it.

mod codec;
pub mod error;
pub mod event;
pub mod evidence;
mod fame;
mod graph;
mod hashgraph;
pub mod merkle;
mod order;
mod pending;
mod roster;
mod rounds;
mod snapshot;
mod sync;
pub mod verify;

pub use error::{
    CreateError, DecodeError, EvidenceError, Reject, RosterError, ScheduleError, SnapshotError,
};
pub use event::{signing_message, CreatorId, Event, EventHeader, EventId, UnsignedEvent};
pub use evidence::Equivocation;
pub use fame::COIN_PERIOD;
pub use hashgraph::{Decided, EventInfo, Hashgraph, InsertOutcome, Inserted, Stats};
pub use merkle::{Batch, Forester, InclusionProof};
pub use order::Ordered;
pub use roster::{is_supermajority, Roster};

/// Rounds between the round a roster change is ordered in and the first
/// round it applies to (see the crate docs for why 12).
pub const ROSTER_DELAY: u64 = 12;

/// Decided rounds kept in memory behind the last decided round.
pub const ANCIENT_HORIZON: u64 = 16;

/// Size limits enforced by the verifier and by the buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Whole canonical encoding of one event.
    pub max_event_bytes: usize,
    pub max_tx_bytes: usize,
    pub max_txs_per_event: usize,
    /// Sum of transaction lengths in one event.
    pub max_batch_bytes: usize,
    /// Events waiting for unknown parents (oldest evicted beyond).
    pub max_buffered_events: usize,
    /// Events waiting for rosters to be fixed (new ones refused beyond).
    pub max_parked_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: (1 << 20) + 4 * 8192 + 1024,
            max_tx_bytes: 64 << 10,
            max_txs_per_event: 8192,
            max_batch_bytes: 1 << 20,
            max_buffered_events: 10_000,
            max_parked_events: 10_000,
        }
    }
}

/// Per-network configuration.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Config {
    /// Signed into every event so events cannot be replayed across networks.
    pub network_id: [u8; 32],
    pub limits: Limits,
}
