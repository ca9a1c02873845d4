//! The byzantine creator. It sees every honest node's state (the adversary
//! controls timing and knows what everyone holds), keeps its own view of
//! the graph, and at each of its turns picks one of its strategies:
//!
//! * behave (pull, sign, push like an honest node: the material the other
//!   strategies work with);
//! * withhold its new events, and release them later to some nodes only;
//! * twins: two events at one sequence number, each shown to different
//!   nodes;
//! * stale fork tips: an event on an old own event, extended a little;
//! * lies: a parent descriptor with the wrong birth round, or a birth round
//!   one off;
//! * the boundary attack: stay quiet, then sign an event born exactly where
//!   the nodes that decided more find it ancient and a node behind them
//!   does not, show it to that node, and climb a chain on it towards the
//!   live round, each link at most two rounds above the last.
//!
//! Every event it signs is recorded so the simulator can tell which
//! conflicting pairs reached which honest node.

use dagger_consensus::{
    links, Config, CreatorId, Event, EventId, Hashgraph, ParentRef, Roster, UnsignedEvent,
};
use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::honest::Honest;
use crate::network::Micros;

/// Relative weights of the strategies (0 disables one).
#[derive(Clone, Copy, Debug)]
pub struct Strategies {
    pub behave: u32,
    pub withhold: u32,
    pub twins: u32,
    pub stale_fork: u32,
    pub lie: u32,
    pub boundary: u32,
}

impl Strategies {
    fn pick(&self, rng: &mut ChaCha8Rng) -> Strategy {
        let table = [
            (self.behave, Strategy::Behave),
            (self.withhold, Strategy::Withhold),
            (self.twins, Strategy::Twins),
            (self.stale_fork, Strategy::StaleFork),
            (self.lie, Strategy::Lie),
            (self.boundary, Strategy::Boundary),
        ];
        let total: u32 = table.iter().map(|(w, _)| w).sum();
        let mut x = rng.gen_range(0..total.max(1));
        for (w, s) in table {
            if x < w {
                return s;
            }
            x -= w;
        }
        Strategy::Behave
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    Behave,
    Withhold,
    Twins,
    StaleFork,
    Lie,
    Boundary,
}

/// Counts of what the adversary actually did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Done {
    pub behaved: u32,
    pub withheld: u32,
    pub released: u32,
    pub twins: u32,
    pub stale_forks: u32,
    pub lies: u32,
    pub boundary_events: u32,
    pub climbs: u32,
}

pub struct Byzantine {
    pub index: usize,
    pub key: SigningKey,
    pub me: CreatorId,
    pub hg: Hashgraph,
    pub strategies: Strategies,
    /// Every event it signed, in order.
    pub signed: Vec<Event>,
    withheld: Vec<Event>,
    /// The head of a boundary chain being climbed, and the node it targets.
    chain: Option<(Event, usize)>,
    pub done: Done,
}

/// Where an event goes: to these nodes now.
pub type Sends = Vec<(usize, Event)>;

fn pref(e: &Event) -> ParentRef {
    ParentRef {
        id: e.id(),
        birth_round: e.birth_round(),
    }
}

impl Byzantine {
    pub fn new(
        index: usize,
        key: SigningKey,
        config: Config,
        genesis: Roster,
        strategies: Strategies,
    ) -> Byzantine {
        Byzantine {
            index,
            me: CreatorId::from(&key),
            hg: Hashgraph::new(config, genesis),
            key,
            strategies,
            signed: Vec::new(),
            withheld: Vec::new(),
            chain: None,
            done: Done::default(),
        }
    }

    /// Learn events (it keeps its own view of the graph).
    pub fn receive(&mut self, events: Vec<Event>) {
        for e in events {
            let _ = self.hg.insert(e);
        }
        while self.hg.poll().is_some() {}
        let _ = self.hg.take_equivocations();
    }

    fn sign(&mut self, u: UnsignedEvent) -> Event {
        let e = u.sign(&self.key, &self.hg.config().network_id);
        self.signed.push(e.clone());
        let _ = self.hg.insert(e.clone());
        e
    }

    fn to_all(&self, e: &Event, n: usize) -> Sends {
        (0..n)
            .filter(|&i| i != self.index)
            .map(|i| (i, e.clone()))
            .collect()
    }

    fn some_of(&self, e: &Event, n: usize, rng: &mut ChaCha8Rng) -> Sends {
        (0..n)
            .filter(|&i| i != self.index && rng.gen_bool(0.5))
            .map(|i| (i, e.clone()))
            .collect()
    }

