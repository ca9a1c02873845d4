//! The façade: [`Hashgraph`] ties verification, storage, rounds, fame and
//! order together behind a small sans-IO API (see the crate docs).

use std::collections::VecDeque;

use ed25519_dalek::SigningKey;

use crate::error::{CreateError, Reject, ScheduleError};
use crate::event::{CreatorId, Event, EventId, ParentRef, UnsignedEvent};
use crate::evidence::{headers_conflict, Equivocation};
use crate::graph::{Graph, Node, NONE};
use crate::order::{self, OrderState, Ordered};
use crate::pending::{Cap, ParentBuffer, Parked};
use crate::roster::{Roster, Schedule};
use crate::{
    fame, links, rounds, verify, Config, ANCIENT_HORIZON, MAX_FUTURE_ROUNDS, ROSTER_DELAY,
};

/// Unread equivocation evidence kept at most (oldest dropped beyond).
pub(crate) const MAX_PENDING_EVIDENCE: usize = 1024;
/// Unread pairs kept per creator (one is enough to slash it).
pub(crate) const MAX_EVIDENCE_PER_CREATOR: usize = 4;

/// What [`Hashgraph::insert`] did with an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Added to the graph, possibly releasing buffered descendants.
    Inserted(Inserted),
    /// A linked parent is unknown; the event waits in the bounded parent
    /// buffer. `evicted` are the oldest buffered events dropped to make
    /// room (it may hold the event itself if it alone exceeds the cap).
    Buffered { evicted: Vec<EventId> },
    /// The event is born beyond the rounds whose roster is fixed; it is
    /// placed automatically by a later [`Hashgraph::poll`].
    Parked,
    /// Already held, buffered or parked.
    Duplicate,
}

/// Details of a successful insertion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inserted {
    pub id: EventId,
    pub round: u64,
    pub witness: bool,
    /// Buffered events inserted because this one completed their parents
    /// (persist them too).
    pub unblocked: Vec<EventId>,
    /// Buffered events that failed a check once their parents were known.
    pub dropped: Vec<(EventId, Reject)>,
}

/// One decided round: the output of [`Hashgraph::poll`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    pub round_received: u64,
    /// Ids of the round's judges (unique famous witnesses).
    pub judges: Vec<EventId>,
    /// Events received in this round, in consensus order (may be empty).
    pub events: Vec<Ordered>,
    /// Running hash after this round.
    pub running_hash: [u8; 32],
    /// Events dropped from memory by this decision (safe to delete on disk
    /// once no longer needed for recovery).
    pub pruned: Vec<EventId>,
    /// Waiting (buffered or parked) events dropped by this decision: they
    /// became ancient, or failed a check once they could be placed. They
    /// will never be inserted; delete them from disk.
    pub discarded: Vec<EventId>,
}

/// Read-only figures for a status API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    pub last_round_created: u64,
    pub last_decided_round: u64,
    pub pruned_through_round: u64,
    pub held_events: usize,
    pub buffered_events: usize,
    pub buffered_bytes: usize,
    pub parked_events: usize,
    pub parked_bytes: usize,
    pub ordered_count: u64,
    pub running_hash: [u8; 32],
    /// Parked or buffered events that failed checks when retried, became
    /// ancient while waiting, or were evicted.
    pub dropped_events: u64,
}

/// Consensus facts about one held event (diagnostics and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventInfo {
    pub round: u64,
    pub witness: bool,
    /// Fame, for witnesses whose election is decided.
    pub famous: Option<bool>,
    pub ordered: bool,
    /// Its round checked out here (crate docs, "Sound events").
    pub sound: bool,
}

impl EventInfo {
    fn of(n: &crate::graph::Node) -> EventInfo {
        EventInfo {
            round: n.round,
            witness: n.witness,
            famous: n.fame,
            ordered: n.ordered,
            sound: n.sound,
        }
    }
}

/// The newest event of a creator's chain that this instance ever inserted,
/// kept after it is pruned: a node continues its own chain from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub id: EventId,
    pub seq: u64,
    pub birth_round: u64,
    pub created_at_ns: u64,
}

enum Placement {
    Inserted(u32),
    Buffered(Vec<EventId>),
    Parked,
}

/// How one parent reference of an event resolves on this node.
enum Parent {
    /// No reference, or not followed: born too long before the child to be
    /// linked, or ancient here.
    Absent,
    /// Followed and held.
    Held(u32),
    /// Followed and held, but not what the child says it is: treated as
    /// absent (the child is not sound).
    Mismatched,
    /// Followed and not held yet: the child waits for it.
    Missing(EventId),
}

/// Whether the held `parent` is what `event` (by creator index `c`) says
/// of it in `described`: its birth round, and for the self-parent the same
/// creator, a lower sequence number and an earlier time; for the
/// other-parent another creator. Only signed data of the two events: every
/// node that holds both decides alike.
pub(crate) fn parent_matches(
    event: &Event,
    c: u32,
    is_self: bool,
    described: ParentRef,
    parent: &Node,
) -> bool {
    if described.birth_round != parent.round {
        return false;
    }
    if is_self {
        // A later sequence number, not necessarily the next: a creator that
        // resumes after a crash jumps past every number it may have used
        // (see the node's signing record) and names its newest event as
        // self-parent. Treating that link as absent made the resumed chain
        // unsound everywhere until it earned a round on its own, which it
        // cannot while another honest chain is in the same state (two of
        // four restarted at once stalled every round for good). Keeping
        // two chains is caught all the same: the lower one is soon born
        // after the higher (`headers_conflict`, rule 2).
        parent.creator == c && parent.seq < event.seq() && parent.time < event.created_at_ns()
    } else {
        parent.creator != c
    }
}

/// Sans-IO hashgraph consensus instance.
#[derive(Debug)]
pub struct Hashgraph {
    pub(crate) config: Config,
    pub(crate) g: Graph,
    pub(crate) sched: Schedule,
    pub(crate) votes: fame::Votes,
    pub(crate) order: OrderState,
    pub(crate) buffer: ParentBuffer,
    pub(crate) parked: Parked,
    pub(crate) last_decided: u64,
    pub(crate) sealed: u64,
    pub(crate) fame_dirty: bool,
    pub(crate) max_round: u64,
    pub(crate) evidence: VecDeque<Equivocation>,
    pub(crate) dropped: u64,
    /// Per creator: the newest chain event ever inserted (see [`ChainHead`]).
    pub(crate) latest: Vec<Option<ChainHead>>,
    /// Parked events that failed when placed again; the next [`Decided`]
    /// reports them.
    pub(crate) pending_discards: Vec<EventId>,
}

