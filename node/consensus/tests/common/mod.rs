//! Gossip simulator shared by the integration tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};

use dagger_consensus::{
    Config, CreatorId, Decided, Event, EventId, Hashgraph, InsertOutcome, Limits, Reject, Roster,
    UnsignedEvent,
};
use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub const NET: [u8; 32] = [7u8; 32];

pub fn key(i: usize) -> SigningKey {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    b[31] = 0xA5;
    SigningKey::from_bytes(&b)
}

pub fn config() -> Config {
    Config {
        network_id: NET,
        limits: Limits {
            max_buffered_events: 100_000,
            max_parked_events: 100_000,
            ..Limits::default()
        },
    }
}

pub fn roster(keys: &[SigningKey], stakes: &[u64]) -> Roster {
    Roster::new(
        keys.iter()
            .zip(stakes)
            .map(|(k, s)| (CreatorId::from(k), *s)),
    )
    .expect("valid roster")
}

/// Decides whether a freshly created event may be gossiped.
pub type Gate = Box<dyn FnMut(&Event) -> bool>;

/// A simulated participant's view.
struct Participant {
    /// Bitset over event creation index.
    known: Vec<u64>,
    /// Branch heads of own events (a forker has two).
    heads: Vec<EventId>,
    /// Latest event known per creator (other-parent choice).
    latest_of: BTreeMap<usize, EventId>,
}

/// Random gossip DAG generator: participants sync pairwise and create
/// events; byzantine ones fork and show each branch to a different half.
pub struct Sim {
    pub keys: Vec<SigningKey>,
    pub all: Vec<Event>,
    pub byzantine: Vec<bool>,
    pub silent: Vec<bool>,
    parts: Vec<Participant>,
    info: HashMap<EventId, (usize, u64, u64, u8)>, // creator, seq, time, branch
    creator_of: HashMap<CreatorId, usize>,
    index: HashMap<EventId, usize>,
    pub fork_prob: f64,
    /// Probability that a byzantine creator re-anchors: its next event
    /// continues the sequence without naming its self-parent.
    pub reanchor_prob: f64,
    pub txs_per_event: usize,
    /// Probability of pulling from a second peer before creating.
    pub extra_sync: f64,
    /// Optional gate: events it refuses are discarded (never gossiped).
    pub accept: Option<Gate>,
}

