//! DAG storage: an arena of nodes addressed by `u32` slots, the id index,
//! per-round indices and self-chain ancestry helpers.
//!
//! A slot is only reused after its event was pruned, and every reference a
//! node keeps to another slot is stored together with that event's round.
//! Code dereferences a reference only when that round is above the pruned
//! horizon, so a stale slot is never followed.

use std::collections::{BTreeMap, HashMap};

use crate::event::{Event, EventId};

/// "No event" marker for slot fields.
pub(crate) const NONE: u32 = u32::MAX;

/// What an event knows about one creator (see `rounds.rs`): the latest of
/// that creator's events it can see, and the highest round at which it can
/// see a fork by that creator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeeEntry {
    pub top: u32,
    pub top_round: u64,
    pub fork_round: u64,
}

impl SeeEntry {
    pub const EMPTY: SeeEntry = SeeEntry {
        top: NONE,
        top_round: 0,
        fork_round: 0,
    };
}

/// One inserted event and everything consensus caches about it.
#[derive(Debug)]
pub(crate) struct Node {
    pub event: Event,
    pub creator: u32,
    pub seq: u64,
    pub time: u64,
    /// Self-parent slot and round (NONE if absent or treated as ancient).
    pub sp: u32,
    pub sp_round: u64,
    pub op: u32,
    pub op_round: u64,
    pub round: u64,
    pub witness: bool,
    /// The witness of `round` on this event's self-chain.
    pub first_witness: u32,
    /// Index in its round's witness list (witnesses only).
    pub witness_pos: u32,
    pub see: Box<[SeeEntry]>,
    /// Per creator, the round-`round` witness this event sees (or NONE).
    pub sees_witness: Box<[u32]>,
    /// Witnesses only: round-(round-1) witnesses strongly seen, computed lazily.
    pub strongly_seen: Option<Box<[u32]>>,
    pub fame: Option<bool>,
    /// This node checked the birth round against its parents and it holds
    /// (see the crate docs, "Sound events"): only sound events are linked
    /// by this node's own events.
    pub sound: bool,
    pub ordered: bool,
    pub insert_no: u64,
    pub self_children: u32,
    /// Scratch stamp for traversals.
    pub mark: u64,
}

/// Events of one round.
#[derive(Debug, Default)]
pub(crate) struct RoundSlots {
    pub events: Vec<u32>,
    pub witnesses: Vec<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub slots: Vec<Option<Node>>,
    pub free: Vec<u32>,
    pub ids: HashMap<EventId, u32>,
    pub rounds: BTreeMap<u64, RoundSlots>,
    /// Per creator: seq -> first held event with that seq (conflict
    /// detection, see `evidence.rs`).
    pub chains: Vec<BTreeMap<u64, u32>>,
    /// Per creator: events without a held self-child.
    pub tips: Vec<Vec<u32>>,
    /// Per creator: this node has seen a fork or an unlinked self-parent,
    /// so seq order does not imply self-ancestry (local shortcut switch
    /// only: it selects the slow path, which gives the same answers).
    pub irregular: Vec<bool>,
    /// Rounds <= this have been pruned.
    pub pruned_through: u64,
    pub next_insert: u64,
    pub next_mark: u64,
    pub len: usize,
}

impl Graph {
    pub fn node(&self, s: u32) -> &Node {
        self.slots[s as usize]
            .as_ref()
            .expect("slot referenced while live")
    }
    pub fn node_mut(&mut self, s: u32) -> &mut Node {
        self.slots[s as usize]
            .as_mut()
            .expect("slot referenced while live")
    }
    pub fn get(&self, id: &EventId) -> Option<u32> {
        self.ids.get(id).copied()
    }

    pub fn ensure_creators(&mut self, n: usize) {
        if self.tips.len() < n {
            self.tips.resize_with(n, Vec::new);
            self.chains.resize_with(n, BTreeMap::new);
            self.irregular.resize(n, false);
        }
    }

    /// Store a node, returning its slot.
    pub fn alloc(&mut self, node: Node) -> u32 {
        self.len += 1;
        match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(node);
                s
            }
            None => {
                self.slots.push(Some(node));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Remove every event of rounds (= birth rounds) <= `through`; returns
    /// their ids.
    pub fn prune_through(&mut self, through: u64) -> Vec<EventId> {
        let mut removed = Vec::new();
        if through <= self.pruned_through {
            return removed;
        }
        let keep = self.rounds.split_off(&(through + 1));
        let old = std::mem::replace(&mut self.rounds, keep);
        for (_, rs) in old {
            for s in rs.events {
                if let Some(node) = self.slots[s as usize].take() {
                    let id = node.event.id();
                    self.ids.remove(&id);
                    let c = node.creator as usize;
                    if let Some(chain) = self.chains.get_mut(c) {
                        if chain.get(&node.seq) == Some(&s) {
                            chain.remove(&node.seq);
                        }
                    }
                    if let Some(t) = self.tips.get_mut(c) {
                        t.retain(|&x| x != s);
                    }
                    self.free.push(s);
                    self.len -= 1;
                    removed.push(id);
                }
            }
        }
        self.pruned_through = through;
        removed
    }

    /// A parent reference is followable if its round was not pruned.
    pub fn live(&self, slot: u32, round: u64) -> bool {
        slot != NONE && round > self.pruned_through
    }

    /// Is `a` a self-ancestor of `b` or `b` itself? Both must be live and
    /// by the same creator.
    pub fn self_ancestor_or_eq(&self, a: u32, b: u32) -> bool {
        if a == b {
            return true;
        }
        let na = self.node(a);
        let nb = self.node(b);
        if na.seq >= nb.seq {
            return false;
        }
        if !self
            .irregular
            .get(na.creator as usize)
            .copied()
            .unwrap_or(true)
        {
            return true;
        }
        let (target_seq, target_round) = (na.seq, na.round);
        let mut u = b;
        loop {
            let n = self.node(u);
            if n.seq <= target_seq {
                return u == a;
            }
            if n.sp == NONE || n.sp_round < target_round {
                return false;
            }
            u = n.sp;
        }
    }

    /// The round-`round` witness on the self-chain ending at `t`
    /// (`t` live, `round(t) >= round > pruned_through`).
    pub fn witness_on_chain(&self, t: u32, round: u64) -> u32 {
        let mut u = self.node(t).first_witness;
        loop {
            let n = self.node(u);
            if n.round == round {
                return u;
            }
            if n.round < round || n.sp == NONE || n.sp_round < round {
                return NONE;
            }
            u = self.node(n.sp).first_witness;
        }
    }

    pub fn fresh_mark(&mut self) -> u64 {
        self.next_mark += 1;
        self.next_mark
    }

    /// All live slots (for sync and tests).
    pub fn live_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_some())
            .map(|(i, _)| i as u32)
    }
}

impl Graph {
    /// The slot the next [`Graph::alloc`] will return.
    pub fn next_slot(&self) -> u32 {
        match self.free.last() {
            Some(&s) => s,
            None => self.slots.len() as u32,
        }
    }
}