impl Hashgraph {
    /// A fresh instance whose round 1 uses `genesis`.
    pub fn new(config: Config, genesis: Roster) -> Hashgraph {
        let sched = Schedule::new(genesis);
        let mut g = Graph::default();
        g.ensure_creators(sched.creator_count());
        Hashgraph {
            config,
            g,
            sched,
            votes: fame::Votes::default(),
            order: OrderState::default(),
            buffer: ParentBuffer::default(),
            parked: Parked::default(),
            last_decided: 0,
            sealed: 0,
            fame_dirty: false,
            max_round: 0,
            evidence: VecDeque::new(),
            dropped: 0,
            latest: Vec::new(),
            pending_discards: Vec::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn buffer_cap(&self) -> Cap {
        Cap {
            events: self.config.limits.max_buffered_events.max(1),
            bytes: self.config.limits.max_buffered_bytes,
        }
    }

    fn parked_cap(&self) -> Cap {
        Cap {
            events: self.config.limits.max_parked_events,
            bytes: self.config.limits.max_parked_bytes,
        }
    }

    /// Is an event born in `birth_round` ancient here (born in a pruned
    /// round)? See the crate docs, "Ancient events".
    fn is_ancient(&self, birth_round: u64) -> bool {
        birth_round <= self.g.pruned_through
    }

    /// Verify `event` and add it (or buffer/park it). Never panics on any
    /// event, however malformed.
    pub fn insert(&mut self, event: Event) -> Result<InsertOutcome, Reject> {
        let id = event.id();
        if self.buffer.contains(&id) {
            // Waiting events were compared when they arrived and every
            // later arrival is compared with them: nothing new to learn.
            return Ok(InsertOutcome::Duplicate);
        }
        if self.g.get(&id).is_some() || self.parked.contains(&id) {
            return Ok(InsertOutcome::Duplicate);
        }
        verify::check_shape(&event, &self.config.limits)?;
        if !self
            .sched
            .known_from(&event.creator(), self.g.pruned_through + 1)
        {
            return Err(Reject::UnknownCreator);
        }
        // Signature before the Merkle root: an unsigned batch of junk costs
        // one signature check, not a megabyte of hashing.
        verify::signature_ok(&event, &self.config.network_id)?;
        verify::check_root(&event)?;
        // A signed event proves what its creator signed whether or not it
        // can be placed: one that waits for parents (possibly forever), is
        // parked or is refused as ancient is compared with the creator's
        // held chain and with its waiting events, so a forker cannot dodge
        // evidence by the order in which its twins arrive.
        let unplaced = event.clone();
        let placed = self.place(event);
        if !matches!(placed, Ok(Placement::Inserted(_))) {
            self.report_conflicts(&unplaced, None);
        }
        match placed? {
            Placement::Buffered(evicted) => {
                self.dropped = self.dropped.saturating_add(evicted.len() as u64);
                Ok(InsertOutcome::Buffered { evicted })
            }
            Placement::Parked => Ok(InsertOutcome::Parked),
            Placement::Inserted(slot) => {
                let n = self.g.node(slot);
                let (round, witness) = (n.round, n.witness);
                let (unblocked, dropped) = self.release_children(id);
                Ok(InsertOutcome::Inserted(Inserted {
                    id,
                    round,
                    witness,
                    unblocked,
                    dropped,
                }))
            }
        }
    }

    /// Insert buffered descendants of `id`, transitively.
    fn release_children(&mut self, id: EventId) -> (Vec<EventId>, Vec<(EventId, Reject)>) {
        let mut unblocked = Vec::new();
        let mut dropped = Vec::new();
        let mut queue = vec![id];
        while let Some(parent) = queue.pop() {
            for child in self.buffer.take_children(&parent) {
                self.replace(child, &mut unblocked, &mut dropped, &mut queue);
            }
        }
        (unblocked, dropped)
    }

    /// Place again an event taken out of a waiting area; what it unblocks
    /// goes to `queue`.
    fn replace(
        &mut self,
        event: Event,
        unblocked: &mut Vec<EventId>,
        dropped: &mut Vec<(EventId, Reject)>,
        queue: &mut Vec<EventId>,
    ) {
        let id = event.id();
        let copy = event.clone();
        match self.place(event) {
            Ok(Placement::Inserted(_)) => {
                unblocked.push(id);
                queue.push(id);
            }
            Ok(Placement::Buffered(evicted)) => {
                self.dropped = self.dropped.saturating_add(evicted.len() as u64);
            }
            Ok(Placement::Parked) => {}
            Err(e) => {
                // Compared once more before it goes (it was compared on
                // arrival; pairs found twice are reported once).
                self.report_conflicts(&copy, None);
                self.dropped = self.dropped.saturating_add(1);
                dropped.push((id, e));
            }
        }
    }

    /// How a parent reference of `event` (by creator `c`) resolves here.
    /// A reference is followed only if the parent is *linked* (born at most
    /// [`LINK_ROUNDS`](crate::LINK_ROUNDS) before the child, by the descriptor) and not ancient
    /// here (born after the pruned round, by the descriptor); a followed
    /// parent that is held but does not match what the child says of it
    /// (birth round, creator, sequence number, time) is treated as absent,
    /// exactly as a node that does not hold it treats it.
    fn resolve(&self, event: &Event, c: u32, is_self: bool) -> Parent {
        let h = event.header();
        let reference = if is_self {
            h.self_parent
        } else {
            h.other_parent
        };
        let Some(p) = reference else {
            return Parent::Absent;
        };
        if !links(h.birth_round, p.birth_round) || self.is_ancient(p.birth_round) {
            return Parent::Absent;
        }
        match self.g.get(&p.id) {
            None => Parent::Missing(p.id),
            Some(s) if parent_matches(event, c, is_self, p, self.g.node(s)) => Parent::Held(s),
            Some(_) => Parent::Mismatched,
        }
    }

    /// Whether an event of `creator` born in `b` may be placed at all (it
    /// is not ancient, not too far ahead, and its creator is in the roster
    /// of its round if that is fixed), before its parents are looked at.
    fn admits(&self, creator: &CreatorId, b: u64) -> Result<(), Reject> {
        if self.is_ancient(b) {
            return Err(Reject::Ancient {
                birth_round: b,
                pruned_through: self.g.pruned_through,
            });
        }
        let fixed_through = self.fixed_through();
        if b > fixed_through.saturating_add(MAX_FUTURE_ROUNDS) {
            return Err(Reject::TooFarAhead {
                round: b,
                fixed_through,
            });
        }
        if b <= fixed_through && !self.sched.at(b).roster.contains(creator) {
            return Err(Reject::NotInRoster { round: b });
        }
        Ok(())
    }

    /// Decide from signed data whether the event is ancient or too far
    /// ahead, then buffer, park or insert it.
    fn place(&mut self, event: Event) -> Result<Placement, Reject> {
        let b = event.birth_round();
        self.admits(&event.creator(), b)?;
        let fixed_through = self.fixed_through();
        let creator = *self
            .sched
            .index
            .get(&event.creator())
            .ok_or(Reject::UnknownCreator)?;
        self.g.ensure_creators(self.sched.creator_count());
        let sp = self.resolve(&event, creator, true);
        let op = self.resolve(&event, creator, false);
        let missing: Vec<EventId> = [&sp, &op]
            .into_iter()
            .filter_map(|p| match p {
                Parent::Missing(id) => Some(*id),
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            let cap = self.buffer_cap();
            return Ok(Placement::Buffered(self.buffer.add(event, &missing, cap)));
        }
        if b > fixed_through {
            let cap = self.parked_cap();
            if self.parked.push(event, cap) {
                return Ok(Placement::Parked);
            }
            return Err(Reject::TooFarAhead {
                round: b,
                fixed_through,
            });
        }
        Ok(Placement::Inserted(
            self.insert_node(event, creator, sp, op),
        ))
    }

    /// Highest round whose roster can no longer change.
    fn fixed_through(&self) -> u64 {
        self.sealed + ROSTER_DELAY
    }

    /// The consensus round of a new event by creator `c` whose parent
    /// round (highest parent birth round, from the descriptors) is `r0`
    /// and whose followed parents are the held slots `sp` and `op`, with
    /// its "see" summary. `None` if that round cannot be computed here
    /// because the window it depends on reaches into pruned rounds.
    fn round_of(
        &self,
        c: u32,
        sp: u32,
        op: u32,
        r0: u64,
    ) -> Option<(Vec<crate::graph::SeeEntry>, rounds::RoundResult)> {
        let floor = rounds::window_floor(r0);
        if self.is_ancient(floor) {
            return None;
        }
        let k = self.sched.creator_count();
        let see = rounds::build_see(&self.g, c, sp, op, floor, k);
        let rr = rounds::compute_round(&self.g, &self.sched, c, sp, &see, r0);
        Some((see, rr))
    }

    /// Add a placed event to the graph with its *signed* birth round as
    /// its round, and record whether that round checks out here (see the
    /// crate docs, "Sound events").
    fn insert_node(&mut self, event: Event, c: u32, sp_ref: Parent, op_ref: Parent) -> u32 {
        let pt = self.g.pruned_through;
        let held = |p: &Parent| match p {
            Parent::Held(s) => *s,
            _ => NONE,
        };
        let (sp, op) = (held(&sp_ref), held(&op_ref));
        let mismatched =
            matches!(sp_ref, Parent::Mismatched) || matches!(op_ref, Parent::Mismatched);
        let header = event.header();
        let round = header.birth_round;
        // The parent round, from the signed descriptors: the same on every
        // node, whichever parents it holds.
        let r0 = [header.self_parent, header.other_parent]
            .into_iter()
            .flatten()
            .map(|p| p.birth_round)
            .max()
            .unwrap_or(0);
        let computed = self.round_of(c, sp, op, r0);
        let floor = rounds::window_floor(r0).max(pt + 1);
        let k = self.sched.creator_count();
        let (mut see, strongly_seen, checked) = match computed {
            Some((see, rr)) => {
                let checked = !mismatched && rr.round == round;
                let ss = rr.strongly_seen.filter(|_| checked);
                (see, ss, checked)
            }
            None => (rounds::build_see(&self.g, c, sp, op, floor, k), None, false),
        };
        let g = &self.g;
        let node_round = |s: u32| if s == NONE { 0 } else { g.node(s).round };
        let (sp_round, op_round) = (node_round(sp), node_round(op));
        // Sound: the round checks out, and it was entered by earning it
        // (the event strongly sees a supermajority of round `r0`), or it is
        // inherited from a sound parent of that round.
        let sound = checked
            && (r0 == 0
                || round == r0 + 1
                || [sp, op]
                    .into_iter()
                    .any(|s| s != NONE && g.node(s).round == r0 && g.node(s).sound));
        let witness = sp == NONE || sp_round < round;
        let slot = g.next_slot();
        let first_witness = if witness {
            slot
        } else {
            g.node(sp).first_witness
        };
        rounds::finish_self_entry(&mut see, c, slot, round);
        let sees_witness: Vec<u32> = see
            .iter()
            .map(|e| {
                if e.top == slot {
                    if e.fork_round < round {
                        first_witness
                    } else {
                        NONE
                    }
                } else if e.top != NONE && e.top_round == round && e.fork_round < round {
                    g.node(e.top).first_witness
                } else {
                    NONE
                }
            })
            .collect();

        let seq = event.seq();
        let ci = c as usize;
        if header.self_parent.is_some() && sp == NONE {
            self.g.irregular[ci] = true;
        }
        self.detect_conflicts(c, seq, &event, slot);

        let id = event.id();
        let time = event.created_at_ns();
        if self.latest.len() < k {
            self.latest.resize(k, None);
        }
        if self.latest[ci].is_none_or(|h| seq > h.seq) {
            self.latest[ci] = Some(ChainHead {
                id,
                seq,
                birth_round: round,
                created_at_ns: time,
            });
        }
        let insert_no = self.g.next_insert;
        self.g.next_insert += 1;
        let rs = self.g.rounds.entry(round).or_default();
        rs.events.push(slot);
        let witness_pos = if witness {
            rs.witnesses.push(slot);
            (rs.witnesses.len() - 1) as u32
        } else {
            NONE
        };
        let node = Node {
            event,
            creator: c,
            seq,
            time,
            sp,
            sp_round,
            op,
            op_round,
            round,
            witness,
            first_witness,
            witness_pos,
            see: see.into_boxed_slice(),
            sees_witness: sees_witness.into_boxed_slice(),
            strongly_seen: strongly_seen.map(Vec::into_boxed_slice),
            fame: (witness && round <= self.last_decided).then_some(false),
            sound,
            ordered: false,
            insert_no,
            self_children: 0,
            mark: 0,
        };
        let got = self.g.alloc(node);
        debug_assert_eq!(got, slot);
        self.g.ids.insert(id, slot);
        if sp != NONE {
            self.g.tips[ci].retain(|&t| t != sp);
            self.g.node_mut(sp).self_children += 1;
        }
        self.g.tips[ci].push(slot);
        if witness {
            self.fame_dirty = true;
        }
        self.max_round = self.max_round.max(round);
        slot
    }

    /// Record the event (about to take `slot`) in its creator's chain index
    /// and report every conflict with its neighbours there and with its
    /// creator's waiting events (see `evidence.rs`).
    fn detect_conflicts(&mut self, c: u32, seq: u64, event: &Event, slot: u32) {
        let ci = c as usize;
        if self.report_conflicts(event, Some(ci)) {
            self.g.irregular[ci] = true;
        }
        // A second event at a held sequence number keeps the first's place.
        self.g.chains[ci].entry(seq).or_insert(slot);
    }

    /// Queue evidence of every conflict between `event` and its creator's
    /// held chain (the event at its sequence number, else its neighbours)
    /// and waiting (buffered or parked) events. Consensus state is
    /// untouched. Returns whether a held event conflicts. `creator` is the
    /// creator's index, if the caller knows it.
    fn report_conflicts(&mut self, event: &Event, creator: Option<usize>) -> bool {
        let Some(ci) =
            creator.or_else(|| self.sched.index.get(&event.creator()).map(|&c| c as usize))
        else {
            return false;
        };
        let mut found: Vec<Event> = Vec::new();
        if let Some(chain) = self.g.chains.get(ci) {
            let seq = event.seq();
            if let Some(&same) = chain.get(&seq) {
                let other = &self.g.node(same).event;
                if other.id() != event.id() {
                    found.push(other.clone());
                }
            } else {
                let before = chain.range(..seq).next_back().map(|(_, &s)| s);
                let after = chain.range(seq.saturating_add(1)..).next().map(|(_, &s)| s);
                for s in [before, after].into_iter().flatten() {
                    let other = &self.g.node(s).event;
                    if headers_conflict(other.header(), event.header()) {
                        found.push(other.clone());
                    }
                }
            }
        }
        let held = !found.is_empty();
        let (creator, seq) = (event.creator(), event.seq());
        let waiting = self
            .buffer
            .around(creator, seq)
            .chain(self.parked.around(creator, seq))
            .filter(|other| {
                other.id() != event.id() && headers_conflict(other.header(), event.header())
            })
            .cloned();
        found.extend(waiting);
        self.push_evidence(&found, event);
        held
    }

    /// Queue evidence of `event` against each of `others`, skipping pairs
    /// already queued and keeping at most [`MAX_EVIDENCE_PER_CREATOR`]
    /// pairs per creator: one forker's replays or many cheap forks cannot
    /// push another creator's proof out of the bounded queue.
    fn push_evidence(&mut self, others: &[Event], event: &Event) {
        let creator = event.creator();
        'pairs: for other in others {
            let found = Equivocation {
                first: other.clone(),
                second: event.clone(),
            };
            let pair = found.pair();
            let mut of_creator = 0;
            for queued in &self.evidence {
                if queued.pair() == pair {
                    continue 'pairs;
                }
                of_creator += usize::from(queued.first.creator() == creator);
            }
            if of_creator >= MAX_EVIDENCE_PER_CREATOR {
                return;
            }
            if self.evidence.len() >= MAX_PENDING_EVIDENCE {
                self.evidence.pop_front();
            }
            self.evidence.push_back(found);
        }
    }

    /// Produce the next decided round, if consensus has one. Call in a loop
    /// until `None`; between two calls the driver may apply roster changes
    /// ordered in the round just returned with
    /// [`Hashgraph::schedule_roster_change`].
    pub fn poll(&mut self) -> Option<Decided> {
        if self.sealed < self.last_decided {
            self.sealed = self.last_decided;
            let failed = self.unpark();
            self.dropped = self.dropped.saturating_add(failed.len() as u64);
            // Reported with the next decided round.
            self.pending_discards.extend(failed);
        }
        if !self.fame_dirty {
            return None;
        }
        let r = self.last_decided + 1;
        if !fame::decide_round(&mut self.g, &self.sched, &mut self.votes, r) {
            self.fame_dirty = false;
            return None;
        }
        let judges = order::judges(&self.g, r);
        let events = order::order_round(&mut self.g, r, &judges, &mut self.order);
        let judge_ids = judges.iter().map(|&j| self.g.node(j).event.id()).collect();
        if let Some(rs) = self.g.rounds.get(&r) {
            let ws = rs.witnesses.clone();
            self.votes.forget(&ws);
        }
        self.last_decided = r;
        let through = r.saturating_sub(ANCIENT_HORIZON);
        let pruned = self.g.prune_through(through);
        self.sched.prune_below(through + 1);
        let mut discarded = std::mem::take(&mut self.pending_discards);
        if through > 0 {
            // Waiting events that became ancient can never be placed.
            let expired = self.buffer.expire_through(through);
            self.dropped = self.dropped.saturating_add(expired.len() as u64);
            discarded.extend(expired);
            // Those waiting for a parent that became ancient do not need it
            // any more (every node that finds it ancient places them
            // without it): place them now.
            let (mut unblocked, mut dropped, mut queue) = (Vec::new(), Vec::new(), Vec::new());
            for id in self.buffer.waiting_on_ancient(through) {
                if let Some(e) = self.buffer.take(&id) {
                    self.replace(e, &mut unblocked, &mut dropped, &mut queue);
                }
            }
            while let Some(parent) = queue.pop() {
                for child in self.buffer.take_children(&parent) {
                    self.replace(child, &mut unblocked, &mut dropped, &mut queue);
                }
            }
            discarded.extend(dropped.into_iter().map(|(id, _)| id));
        }
        self.buffer.compact();
        Some(Decided {
            round_received: r,
            judges: judge_ids,
            events,
            running_hash: self.order.running_hash,
            pruned,
            discarded,
        })
    }

    /// Place parked events again now that more rosters are fixed; returns
    /// the ids of those that failed (or of their buffered descendants).
    fn unpark(&mut self) -> Vec<EventId> {
        let (mut unblocked, mut dropped, mut queue) = (Vec::new(), Vec::new(), Vec::new());
        for event in self.parked.drain() {
            self.replace(event, &mut unblocked, &mut dropped, &mut queue);
        }
        while let Some(parent) = queue.pop() {
            for child in self.buffer.take_children(&parent) {
                self.replace(child, &mut unblocked, &mut dropped, &mut queue);
            }
        }
        dropped.into_iter().map(|(id, _)| id).collect()
    }

    /// Apply a roster decided by the driver from transactions ordered in
    /// round `ordered_in_round`, which must be the round the last `poll`
    /// returned. It takes effect at `ordered_in_round + ROSTER_DELAY`;
    /// `new_roster` replaces the whole roster. Returns that round.
    pub fn schedule_roster_change(
        &mut self,
        ordered_in_round: u64,
        new_roster: Roster,
    ) -> Result<u64, ScheduleError> {
        if self.last_decided == 0 || self.sealed >= self.last_decided {
            return Err(ScheduleError::NoWindow);
        }
        if ordered_in_round != self.last_decided {
            return Err(ScheduleError::WrongRound {
                expected: self.last_decided,
                got: ordered_in_round,
            });
        }
        let effective = ordered_in_round + ROSTER_DELAY;
        self.sched.set(effective, new_roster);
        self.g.ensure_creators(self.sched.creator_count());
        Ok(effective)
    }

    /// Create, sign and insert this node's next event: self-parent = its
    /// chain head (even if pruned: then it is simply not linked), birth
    /// round = the round consensus gives it; time = `max(now_ns,
    /// self-parent's + 1)`, so a clock that goes back never produces an
    /// invalid event. An other-parent is needed unless the chain head is
    /// recent (and for a creator's very first event in round 1).
    pub fn create_event(
        &mut self,
        key: &SigningKey,
        txs: Vec<Vec<u8>>,
        now_ns: u64,
        other_parent: Option<EventId>,
    ) -> Result<Event, CreateError> {
        self.create_event_checked(key, txs, now_ns, other_parent, |_| Ok(()))
    }

    /// [`Hashgraph::create_event`], with `check` shown the event before it
    /// is signed: an `Err` refuses it ([`CreateError::Refused`]) and nothing
    /// is signed. A node's slashing protection sits here (it refuses
    /// anything that could conflict with what its key signed before, and
    /// records what it is about to sign).
    pub fn create_event_checked(
        &mut self,
        key: &SigningKey,
        txs: Vec<Vec<u8>>,
        now_ns: u64,
        other_parent: Option<EventId>,
        check: impl FnOnce(&UnsignedEvent) -> Result<(), String>,
    ) -> Result<Event, CreateError> {
        let creator = CreatorId::from(key);
        let c = *self
            .sched
            .index
            .get(&creator)
            .ok_or(Reject::UnknownCreator)?;
        let head = self.latest.get(c as usize).copied().flatten();
        if let Some(id) = other_parent {
            if self.g.get(&id).is_some_and(|s| !self.g.node(s).sound) {
                return Err(CreateError::UnsoundOtherParent);
            }
        }
        let unsigned = self.plan(key, head, other_parent, now_ns, txs)?;
        if let Some(h) = head {
            // The new event links its self-parent: every node, this one
            // too, needs it. An own event must never wait here (it would
            // be placed later, after this node signed another event at its
            // sequence number).
            if links(unsigned.birth_round, h.birth_round)
                && !self.is_ancient(h.birth_round)
                && self.g.get(&h.id).is_none()
            {
                return Err(CreateError::OwnHeadMissing);
            }
        }
        // Everything `insert` checks short of the signature, before `check`
        // sees the event: an own event refused after it was signed would
        // leave its sequence number used and the chain stuck behind it.
        let header = unsigned.header(creator);
        verify::check_parts(
            &header,
            &unsigned.txs,
            crate::codec::encoded_len(&header, &unsigned.txs),
            &self.config.limits,
        )?;
        if !self.sched.known_from(&creator, self.g.pruned_through + 1) {
            return Err(Reject::UnknownCreator.into());
        }
        self.admits(&creator, header.birth_round)?;
        check(&unsigned).map_err(CreateError::Refused)?;
        let event = unsigned.sign_header(header, key, &self.config.network_id);
        match self.insert(event.clone())? {
            InsertOutcome::Inserted(_) => Ok(event),
            InsertOutcome::Buffered { .. } => {
                self.buffer.take(&event.id());
                Err(CreateError::OwnHeadMissing)
            }
            InsertOutcome::Parked => {
                self.parked.remove(&event.id());
                Err(CreateError::WaitForConsensus)
            }
            InsertOutcome::Duplicate => Err(CreateError::WaitForConsensus),
        }
    }

    /// Sign (without inserting) an event by `key` whose self-parent and
    /// other-parent are held events, described with their birth rounds,
    /// with the birth round computed from them. Test drivers use it to
    /// build forks on purpose; nodes call [`Hashgraph::create_event`].
    pub fn build_event(
        &mut self,
        key: &SigningKey,
        self_parent: Option<EventId>,
        other_parent: Option<EventId>,
        now_ns: u64,
        txs: Vec<Vec<u8>>,
    ) -> Result<Event, CreateError> {
        let head = match self_parent {
            None => None,
            Some(id) => {
                let s = self.g.get(&id).ok_or(CreateError::UnknownSelfParent)?;
                let n = self.g.node(s);
                Some(ChainHead {
                    id,
                    seq: n.seq,
                    birth_round: n.round,
                    created_at_ns: n.time,
                })
            }
        };
        let unsigned = self.plan(key, head, other_parent, now_ns, txs)?;
        Ok(unsigned.sign(key, &self.config.network_id))
    }

    /// The next event of `key`'s chain after `head`, unsigned.
    fn plan(
        &mut self,
        key: &SigningKey,
        head: Option<ChainHead>,
        other_parent: Option<EventId>,
        now_ns: u64,
        txs: Vec<Vec<u8>>,
    ) -> Result<UnsignedEvent, CreateError> {
        let creator = CreatorId::from(key);
        let c = *self
            .sched
            .index
            .get(&creator)
            .ok_or(Reject::UnknownCreator)?;
        self.g.ensure_creators(self.sched.creator_count());
        let op = match other_parent {
            None => NONE,
            Some(id) => {
                let s = self.g.get(&id).ok_or(CreateError::UnknownOtherParent)?;
                if self.g.node(s).creator == c {
                    return Err(CreateError::OtherParentIsOwn);
                }
                s
            }
        };
        let sp = head.and_then(|h| self.g.get(&h.id)).unwrap_or(NONE);
        let r0 = head
            .map(|h| h.birth_round)
            .into_iter()
            .chain((op != NONE).then(|| self.g.node(op).round))
            .max()
            .unwrap_or(0);
        // Parents born too long before are not linked by the new event, and
        // cannot change its round (crate docs, "Birth rounds").
        let (_, rr) = self
            .round_of(c, sp, op, r0)
            .ok_or(CreateError::ParentsTooOld)?;
        let round = rr.round;
        if round > self.fixed_through() {
            return Err(CreateError::WaitForConsensus);
        }
        let (seq, time) = match head {
            Some(h) => (
                h.seq.checked_add(1).ok_or(CreateError::SequenceExhausted)?,
                now_ns.max(h.created_at_ns.saturating_add(1)),
            ),
            None => (0, now_ns),
        };
        Ok(UnsignedEvent {
            seq,
            birth_round: round,
            self_parent: head.map(|h| ParentRef {
                id: h.id,
                birth_round: h.birth_round,
            }),
            other_parent: (op != NONE).then(|| ParentRef {
                id: self.g.node(op).event.id(),
                birth_round: self.g.node(op).round,
            }),
            created_at_ns: time,
            txs,
        })
    }

    /// The newest event this instance ever inserted for `creator` (kept
    /// after it is pruned). A node continues its own chain from it.
    pub fn chain_head(&self, creator: &CreatorId) -> Option<ChainHead> {
        let c = *self.sched.index.get(creator)?;
        self.latest.get(c as usize).copied().flatten()
    }

    /// Continue `creator`'s chain after `head` if that is newer than what
    /// this instance knows: a node that installed a state taken by a peer
    /// must not sign a sequence number it already used (its own ledger
    /// remembers events the peer may never have seen). Consensus ignores
    /// it; it only steers [`Hashgraph::create_event`].
    pub fn resume_chain(&mut self, creator: &CreatorId, head: ChainHead) {
        let Some(&c) = self.sched.index.get(creator) else {
            return;
        };
        let c = c as usize;
        if self.latest.len() <= c {
            self.latest.resize(c + 1, None);
        }
        if self.latest[c].is_none_or(|h| head.seq > h.seq) {
            self.latest[c] = Some(head);
        }
    }

    /// The best held event of `creator` to use as an other-parent: among
    /// its sound held chain tips (a forker has several), the one born last,
    /// then the one with the smallest id. `None` if nothing sound of it is
    /// held.
    pub fn latest_of(&self, creator: &CreatorId) -> Option<EventId> {
        let c = *self.sched.index.get(creator)? as usize;
        self.g
            .tips
            .get(c)?
            .iter()
            .map(|&s| self.g.node(s))
            .filter(|n| n.sound)
            .max_by(|a, b| {
                a.round
                    .cmp(&b.round)
                    .then_with(|| b.event.id().cmp(&a.event.id()))
            })
            .map(|n| n.event.id())
    }

    /// The other-parent that moves `creator`'s next event furthest: among
    /// `newest` and every other creator's held chain tips, the one giving
    /// the new event the highest round, then the one that shows it the
    /// most creators' newer events, then `newest` (a fresh arrival). Any
    /// held event is a valid other-parent, so this is local policy, not
    /// consensus; it matters because an event links one other-parent and
    /// a round advances only once an event strongly sees a supermajority.
    /// `None` if `creator` is unknown or nothing else is held.
    pub fn best_other_parent(
        &self,
        creator: &CreatorId,
        newest: Option<EventId>,
    ) -> Option<EventId> {
        let Some(&c) = self.sched.index.get(creator) else {
            return newest;
        };
        let newest_slot = newest.and_then(|id| self.g.get(&id));
        let choice = OtherParentChoice::new(self, c, newest_slot);
        // Computing a candidate's exact round costs O(n²) (every creator's
        // view of every witness), so with n candidates a choice cost O(n³):
        // 322 µs at 64 creators. Each candidate's score is bounded first in
        // O(n) (its round can rise above its parent round only if creators
        // holding more than two thirds of the stake reach that round in its
        // parents' summaries); exact rounds are computed best bound first,
        // until no remaining bound can beat the best exact score. The
        // candidate's position breaks ties as `max_by_key` did (the last).
        let mut bounded: Vec<(ChoiceScore, u32, u64)> = choice
            .candidates()
            .enumerate()
            .map(|(i, op)| {
                let r0 = choice.parent_round(op);
                let round = if choice.may_advance(op, r0) {
                    r0 + 1
                } else {
                    r0
                };
                (
                    (round, choice.newer_than_sp(op), Some(op) == newest_slot, i),
                    op,
                    r0,
                )
            })
            .collect();
        bounded.sort_unstable_by_key(|&(bound, _, _)| std::cmp::Reverse(bound));
        let mut best: Option<(ChoiceScore, u32)> = None;
        for (bound, op, r0) in bounded {
            if best.is_some_and(|(score, _)| bound <= score) {
                break;
            }
            let Some(round) = choice.exact_round(op, r0) else {
                continue;
            };
            let score = (round, bound.1, bound.2, bound.3);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, op));
            }
        }
        best.map(|(_, op)| self.g.node(op).event.id())
    }

    /// Equivocation evidence found since the last call (bounded queue).
    pub fn take_equivocations(&mut self) -> Vec<Equivocation> {
        self.evidence.drain(..).collect()
    }

    /// Figures for a status API.
    pub fn stats(&self) -> Stats {
        Stats {
            last_round_created: self.max_round,
            last_decided_round: self.last_decided,
            pruned_through_round: self.g.pruned_through,
            held_events: self.g.len,
            buffered_events: self.buffer.len(),
            buffered_bytes: self.buffer.bytes(),
            parked_events: self.parked.len(),
            parked_bytes: self.parked.bytes(),
            ordered_count: self.order.count,
            running_hash: self.order.running_hash,
            dropped_events: self.dropped,
        }
    }

    /// Consensus facts about a held event.
    pub fn event_info(&self, id: &EventId) -> Option<EventInfo> {
        Some(EventInfo::of(self.g.node(self.g.get(id)?)))
    }

    /// The events that waiting events need and this instance lacks, with
    /// the birth round they are described with, oldest first: what to ask
    /// peers for.
    pub fn missing_parents(&self) -> Vec<(EventId, u64)> {
        self.buffer.missing()
    }

    /// Whether this instance holds `id` or keeps it waiting (parent buffer
    /// or parked); false once it was pruned, dropped or evicted.
    pub fn knows(&self, id: &EventId) -> bool {
        self.g.get(id).is_some() || self.buffer.contains(id) || self.parked.contains(id)
    }

    /// Held events inserted at or after `after` (the third field is each
    /// one's insertion number) and those of `also` still held, parents
    /// first: what a live view following this instance has not seen yet,
    /// or saw while its fame or order was still open.
    pub fn held_since(
        &self,
        after: u64,
        also: &std::collections::HashSet<EventId>,
    ) -> Vec<(&Event, EventInfo, u64)> {
        self.held_in_insertion_order(|n| n.insert_no >= after || also.contains(&n.event.id()))
            .into_iter()
            .map(|(insert_no, s)| {
                let n = self.g.node(s);
                (&n.event, EventInfo::of(n), insert_no)
            })
            .collect()
    }

    /// Every held event with whether it is ordered yet, in insertion order
    /// (parents first). A restarted node rebuilds its own bookkeeping from
    /// it: which of its transactions still wait for consensus, which held
    /// events are already in the order.
    pub fn held_events(&self) -> Vec<(&Event, bool)> {
        self.held_in_insertion_order(|_| true)
            .into_iter()
            .map(|(_, s)| {
                let n = self.g.node(s);
                (&n.event, n.ordered)
            })
            .collect()
    }

    /// `(insertion number, slot)` of the held events `keep` takes, in
    /// insertion order: a topological order (parents are always inserted
    /// before their children).
    pub(crate) fn held_in_insertion_order(
        &self,
        keep: impl Fn(&crate::graph::Node) -> bool,
    ) -> Vec<(u64, u32)> {
        let mut slots: Vec<(u64, u32)> = self
            .g
            .live_slots()
            .filter(|&s| keep(self.g.node(s)))
            .map(|s| (self.g.node(s).insert_no, s))
            .collect();
        slots.sort_unstable();
        slots
    }

    /// Checks the signature of every event this instance holds, keeps
    /// waiting or keeps as evidence, for its network: what a node installing
    /// a state taken by someone else runs first ([`Hashgraph::restore`]
    /// trusts stored signatures). Returns the first event that fails.
    pub fn verify_signatures(&self) -> Result<(), EventId> {
        let net = &self.config.network_id;
        let held = self.g.live_slots().map(|s| &self.g.node(s).event);
        let waiting = self
            .buffer
            .entries()
            .into_iter()
            .map(|(e, _, _)| e)
            .chain(self.parked.events());
        let evidence = self.evidence.iter().flat_map(|e| [&e.first, &e.second]);
        for e in held.chain(waiting).chain(evidence) {
            if verify::signature_ok(e, net).is_err()
                || verify::check_shape(e, &self.config.limits).is_err()
            {
                return Err(e.id());
            }
        }
        Ok(())
    }

    /// The held event with this id.
    pub fn event(&self, id: &EventId) -> Option<Event> {
        self.g.get(id).map(|s| self.g.node(s).event.clone())
    }

    /// The roster in force at `round`.
    pub fn roster_at(&self, round: u64) -> &Roster {
        &self.sched.at(round).roster
    }
}

