//! Bounded waiting areas for events that passed the stateless checks but
//! cannot be placed yet. Both are bounded in events *and* in bytes, and
//! both drop what became ancient (by signed birth round) as consensus moves
//! on, so nothing waits forever.
//!
//! * [`ParentBuffer`]: a linked parent is unknown. When full, the *oldest*
//!   buffered events are evicted (reported to the caller) so that orphans
//!   whose parents never come cannot wedge the buffer.
//! * [`Parked`]: the event's birth round lies beyond the rounds whose
//!   roster is fixed. When full, the *new* event is refused with
//!   `Reject::TooFarAhead` (the oldest parked events are the ones consensus
//!   needs first).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::event::{CreatorId, Event, EventId};

/// Waiting events by (creator, sequence number), so that an arriving event
/// is compared with the waiting events of its creator (see
/// `Hashgraph::report_conflicts`), whatever arrived first.
#[derive(Debug, Default)]
pub(crate) struct BySeq(BTreeMap<(CreatorId, u64), Vec<EventId>>);

impl BySeq {
    fn add(&mut self, e: &Event) {
        self.0
            .entry((e.creator(), e.seq()))
            .or_default()
            .push(e.id());
    }
    fn remove(&mut self, e: &Event) {
        let key = (e.creator(), e.seq());
        if let Some(ids) = self.0.get_mut(&key) {
            ids.retain(|x| *x != e.id());
            if ids.is_empty() {
                self.0.remove(&key);
            }
        }
    }
    fn clear(&mut self) {
        self.0.clear();
    }
    /// Ids of waiting events of `creator` with sequence numbers in
    /// `seq - 1 ..= seq + 1`.
    fn around(&self, creator: CreatorId, seq: u64) -> impl Iterator<Item = EventId> + '_ {
        self.0
            .range((creator, seq.saturating_sub(1))..=(creator, seq.saturating_add(1)))
            .flat_map(|(_, ids)| ids.iter().copied())
    }
}

/// A cap on events and on their encoded bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cap {
    pub events: usize,
    pub bytes: usize,
}

impl Cap {
    fn fits(&self, events: usize, bytes: usize) -> bool {
        events <= self.events && bytes <= self.bytes
    }
}

#[derive(Debug, Default)]
pub(crate) struct ParentBuffer {
    events: HashMap<EventId, (Event, u64)>,
    waiting: HashMap<EventId, Vec<EventId>>,
    fifo: VecDeque<(u64, EventId)>,
    /// Birth round -> buffered ids (lazily cleaned).
    by_birth: BTreeMap<u64, Vec<EventId>>,
    by_seq: BySeq,
    next: u64,
    bytes: usize,
}

impl ParentBuffer {
    pub fn contains(&self, id: &EventId) -> bool {
        self.events.contains_key(id)
    }
    pub fn get(&self, id: &EventId) -> Option<&Event> {
        self.events.get(id).map(|(e, _)| e)
    }
    pub fn len(&self) -> usize {
        self.events.len()
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Buffer `event` until every id in `missing` is inserted. Returns the
    /// ids evicted (oldest first) to make room. An event larger than the
    /// whole byte cap evicts everything and is then evicted itself.
    pub fn add(&mut self, event: Event, missing: &[EventId], cap: Cap) -> Vec<EventId> {
        let mut evicted = Vec::new();
        let size = event.encoded_len();
        while !self.events.is_empty()
            && !cap.fits(self.events.len() + 1, self.bytes.saturating_add(size))
        {
            match self.fifo.pop_front() {
                Some((n, id)) => {
                    if self.events.get(&id).is_some_and(|(_, m)| *m == n) {
                        self.remove(&id);
                        evicted.push(id);
                    }
                }
                None => break,
            }
        }
        let id = event.id();
        if !cap.fits(1, size) || cap.events == 0 {
            evicted.push(id);
            return evicted;
        }
        self.next += 1;
        for p in missing {
            self.waiting.entry(*p).or_default().push(id);
        }
        self.fifo.push_back((self.next, id));
        self.by_birth
            .entry(event.birth_round())
            .or_default()
            .push(id);
        self.bytes += size;
        self.by_seq.add(&event);
        self.events.insert(id, (event, self.next));
        evicted
    }

    /// Buffered events of `creator` with sequence numbers within one of `seq`.
    pub fn around(&self, creator: CreatorId, seq: u64) -> impl Iterator<Item = &Event> + '_ {
        self.by_seq
            .around(creator, seq)
            .filter_map(|id| self.get(&id))
    }