    /// One turn. `honest` are the honest nodes (by index) as they are now.
    pub fn act(
        &mut self,
        now: Micros,
        rng: &mut ChaCha8Rng,
        honest: &[(usize, &Honest)],
        n: usize,
    ) -> Sends {
        let mut out = Vec::new();
        if !self.withheld.is_empty() && rng.gen_bool(0.2) {
            // Release what it held back, to some nodes, in shuffled order.
            let mut held = std::mem::take(&mut self.withheld);
            held.shuffle(rng);
            for e in held {
                out.extend(self.some_of(&e, n, rng));
            }
            self.done.released += 1;
        }
        if let Some((head, target)) = self.chain.clone() {
            if let Some(next) = self.climb(&head, target, now, honest) {
                self.done.climbs += 1;
                // The target first; everyone else too, in a random order.
                out.push((target, next.clone()));
                out.extend(self.to_all(&next, n));
                self.chain = Some((next, target));
            } else {
                self.chain = None;
            }
            return out;
        }
        match self.strategies.pick(rng) {
            Strategy::Behave => {
                if let Some(e) = self.behave(now, rng, honest) {
                    self.done.behaved += 1;
                    out.extend(self.to_all(&e, n));
                }
            }
            Strategy::Withhold => {
                if let Some(e) = self.behave(now, rng, honest) {
                    self.done.withheld += 1;
                    self.withheld.push(e);
                }
            }
            Strategy::Twins => {
                if let Some((a, b)) = self.twins(now, rng) {
                    self.done.twins += 1;
                    let split = rng.gen_range(1..n);
                    for i in (0..n).filter(|&i| i != self.index) {
                        out.push((i, if i < split { a.clone() } else { b.clone() }));
                    }
                }
            }
            Strategy::StaleFork => {
                if let Some(e) = self.stale_fork(now, rng) {
                    self.done.stale_forks += 1;
                    out.extend(self.some_of(&e, n, rng));
                }
            }
            Strategy::Lie => {
                if let Some(e) = self.lie(now, rng) {
                    self.done.lies += 1;
                    out.extend(self.some_of(&e, n, rng));
                }
            }
            Strategy::Boundary => {
                if let Some((e, target)) = self.boundary(now, honest) {
                    self.done.boundary_events += 1;
                    out.push((target, e.clone()));
                    // The nodes ahead get it too: they must refuse it
                    // without harm.
                    out.extend(self.to_all(&e, n));
                    self.chain = Some((e, target));
                }
            }
        }
        out
    }

    /// Sign like an honest node, linking the latest event of a random
    /// honest node it knows of (it gossips like everyone else).
    fn behave(
        &mut self,
        now: Micros,
        rng: &mut ChaCha8Rng,
        honest: &[(usize, &Honest)],
    ) -> Option<Event> {
        let &(_, peer) = honest.choose(rng)?;
        let op = self
            .hg
            .best_other_parent(&self.me, self.hg.latest_of(&peer.me));
        let e = self
            .hg
            .create_event(&self.key, vec![b"byz".to_vec()], now * 1_000 + 1, op)
            .ok()?;
        self.signed.push(e.clone());
        Some(e)
    }

    /// Two children of its chain head at one sequence number.
    fn twins(&mut self, now: Micros, rng: &mut ChaCha8Rng) -> Option<(Event, Event)> {
        let head = self.hg.chain_head(&self.me)?;
        let head_event = self.hg.event(&head.id)?;
        let ops: Vec<EventId> = self.hg.tips();
        let mut made = Vec::new();
        for k in 0..2u64 {
            let op = ops.choose(rng).copied();
            let op = op.filter(|id| self.hg.event(id).is_some_and(|e| e.creator() != self.me));
            if let Ok(e) = self.hg.build_event(
                &self.key,
                Some(head_event.id()),
                op,
                now * 1_000 + 2 + k,
                vec![vec![k as u8]],
            ) {
                made.push(e);
            }
        }
        if made.len() < 2 || made[0].id() == made[1].id() {
            return None;
        }
        for e in &made {
            self.signed.push(e.clone());
            let _ = self.hg.insert(e.clone());
        }
        Some((made[0].clone(), made[1].clone()))
    }

