//! The façade: [`Hashgraph`] ties verification, storage, rounds, fame and
//! order together behind a small sans-IO API (see the crate docs).

use std::collections::VecDeque;

use ed25519_dalek::SigningKey;

use crate::error::{CreateError, Reject, ScheduleError};
use crate::event::{CreatorId, Event, EventId, UnsignedEvent};
use crate::evidence::Equivocation;
use crate::graph::{Graph, Node, NONE};
use crate::order::{self, OrderState, Ordered};
use crate::pending::{ParentBuffer, Parked};
use crate::roster::{Roster, Schedule};
use crate::{fame, rounds, verify, Config, ANCIENT_HORIZON, ROSTER_DELAY};

/// Unread equivocation evidence kept at most (oldest dropped beyond).
pub(crate) const MAX_PENDING_EVIDENCE: usize = 1024;

/// What [`Hashgraph::insert`] did with an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Added to the graph, possibly releasing buffered descendants.
    Inserted(Inserted),
    /// A parent is unknown; the event waits in the bounded parent buffer.
    /// `evicted` is the oldest buffered event dropped to make room.
    Buffered { evicted: Option<EventId> },
    /// Parents are known but the event's round needs a roster that is not
    /// fixed yet; it is placed automatically by a later [`Hashgraph::poll`].
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
}

/// Read-only figures for a status API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    pub last_round_created: u64,
    pub last_decided_round: u64,
    pub pruned_through_round: u64,
    pub held_events: usize,
    pub buffered_events: usize,
    pub parked_events: usize,
    pub ordered_count: u64,
    pub running_hash: [u8; 32],
    /// Parked or buffered events that failed checks when retried.
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
}

