//! Rounds, witnesses, "see" and "strongly see", fork-safe.
//!
//! Definitions (paper, with Hedera's fork rule and a round window):
//! * `x` *sees* `y` iff `y` is an ancestor of `x` (or `x`) and `x`'s
//!   ancestry holds no fork by `y`'s creator among events of round
//!   `>= round(y)` (a fork is two events by one creator, neither a
//!   self-ancestor of the other). Every query asks about rounds `>=
//!   parent_round(x) - 1`, which is what lets each event keep a fixed-size
//!   summary per creator ([`SeeEntry`]): `fork_round` = highest `min(round(a),
//!   round(b))` over forks `(a, b)` it can see, and `top` = the latest of that
//!   creator's events above `fork_round` (those form a single chain). Older
//!   detail is dropped, deterministically, so pruning never changes results.
//!   `top` plays the part of Hedera's `lastSee(x, m)` (with the paper's fork
//!   rule added), and the per-event list of seen round witnesses (cached in
//!   `Node::sees_witness`) that of `seeThru`.
//! * `x` *strongly sees* witness `w` of round `ρ` iff the creators `m` whose
//!   latest event `z` seen by `x` sees `w` hold more than 2/3 of the stake of
//!   round `ρ`'s roster. Two forked witnesses can never both be strongly
//!   seen: an honest intermediary's later event would see both, hence the
//!   fork.
//! * `round(x) = r0 + 1` if `x` strongly sees round-`r0` witnesses whose
//!   creators hold a supermajority, else `r0`, where `r0` is the highest
//!   parent round (an event without parents is round 1). A witness is the
//!   first event of its creator's chain in its round.

use crate::graph::{Graph, SeeEntry, NONE};
use crate::roster::{is_supermajority, Schedule};

/// Lowest round a summary keeps for an event whose highest parent round is `r0`.
pub(crate) fn window_floor(r0: u64) -> u64 {
    r0.saturating_sub(1).max(1)
}

fn norm(fork_round: u64, floor: u64) -> u64 {
    if fork_round < floor {
        0
    } else {
        fork_round
    }
}

/// Candidate `top` surviving the floor and the fork round.
fn candidate(e: &SeeEntry, floor: u64, fork: u64) -> Option<(u32, u64)> {
    (e.top != NONE && e.top_round >= floor && e.top_round > fork).then_some((e.top, e.top_round))
}

/// Merge two parents' entries for one creator (not the new event's own).
fn merge(g: &Graph, a: &SeeEntry, b: &SeeEntry, floor: u64) -> SeeEntry {
    let fork = norm(a.fork_round, floor).max(norm(b.fork_round, floor));
    match (candidate(a, floor, fork), candidate(b, floor, fork)) {
        (None, None) => SeeEntry {
            fork_round: fork,
            ..SeeEntry::EMPTY
        },
        (Some((t, r)), None) | (None, Some((t, r))) => SeeEntry {
            top: t,
            top_round: r,
            fork_round: fork,
        },
        (Some((t1, r1)), Some((t2, r2))) => {
            let (lo, hi, rhi) = if g.node(t1).seq <= g.node(t2).seq {
                (t1, t2, r2)
            } else {
                (t2, t1, r1)
            };
            if g.self_ancestor_or_eq(lo, hi) {
                SeeEntry {
                    top: hi,
                    top_round: rhi,
                    fork_round: fork,
                }
            } else {
                let f = fork.max(r1.min(r2));
                let top = if r1 > f {
                    (t1, r1)
                } else if r2 > f {
                    (t2, r2)
                } else {
                    (NONE, 0)
                };
                SeeEntry {
                    top: top.0,
                    top_round: top.1,
                    fork_round: f,
                }
            }
        }
    }
}

/// Summary vector of a new event before its round is known. The entry for
/// its own creator gets `top = NONE`; [`finish_self_entry`] fills it in.
/// `floor` is the window floor of its parent round, raised to the first
/// round above the pruned horizon (see [`window_floor`]): no reference
/// below it is ever followed, so a pruned (and possibly reused) slot is
/// never read.
pub(crate) fn build_see(
    g: &Graph,
    creator: u32,
    sp: u32,
    op: u32,
    floor: u64,
    k: usize,
) -> Vec<SeeEntry> {
    let empty: &[SeeEntry] = &[];
    let sp_see = if sp == NONE {
        empty
    } else {
        &g.node(sp).see[..]
    };
    let op_see = if op == NONE {
        empty
    } else {
        &g.node(op).see[..]
    };
    let mut out = Vec::with_capacity(k);
    for m in 0..k {
        let a = sp_see.get(m).unwrap_or(&SeeEntry::EMPTY);
        let b = op_see.get(m).unwrap_or(&SeeEntry::EMPTY);
        if m as u32 != creator {
            out.push(merge(g, a, b, floor));
            continue;
        }
        // Own creator: the new event tops its own chain; any candidate that
        // is not a self-ancestor of the self-parent forms a fork with it.
        let merged = merge(g, a, b, floor);
        let mut fork = merged.fork_round;
        for e in [a, b] {
            if let Some((t, r)) = candidate(e, floor, 0) {
                let related =
                    sp != NONE && g.node(t).creator == creator && g.self_ancestor_or_eq(t, sp);
                if !related {
                    fork = fork.max(r);
                }
            }
        }
        out.push(SeeEntry {
            top: NONE,
            top_round: 0,
            fork_round: norm(fork, floor),
        });
    }
    out
}

