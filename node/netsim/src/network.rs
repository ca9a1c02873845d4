//! The simulated network: a virtual clock, per-link delays with jitter
//! (so messages overtake each other), scheduled partitions, and nodes that
//! are down for a while. Everything is drawn from one seeded generator, so
//! a run is a function of its seed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use dagger_consensus::{Event, EventId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Virtual time in microseconds.
pub type Micros = u64;

pub const MS: Micros = 1_000;
pub const SECOND: Micros = 1_000_000;

/// What travels between nodes: the node's sync protocol (tips in, missing
/// events out) and pushes of new events.
#[derive(Clone, Debug)]
pub enum Message {
    /// "These are my tips, this is the last round I decided, and this is
    /// the birth round of the oldest parent my waiting events lack."
    Pull {
        tips: Vec<EventId>,
        decided: u64,
        oldest_missing: Option<u64>,
    },
    /// The events the puller lacks, parents first; `behind` if the puller
    /// needs events this node pruned (only a state transfer helps it).
    Answer { events: Vec<Event>, behind: bool },
    /// Events the sender wants the receiver to have now.
    Push { events: Vec<Event> },
}

/// One direction of a link: a base delay and a jitter bound.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub delay: Micros,
    pub jitter: Micros,
}

/// A group of nodes cut off from everyone else during `[from, until)`.
#[derive(Clone, Debug)]
pub struct Partition {
    pub group: Vec<usize>,
    pub from: Micros,
    pub until: Micros,
}

/// A node that is down (receives and sends nothing) during `[from, until)`.
#[derive(Clone, Copy, Debug)]
pub struct Outage {
    pub node: usize,
    pub from: Micros,
    pub until: Micros,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    at: Micros,
    seq: u64,
}

#[derive(Debug)]
pub struct Delivery<M = Message> {
    pub at: Micros,
    pub from: usize,
    pub to: usize,
    pub message: M,
}

/// The network's state: links, schedules and messages in flight. Generic
/// over what travels, so the node's own machines can be driven over it
/// too.
pub struct Network<M = Message> {
    links: Vec<Vec<Link>>,
    partitions: Vec<Partition>,
    pub outages: Vec<Outage>,
    /// When each node first comes up.
    pub starts: Vec<Micros>,
    queue: BinaryHeap<Reverse<(Key, usize)>>,
    slots: Vec<Option<Delivery<M>>>,
    free: Vec<usize>,
    seq: u64,
    pub sent: u64,
    pub dropped: u64,
}

impl<M> Network<M> {
    pub fn new(
        links: Vec<Vec<Link>>,
        partitions: Vec<Partition>,
        outages: Vec<Outage>,
        starts: Vec<Micros>,
    ) -> Network<M> {
        Network {
            links,
            partitions,
            outages,
            starts,
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
            sent: 0,
            dropped: 0,
        }
    }

    pub fn n(&self) -> usize {
        self.links.len()
    }

    /// Is node `i` running at `now`?
    pub fn up(&self, i: usize, now: Micros) -> bool {
        now >= self.starts[i]
            && !self
                .outages
                .iter()
                .any(|o| o.node == i && o.from <= now && now < o.until)
    }

    /// Can `a` and `b` exchange messages at `now` (both sides of every
    /// partition agree)?
    pub fn connected(&self, a: usize, b: usize, now: Micros) -> bool {
        self.partitions.iter().all(|p| {
            !(p.from <= now && now < p.until) || p.group.contains(&a) == p.group.contains(&b)
        })
    }

    /// The time after which no partition or outage is in force and every
    /// node has started.
    pub fn healed_at(&self) -> Micros {
        let p = self.partitions.iter().map(|p| p.until).max().unwrap_or(0);
        let o = self.outages.iter().map(|o| o.until).max().unwrap_or(0);
        let s = self.starts.iter().copied().max().unwrap_or(0);
        p.max(o).max(s)
    }

    /// Send `message`; it arrives after the link's delay plus jitter, or is
    /// lost if the link is cut when it is sent or when it arrives.
    pub fn send(&mut self, rng: &mut ChaCha8Rng, now: Micros, from: usize, to: usize, message: M) {
        self.sent += 1;
        if from == to || !self.connected(from, to, now) {
            self.dropped += 1;
            return;
        }
        let link = self.links[from][to];
        let at = now + link.delay + rng.gen_range(0..=link.jitter);
        self.schedule(at, from, to, message);
    }

    fn schedule(&mut self, at: Micros, from: usize, to: usize, message: M) {
        let d = Delivery {
            at,
            from,
            to,
            message,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some(d);
                s
            }
            None => {
                self.slots.push(Some(d));
                self.slots.len() - 1
            }
        };
        self.seq += 1;
        self.queue.push(Reverse((Key { at, seq: self.seq }, slot)));
    }

    /// When the next message arrives, if any.
    pub fn next_at(&self) -> Option<Micros> {
        self.queue.peek().map(|Reverse((k, _))| k.at)
    }

    /// The next message due at or before `until`, if its link is still up
    /// and its receiver running (else it is lost and the next one tried).
    pub fn pop(&mut self, until: Micros) -> Option<Delivery<M>> {
        while let Some(Reverse((k, _))) = self.queue.peek() {
            if k.at > until {
                return None;
            }
            let Reverse((_, slot)) = self.queue.pop().expect("peeked");
            let d = self.slots[slot].take().expect("scheduled");
            self.free.push(slot);
            if self.connected(d.from, d.to, d.at) && self.up(d.to, d.at) {
                return Some(d);
            }
            self.dropped += 1;
        }
        None
    }
}
