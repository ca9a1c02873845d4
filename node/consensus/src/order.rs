//! Round received, consensus timestamps and the total order of a decided
//! round.
//!
//! * Judges: the famous witnesses of the round, one per creator (the one
//!   with the smallest id if a forking creator has several).
//! * An unordered event is received in round `r` iff it is an ancestor of
//!   every judge of `r`.
//! * Its raw timestamp is the median (lower median) of, per judge, the
//!   creation time of the earliest self-ancestor of the judge that has the
//!   event as an ancestor.
//! * Within a round: by raw timestamp, then by `id XOR (XOR of the judges'
//!   ids)`. Output timestamps are made strictly increasing across the whole
//!   order (`max(raw, previous + 1)`) so consumers can rely on monotone time.
//! * Running hash: `h_i = blake3("DAGGER/order/1" || h_{i-1} || id_i)`,
//!   `h_{-1} = [0; 32]`.

use std::collections::HashMap;

use crate::event::{Event, EventId};
use crate::graph::{Graph, NONE};

/// One event in consensus order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ordered {
    pub event: Event,
    pub round_received: u64,
    /// Consensus timestamp (ns), strictly increasing along the order.
    pub consensus_time_ns: u64,
    /// Position in the total order, from 0.
    pub order_index: u64,
    /// Running hash after this event.
    pub running_hash: [u8; 32],
}

/// Cursor of the total order.
#[derive(Debug, Default, Clone)]
pub(crate) struct OrderState {
    pub count: u64,
    pub running_hash: [u8; 32],
    pub last_time: Option<u64>,
}

/// The running hash of the order after appending `id` to an order whose
/// running hash was `prev`. Public so a node can check a list of ordered
/// event ids against two running hashes it trusts.
pub fn chain_hash(prev: &[u8; 32], id: &EventId) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"DAGGER/order/1");
    h.update(prev);
    h.update(&id.0);
    *h.finalize().as_bytes()
}

/// The judges of decided round `r` (slots, ascending creator order).
pub(crate) fn judges(g: &Graph, r: u64) -> Vec<u32> {
    let mut best: HashMap<u32, u32> = HashMap::new();
    if let Some(rs) = g.rounds.get(&r) {
        for &w in &rs.witnesses {
            let n = g.node(w);
            if n.fame != Some(true) {
                continue;
            }
            best.entry(n.creator)
                .and_modify(|cur| {
                    if g.node(*cur).event.id() > n.event.id() {
                        *cur = w;
                    }
                })
                .or_insert(w);
        }
    }
    let mut out: Vec<(u32, u32)> = best.into_iter().collect();
    out.sort_unstable();
    out.into_iter().map(|(_, w)| w).collect()
}

/// Order the events received in round `r` given its judges.
pub(crate) fn order_round(
    g: &mut Graph,
    r: u64,
    judges: &[u32],
    st: &mut OrderState,
) -> Vec<Ordered> {
    if judges.is_empty() {
        return Vec::new();
    }
    let mut whitening = [0u8; 32];
    for &j in judges {
        for (w, b) in whitening.iter_mut().zip(g.node(j).event.id().0) {
            *w ^= b;
        }
    }
    // slot -> (judges reaching it, first-seen times)
    let mut seen: HashMap<u32, (usize, Vec<u64>)> = HashMap::new();
    for &j in judges {
        let stamp = g.fresh_mark();
        let mut chain = vec![j];
        let mut s = j;
        loop {
            let n = g.node(s);
            if n.sp == NONE || !g.live(n.sp, n.sp_round) || g.node(n.sp).ordered {
                break;
            }
            s = n.sp;
            chain.push(s);
        }
        let mut stack = Vec::new();
        for &s in chain.iter().rev() {
            let time = g.node(s).time;
            stack.push(s);
            while let Some(u) = stack.pop() {
                let n = g.node_mut(u);
                if n.ordered || n.mark == stamp {
                    continue;
                }
                n.mark = stamp;
                let (sp, spr, op, opr) = (n.sp, n.sp_round, n.op, n.op_round);
                let e = seen.entry(u).or_insert((0, Vec::new()));
                e.0 += 1;
                e.1.push(time);
                for (p, pr) in [(sp, spr), (op, opr)] {
                    if g.live(p, pr) {
                        stack.push(p);
                    }
                }
            }
        }
    }
    let mut received: Vec<(u64, [u8; 32], u32)> = seen
        .into_iter()
        .filter(|(_, (c, _))| *c == judges.len())
        .map(|(slot, (_, mut times))| {
            times.sort_unstable();
            let median = times[(times.len() - 1) / 2];
            let mut key = g.node(slot).event.id().0;
            for (k, w) in key.iter_mut().zip(whitening) {
                *k ^= w;
            }
            (median, key, slot)
        })
        .collect();
    received.sort_unstable();
    let mut out = Vec::with_capacity(received.len());
    for (median, _, slot) in received {
        let n = g.node_mut(slot);
        n.ordered = true;
        let time = match st.last_time {
            Some(prev) => median.max(prev.saturating_add(1)),
            None => median,
        };
        st.last_time = Some(time);
        st.running_hash = chain_hash(&st.running_hash, &n.event.id());
        out.push(Ordered {
            event: n.event.clone(),
            round_received: r,
            consensus_time_ns: time,
            order_index: st.count,
            running_hash: st.running_hash,
        });
        st.count = st.count.saturating_add(1);
    }
    out
}