/// Once the round is known the event tops its own chain (if above the fork).
pub(crate) fn finish_self_entry(see: &mut [SeeEntry], creator: u32, slot: u32, round: u64) {
    if let Some(e) = see.get_mut(creator as usize) {
        if round > e.fork_round {
            e.top = slot;
            e.top_round = round;
        }
    }
}

/// Result of a round computation.
pub(crate) struct RoundResult {
    pub round: u64,
    /// When the round advanced: the strongly seen round-`r0` witnesses.
    pub strongly_seen: Option<Vec<u32>>,
}

/// Round of a new event from its parents' round `r0` and its summary.
pub(crate) fn compute_round(
    g: &Graph,
    sched: &Schedule,
    creator: u32,
    sp: u32,
    see: &[SeeEntry],
    r0: u64,
) -> RoundResult {
    if r0 == 0 {
        return RoundResult {
            round: 1,
            strongly_seen: None,
        };
    }
    let witnesses = match g.rounds.get(&r0) {
        Some(rs) if !rs.witnesses.is_empty() => &rs.witnesses,
        _ => {
            return RoundResult {
                round: r0,
                strongly_seen: None,
            }
        }
    };
    let roster = sched.at(r0);
    let mut tally = vec![0u64; witnesses.len()];
    let add = |tally: &mut Vec<u64>, w: u32, s: u64| {
        if w != NONE {
            let n = g.node(w);
            if n.round == r0 && n.witness {
                if let Some(t) = tally.get_mut(n.witness_pos as usize) {
                    *t = t.saturating_add(s);
                }
            }
        }
    };
    for (m, e) in see.iter().enumerate() {
        let stake = roster.stake_of(m as u32);
        if stake == 0 {
            continue;
        }
        if m as u32 == creator {
            // The new event itself as intermediary: it sees what its summary
            // shows, and its own creator's witness through its self-parent.
            for (m2, e2) in see.iter().enumerate() {
                let w = if m2 as u32 == creator {
                    if e2.fork_round < r0 && sp != NONE && g.node(sp).round == r0 {
                        g.node(sp).first_witness
                    } else {
                        NONE
                    }
                } else if e2.top != NONE && e2.top_round == r0 && e2.fork_round < r0 {
                    g.node(e2.top).first_witness
                } else {
                    NONE
                };
                add(&mut tally, w, stake);
            }
        } else if e.top != NONE && e.top_round == r0 {
            for &w in g.node(e.top).sees_witness.iter() {
                add(&mut tally, w, stake);
            }
        }
    }
    let total = roster.roster.total();
    let strongly: Vec<u32> = witnesses
        .iter()
        .zip(&tally)
        .filter(|(_, &t)| is_supermajority(t, total))
        .map(|(&w, _)| w)
        .collect();
    let seen_stake = distinct_creator_stake(g, &strongly, |c| roster.stake_of(c));
    if is_supermajority(seen_stake, total) {
        RoundResult {
            round: r0 + 1,
            strongly_seen: Some(strongly),
        }
    } else {
        RoundResult {
            round: r0,
            strongly_seen: None,
        }
    }
}

/// Stake of the distinct creators of `events`.
pub(crate) fn distinct_creator_stake(g: &Graph, events: &[u32], stake: impl Fn(u32) -> u64) -> u64 {
    let mut creators: Vec<u32> = events.iter().map(|&w| g.node(w).creator).collect();
    creators.sort_unstable();
    creators.dedup();
    creators
        .into_iter()
        .map(stake)
        .fold(0u64, u64::saturating_add)
}

/// Round-`round(y) - 1` witnesses the witness `y` strongly sees (general
/// form, used for vote collection when `y` did not compute it on insertion).
pub(crate) fn strongly_seen_prev(g: &Graph, sched: &Schedule, y: u32) -> Vec<u32> {
    let ny = g.node(y);
    let rho = ny.round.saturating_sub(1);
    if rho == 0 || rho <= g.pruned_through {
        return Vec::new();
    }
    let witnesses = match g.rounds.get(&rho) {
        Some(rs) => &rs.witnesses,
        None => return Vec::new(),
    };
    let roster = sched.at(rho);
    let mut tally = vec![0u64; witnesses.len()];
    for (m, e) in ny.see.iter().enumerate() {
        let stake = roster.stake_of(m as u32);
        if stake == 0 || e.top == NONE || e.top_round < rho {
            continue;
        }
        let z = g.node(e.top);
        for e2 in z.see.iter() {
            if e2.top == NONE || e2.top_round < rho || e2.fork_round >= rho {
                continue;
            }
            let w = g.witness_on_chain(e2.top, rho);
            if w != NONE {
                let nw = g.node(w);
                if nw.witness {
                    if let Some(t) = tally.get_mut(nw.witness_pos as usize) {
                        *t = t.saturating_add(stake);
                    }
                }
            }
        }
    }
    let total = roster.roster.total();
    witnesses
        .iter()
        .zip(&tally)
        .filter(|(_, &t)| is_supermajority(t, total))
        .map(|(&w, _)| w)
        .collect()
}

/// Does `y` see the witness `w`? (`round(w) >= window floor of y`.)
pub(crate) fn sees(g: &Graph, y: u32, w: u32) -> bool {
    let nw = g.node(w);
    let e = match g.node(y).see.get(nw.creator as usize) {
        Some(e) => *e,
        None => return false,
    };
    e.top != NONE
        && e.fork_round < nw.round
        && e.top_round >= nw.round
        && g.witness_on_chain(e.top, nw.round) == w
}
