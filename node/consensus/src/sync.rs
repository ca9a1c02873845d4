//! Gossip-sync support that stays correct when a creator forks.
//!
//! A peer announces its tips (every held event without a held self-child,
//! so a forker's branch heads are all listed). We answer with every event we
//! hold that is not an ancestor of one of those tips we know, parents
//! first. Tips we do not know are ignored (the peer has something we lack;
//! it is sent to us by the reverse sync). Cost is linear in the events held,
//! which pruning bounds; there is no per-pair work.

use crate::event::{Event, EventId};
use crate::graph::NONE;
use crate::hashgraph::Hashgraph;

impl Hashgraph {
    /// Ids of every held event with no held self-child (one per honest
    /// creator; one per branch for a forker), ascending creator index.
    pub fn tips(&self) -> Vec<EventId> {
        self.g
            .tips
            .iter()
            .flatten()
            .map(|&s| self.g.node(s).event.id())
            .collect()
    }

    /// Events held here that are not ancestors (or equal) of any of the
    /// peer's tips known here, in topological order (parents first).
    pub fn events_unknown_to(&mut self, peer_tips: &[EventId]) -> Vec<Event> {
        let stamp = self.g.fresh_mark();
        let mut stack: Vec<u32> = peer_tips.iter().filter_map(|t| self.g.get(t)).collect();
        while let Some(s) = stack.pop() {
            let n = self.g.node_mut(s);
            if n.mark == stamp {
                continue;
            }
            n.mark = stamp;
            let parents = [(n.sp, n.sp_round), (n.op, n.op_round)];
            for (p, r) in parents {
                if p != NONE && self.g.live(p, r) && self.g.node(p).mark != stamp {
                    stack.push(p);
                }
            }
        }
        self.held_in_insertion_order(|n| n.mark != stamp)
            .into_iter()
            .map(|(_, s)| self.g.node(s).event.clone())
            .collect()
    }
}