    /// Ids that buffered events wait for, each with the birth round the
    /// first waiting child describes it with.
    pub fn missing(&self) -> Vec<(EventId, u64)> {
        let mut out: Vec<(EventId, u64)> = self
            .waiting
            .iter()
            .filter_map(|(parent, children)| {
                let (e, _) = self.events.get(children.first()?)?;
                let birth = [e.self_parent_ref(), e.other_parent_ref()]
                    .into_iter()
                    .flatten()
                    .find(|p| p.id == *parent)?
                    .birth_round;
                Some((*parent, birth))
            })
            .collect();
        out.sort_unstable_by_key(|&(id, birth)| (birth, id));
        out
    }

    /// Remove a buffered event (to place it again).
    pub fn take(&mut self, id: &EventId) -> Option<Event> {
        self.remove(id)
    }

    /// Buffered events waiting for a parent that they describe as born in
    /// round `through` or earlier: that parent is not needed any more (it
    /// is ancient here), so they can be placed again.
    pub fn waiting_on_ancient(&self, through: u64) -> Vec<EventId> {
        let mut out: Vec<(u64, EventId)> = Vec::new();
        for (parent, children) in &self.waiting {
            for child in children {
                let Some((e, n)) = self.events.get(child) else {
                    continue;
                };
                let old = [e.self_parent_ref(), e.other_parent_ref()]
                    .into_iter()
                    .flatten()
                    .any(|p| p.id == *parent && p.birth_round <= through);
                if old {
                    out.push((*n, *child));
                }
            }
        }
        // Oldest first, each once: the same order on every node.
        out.sort_unstable();
        out.dedup();
        out.into_iter().map(|(_, id)| id).collect()
    }

    fn remove(&mut self, id: &EventId) -> Option<Event> {
        let (e, _) = self.events.remove(id)?;
        self.by_seq.remove(&e);
        self.bytes -= e.encoded_len();
        for p in [e.self_parent(), e.other_parent()].into_iter().flatten() {
            if let Some(list) = self.waiting.get_mut(&p) {
                list.retain(|x| x != id);
                if list.is_empty() {
                    self.waiting.remove(&p);
                }
            }
        }
        Some(e)
    }

    /// Remove and return the events that were waiting for `parent`.
    pub fn take_children(&mut self, parent: &EventId) -> Vec<Event> {
        let ids = self.waiting.remove(parent).unwrap_or_default();
        ids.iter().filter_map(|id| self.remove(id)).collect()
    }

    /// Drop every buffered event born in round `through` or earlier;
    /// returns their ids.
    pub fn expire_through(&mut self, through: u64) -> Vec<EventId> {
        let keep = self.by_birth.split_off(&through.saturating_add(1));
        let old = std::mem::replace(&mut self.by_birth, keep);
        let mut out = Vec::new();
        for id in old.into_values().flatten() {
            if self.remove(&id).is_some() {
                out.push(id);
            }
        }
        out
    }

    /// Buffered events, oldest (first evicted) first, each with whether it
    /// waits for its self-parent and for its other-parent (snapshots).
    pub fn entries(&self) -> Vec<(&Event, bool, bool)> {
        let mut waits: HashMap<EventId, (bool, bool)> = HashMap::new();
        for (parent, children) in &self.waiting {
            for child in children {
                if let Some((e, _)) = self.events.get(child) {
                    let w = waits.entry(*child).or_default();
                    w.0 |= e.self_parent() == Some(*parent);
                    w.1 |= e.other_parent() == Some(*parent);
                }
            }
        }
        let mut out: Vec<(u64, &Event, bool, bool)> = self
            .events
            .iter()
            .map(|(id, (e, n))| {
                let (sp, op) = waits.get(id).copied().unwrap_or_default();
                (*n, e, sp, op)
            })
            .collect();
        out.sort_unstable_by_key(|x| x.0);
        out.into_iter().map(|(_, e, sp, op)| (e, sp, op)).collect()
    }

