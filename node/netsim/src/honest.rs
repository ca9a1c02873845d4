//! An honest participant: a real [`Hashgraph`] driven the way a node
//! drives it. It pulls from a random peer every gossip interval (tips in,
//! missing events out), answers with an own event linking what it learned
//! (the node's other-parent policy), pushes own events to everyone, reacts
//! to pushes at most once per spacing, and installs a peer's state when a
//! peer says it is behind everything it keeps.

use std::collections::{BTreeMap, HashMap};

use dagger_consensus::{
    Config, CreatorId, Event, EventHeader, EventId, Hashgraph, InsertOutcome, Reject, Roster,
};
use ed25519_dalek::SigningKey;

use crate::network::{Micros, MS};

/// What an honest node did with the events it was given.
#[derive(Default)]
pub struct Received {
    /// Something new was placed or queued.
    pub news: bool,
    /// The newest placed event of another creator.
    pub newest: Option<EventId>,
}

pub struct Honest {
    pub index: usize,
    pub hg: Hashgraph,
    pub key: SigningKey,
    pub me: CreatorId,
    config: Config,
    /// Running hash after each ordered position this node output.
    pub order: BTreeMap<u64, [u8; 32]>,
    /// Creators this node holds evidence against, with the first pair.
    pub accused: HashMap<CreatorId, (EventHeader, EventHeader)>,
    /// Events refused as a fault: creator and reason (an honest creator's
    /// must never be).
    pub faults: Vec<(CreatorId, Reject)>,
    pub last_event_at: Option<Micros>,
    /// Decided round history: (time, round) each time it grew.
    pub progress: Vec<(Micros, u64)>,
    pub installs: u32,
    pub created: u64,
}

/// Minimum time between two own events.
pub const SPACING: Micros = 10 * MS;

impl Honest {
    pub fn new(index: usize, key: SigningKey, config: Config, genesis: Roster) -> Honest {
        Honest {
            index,
            me: CreatorId::from(&key),
            hg: Hashgraph::new(config.clone(), genesis),
            key,
            config,
            order: BTreeMap::new(),
            accused: HashMap::new(),
            faults: Vec::new(),
            last_event_at: None,
            progress: Vec::new(),
            installs: 0,
            created: 0,
        }
    }

    pub fn decided(&self) -> u64 {
        self.hg.stats().last_decided_round
    }

    /// Insert `events` in order, then poll consensus.
    pub fn receive(&mut self, events: Vec<Event>, now: Micros) -> Received {
        let mut r = Received::default();
        for e in events {
            let id = e.id();
            let creator = e.creator();
            match self.hg.insert(e) {
                Ok(InsertOutcome::Inserted(_)) => {
                    r.news = true;
                    if creator != self.me {
                        r.newest = Some(id);
                    }
                }
                Ok(InsertOutcome::Buffered { .. }) | Ok(InsertOutcome::Parked) => r.news = true,
                Ok(InsertOutcome::Duplicate) => {}
                Err(reject) if reject.is_fault() => self.faults.push((creator, reject)),
                Err(_) => {}
            }
        }
        self.pump(now);
        r
    }

    /// Poll consensus dry and collect evidence.
    pub fn pump(&mut self, now: Micros) {
        while let Some(d) = self.hg.poll() {
            for o in &d.events {
                self.order.insert(o.order_index, o.running_hash);
            }
            let round = d.round_received;
            if self.progress.last().is_none_or(|&(_, r)| r < round) {
                self.progress.push((now, round));
            }
        }
        for ev in self.hg.take_equivocations() {
            self.accused
                .entry(ev.first.creator())
                .or_insert_with(|| (ev.first.header().clone(), ev.second.header().clone()));
        }
    }

    /// Sign an own event linking the best other-parent (starting from
    /// `newest`), if the spacing allows.
    pub fn create(&mut self, newest: Option<EventId>, now: Micros) -> Option<Event> {
        if self.last_event_at.is_some_and(|t| now < t + SPACING) {
            return None;
        }
        let op = self.hg.best_other_parent(&self.me, newest);
        let e = self
            .hg
            .create_event(&self.key, vec![vec![self.index as u8]], now * 1_000, op)
            .ok()?;
        self.last_event_at = Some(now);
        self.created += 1;
        if std::env::var("DAGGER_SIM_TRACE").is_ok() {
            eprintln!(
                "{now} node {} created seq {} born {}",
                self.index,
                e.seq(),
                e.birth_round()
            );
        }
        self.pump(now);
        Some(e)
    }

    /// The birth round of the oldest parent this node's waiting events
    /// lack (sent with a pull).
    pub fn oldest_missing(&self) -> Option<u64> {
        self.hg.missing_parents().first().map(|&(_, birth)| birth)
    }

    /// A peer's answer to a pull: the events it lacks, and whether it is
    /// behind what this node keeps (it decided so little that it may need
    /// pruned events, or it waits for a parent born in a pruned round that
    /// this node can never send).
    pub fn sync_answer(
        &mut self,
        their_tips: &[EventId],
        their_decided: u64,
        oldest_missing: Option<u64>,
    ) -> (Vec<Event>, bool) {
        let pruned = self.hg.stats().pruned_through_round;
        let behind = their_decided + 2 <= pruned || oldest_missing.is_some_and(|b| b <= pruned);
        (self.hg.events_unknown_to(their_tips), behind)
    }

    /// State transfer from a peer that this node is behind: restore its
    /// snapshot, and continue this node's own chain after the newest event
    /// it ever signed (so it never signs a sequence number twice).
    pub fn install(&mut self, snapshot: &[u8], now: Micros) {
        let Ok(mut hg) = Hashgraph::restore(self.config.clone(), snapshot) else {
            return;
        };
        if hg.stats().last_decided_round <= self.decided() {
            return;
        }
        if let Some(head) = self.hg.chain_head(&self.me) {
            hg.resume_chain(&self.me, head);
        }
        if std::env::var("DAGGER_SIM_TRACE").is_ok() {
            eprintln!(
                "{now} node {} installs round {} (own head was {:?}, now {:?})",
                self.index,
                hg.stats().last_decided_round,
                self.hg.chain_head(&self.me).map(|h| h.seq),
                hg.chain_head(&self.me).map(|h| h.seq)
            );
        }
        self.hg = hg;
        self.installs += 1;
        self.pump(now);
    }

    /// Snapshot and restore in place (a restart from a stored state): the
    /// instance must go on exactly as before.
    pub fn restart(&mut self) {
        let bytes = self.hg.snapshot();
        let hg = Hashgraph::restore(self.config.clone(), &bytes).expect("own snapshot restores");
        assert!(
            hg.snapshot() == bytes,
            "node {}: restore is not exact",
            self.index
        );
        self.hg = hg;
    }
}
