//! Bounded waiting areas for events that passed the stateless checks but
//! cannot be placed yet.
//!
//! * [`ParentBuffer`]: a parent is unknown. Capacity `max_buffered`; when
//!   full, the *oldest* buffered event is evicted (reported to the caller)
//!   so that orphans whose parents never come cannot wedge the buffer.
//! * [`Parked`]: parents are known but the event's round would depend on a
//!   roster that is not fixed yet. Capacity `max_parked`; when full the
//!   *new* event is refused with `Reject::TooFarAhead` (the oldest parked
//!   events are the ones consensus needs first).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::event::{Event, EventId};

#[derive(Debug, Default)]
pub(crate) struct ParentBuffer {
    events: HashMap<EventId, (Event, u64)>,
    waiting: HashMap<EventId, Vec<EventId>>,
    fifo: VecDeque<(u64, EventId)>,
    next: u64,
}

impl ParentBuffer {
    pub fn contains(&self, id: &EventId) -> bool {
        self.events.contains_key(id)
    }
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Buffer `event` until every id in `missing` is inserted. Returns the
    /// id evicted to make room, if any.
    pub fn add(&mut self, event: Event, missing: &[EventId], cap: usize) -> Option<EventId> {
        let mut evicted = None;
        while self.events.len() >= cap.max(1) {
            match self.fifo.pop_front() {
                Some((n, id)) => {
                    if self.events.get(&id).is_some_and(|(_, m)| *m == n) {
                        self.remove(&id);
                        evicted = Some(id);
                    }
                }
                None => break,
            }
        }
        let id = event.id();
        self.next += 1;
        for p in missing {
            self.waiting.entry(*p).or_default().push(id);
        }
        self.fifo.push_back((self.next, id));
        self.events.insert(id, (event, self.next));
        evicted
    }

    fn remove(&mut self, id: &EventId) -> Option<Event> {
        let (e, _) = self.events.remove(id)?;
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
        for (e, sp, op) in entries {
            let missing: Vec<EventId> = [sp.then(|| e.self_parent()), op.then(|| e.other_parent())]
                .into_iter()
                .flatten()
                .flatten()
                .collect();
            b.add(e, &missing, usize::MAX);
        }
        b
    }

    /// Compact the FIFO when lazy deletions pile up (keeps memory flat).
    pub fn compact(&mut self) {
        if self.fifo.len() > 2 * self.events.len() + 64 {
            let events = &self.events;
            self.fifo
                .retain(|(n, id)| events.get(id).is_some_and(|(_, m)| m == n));
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Parked {
    queue: VecDeque<Event>,
    ids: HashSet<EventId>,
}

impl Parked {
    pub fn contains(&self, id: &EventId) -> bool {
        self.ids.contains(id)
    }
    pub fn len(&self) -> usize {
        self.queue.len()
    }
    /// Park `event`; false if full.
    pub fn push(&mut self, event: Event, cap: usize) -> bool {
        if self.queue.len() >= cap {
            return false;
        }
        self.ids.insert(event.id());
        self.queue.push_back(event);
        true
    }
    /// Everything parked, oldest first, without removing it.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.queue.iter()
    }
    /// Rebuild from [`Parked::events`] (snapshot restore).
    pub fn from_events(events: Vec<Event>) -> Parked {
        let ids = events.iter().map(Event::id).collect();
        Parked {
            queue: events.into(),
            ids,
        }
    }
    /// Everything parked, oldest first.
    pub fn drain(&mut self) -> Vec<Event> {
        self.ids.clear();
        self.queue.drain(..).collect()
    }
}
