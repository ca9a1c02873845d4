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
//! * [`merkle`]: batch Merkle roots and inclusion proofs.
//!
//! # Constants
//! * [`ROSTER_DELAY`] = 12: a roster change ordered in round `r` applies
//!   from round `r + 12`. Fame of round `r` is normally decided by round
//!   `r + 2` witnesses; 12 leaves room for ten more voting rounds, including
//!   the coin round at `d = 6` ([`COIN_PERIOD`]), before insertion has
//!   to wait for consensus.
//! * [`ANCIENT_HORIZON`] = 16: after round `D` is decided, events born in
//!   rounds `<= D - 16` are pruned and ancient; events in them that never
//!   reached consensus are stale and never will (the same on every node,
//!   since it depends on `D` only).
//! * [`LINK_ROUNDS`] = 2 and [`MAX_FUTURE_ROUNDS`] = 16: see below.
//!
//! # Birth rounds, ancient events and sound events
//! Every event carries its *birth round*, its consensus round as its
//! creator computed it, and names each parent by id *and* birth round
//! ([`ParentRef`]). Consensus uses the signed birth round as the event's
//! round, on every node alike. Three rules make everything that decides
//! placement a function of signed data, never of a node's local progress:
//!
//! * **Static shape.** An event without parents is born in round 1; any
//!   other is born in its highest parent's round (the *parent round*, read
//!   from its descriptors) or the one after, never below a parent's. A
//!   parent born more than [`LINK_ROUNDS`] rounds before its child is
//!   *not linked*: it lies below every round the child's "see" summary
//!   keeps, so it could change nothing. Breaking these is a fault.
//! * **Ancient events.** After round `D` is decided, rounds `<= D - 16`
//!   ([`ANCIENT_HORIZON`]) are pruned and an event born in them is
//!   *ancient*: refused on arrival (not a fault), dropped if it waits. A
//!   linked parent that is ancient here, or held but not what the child
//!   says of it (birth round, creator, a lower sequence number — a resumed
//!   chain may skip numbers —, an earlier time), is treated as absent: the
//!   child never waits for it. So an event is placed as
//!   soon as its non-ancient linked parents are, and nothing any node does
//!   with an ancient event depends on whether it ever held it.
//! * **Sound events.** Where the window a round depends on (parent round
//!   minus one and up) lies above the pruned rounds, a node recomputes the
//!   event's round from the summaries of its parents. The event is
//!   *sound* here if it checks out and its round was earned: it strongly
//!   sees a supermajority of the parent round's witnesses, or it inherits
//!   the round from a sound parent of that round. An event that does not
//!   check out (a lie) or cannot be checked (its window reaches pruned
//!   rounds) is still placed, with its signed round, but a node never
//!   links it: [`Hashgraph::best_other_parent`] and
//!   [`Hashgraph::latest_of`] offer sound events only and
//!   [`Hashgraph::create_event`] refuses an unsound other-parent. Own
//!   events are always computed, never claimed.
//!
//! ## Why no timing can split or stall honest nodes
//! * *Placement is the same everywhere.* Whether an event is placed
//!   depends on its signature, its static shape, the rosters (fixed by
//!   consensus) and which of its parents exist; a mismatching parent is
//!   absent for every node that holds it, and absent for every node that
//!   does not. The only refusal that depends on local progress is
//!   "ancient", and a node that refuses an ancient event `x` places every
//!   child of `x` without it. So no event is accepted by some honest nodes
//!   and unplaceable for others forever: an event waits only for parents
//!   that are not ancient at the waiting node, and those are placed there
//!   once they arrive (peers send what a node lacks), or become ancient and
//!   stop being needed ([`Hashgraph::poll`] places the waiting events then).
//! * *Rounds are the same everywhere.* An event's round is its signed
//!   birth round. Its "see" summary, restricted to rounds at or above any
//!   round `f`, is a function of its ancestors born in rounds `>= f` only
//!   (rounds never decrease along parent links, and the summary drops
//!   everything below its floor), and every node holds all of those once
//!   `f` is above its pruned rounds. Every consensus question about an
//!   undecided round `r` (strongly seeing round-`r-1` witnesses, votes,
//!   fame) reads summaries at floors `>= r - 2`, far above the pruned
//!   rounds: every node answers it alike.
//! * *The order is the same everywhere.* A round `r` is ordered after
//!   rounds `<= r - 17` are pruned, on every node (pruning follows the
//!   decided round), so an event born in them is never ordered anywhere
//!   (stale). Any event a node refused as ancient was born in such rounds
//!   for every round it could have been received in, and everything below
//!   it in the DAG is older still: no node orders what another lacks.
//! * *Lies cannot buy rounds.* A liar's fake witness is placed everywhere
//!   but never sound, so no honest event links it and no honest event's
//!   round rests on one: honest witnesses always strongly see a
//!   supermajority of the previous round, which is what the fame lemmas
//!   need (byzantine witnesses, fake or not, hold less than a third of the
//!   stake). A liar near the pruned rounds of one node is found out by the
//!   nodes that can still check it, and nobody links it either way.
//! * *One creator cannot stop rounds.* Rounds advance on the honest
//!   creators' events alone (more than two thirds of the stake), which
//!   every honest node places and links; an unsound or withheld event can
//!   delay nothing but its own creator's chain.
//!
//! What a creator signs is still checked where it matters for evidence:
//! two events of one creator whose headers conflict are reported however
//! they were placed (see "Equivocation").
//!
//! * An event born beyond the rounds whose rosters are fixed waits in the
//!   parked area; one born more than [`MAX_FUTURE_ROUNDS`] beyond is
//!   refused ([`Reject::TooFarAhead`]). Both resolve by themselves as
//!   consensus moves on (peers send the event again).
//!
//! # Waiting areas (bounded in events and bytes)
//! * Unknown linked parent: the event waits in a buffer of
//!   [`Limits::max_buffered_events`] / [`Limits::max_buffered_bytes`];
//!   when full the *oldest* waiting events are evicted and reported in
//!   [`InsertOutcome::Buffered`].
//! * Born beyond the fixed rosters: parked ([`InsertOutcome::Parked`])
//!   until a later `poll` seals more rounds; when [`Limits::max_parked_events`]
//!   or [`Limits::max_parked_bytes`] are reached, new ones are refused with
//!   [`Reject::TooFarAhead`].
//! * Waiting events that become ancient, or fail a check once they can be
//!   placed, are listed in [`Decided::discarded`] (delete them from disk);
//!   waiting events whose missing parent became ancient are placed without
//!   it.
//!
//! # Equivocation
//! Two distinct events signed by one creator *conflict* when their headers
//! alone show they cannot both lie on one chain ([`Equivocation::verify`]):
//! they share a sequence number, or the one with the lower sequence number
//! has the higher birth round, or one is at the next sequence number and
//! names another self-parent. A creator that forks, restarts its chain or
//! jumps its sequence number while its old chain goes on produces such a
//! pair; every node that holds both reports it ([`Hashgraph::take_equivocations`]),
//! and anyone can check it with nothing but the network id. Every event
//! whose signature checks is compared, whatever becomes of it (placed,
//! waiting for a parent, parked, refused as ancient or dropped later), with
//! its creator's held chain and with its creator's waiting events at
//! neighbouring sequence numbers: the order in which twins arrive cannot
//! hide a fork. At most four pairs per creator are queued.
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
pub use event::{
    signing_message, CreatorId, Event, EventHeader, EventId, ParentRef, UnsignedEvent,
};
pub use evidence::{evidence_hash, headers_conflict, Equivocation};
pub use fame::COIN_PERIOD;
pub use hashgraph::{ChainHead, Decided, EventInfo, Hashgraph, InsertOutcome, Inserted, Stats};
pub use merkle::InclusionProof;
pub use order::{chain_hash, Ordered};
pub use roster::{is_supermajority, Roster};