    /// Rebuild a buffer from [`ParentBuffer::entries`]: adding the events
    /// again in that order reproduces the eviction order and, per missing
    /// parent, the order in which waiting children are released. Only the
    /// internal stamps differ, which nothing observes.
    pub fn from_entries(entries: Vec<(Event, bool, bool)>) -> ParentBuffer {
        let mut b = ParentBuffer::default();
        let unbounded = Cap {
            events: usize::MAX,
            bytes: usize::MAX,
        };
        for (e, sp, op) in entries {
            let missing: Vec<EventId> = [sp.then(|| e.self_parent()), op.then(|| e.other_parent())]
                .into_iter()
                .flatten()
                .flatten()
                .collect();
            b.add(e, &missing, unbounded);
        }
        b
    }

    /// Compact the lazy indices when deletions pile up (keeps memory flat).
    pub fn compact(&mut self) {
        if self.fifo.len() > 2 * self.events.len() + 64 {
            let events = &self.events;
            self.fifo
                .retain(|(n, id)| events.get(id).is_some_and(|(_, m)| m == n));
            self.by_birth.retain(|_, ids| {
                ids.retain(|id| events.contains_key(id));
                !ids.is_empty()
            });
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Parked {
    queue: VecDeque<Event>,
    ids: HashSet<EventId>,
    by_seq: BySeq,
    bytes: usize,
}

impl Parked {
    pub fn contains(&self, id: &EventId) -> bool {
        self.ids.contains(id)
    }
    pub fn len(&self) -> usize {
        self.queue.len()
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    /// Park `event`; false if that would exceed the cap.
    pub fn push(&mut self, event: Event, cap: Cap) -> bool {
        let size = event.encoded_len();
        if !cap.fits(self.queue.len() + 1, self.bytes.saturating_add(size)) {
            return false;
        }
        self.bytes += size;
        self.ids.insert(event.id());
        self.by_seq.add(&event);
        self.queue.push_back(event);
        true
    }
    /// Parked events of `creator` with sequence numbers within one of `seq`.
    pub fn around(&self, creator: CreatorId, seq: u64) -> Vec<&Event> {
        let ids: HashSet<EventId> = self.by_seq.around(creator, seq).collect();
        if ids.is_empty() {
            return Vec::new();
        }
        self.queue
            .iter()
            .filter(|e| ids.contains(&e.id()))
            .collect()
    }
    /// Remove one parked event.
    pub fn remove(&mut self, id: &EventId) {
        if self.ids.remove(id) {
            if let Some(pos) = self.queue.iter().position(|e| e.id() == *id) {
                let e = self.queue.remove(pos).expect("found");
                self.bytes -= e.encoded_len();
                self.by_seq.remove(&e);
            }
        }
    }
    /// Everything parked, oldest first, without removing it.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.queue.iter()
    }
    /// Rebuild from [`Parked::events`] (snapshot restore).
    pub fn from_events(events: Vec<Event>) -> Parked {
        let ids = events.iter().map(Event::id).collect();
        let bytes = events.iter().map(Event::encoded_len).sum();
        let mut by_seq = BySeq::default();
        for e in &events {
            by_seq.add(e);
        }
        Parked {
            queue: events.into(),
            ids,
            by_seq,
            bytes,
        }
    }
    /// Everything parked, oldest first.
    pub fn drain(&mut self) -> Vec<Event> {
        self.ids.clear();
        self.by_seq.clear();
        self.bytes = 0;
        self.queue.drain(..).collect()
    }
}
