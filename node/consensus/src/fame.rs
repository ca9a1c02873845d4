//! Fame of witnesses by virtual voting (paper section 4), stake-weighted,
//! with a coin round every [`COIN_PERIOD`] voting rounds.
//!
//! A round-`r+1` witness votes "famous" for a round-`r` witness iff it sees
//! it. A round-`r+d` witness (`d >= 2`) tallies, by stake of round `r+d-1`,
//! the votes of the round-`r+d-1` witnesses it strongly sees: in a normal
//! round a supermajority decides; in a coin round it adopts a supermajority
//! or else flips the coin (a bit of its own id; ids, unlike ed25519
//! signatures, cannot be re-randomised by a malicious creator without
//! changing the event).

use std::collections::HashMap;

use crate::graph::{Graph, NONE};
use crate::roster::{is_supermajority, Schedule};
use crate::rounds;

/// Every `COIN_PERIOD`-th voting round (d = 6, 12, ...) is a coin round.
/// The paper requires more than 2; 6 leaves four normal rounds (d = 2..5)
/// before the first coin round, which fits inside `ROSTER_DELAY`.
pub const COIN_PERIOD: u64 = 6;

/// Memoised votes: candidate slot -> voter slot -> vote.
#[derive(Debug, Default)]
pub(crate) struct Votes {
    pub by_candidate: HashMap<u32, HashMap<u32, bool>>,
}

impl Votes {
    pub fn forget(&mut self, candidates: &[u32]) {
        for c in candidates {
            self.by_candidate.remove(c);
        }
    }
}

fn coin(g: &Graph, y: u32) -> bool {
    g.node(y).event.id().0[16] & 1 == 1
}

fn ensure_strongly_seen(g: &mut Graph, sched: &Schedule, y: u32) {
    if g.node(y).strongly_seen.is_none() {
        let ss = rounds::strongly_seen_prev(g, sched, y);
        g.node_mut(y).strongly_seen = Some(ss.into_boxed_slice());
    }
}

/// Decide what can be decided about round `r`'s witnesses. Returns true
/// when every known witness of round `r` has its fame decided.
pub(crate) fn decide_round(g: &mut Graph, sched: &Schedule, votes: &mut Votes, r: u64) -> bool {
    let witnesses: Vec<u32> = match g.rounds.get(&r) {
        Some(rs) if !rs.witnesses.is_empty() => rs.witnesses.clone(),
        _ => return false,
    };
    let max_round = g.rounds.keys().next_back().copied().unwrap_or(r);
    for &w in &witnesses {
        if g.node(w).fame.is_some() {
            continue;
        }
        let mut decided = None;
        'rounds: for d in 1..=max_round.saturating_sub(r) {
            let vr = r + d;
            let voters: Vec<u32> = match g.rounds.get(&vr) {
                Some(rs) => rs.witnesses.clone(),
                None => break,
            };
            for y in voters {
                if votes
                    .by_candidate
                    .get(&w)
                    .is_some_and(|m| m.contains_key(&y))
                {
                    continue;
                }
                let vote = if d == 1 {
                    rounds::sees(g, y, w)
                } else {
                    ensure_strongly_seen(g, sched, y);
                    let roster = sched.at(vr - 1);
                    let (mut yes, mut no) = (0u64, 0u64);
                    let cast = votes.by_candidate.get(&w);
                    for &s in g.node(y).strongly_seen.as_deref().unwrap_or(&[]) {
                        if s == NONE {
                            continue;
                        }
                        let stake = roster.stake_of(g.node(s).creator);
                        match cast.and_then(|m| m.get(&s)) {
                            Some(true) => yes = yes.saturating_add(stake),
                            Some(false) => no = no.saturating_add(stake),
                            None => {}
                        }
                    }
                    let v = yes >= no;
                    let t = yes.max(no);
                    let total = roster.roster.total();
                    if d % COIN_PERIOD != 0 {
                        if is_supermajority(t, total) {
                            decided = Some(v);
                            break 'rounds;
                        }
                        v
                    } else if is_supermajority(t, total) {
                        v
                    } else {
                        coin(g, y)
                    }
                };
                votes.by_candidate.entry(w).or_default().insert(y, vote);
            }
        }
        if let Some(f) = decided {
            g.node_mut(w).fame = Some(f);
        }
    }
    witnesses.iter().all(|&w| g.node(w).fame.is_some())
}