impl Sim {
    pub fn new(n: usize, byzantine: &[usize], silent: &[usize]) -> Sim {
        let keys: Vec<SigningKey> = (0..n).map(key).collect();
        let creator_of = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (CreatorId::from(k), i))
            .collect();
        Sim {
            byzantine: (0..n).map(|i| byzantine.contains(&i)).collect(),
            silent: (0..n).map(|i| silent.contains(&i)).collect(),
            parts: (0..n)
                .map(|_| Participant {
                    known: Vec::new(),
                    heads: Vec::new(),
                    latest_of: BTreeMap::new(),
                })
                .collect(),
            keys,
            all: Vec::new(),
            info: HashMap::new(),
            creator_of,
            index: HashMap::new(),
            fork_prob: 0.15,
            reanchor_prob: 0.0,
            txs_per_event: 2,
            extra_sync: 0.5,
            accept: None,
        }
    }

    /// The events participant `who` knows, in creation (topological) order:
    /// an honest node that never learned a hidden fork branch.
    pub fn view(&self, who: usize) -> Vec<Event> {
        (0..self.all.len())
            .filter(|&i| self.knows(who, i))
            .map(|i| self.all[i].clone())
            .collect()
    }

    pub fn n(&self) -> usize {
        self.keys.len()
    }

    fn knows(&self, who: usize, i: usize) -> bool {
        self.parts[who]
            .known
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    fn learn(&mut self, who: usize, i: usize) {
        if self.knows(who, i) {
            return;
        }
        let k = &mut self.parts[who].known;
        if k.len() <= i / 64 {
            k.resize(i / 64 + 1, 0);
        }
        k[i / 64] |= 1 << (i % 64);
        let id = self.all[i].id();
        let c = self.info[&id].0;
        let cur = self.parts[who].latest_of.get(&c).copied();
        if cur.is_none_or(|cur| self.info[&cur].1 < self.info[&id].1) {
            self.parts[who].latest_of.insert(c, id);
        }
    }

    /// `to` pulls what `from` knows (a byzantine `from` hides the branch
    /// meant for the other half, and everything built on it).
    fn sync(&mut self, from: usize, to: usize) {
        let group = (to % 2) as u8;
        let words = self.parts[from].known.len();
        let mut excluded: HashSet<EventId> = HashSet::new();
        let mut learned = Vec::new();
        for w in 0..words {
            let mine = self.parts[to].known.get(w).copied().unwrap_or(0);
            let mut new = self.parts[from].known[w] & !mine;
            while new != 0 {
                let b = new.trailing_zeros() as usize;
                new &= new - 1;
                let i = w * 64 + b;
                if !self.byzantine[from] {
                    learned.push(i);
                    continue;
                }
                let e = &self.all[i];
                let id = e.id();
                let (c, _, _, branch) = self.info[&id];
                let hidden = c == from && branch != group && branch != 2;
                let parent_excluded = [e.self_parent(), e.other_parent()]
                    .into_iter()
                    .flatten()
                    .any(|p| excluded.contains(&p));
                if hidden || parent_excluded {
                    excluded.insert(id);
                } else {
                    learned.push(i);
                }
            }
        }
        for i in learned {
            self.learn(to, i);
        }
    }

    fn make(
        &mut self,
        c: usize,
        sp: Option<EventId>,
        op: Option<EventId>,
        branch: u8,
        rng: &mut ChaCha8Rng,
    ) -> Option<EventId> {
        let (seq, t0) = match sp {
            Some(p) => (self.info[&p].1 + 1, self.info[&p].2),
            None => (0, 0),
        };
        self.make_at(c, sp, op, branch, seq, t0, rng)
    }

    /// `make` with the sequence and base time given (re-anchors).
    #[allow(clippy::too_many_arguments)]
    fn make_at(
        &mut self,
        c: usize,
        sp: Option<EventId>,
        op: Option<EventId>,
        branch: u8,
        seq: u64,
        t0: u64,
        rng: &mut ChaCha8Rng,
    ) -> Option<EventId> {
        let txs = (0..self.txs_per_event)
            .map(|_| (0..rng.gen_range(1..24)).map(|_| rng.gen()).collect())
            .collect();
        let e = UnsignedEvent {
            seq,
            self_parent: sp,
            other_parent: op,
            created_at_ns: t0 + rng.gen_range(1..1_000),
            txs,
        }
        .sign(&self.keys[c], &NET);
        let id = e.id();
        if let Some(gate) = self.accept.as_mut() {
            if !gate(&e) {
                return None;
            }
        }
        self.info.insert(id, (c, seq, e.created_at_ns(), branch));
        self.index.insert(id, self.all.len());
        self.all.push(e);
        self.learn(c, self.all.len() - 1);
        Some(id)
    }

    /// Every active participant creates its first event.
    pub fn genesis(&mut self, rng: &mut ChaCha8Rng) {
        for c in 0..self.n() {
            if !self.silent[c] {
                if let Some(id) = self.make(c, None, None, 2, rng) {
                    self.parts[c].heads = vec![id];
                }
            }
        }
    }

    /// One gossip step: a random participant syncs from a random peer and
    /// creates an event whose other-parent is something it received.
    pub fn step(&mut self, rng: &mut ChaCha8Rng) {
        let active: Vec<usize> = (0..self.n()).filter(|&i| !self.silent[i]).collect();
        let c = *active.choose(rng).expect("someone active");
        let p = loop {
            let p = *active.choose(rng).expect("someone active");
            if p != c || active.len() == 1 {
                break p;
            }
        };
        self.sync(p, c);
        if rng.gen_bool(self.extra_sync) {
            let q = *active.choose(rng).expect("someone active");
            if q != c {
                self.sync(q, c);
            }
        }
        let op = if rng.gen_bool(0.8) {
            self.parts[c].latest_of.get(&p).copied()
        } else {
            let others: Vec<EventId> = self.parts[c]
                .latest_of
                .iter()
                .filter(|(k, _)| **k != c)
                .map(|(_, v)| *v)
                .collect();
            others.choose(rng).copied()
        };
        let op = op.filter(|o| self.info[o].0 != c);
        if self.parts[c].heads.is_empty() {
            if let Some(id) = self.make(c, None, op, 2, rng) {
                self.parts[c].heads = vec![id];
            }
            return;
        }
        if self.byzantine[c] && self.parts[c].heads.len() == 1 && rng.gen_bool(self.fork_prob) {
            // Fork: a second child of the head's self-parent (or of the head).
            let head = self.parts[c].heads[0];
            let base = self.all[self.index[&head]].self_parent().unwrap_or(head);
            let a = self.make(c, Some(base), op, 0, rng);
            let b = self.make(c, Some(base), op, 1, rng);
            if let (Some(a), Some(b)) = (a, b) {
                self.parts[c].heads = vec![a, b];
            }
            return;
        }
        if self.byzantine[c]
            && self.parts[c].heads.len() == 1
            && op.is_some()
            && rng.gen_bool(self.reanchor_prob)
        {
            // Re-anchor: the next sequence, no self-parent.
            let head = self.parts[c].heads[0];
            let (seq, t0) = (self.info[&head].1 + 1, self.info[&head].2);
            if let Some(id) = self.make_at(c, None, op, 2, seq, t0, rng) {
                self.parts[c].heads = vec![id];
            }
            return;
        }
        let bi = rng.gen_range(0..self.parts[c].heads.len());
        let head = self.parts[c].heads[bi];
        let branch = if self.parts[c].heads.len() > 1 {
            bi as u8
        } else {
            2
        };
        let Some(id) = self.make(c, Some(head), op, branch, rng) else {
            return;
        };
        self.parts[c].heads[bi] = id;
        if self.parts[c].heads.len() > 1 && rng.gen_bool(0.1) {
            // Stop one branch now and then so forks come and go.
            self.parts[c].heads = vec![id];
        }
    }
}