/// Rounds between the round a roster change is ordered in and the first
/// round it applies to (see the crate docs for why 12).
pub const ROSTER_DELAY: u64 = 12;

/// Decided rounds kept in memory behind the last decided round.
pub const ANCIENT_HORIZON: u64 = 16;

/// A parent born more than this many rounds before its child is not
/// linked (see the crate docs, "Birth rounds").
pub const LINK_ROUNDS: u64 = 2;

/// Rounds beyond the fixed rosters an event may be born in and still wait
/// (parked) instead of being refused.
pub const MAX_FUTURE_ROUNDS: u64 = 16;

/// Largest birth round or sequence number an event may carry: far above
/// anything a network reaches, and far enough below `u64::MAX` that no sum
/// of a few of them overflows.
pub const MAX_HEADER_VALUE: u64 = 1 << 62;

/// A creator's sequence number may not exceed its event's birth round
/// times this: far more events per round than any honest node creates, yet
/// no jump to an arbitrary sequence number (a second chain far away from
/// the first, which no conflict would ever show).
pub const MAX_EVENTS_PER_ROUND: u64 = 1 << 24;

/// Does a child born in `child_birth` link a parent described as born in
/// `parent_birth`?
pub fn links(child_birth: u64, parent_birth: u64) -> bool {
    parent_birth.saturating_add(LINK_ROUNDS) >= child_birth
}

/// Size limits enforced by the verifier and by the buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Whole canonical encoding of one event.
    pub max_event_bytes: usize,
    pub max_tx_bytes: usize,
    pub max_txs_per_event: usize,
    /// Sum of transaction lengths in one event.
    pub max_batch_bytes: usize,
    /// Events waiting for unknown parents (oldest evicted beyond)...
    pub max_buffered_events: usize,
    /// ...and their encoded bytes.
    pub max_buffered_bytes: usize,
    /// Events waiting for rosters to be fixed (new ones refused beyond)...
    pub max_parked_events: usize,
    /// ...and their encoded bytes.
    pub max_parked_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: (1 << 20) + 4 * 8192 + 1024,
            max_tx_bytes: 64 << 10,
            max_txs_per_event: 8192,
            max_batch_bytes: 1 << 20,
            max_buffered_events: 10_000,
            max_buffered_bytes: 64 << 20,
            max_parked_events: 10_000,
            max_parked_bytes: 64 << 20,
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