    /// A child of an old own event (a fork from a stale tip).
    fn stale_fork(&mut self, now: Micros, rng: &mut ChaCha8Rng) -> Option<Event> {
        let own: Vec<Event> = self
            .hg
            .held_events()
            .into_iter()
            .filter(|(e, _)| e.creator() == self.me)
            .map(|(e, _)| e.clone())
            .collect();
        let base = own.choose(rng)?.clone();
        let op = self.hg.best_other_parent(&self.me, None);
        let e = self
            .hg
            .build_event(&self.key, Some(base.id()), op, now * 1_000 + 3, vec![])
            .ok()?;
        self.signed.push(e.clone());
        let _ = self.hg.insert(e.clone());
        Some(e)
    }

    /// An event whose birth round or other-parent descriptor is a lie.
    fn lie(&mut self, now: Micros, rng: &mut ChaCha8Rng) -> Option<Event> {
        let head = self.hg.chain_head(&self.me)?;
        let op = self
            .hg
            .tips()
            .into_iter()
            .find(|id| self.hg.event(id).is_some_and(|e| e.creator() != self.me))?;
        let base = self
            .hg
            .build_event(&self.key, Some(head.id), Some(op), now * 1_000 + 4, vec![])
            .ok()?;
        let h = base.header();
        let mut u = UnsignedEvent::from(h.clone());
        match rng.gen_range(0..3) {
            0 => u.birth_round += 1,
            1 => u.birth_round = u.birth_round.saturating_sub(1).max(1),
            _ => {
                if let Some(p) = u.other_parent.as_mut() {
                    if p.birth_round > 1 && links(u.birth_round, p.birth_round - 1) {
                        p.birth_round -= 1;
                    } else {
                        return None;
                    }
                }
            }
        }
        Some(self.sign(u))
    }

    /// The boundary attack's first event: find an honest node one or more
    /// rounds behind another, and sign an event born in the first round
    /// the behind node does not find ancient, which the ahead node does.
    fn boundary(&mut self, now: Micros, honest: &[(usize, &Honest)]) -> Option<(Event, usize)> {
        let pruned = |h: &Honest| h.hg.stats().pruned_through_round;
        // The node furthest behind one that is ahead of it.
        let (_, behind) = honest
            .iter()
            .flat_map(|a| honest.iter().map(move |b| (a, b)))
            .filter(|(a, b)| pruned(a.1) > pruned(b.1))
            .max_by_key(|(a, b)| pruned(a.1) - pruned(b.1))?;
        let birth = pruned(behind.1) + 1;
        // An honest event the behind node holds, born in that round.
        let op = behind
            .1
            .hg
            .held_events()
            .into_iter()
            .map(|(e, _)| e)
            .find(|e| e.birth_round() == birth && e.creator() != self.me)?
            .clone();
        // Continue its own chain only if that does not lift the birth
        // round (a quiet creator's head is old); otherwise start a
        // parallel chain (a fork, which it is accused of).
        let head = self.hg.chain_head(&self.me);
        let (seq, sp) = match head {
            Some(h) if h.birth_round <= birth => (
                h.seq + 1,
                Some(ParentRef {
                    id: h.id,
                    birth_round: h.birth_round,
                }),
            ),
            _ => (0, None),
        };
        let e = self.sign(UnsignedEvent {
            seq,
            birth_round: birth,
            self_parent: sp,
            other_parent: Some(pref(&op)),
            created_at_ns: now * 1_000 + 5,
            txs: vec![],
        });
        Some((e, behind.0))
    }

    /// The next link of a climbing chain: on the head, with an honest event
    /// the target holds born as high as still links the head.
    fn climb(
        &mut self,
        head: &Event,
        target: usize,
        now: Micros,
        honest: &[(usize, &Honest)],
    ) -> Option<Event> {
        let (_, node) = honest.iter().find(|(i, _)| *i == target)?;
        let top = node.hg.stats().last_round_created;
        if head.birth_round() + 1 >= top {
            return None;
        }
        let op = node
            .hg
            .held_events()
            .into_iter()
            .map(|(e, _)| e)
            .filter(|e| {
                e.creator() != self.me
                    && e.birth_round() > head.birth_round()
                    && e.birth_round() < head.birth_round() + 2
            })
            .max_by_key(|e| e.birth_round())?
            .clone();
        let birth = op.birth_round();
        if !links(birth, head.birth_round()) {
            return None;
        }
        Some(self.sign(UnsignedEvent {
            seq: head.seq() + 1,
            birth_round: birth,
            self_parent: Some(pref(head)),
            other_parent: Some(pref(&op)),
            created_at_ns: now * 1_000 + 6,
            txs: vec![],
        }))
    }
}