/// A delivery order of `events`: a random topological order, or (if
/// `arbitrary`) any permutation (the parent buffer sorts it out).
pub fn delivery_order(events: &[Event], arbitrary: bool, rng: &mut ChaCha8Rng) -> Vec<Event> {
    let mut out: Vec<Event> = events.to_vec();
    if arbitrary {
        out.shuffle(rng);
        return out;
    }
    let pos: HashMap<EventId, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); events.len()];
    let mut deps = vec![0usize; events.len()];
    for (i, e) in events.iter().enumerate() {
        for p in [e.self_parent(), e.other_parent()].into_iter().flatten() {
            if let Some(&j) = pos.get(&p) {
                children[j].push(i);
                deps[i] += 1;
            }
        }
    }
    let mut ready: Vec<usize> = (0..events.len()).filter(|&i| deps[i] == 0).collect();
    out.clear();
    while !ready.is_empty() {
        let k = rng.gen_range(0..ready.len());
        let i = ready.swap_remove(k);
        out.push(events[i].clone());
        for &ch in &children[i] {
            deps[ch] -= 1;
            if deps[ch] == 0 {
                ready.push(ch);
            }
        }
    }
    out
}

/// What a node output, flattened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderedRow {
    pub id: EventId,
    pub round_received: u64,
    pub time: u64,
    pub index: u64,
    pub hash: [u8; 32],
}

/// Drain `poll` into `out` (and the decided round numbers into `rounds`).
pub fn drain(hg: &mut Hashgraph, out: &mut Vec<OrderedRow>, rounds: &mut Vec<Decided>) {
    while let Some(d) = hg.poll() {
        for o in &d.events {
            out.push(OrderedRow {
                id: o.event.id(),
                round_received: o.round_received,
                time: o.consensus_time_ns,
                index: o.order_index,
                hash: o.running_hash,
            });
        }
        rounds.push(d);
    }
}

/// Feed `events` one at a time, polling after each; returns the order.
pub fn run_node(hg: &mut Hashgraph, events: &[Event]) -> Vec<OrderedRow> {
    let mut out = Vec::new();
    let mut decided = Vec::new();
    for e in events {
        match hg.insert(e.clone()) {
            Ok(InsertOutcome::Inserted(_))
            | Ok(InsertOutcome::Buffered { .. })
            | Ok(InsertOutcome::Parked) => {}
            Ok(InsertOutcome::Duplicate) => panic!("duplicate in delivery"),
            // A very late event (arbitrary delivery order) whose rounds this
            // node already pruned: refusing it is correct and costs nothing
            // but that event's chance to be ordered here.
            Err(Reject::Ancient { .. }) => {}
            Err(r) => panic!("honest delivery rejected: {r:?}"),
        }
        drain(hg, &mut out, &mut decided);
    }
    drain(hg, &mut out, &mut decided);
    out
}

/// Assert every pair of nodes agrees on their common prefix. Returns the
/// longest prefix that was actually compared between two nodes.
pub fn assert_agree(outputs: &[Vec<OrderedRow>], ctx: &str) -> usize {
    let mut compared = 0;
    for i in 0..outputs.len() {
        for j in i + 1..outputs.len() {
            let m = outputs[i].len().min(outputs[j].len());
            for (k, (a, b)) in outputs[i].iter().zip(&outputs[j]).enumerate() {
                assert_eq!(a, b, "{ctx}: nodes {i} and {j} differ at order index {k}");
            }
            compared = compared.max(m);
        }
    }
    compared
}
