//! Gossip simulator shared by the integration tests.
//!
//! Every participant is a real [`Hashgraph`], driven the way a node drives
//! it: it pulls from a peer (`tips` / `events_unknown_to`) and inserts the
//! answer as one batch, polls, applies roster changes at decided rounds,
//! creates its next event with the peer's latest event as other-parent and
//! pushes it to everyone. Byzantine participants follow adversarial
//! strategies ([`Strategies`]): forks shown to different halves, restarted
//! and jumped chains, parallel chains, withholding and late release, events
//! pushed before their parents, and malformed events.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};

use dagger_consensus::{
    Config, CreatorId, Decided, Equivocation, Event, EventId, Hashgraph, InsertOutcome, Limits,
    ParentRef, Reject, Roster, UnsignedEvent, LINK_ROUNDS, MAX_HEADER_VALUE,
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

/// Per-step probabilities of each byzantine behaviour.
#[derive(Clone, Copy, Debug, Default)]
pub struct Strategies {
    /// Two children of one parent, each shown only to one half.
    pub fork: f64,
    /// Name an old own event as self-parent (too old to be linked), as a
    /// restarted node does, and keep the old chain going too.
    pub reanchor: f64,
    /// Invent a self-parent with a huge sequence number.
    pub jump: f64,
    /// Start a second chain at sequence 0 and extend both.
    pub parallel: f64,
    /// Keep the new event (and what follows) private for a while.
    pub withhold: f64,
    /// Push the newest event to a peer that may lack its parents.
    pub push_early: f64,
    /// Push a malformed event (wrong birth round, lying parent descriptor,
    /// bad signature, out-of-range numbers, far-future birth).
    pub garbage: f64,
}

impl Strategies {
    /// Everything at once, at rates that keep the run going.
    pub fn all() -> Strategies {
        Strategies {
            fork: 0.12,
            reanchor: 0.04,
            jump: 0.03,
            parallel: 0.03,
            withhold: 0.05,
            push_early: 0.2,
            garbage: 0.2,
        }
    }
}

/// Counts of byzantine behaviour that actually took place.
#[derive(Clone, Copy, Debug, Default)]
pub struct Done {
    pub forks: usize,
    pub reanchors: usize,
    pub jumps: usize,
    pub parallels: usize,
    pub withheld: usize,
    pub early_pushes: usize,
    pub garbage: usize,
    pub restarts: usize,
}

impl Done {
    pub fn add(&mut self, o: &Done) {
        self.forks += o.forks;
        self.reanchors += o.reanchors;
        self.jumps += o.jumps;
        self.parallels += o.parallels;
        self.withheld += o.withheld;
        self.early_pushes += o.early_pushes;
        self.garbage += o.garbage;
        self.restarts += o.restarts;
    }
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

/// One simulated node.
pub struct Participant {
    pub hg: Hashgraph,
    pub rows: Vec<OrderedRow>,
    /// Events `insert` accepted (inserted, buffered or parked), in order:
    /// what a node persists.
    pub accepted: Vec<Event>,
    pub evidence: Vec<Equivocation>,
    /// Honest events this node refused as ancient or discarded as such.
    pub ancient_honest: Vec<EventId>,
    /// Own chain heads (byzantine participants may keep several).
    heads: Vec<EventId>,
    ever_held: HashSet<EventId>,
}

#[derive(Clone, Copy, Debug)]
struct Info {
    creator: usize,
    /// 0 or 1: a fork branch shown only to that half; 2: everyone.
    branch: u8,
    /// Withheld by its (byzantine) creator until this step.
    hidden_until: u64,
}

/// Random gossip network of real `Hashgraph` instances.
pub struct Sim {
    pub keys: Vec<SigningKey>,
    /// Every valid event created, in creation (topological) order.
    pub all: Vec<Event>,
    pub byzantine: Vec<bool>,
    pub silent: Vec<bool>,
    pub stakes: Vec<u64>,
    pub parts: Vec<Participant>,
    info: HashMap<EventId, Info>,
    creator_of: HashMap<CreatorId, usize>,
    /// Byzantine behaviour (forks on by default, like the old simulator).
    pub strategies: Strategies,
    /// Kept for the older tests: same as `strategies.fork` / `.reanchor`.
    pub fork_prob: f64,
    pub reanchor_prob: f64,
    pub txs_per_event: usize,
    /// Probability of pulling from a second peer before creating.
    pub extra_sync: f64,
    /// Probability that a participant snapshots and restores itself in a step.
    pub snapshot_prob: f64,
    /// Roster changes every participant schedules when it decides the round.
    pub roster_changes: Vec<(u64, Roster)>,
    /// Honest participants choose their other-parent as nodes do
    /// ([`Hashgraph::best_other_parent`], the pulled peer's latest as the
    /// fresh arrival) instead of always the pulled peer's latest.
    pub best_parents: bool,
    /// How often each byzantine behaviour actually happened.
    pub done: Done,
    step_no: u64,
    clock: u64,
}

impl Sim {
    pub fn new(n: usize, byzantine: &[usize], silent: &[usize]) -> Sim {
        Sim::with_stakes(n, byzantine, silent, &vec![1; n])
    }

    pub fn with_stakes(n: usize, byzantine: &[usize], silent: &[usize], stakes: &[u64]) -> Sim {
        let keys: Vec<SigningKey> = (0..n).map(key).collect();
        let mut sim = Sim::with_genesis(n, byzantine, silent, roster(&keys, stakes));
        sim.stakes = stakes.to_vec();
        sim
    }

    /// `n` participants (keys `key(0..n)`) starting from `genesis`, which
    /// need not list all of them (the others join by roster changes).
    pub fn with_genesis(n: usize, byzantine: &[usize], silent: &[usize], genesis: Roster) -> Sim {
        let keys: Vec<SigningKey> = (0..n).map(key).collect();
        let creator_of = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (CreatorId::from(k), i))
            .collect();
        let stakes = keys
            .iter()
            .map(|k| genesis.stake(&CreatorId::from(k)))
            .collect();
        Sim {
            byzantine: (0..n).map(|i| byzantine.contains(&i)).collect(),
            silent: (0..n).map(|i| silent.contains(&i)).collect(),
            stakes,
            parts: (0..n)
                .map(|_| Participant {
                    hg: Hashgraph::new(config(), genesis.clone()),
                    rows: Vec::new(),
                    accepted: Vec::new(),
                    evidence: Vec::new(),
                    ancient_honest: Vec::new(),
                    heads: Vec::new(),
                    ever_held: HashSet::new(),
                })
                .collect(),
            keys,
            all: Vec::new(),
            info: HashMap::new(),
            creator_of,
            strategies: Strategies::default(),
            fork_prob: 0.15,
            reanchor_prob: 0.0,
            txs_per_event: 2,
            extra_sync: 0.5,
            snapshot_prob: 0.0,
            roster_changes: Vec::new(),
            best_parents: false,
            done: Done::default(),
            step_no: 0,
            clock: 0,
        }
    }

    pub fn n(&self) -> usize {
        self.keys.len()
    }

    pub fn is_honest(&self, i: usize) -> bool {
        !self.byzantine[i]
    }

    /// The creator index of an event created in this simulation.
    pub fn creator(&self, id: &EventId) -> Option<usize> {
        self.info.get(id).map(|i| i.creator)
    }

    /// The events participant `who` accepted, in the order it did: what a
    /// node that never learned a hidden fork branch would persist.
    pub fn view(&self, who: usize) -> Vec<Event> {
        self.parts[who].accepted.clone()
    }

    /// Every active participant creates its first event.
    pub fn genesis(&mut self, rng: &mut ChaCha8Rng) {
        for c in 0..self.n() {
            if !self.silent[c] {
                self.create(c, None, rng);
            }
        }
    }

    fn txs(&self, rng: &mut ChaCha8Rng) -> Vec<Vec<u8>> {
        (0..self.txs_per_event)
            .map(|_| (0..rng.gen_range(1..24)).map(|_| rng.gen()).collect())
            .collect()
    }

    fn tick(&mut self, rng: &mut ChaCha8Rng) -> u64 {
        self.clock += rng.gen_range(1..1_000);
        self.clock
    }

    /// Record a new valid event and push it to every other active node
    /// (unless withheld or a hidden fork branch).
    fn record(&mut self, c: usize, e: &Event, branch: u8, hidden_until: u64) {
        self.info.insert(
            e.id(),
            Info {
                creator: c,
                branch,
                hidden_until,
            },
        );
        self.all.push(e.clone());
        let p = &mut self.parts[c];
        p.accepted.push(e.clone());
        p.ever_held.insert(e.id());
    }

    fn push_to_all(&mut self, c: usize, e: &Event) {
        let targets: Vec<usize> = (0..self.n())
            .filter(|&t| t != c && !self.silent[t])
            .collect();
        for t in targets {
            if self.visible_to(e, t) {
                self.deliver(t, vec![e.clone()]);
            }
        }
    }

    fn visible_to(&self, e: &Event, to: usize) -> bool {
        match self.info.get(&e.id()) {
            Some(i) => {
                i.hidden_until <= self.step_no && (i.branch == 2 || i.branch == (to % 2) as u8)
            }
            None => true,
        }
    }

    /// Honest creation (or a byzantine one on one of its heads).
    fn create(&mut self, c: usize, op: Option<EventId>, rng: &mut ChaCha8Rng) {
        let t = self.tick(rng);
        let txs = self.txs(rng);
        let key = self.keys[c].clone();
        let p = &mut self.parts[c];
        let result = if self.byzantine[c] && p.heads.len() > 1 {
            let i = rng.gen_range(0..p.heads.len());
            let head = p.heads[i];
            match p.hg.build_event(&key, Some(head), op, t, txs) {
                Ok(e) if matches!(p.hg.insert(e.clone()), Ok(InsertOutcome::Inserted(_))) => {
                    p.heads[i] = e.id();
                    Ok(e)
                }
                Ok(_) => Err(()),
                Err(_) => {
                    // That head is pruned or unusable: give it up.
                    p.heads.remove(i);
                    Err(())
                }
            }
        } else {
            match p.hg.create_event(&key, txs, t, op) {
                Ok(e) => {
                    p.heads = vec![e.id()];
                    Ok(e)
                }
                Err(err) => {
                    if std::env::var("SIM_DEBUG").is_ok() {
                        eprintln!(
                            "step {} node {c}: cannot create: {err:?} stats {:?}",
                            self.step_no,
                            p.hg.stats().last_decided_round
                        );
                    }
                    Err(())
                }
            }
        };
        if let Ok(e) = result {
            self.after_create(c, &e, rng);
        }
    }

    fn after_create(&mut self, c: usize, e: &Event, rng: &mut ChaCha8Rng) {
        let s = self.strategies;
        let withhold = self.byzantine[c] && rng.gen_bool(s.withhold);
        let hidden_until = if withhold {
            self.done.withheld += 1;
            self.step_no + rng.gen_range(10..(20 * self.n() as u64))
        } else {
            0
        };
        self.record(c, e, 2, hidden_until);
        if std::env::var("SIM_DEBUG").is_ok() {
            eprintln!(
                "step {} node {c} created seq {} born {} withhold {withhold}",
                self.step_no,
                e.seq(),
                e.birth_round()
            );
        }
        if !withhold {
            self.push_to_all(c, e);
        }
    }

    /// One gossip step: a random active participant pulls from a random
    /// peer (maybe two), creates an event whose other-parent is that peer's
    /// latest, and pushes it. Byzantine participants misbehave now and then.
    pub fn step(&mut self, rng: &mut ChaCha8Rng) {
        self.step_no += 1;
        self.strategies.fork = self.strategies.fork.max(self.fork_prob);
        self.strategies.reanchor = self.strategies.reanchor.max(self.reanchor_prob);
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
        if self.snapshot_prob > 0.0 && rng.gen_bool(self.snapshot_prob) {
            self.restart(c);
        }
        let pc = CreatorId::from(&self.keys[p]);
        let mut op = self.parts[c].hg.latest_of(&pc).filter(|_| p != c);
        if self.best_parents && !self.byzantine[c] {
            let me = CreatorId::from(&self.keys[c]);
            op = self.parts[c].hg.best_other_parent(&me, op);
        }
        if self.byzantine[c] && self.misbehave(c, op, rng) {
            return;
        }
        self.create(c, op, rng);
    }

    /// `to` pulls from `from`: the events `from` holds that `to` lacks,
    /// parents first (a byzantine `from` hides what it withholds and the
    /// fork branch meant for the other half, and everything built on them).
    fn sync(&mut self, from: usize, to: usize) {
        let tips = self.parts[to].hg.tips();
        let answer = self.parts[from].hg.events_unknown_to(&tips);
        let answer = if self.byzantine[from] {
            let mut excluded: HashSet<EventId> = HashSet::new();
            answer
                .into_iter()
                .filter(|e| {
                    let parent_excluded = [e.self_parent(), e.other_parent()]
                        .into_iter()
                        .flatten()
                        .any(|p| excluded.contains(&p));
                    if parent_excluded || !self.visible_to(e, to) {
                        excluded.insert(e.id());
                        false
                    } else {
                        true
                    }
                })
                .collect()
        } else {
            answer
        };
        self.deliver(to, answer);
    }

    /// Insert a batch into participant `to` as a node does, then poll.
    fn deliver(&mut self, to: usize, events: Vec<Event>) {
        for e in events {
            let id = e.id();
            let creator = self.info.get(&id).map(|i| i.creator);
            let honest = creator.is_some_and(|c| !self.byzantine[c]);
            let part = &mut self.parts[to];
            match part.hg.insert(e.clone()) {
                Ok(InsertOutcome::Duplicate) => {}
                Ok(outcome) => {
                    part.accepted.push(e);
                    if let InsertOutcome::Inserted(ins) = &outcome {
                        part.ever_held.insert(id);
                        part.ever_held.extend(ins.unblocked.iter().copied());
                        for (d, r) in &ins.dropped {
                            let dc = self.info.get(d).map(|i| i.creator);
                            assert!(
                                dc.is_none_or(|c| self.byzantine[c]),
                                "honest event dropped at {to}: {r:?}"
                            );
                        }
                    }
                }
                // Refusing an event it held and pruned already is no loss.
                Err(Reject::Ancient { .. }) if honest && !part.ever_held.contains(&id) => {
                    if std::env::var("SIM_DEBUG").is_ok() {
                        eprintln!(
                            "step {} node {to}: honest event of {:?} born {} seq {} ancient; node stats {:?}",
                            self.step_no,
                            creator,
                            e.birth_round(),
                            e.seq(),
                            part.hg.stats()
                        );
                    }
                    part.ancient_honest.push(id)
                }
                Err(Reject::Ancient { .. })
                | Err(Reject::TooFarAhead { .. })
                | Err(Reject::UnknownCreator) => {}
                Err(r) if honest => {
                    panic!("honest event {id:?} refused at {to}: {r:?}")
                }
                Err(_) => {}
            }
        }
        self.pump(to);
    }

    fn pump(&mut self, who: usize) {
        let changes = self.roster_changes.clone();
        let part = &mut self.parts[who];
        while let Some(d) = part.hg.poll() {
            for o in &d.events {
                part.rows.push(row(o));
            }
            for id in &d.discarded {
                if let Some(i) = self.info.get(id) {
                    if !self.byzantine[i.creator] && !part.ever_held.contains(id) {
                        part.ancient_honest.push(*id);
                    }
                }
            }
            for (r, roster) in &changes {
                if *r == d.round_received {
                    part.hg
                        .schedule_roster_change(*r, roster.clone())
                        .expect("window open");
                }
            }
        }
        part.evidence.extend(part.hg.take_equivocations());
    }

    /// Snapshot and restore a participant: it must go on identically.
    fn restart(&mut self, who: usize) {
        self.done.restarts += 1;
        let part = &mut self.parts[who];
        let bytes = part.hg.snapshot();
        let restored = Hashgraph::restore(config(), &bytes).expect("own snapshot restores");
        assert!(restored.snapshot() == bytes, "restore is not exact");
        part.hg = restored;
    }

    /// A byzantine move instead of (or besides) a normal event. Returns
    /// true if it replaced the normal event.
    fn misbehave(&mut self, c: usize, op: Option<EventId>, rng: &mut ChaCha8Rng) -> bool {
        let s = self.strategies;
        if rng.gen_bool(s.garbage) {
            self.send_garbage(c, op, rng);
        }
        if rng.gen_bool(s.push_early) {
            // Push the newest own event (withheld or hidden ones included)
            // to a random peer, which may lack its parents.
            if let Some(e) = self
                .all
                .iter()
                .rev()
                .find(|e| self.info[&e.id()].creator == c)
                .cloned()
            {
                let to = rng.gen_range(0..self.n());
                if to != c && !self.silent[to] {
                    self.done.early_pushes += 1;
                    self.deliver(to, vec![e]);
                }
            }
        }
        let heads = self.parts[c].heads.clone();
        if heads.len() == 1 && rng.gen_bool(s.fork) {
            // Two children of the head's self-parent (or of the head).
            let head = heads[0];
            let base = self.parts[c]
                .hg
                .event(&head)
                .and_then(|e| e.self_parent())
                .filter(|b| self.parts[c].hg.event(b).is_some())
                .unwrap_or(head);
            let mut made = Vec::new();
            for branch in 0..2u8 {
                let t = self.tick(rng);
                let txs = self.txs(rng);
                let key = self.keys[c].clone();
                let hg = &mut self.parts[c].hg;
                if let Ok(e) = hg.build_event(&key, Some(base), op, t, txs) {
                    if matches!(hg.insert(e.clone()), Ok(InsertOutcome::Inserted(_))) {
                        made.push((e, branch));
                    }
                }
            }
            if made.len() == 2 {
                self.done.forks += 1;
                self.parts[c].heads = made.iter().map(|(e, _)| e.id()).collect();
                for (e, branch) in made {
                    self.record(c, &e, branch, 0);
                    let targets: Vec<usize> = (0..self.n())
                        .filter(|&t| t != c && !self.silent[t] && (t % 2) as u8 == branch)
                        .collect();
                    for t in targets {
                        self.deliver(t, vec![e.clone()]);
                    }
                }
                return true;
            }
            return false;
        }
        if rng.gen_bool(s.parallel) {
            // A second chain from sequence 0.
            if let Some(e) = self.forged(c, op, 0, None, rng) {
                self.done.parallels += 1;
                self.parts[c].heads.push(e.id());
                self.after_create(c, &e, rng);
                return true;
            }
        }
        if rng.gen_bool(s.reanchor) {
            // Name an old own event (too old to be linked) as self-parent.
            let old: Vec<Event> = self
                .all
                .iter()
                .filter(|e| self.info[&e.id()].creator == c)
                .cloned()
                .collect();
            if let Some(o) = old.choose(rng) {
                let parent = ParentRef {
                    id: o.id(),
                    birth_round: o.birth_round(),
                };
                if let Some(e) = self.forged(c, op, o.seq() + 1, Some(parent), rng) {
                    self.done.reanchors += 1;
                    self.parts[c].heads.push(e.id());
                    self.after_create(c, &e, rng);
                    return true;
                }
            }
        }
        if rng.gen_bool(s.jump) {
            // An invented self-parent with a huge sequence number.
            // (Beyond what the birth round allows, it is refused outright.)
            let seq = *[MAX_HEADER_VALUE, 1 << 40, 1_000_000, 10_000]
                .choose(rng)
                .expect("choices");
            let parent = ParentRef {
                id: EventId(rng.gen()),
                birth_round: 1,
            };
            if let Some(e) = self.forged(c, op, seq, Some(parent), rng) {
                self.done.jumps += 1;
                self.parts[c].heads.push(e.id());
                self.after_create(c, &e, rng);
                return true;
            }
        }
        if self.parts[c].heads.len() > 3 {
            let i = rng.gen_range(0..self.parts[c].heads.len());
            self.parts[c].heads.remove(i);
        }
        false
    }

    /// A valid event by `c` with the given sequence number and self-parent
    /// descriptor (which must be too old to be linked), built on `op`.
    fn forged(
        &mut self,
        c: usize,
        op: Option<EventId>,
        seq: u64,
        self_parent: Option<ParentRef>,
        rng: &mut ChaCha8Rng,
    ) -> Option<Event> {
        let t = self.tick(rng);
        let txs = self.txs(rng);
        let key = self.keys[c].clone();
        let hg = &mut self.parts[c].hg;
        let base = hg.build_event(&key, None, op, t, txs).ok()?;
        let mut sp = self_parent;
        if let Some(p) = sp.as_mut() {
            // An invented parent is described as born early enough.
            if !self.info.contains_key(&p.id) {
                p.birth_round = base.birth_round().saturating_sub(LINK_ROUNDS + 1).max(1);
            }
            if dagger_consensus::links(base.birth_round(), p.birth_round) {
                return None;
            }
        }
        let e = resign(&key, &base, |u| {
            u.seq = seq;
            u.self_parent = sp;
        });
        matches!(hg.insert(e.clone()), Ok(InsertOutcome::Inserted(_))).then_some(e)
    }

    /// Push a malformed event to a random peer; it must never be inserted.
    fn send_garbage(&mut self, c: usize, op: Option<EventId>, rng: &mut ChaCha8Rng) {
        let t = self.tick(rng);
        let txs = self.txs(rng);
        let key = self.keys[c].clone();
        let head = self.parts[c].heads.first().copied();
        let Ok(base) = self.parts[c].hg.build_event(&key, head, op, t, txs) else {
            return;
        };
        let kind = rng.gen_range(0..6);
        let bad = match kind {
            0 => resign(&key, &base, |u| u.birth_round += 1),
            1 => resign(&key, &base, |u| {
                u.birth_round = u.birth_round.saturating_sub(1).max(1)
            }),
            // A lie that keeps the parent linked (an unlinked parent is
            // never looked at, whatever its description).
            2 => match base.other_parent_ref() {
                Some(p)
                    if p.birth_round > 1
                        && dagger_consensus::links(base.birth_round(), p.birth_round - 1) =>
                {
                    resign(&key, &base, |u| {
                        u.other_parent = Some(ParentRef {
                            id: p.id,
                            birth_round: p.birth_round - 1,
                        })
                    })
                }
                _ => return,
            },
            3 => {
                let mut bytes = base.encode();
                let last = bytes.len() - 1;
                bytes[last] ^= 0x40;
                Event::decode(&bytes).expect("still well-formed")
            }
            4 => resign(&key, &base, |u| u.seq = u64::MAX),
            _ => resign(&key, &base, |u| u.birth_round += 1_000),
        };
        let to = rng.gen_range(0..self.n());
        if to == c || self.silent[to] || bad.id() == base.id() {
            return;
        }
        self.done.garbage += 1;
        let part = &mut self.parts[to];
        match part.hg.insert(bad.clone()) {
            // A birth round or parent descriptor that does not check out
            // against held parents is placed (every node holding them
            // finds the same) but never sound: no honest node builds on it.
            Ok(InsertOutcome::Inserted(_)) if kind <= 2 => assert!(
                !part.hg.event_info(&bad.id()).expect("held").sound,
                "malformed event ({kind}) is sound"
            ),
            Ok(InsertOutcome::Inserted(_)) => panic!("malformed event ({kind}) inserted"),
            Ok(InsertOutcome::Buffered { .. }) | Ok(InsertOutcome::Parked) => {}
            Ok(InsertOutcome::Duplicate) => {}
            Err(r) => assert!(
                r.is_fault() || matches!(r, Reject::Ancient { .. } | Reject::TooFarAhead { .. }),
                "malformed event ({kind}) refused as {r:?}"
            ),
        }
        self.pump(to);
    }

    /// Let every honest participant catch up with every other one.
    pub fn settle(&mut self, rounds: usize) {
        let honest: Vec<usize> = (0..self.n())
            .filter(|&i| !self.silent[i] && !self.byzantine[i])
            .collect();
        for _ in 0..rounds {
            for &a in &honest {
                for &b in &honest {
                    if a != b {
                        self.sync(b, a);
                    }
                }
            }
        }
    }

    /// Orders of the honest, active participants.
    pub fn honest_outputs(&self) -> Vec<Vec<OrderedRow>> {
        (0..self.n())
            .filter(|&i| !self.silent[i] && !self.byzantine[i])
            .map(|i| self.parts[i].rows.clone())
            .collect()
    }

    /// The properties every run must have, checked on the honest active
    /// participants: identical orders (up to the shorter), every one of
    /// them deciding rounds, no honest event ever refused as ancient, every
    /// piece of evidence valid and against a byzantine creator, and every
    /// conflict a node held both sides of reported by it.
    pub fn check(&self, ctx: &str) -> usize {
        let honest: Vec<usize> = (0..self.n())
            .filter(|&i| !self.silent[i] && !self.byzantine[i])
            .collect();
        let common = assert_agree(&self.honest_outputs(), ctx);
        for &i in &honest {
            let p = &self.parts[i];
            assert!(
                p.ancient_honest.is_empty(),
                "{ctx}: node {i} refused {} honest events as ancient",
                p.ancient_honest.len()
            );
            for ev in &p.evidence {
                assert_eq!(ev.verify(&NET), Ok(()), "{ctx}: node {i}");
                let c = self.creator_of[&ev.first.creator()];
                assert!(self.byzantine[c], "{ctx}: honest creator {c} accused");
            }
            let accused: HashSet<CreatorId> =
                p.evidence.iter().map(|e| e.first.creator()).collect();
            for (c, a, b) in self.conflicts_held(i) {
                assert!(
                    accused.contains(&CreatorId::from(&self.keys[c])),
                    "{ctx}: node {i} held conflicting events {a:?} and {b:?} of {c} and said nothing"
                );
            }
        }
        common
    }

    /// How many (honest node, conflicting pair) cases `check` verified.
    pub fn conflicts_checked(&self) -> usize {
        (0..self.n())
            .filter(|&i| !self.silent[i] && !self.byzantine[i])
            .map(|i| self.conflicts_held(i).len())
            .sum()
    }

    /// Conflicting pairs of one creator that node `who` held at the same
    /// time for sure: both inserted and born within a few rounds of each
    /// other (pruning keeps 16 rounds).
    fn conflicts_held(&self, who: usize) -> Vec<(usize, EventId, EventId)> {
        let p = &self.parts[who];
        let mut by_creator: BTreeMap<usize, Vec<&Event>> = BTreeMap::new();
        for e in &self.all {
            if p.ever_held.contains(&e.id()) {
                by_creator
                    .entry(self.info[&e.id()].creator)
                    .or_default()
                    .push(e);
            }
        }
        let mut out = Vec::new();
        for (c, evs) in by_creator {
            if !self.byzantine[c] {
                continue;
            }
            for (i, a) in evs.iter().enumerate() {
                for b in &evs[i + 1..] {
                    if a.birth_round().abs_diff(b.birth_round()) <= 4
                        && dagger_consensus::evidence::headers_conflict(a.header(), b.header())
                    {
                        out.push((c, a.id(), b.id()));
                    }
                }
            }
        }
        out
    }
}

/// Re-sign `e`'s header (with its transactions) after `edit`.
pub fn resign(key: &SigningKey, e: &Event, edit: impl FnOnce(&mut UnsignedEvent)) -> Event {
    let h = e.header();
    let mut u = UnsignedEvent {
        seq: h.seq,
        birth_round: h.birth_round,
        self_parent: h.self_parent,
        other_parent: h.other_parent,
        created_at_ns: h.created_at_ns,
        txs: e.transactions().to_vec(),
    };
    edit(&mut u);
    u.sign(key, &NET)
}

fn row(o: &dagger_consensus::Ordered) -> OrderedRow {
    OrderedRow {
        id: o.event.id(),
        round_received: o.round_received,
        time: o.consensus_time_ns,
        index: o.order_index,
        hash: o.running_hash,
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

/// Drain `poll` into `out` (and the decided rounds into `rounds`).
pub fn drain(hg: &mut Hashgraph, out: &mut Vec<OrderedRow>, rounds: &mut Vec<Decided>) {
    while let Some(d) = hg.poll() {
        out.extend(d.events.iter().map(row));
        rounds.push(d);
    }
}

/// Feed `events` one at a time, polling after each; events refused as too
/// far ahead are offered again after the pass, as gossip would. Returns the
/// order.
pub fn run_node(hg: &mut Hashgraph, events: &[Event]) -> Vec<OrderedRow> {
    let mut out = Vec::new();
    let mut decided = Vec::new();
    let mut queue: Vec<Event> = events.to_vec();
    while !queue.is_empty() {
        let offered = queue.len();
        let mut retry = Vec::new();
        for e in queue {
            match hg.insert(e.clone()) {
                Ok(InsertOutcome::Inserted(_))
                | Ok(InsertOutcome::Buffered { .. })
                | Ok(InsertOutcome::Parked) => {}
                Ok(InsertOutcome::Duplicate) => panic!("duplicate in delivery"),
                // A very late event (arbitrary delivery order) whose rounds
                // this node already pruned: refusing it is correct and costs
                // nothing but that event's chance to be ordered here.
                Err(Reject::Ancient { .. }) => {}
                Err(Reject::TooFarAhead { .. }) => retry.push(e),
                Err(r) => panic!("valid delivery rejected: {r:?}"),
            }
            drain(hg, &mut out, &mut decided);
        }
        if retry.len() == offered {
            break;
        }
        queue = retry;
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