/// An other-parent candidate's score: the round its child gets, how many
/// creators it shows newer events of, whether it is the fresh arrival, and
/// its position (ties go to the last).
type ChoiceScore = (u64, usize, bool, usize);

/// What scoring `c`'s possible other-parents needs (see
/// [`Hashgraph::best_other_parent`]).
struct OtherParentChoice<'a> {
    hg: &'a Hashgraph,
    c: u32,
    newest_slot: Option<u32>,
    sp: u32,
    head_birth: u64,
    fixed: u64,
}

impl<'a> OtherParentChoice<'a> {
    fn new(hg: &'a Hashgraph, c: u32, newest_slot: Option<u32>) -> Self {
        let head = hg.latest.get(c as usize).copied().flatten();
        OtherParentChoice {
            hg,
            c,
            newest_slot,
            sp: head.and_then(|h| hg.g.get(&h.id)).unwrap_or(NONE),
            head_birth: head.map_or(0, |h| h.birth_round),
            fixed: hg.fixed_through(),
        }
    }

    /// Every held tip of another creator, and `newest_slot`: sound events
    /// only (a node never builds on a round it could not check, see the
    /// crate docs, "Sound events").
    fn candidates(&self) -> impl Iterator<Item = u32> + '_ {
        let (g, c) = (&self.hg.g, self.c);
        g.tips
            .iter()
            .enumerate()
            .filter(move |&(m, _)| m as u32 != c)
            .flat_map(|(_, tips)| tips.iter().copied())
            .chain(self.newest_slot)
            .filter(move |&s| g.node(s).creator != c && g.node(s).sound)
    }

    fn parent_round(&self, op: u32) -> u64 {
        self.head_birth.max(self.hg.g.node(op).round)
    }

    /// Seq of the newest event of a creator a summary entry shows, if that
    /// event is still held (a pruned slot may be reused).
    fn top_seq(&self, e: &crate::graph::SeeEntry) -> Option<u64> {
        let g = &self.hg.g;
        (e.top != NONE && e.top_round > g.pruned_through).then(|| g.node(e.top).seq)
    }

    /// How many creators `op` shows newer events of than the self-parent.
    fn newer_than_sp(&self, op: u32) -> usize {
        let g = &self.hg.g;
        let sp_see: &[crate::graph::SeeEntry] = if self.sp == NONE {
            &[]
        } else {
            &g.node(self.sp).see
        };
        g.node(op)
            .see
            .iter()
            .enumerate()
            .filter(|&(m, e)| {
                match (self.top_seq(e), sp_see.get(m).and_then(|e| self.top_seq(e))) {
                    (Some(theirs), Some(mine)) => theirs > mine,
                    (theirs, _) => theirs.is_some(),
                }
            })
            .count()
    }

    /// Whether a child of the self-parent and `op` could be born in round
    /// `r0 + 1`: only if `c` and the creators whose newest event either
    /// parent shows is of round `r0` hold more than two thirds of the
    /// stake (no other creator adds to any witness's tally in
    /// `rounds::compute_round`, and a merged summary's entry comes from
    /// one of the parents').
    fn may_advance(&self, op: u32, r0: u64) -> bool {
        if r0 == 0 {
            return true;
        }
        let g = &self.hg.g;
        let roster = self.hg.sched.at(r0);
        let summary = |s: u32| {
            if s == NONE {
                &[][..]
            } else {
                &g.node(s).see[..]
            }
        };
        let (a, b) = (summary(self.sp), summary(op));
        let at_r0 = |e: Option<&crate::graph::SeeEntry>| {
            e.is_some_and(|e| e.top != NONE && e.top_round == r0)
        };
        let stake = (0..self.hg.sched.creator_count() as u32)
            .filter(|&m| m == self.c || at_r0(a.get(m as usize)) || at_r0(b.get(m as usize)))
            .map(|m| roster.stake_of(m))
            .fold(0u64, u64::saturating_add);
        crate::roster::is_supermajority(stake, roster.roster.total())
    }

    /// The round a child of the self-parent and `op` gets, if it can be
    /// computed here and consensus lets it be created now.
    fn exact_round(&self, op: u32, r0: u64) -> Option<u64> {
        let round = self.hg.round_of(self.c, self.sp, op, r0)?.1.round;
        (round <= self.fixed).then_some(round)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i + 1; 32])
    }

    fn ev(
        hg: &mut Hashgraph,
        k: &SigningKey,
        sp: Option<&Event>,
        op: Option<&Event>,
        t: u64,
    ) -> Event {
        let e = hg
            .build_event(k, sp.map(Event::id), op.map(Event::id), t, vec![])
            .expect("parents held");
        assert!(matches!(
            hg.insert(e.clone()),
            Ok(InsertOutcome::Inserted(_))
        ));
        e
    }

    impl Hashgraph {
        /// The choice before bounding: every candidate scored with its
        /// exact round, the best (the last of equals) taken.
        fn best_other_parent_exhaustive(
            &self,
            creator: &CreatorId,
            newest: Option<EventId>,
        ) -> Option<EventId> {
            let Some(&c) = self.sched.index.get(creator) else {
                return newest;
            };
            let newest_slot = newest.and_then(|id| self.g.get(&id));
            let choice = OtherParentChoice::new(self, c, newest_slot);
            choice
                .candidates()
                .filter_map(|op| {
                    let round = choice.exact_round(op, choice.parent_round(op))?;
                    let fresh = Some(op) == newest_slot;
                    Some(((round, choice.newer_than_sp(op), fresh), op))
                })
                .max_by_key(|&(score, _)| score)
                .map(|(_, op)| self.g.node(op).event.id())
        }
    }

    fn four() -> (Vec<SigningKey>, Hashgraph) {
        let keys: Vec<SigningKey> = (0..4).map(key).collect();
        let roster = Roster::new(keys.iter().map(|k| (CreatorId::from(k), 1))).expect("valid");
        let hg = Hashgraph::new(
            Config {
                network_id: [0; 32],
                limits: Limits::default(),
            },
            roster,
        );
        (keys, hg)
    }

    fn round(hg: &Hashgraph, e: &Event) -> u64 {
        hg.event_info(&e.id()).expect("held").round
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Bounding candidates before computing exact rounds changes
        /// nothing: on random graphs (random stakes, creators linking the
        /// best or a random other-parent, so some lag and some race ahead)
        /// every creator's choice equals scoring every candidate exactly.
        #[test]
        fn bounded_other_parent_choice_equals_the_exhaustive_one(seed: u64, n in 4usize..=9) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let keys: Vec<SigningKey> = (0..n as u8).map(key).collect();
            let roster = Roster::new(keys.iter().map(|k| (CreatorId::from(k), rng.gen_range(1..=5))))
                .expect("valid");
            let mut hg = Hashgraph::new(
                Config { network_id: [0; 32], limits: Limits::default() },
                roster,
            );
            let ids: Vec<CreatorId> = keys.iter().map(CreatorId::from).collect();
            let mut checked = 0;
            for t in 1..400u64 {
                let i = rng.gen_range(0..n);
                let newest = hg.latest_of(&ids[rng.gen_range(0..n)]);
                let best = hg.best_other_parent(&ids[i], newest);
                proptest::prop_assert_eq!(best, hg.best_other_parent_exhaustive(&ids[i], newest));
                checked += usize::from(best.is_some());
                let op = if rng.gen_bool(0.6) { best } else { newest };
                let sp = hg.chain_head(&ids[i]).map(|h| h.id);
                if let Ok(e) = hg.build_event(&keys[i], sp, op.filter(|_| sp.is_some() || t > 1), t, vec![]) {
                    let _ = hg.insert(e);
                }
            }
            proptest::prop_assert!(checked > 100, "only {} choices made", checked);
            proptest::prop_assert!(hg.stats().last_round_created > 3);
        }
    }

    /// A stale arrival is passed over for the tip that lifts the new event
    /// into the next round: B, C and D gossip among themselves into round
    /// 2 while A holds only round-1 news; linking D's tip makes A's next
    /// event round 2, linking the stale arrival would keep it in round 1.
    #[test]
    fn best_other_parent_takes_the_tip_that_advances_the_round() {
        let (keys, mut hg) = four();
        let a0 = ev(&mut hg, &keys[0], None, None, 1);
        let mut tips: Vec<Event> = (1..4)
            .map(|i| ev(&mut hg, &keys[i], None, None, 1))
            .collect();
        let stale = tips[1].clone();
        let mut t = 2;
        while tips.iter().any(|e| round(&hg, e) < 2) {
            for i in 0..3 {
                let other = tips[(i + 1) % 3].clone();
                tips[i] = ev(&mut hg, &keys[i + 1], Some(&tips[i]), Some(&other), t);
                t += 1;
            }
            assert!(t < 100, "B, C and D never reached round 2");
        }
        let a = CreatorId::from(&keys[0]);
        let best = hg
            .best_other_parent(&a, Some(stale.id()))
            .expect("other creators' events are held");
        assert_ne!(best, stale.id());
        let with_best = hg
            .build_event(&keys[0], Some(a0.id()), Some(best), t, vec![])
            .expect("parents held");
        let with_stale = hg
            .build_event(&keys[0], Some(a0.id()), Some(stale.id()), t, vec![])
            .expect("parents held");
        assert_eq!(with_stale.birth_round(), 1);
        assert_eq!(with_best.birth_round(), 2);
    }

    /// Among equally good tips the fresh arrival wins; A's own events are
    /// never proposed; an unknown creator gets its arrival back unchanged.
    #[test]
    fn best_other_parent_keeps_a_fresh_arrival_and_never_picks_its_own_chain() {
        let (keys, mut hg) = four();
        let a = CreatorId::from(&keys[0]);
        assert_eq!(hg.best_other_parent(&a, None), None);
        let a0 = ev(&mut hg, &keys[0], None, None, 1);
        assert_eq!(
            hg.best_other_parent(&a, None),
            None,
            "only A's own chain held"
        );
        let b0 = ev(&mut hg, &keys[1], None, None, 1);
        let c0 = ev(&mut hg, &keys[2], None, None, 1);
        assert_eq!(hg.best_other_parent(&a, Some(b0.id())), Some(b0.id()));
        assert_eq!(hg.best_other_parent(&a, Some(c0.id())), Some(c0.id()));
        // An arrival that is A's own event is not an other-parent.
        let best = hg
            .best_other_parent(&a, Some(a0.id()))
            .expect("B and C held");
        assert!(best == b0.id() || best == c0.id());
        // C's next event has seen B's: it shows A more than b0 does.
        let c1 = ev(&mut hg, &keys[2], Some(&c0), Some(&b0), 2);
        assert_eq!(hg.best_other_parent(&a, Some(b0.id())), Some(c1.id()));
        let stranger = CreatorId::from(&key(9));
        assert_eq!(
            hg.best_other_parent(&stranger, Some(b0.id())),
            Some(b0.id())
        );
    }

    /// An event stops seeing a creator's events once a fork by that
    /// creator (at or above their round) is among its ancestors.
    #[test]
    fn seeing_a_fork_hides_the_forker() {
        let keys: Vec<SigningKey> = (0..4).map(key).collect();
        let roster = Roster::new(keys.iter().map(|k| (CreatorId::from(k), 1))).expect("valid");
        let mut hg = Hashgraph::new(
            Config {
                network_id: [0; 32],
                limits: Limits::default(),
            },
            roster,
        );
        let a0 = ev(&mut hg, &keys[0], None, None, 1);
        let a0x = ev(&mut hg, &keys[0], None, None, 2); // fork: a second seq-0 event
        let b0 = ev(&mut hg, &keys[1], None, None, 1);
        let c0 = ev(&mut hg, &keys[2], None, None, 1);
        let d0 = ev(&mut hg, &keys[3], None, None, 1);
        let b1 = ev(&mut hg, &keys[1], Some(&b0), Some(&a0), 5);
        let c1 = ev(&mut hg, &keys[2], Some(&c0), Some(&a0x), 5);
        let d1 = ev(&mut hg, &keys[3], Some(&d0), Some(&b1), 6);
        let d2 = ev(&mut hg, &keys[3], Some(&d1), Some(&c1), 7);
        let ev_pair = hg.take_equivocations();
        let slot = |e: &Event| hg.g.get(&e.id()).expect("held");
        assert_eq!(ev_pair.len(), 1);
        assert_eq!(ev_pair[0].verify(&[0; 32]), Ok(()));
        // d1 has only a0 among A's events: it sees a0.
        assert!(rounds::sees(&hg.g, slot(&d1), slot(&a0)));
        assert!(!rounds::sees(&hg.g, slot(&d1), slot(&a0x)));
        // d2 has both branches: it sees neither, and records the fork round.
        assert!(!rounds::sees(&hg.g, slot(&d2), slot(&a0)));
        assert!(!rounds::sees(&hg.g, slot(&d2), slot(&a0x)));
        let a = hg.sched.index[&CreatorId::from(&keys[0])] as usize;
        assert_eq!(hg.g.node(slot(&d2)).see[a].fork_round, 1);
        assert_eq!(hg.g.node(slot(&d2)).see[a].top, NONE);
        // Other creators are unaffected.
        assert!(rounds::sees(&hg.g, slot(&d2), slot(&b0)));
        assert!(rounds::sees(&hg.g, slot(&d2), slot(&c0)));
    }
}