enum Placement {
    Inserted(u32),
    Buffered(Option<EventId>),
    Parked,
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
    /// Per creator: latest (id, seq, time) ever inserted, so a node's own
    /// next event continues its chain even after its tip was pruned.
    pub(crate) latest: Vec<Option<(EventId, u64, u64)>>,
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
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Verify `event` and add it (or buffer/park it). Never panics on any
    /// event, however malformed.
    pub fn insert(&mut self, event: Event) -> Result<InsertOutcome, Reject> {
        let id = event.id();
        if self.g.get(&id).is_some() || self.buffer.contains(&id) || self.parked.contains(&id) {
            return Ok(InsertOutcome::Duplicate);
        }
        verify::check_shape(&event, &self.config.limits)?;
        if !self
            .sched
            .known_from(&event.creator(), self.g.pruned_through + 1)
        {
            return Err(Reject::UnknownCreator);
        }
        verify::check_root(&event)?;
        verify::signature_ok(&event, &self.config.network_id)?;
        match self.place(event)? {
            Placement::Buffered(evicted) => Ok(InsertOutcome::Buffered { evicted }),
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
                let cid = child.id();
                match self.place(child) {
                    Ok(Placement::Inserted(_)) => {
                        unblocked.push(cid);
                        queue.push(cid);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.dropped += 1;
                        dropped.push((cid, e));
                    }
                }
            }
        }
        (unblocked, dropped)
    }

    /// Resolve parents, then buffer, park or insert.
    fn place(&mut self, event: Event) -> Result<Placement, Reject> {
        let creator = *self
            .sched
            .index
            .get(&event.creator())
            .ok_or(Reject::UnknownCreator)?;
        self.g.ensure_creators(self.sched.creator_count());
        let mut missing = Vec::new();
        let mut cut = false;
        let (sp, sp_round) = match event.self_parent() {
            // A re-anchor continues its creator's sequence without a parent
            // link: like a cut chain, seq order no longer implies ancestry.
            None => {
                cut = event.seq() > 0;
                (NONE, 0)
            }
            Some(pid) => match self.g.get(&pid) {
                Some(s) => {
                    let n = self.g.node(s);
                    if n.creator != creator {
                        return Err(Reject::SelfParentWrongCreator);
                    }
                    verify::check_self_parent(&event, n.seq, n.time)?;
                    (s, n.round)
                }
                None => {
                    let pruned = self
                        .g
                        .pruned_seq
                        .get(creator as usize)
                        .copied()
                        .unwrap_or(0);
                    if event.seq().saturating_sub(1) < pruned {
                        // The self-parent lies in pruned rounds: treat it as
                        // absent, as every node past that point must.
                        cut = true;
                    } else {
                        missing.push(pid);
                    }
                    (NONE, 0)
                }
            },
        };
        let (op, op_round) = match event.other_parent() {
            None => (NONE, 0),
            Some(pid) => match self.g.get(&pid) {
                Some(s) => {
                    let n = self.g.node(s);
                    if n.creator == creator {
                        return Err(Reject::OtherParentSameCreator);
                    }
                    (s, n.round)
                }
                None => {
                    missing.push(pid);
                    (NONE, 0)
                }
            },
        };
        if !missing.is_empty() {
            let evicted = self
                .buffer
                .add(event, &missing, self.config.limits.max_buffered_events);
            return Ok(Placement::Buffered(evicted));
        }
        let pruned_through = self.g.pruned_through;
        if cut && op == NONE {
            return Err(Reject::Ancient {
                parent_round: 0,
                pruned_through,
            });
        }
        let r0 = sp_round.max(op_round);
        let ancient = if r0 == 0 {
            pruned_through > 0
        } else {
            rounds::window_floor(r0) <= pruned_through
        };
        if ancient {
            return Err(Reject::Ancient {
                parent_round: r0,
                pruned_through,
            });
        }
        let fixed_through = self.fixed_through();
        if r0 + 1 > fixed_through {
            if self
                .parked
                .push(event, self.config.limits.max_parked_events)
            {
                return Ok(Placement::Parked);
            }
            return Err(Reject::TooFarAhead {
                round: r0 + 1,
                fixed_through,
            });
        }
        self.insert_node(event, creator, sp, op, r0, cut)
            .map(Placement::Inserted)
    }

    /// Highest round whose roster can no longer change.
    fn fixed_through(&self) -> u64 {
        self.sealed + ROSTER_DELAY
    }

    fn insert_node(
        &mut self,
        event: Event,
        c: u32,
        sp: u32,
        op: u32,
        r0: u64,
        cut: bool,
    ) -> Result<u32, Reject> {
        let k = self.sched.creator_count();
        let g = &self.g;
        let mut see = rounds::build_see(g, c, sp, op, r0, k);
        let rr = rounds::compute_round(g, &self.sched, c, sp, &see, r0);
        let round = rr.round;
        if !self.sched.at(round).roster.contains(&event.creator()) {
            return Err(Reject::NotInRoster { round });
        }
        let (sp_round, op_round) = (
            if sp == NONE { 0 } else { g.node(sp).round },
            if op == NONE { 0 } else { g.node(op).round },
        );
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

        // Fork bookkeeping and evidence.
        let seq = event.seq();
        let ci = c as usize;
        if cut || seq < self.g.pruned_seq.get(ci).copied().unwrap_or(0) {
            self.g.irregular[ci] = true;
        }
        match self.g.by_seq.get(&(c, seq)) {
            Some(&other) => {
                self.g.irregular[ci] = true;
                if self.evidence.len() >= MAX_PENDING_EVIDENCE {
                    self.evidence.pop_front();
                }
                self.evidence.push_back(Equivocation {
                    first: self.g.node(other).event.clone(),
                    second: event.clone(),
                });
            }
            None => {
                self.g.by_seq.insert((c, seq), slot);
            }
        }

        let id = event.id();
        let time = event.created_at_ns();
        if self.latest.len() < k {
            self.latest.resize(k, None);
        }
        if self.latest[ci].is_none_or(|(_, s, _)| seq > s) {
            self.latest[ci] = Some((id, seq, time));
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
            strongly_seen: rr.strongly_seen.map(Vec::into_boxed_slice),
            fame: (witness && round <= self.last_decided).then_some(false),
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
        Ok(slot)
    }

    /// Produce the next decided round, if consensus has one. Call in a loop
    /// until `None`; between two calls the driver may apply roster changes
    /// ordered in the round just returned with
    /// [`Hashgraph::schedule_roster_change`].
    pub fn poll(&mut self) -> Option<Decided> {
        if self.sealed < self.last_decided {
            self.sealed = self.last_decided;
            self.unpark();
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
        self.buffer.compact();
        Some(Decided {
            round_received: r,
            judges: judge_ids,
            events,
            running_hash: self.order.running_hash,
            pruned,
        })
    }

    fn unpark(&mut self) {
        for event in self.parked.drain() {
            let id = event.id();
            match self.place(event) {
                Ok(Placement::Inserted(_)) => {
                    let (_, dropped) = self.release_children(id);
                    self.dropped += dropped.len() as u64;
                }
                Ok(_) => {}
                Err(_) => self.dropped += 1,
            }
        }
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

    /// Create, sign and insert this node's next event. Self-parent = its
    /// latest event; time = `max(now_ns, self-parent's + 1)`, so a clock that
    /// goes back never produces an invalid event.
    pub fn create_event(
        &mut self,
        key: &SigningKey,
        txs: Vec<Vec<u8>>,
        now_ns: u64,
        other_parent: Option<EventId>,
    ) -> Result<Event, CreateError> {
        let creator = CreatorId::from(key);
        let c = *self
            .sched
            .index
            .get(&creator)
            .ok_or(Reject::UnknownCreator)?;
        let last = self.latest.get(c as usize).copied().flatten();
        let mut r0 = 0;
        if let Some(op) = other_parent {
            let s = self.g.get(&op).ok_or(CreateError::UnknownOtherParent)?;
            r0 = self.g.node(s).round;
        }
        if let Some((id, _, _)) = last {
            if let Some(s) = self.g.get(&id) {
                r0 = r0.max(self.g.node(s).round);
            }
        }
        if r0 + 1 > self.fixed_through() {
            return Err(CreateError::WaitForConsensus);
        }
        let (seq, self_parent, time) = match last {
            // The tip is pruned: peers that never received it (a crash right
            // after signing) could not place it, nor a child naming it. So
            // re-anchor: the next sequence, without a self-parent (this is
            // not a fork: no two events share a sequence or a self-parent).
            Some((id, seq, t)) if self.g.get(&id).is_none() && other_parent.is_some() => {
                (seq + 1, None, now_ns.max(t.saturating_add(1)))
            }
            Some((id, seq, t)) => (seq + 1, Some(id), now_ns.max(t.saturating_add(1))),
            None => (0, None, now_ns),
        };
        let event = UnsignedEvent {
            seq,
            self_parent,
            other_parent,
            created_at_ns: time,
            txs,
        }
        .sign(key, &self.config.network_id);
        match self.insert(event.clone())? {
            InsertOutcome::Inserted(_) => Ok(event),
            _ => Err(CreateError::WaitForConsensus),
        }
    }

    /// Equivocation evidence found since the last call (bounded queue).
    /// The latest event ever inserted for `creator` as (id, seq, creation
    /// time), kept even after that event was pruned. A node uses it for its
    /// own chain and to pick a peer's latest event as other-parent.
    pub fn latest_of(&self, creator: &CreatorId) -> Option<(EventId, u64, u64)> {
        let c = *self.sched.index.get(creator)?;
        self.latest.get(c as usize).copied().flatten()
    }

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
            parked_events: self.parked.len(),
            ordered_count: self.order.count,
            running_hash: self.order.running_hash,
            dropped_events: self.dropped,
        }
    }

    /// Consensus facts about a held event.
    pub fn event_info(&self, id: &EventId) -> Option<EventInfo> {
        let n = self.g.node(self.g.get(id)?);
        Some(EventInfo {
            round: n.round,
            witness: n.witness,
            famous: n.fame,
            ordered: n.ordered,
        })
    }

    /// Whether this instance holds `id` or keeps it waiting (parent buffer
    /// or parked); false once it was pruned, dropped or evicted.
    pub fn knows(&self, id: &EventId) -> bool {
        self.g.get(id).is_some() || self.buffer.contains(id) || self.parked.contains(id)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i + 1; 32])
    }

    fn ev(k: &SigningKey, sp: Option<&Event>, op: Option<&Event>, t: u64) -> Event {
        UnsignedEvent {
            seq: sp.map_or(0, |p| p.seq() + 1),
            self_parent: sp.map(Event::id),
            other_parent: op.map(Event::id),
            created_at_ns: t,
            txs: vec![],
        }
        .sign(k, &[0; 32])
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
        let a0 = ev(&keys[0], None, None, 1);
        let a0x = ev(&keys[0], None, None, 2); // fork: a second seq-0 event
        let b0 = ev(&keys[1], None, None, 1);
        let c0 = ev(&keys[2], None, None, 1);
        let d0 = ev(&keys[3], None, None, 1);
        let b1 = ev(&keys[1], Some(&b0), Some(&a0), 5);
        let c1 = ev(&keys[2], Some(&c0), Some(&a0x), 5);
        let d1 = ev(&keys[3], Some(&d0), Some(&b1), 6);
        let d2 = ev(&keys[3], Some(&d1), Some(&c1), 7);
        for e in [&a0, &a0x, &b0, &c0, &d0, &b1, &c1, &d1, &d2] {
            assert!(matches!(
                hg.insert(e.clone()),
                Ok(InsertOutcome::Inserted(_))
            ));
        }
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
