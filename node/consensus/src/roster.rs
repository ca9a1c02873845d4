//! Rosters (creator -> stake) and the per-round schedule of rosters.

use std::collections::{BTreeMap, HashMap};

use crate::error::RosterError;
use crate::event::CreatorId;

/// Strictly more than two thirds: `3 * part > 2 * total`, in u128 so no
/// u64 stake can overflow. Exactly 2/3 is not a supermajority.
pub fn is_supermajority(part: u64, total: u64) -> bool {
    3 * u128::from(part) > 2 * u128::from(total)
}

/// The voting members of a round and their stakes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    members: BTreeMap<CreatorId, u64>,
    total: u64,
}

impl Roster {
    /// Build a roster. Stakes must be positive and sum to at most u64::MAX.
    pub fn new<I: IntoIterator<Item = (CreatorId, u64)>>(
        members: I,
    ) -> Result<Roster, RosterError> {
        let mut map = BTreeMap::new();
        let mut total: u64 = 0;
        for (c, s) in members {
            if s == 0 {
                return Err(RosterError::ZeroStake);
            }
            if map.insert(c, s).is_some() {
                return Err(RosterError::Duplicate);
            }
            total = total.checked_add(s).ok_or(RosterError::Overflow)?;
        }
        if map.is_empty() {
            return Err(RosterError::Empty);
        }
        Ok(Roster {
            members: map,
            total,
        })
    }

    /// Stake of `c`, 0 if not a member.
    pub fn stake(&self, c: &CreatorId) -> u64 {
        self.members.get(c).copied().unwrap_or(0)
    }
    pub fn contains(&self, c: &CreatorId) -> bool {
        self.members.contains_key(c)
    }
    pub fn total(&self) -> u64 {
        self.total
    }
    pub fn len(&self) -> usize {
        self.members.len()
    }
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    /// Members in ascending creator order.
    pub fn members(&self) -> impl Iterator<Item = (&CreatorId, &u64)> {
        self.members.iter()
    }
}

/// A roster with its stakes laid out by the graph's dense creator index.
#[derive(Debug)]
pub(crate) struct DenseRoster {
    pub roster: Roster,
    pub stake: Vec<u64>,
}

impl DenseRoster {
    pub fn stake_of(&self, creator: u32) -> u64 {
        self.stake.get(creator as usize).copied().unwrap_or(0)
    }
}

/// Creator table (dense u32 indices, append-only) and the roster in force
/// for each round: entry `(r, roster)` applies from round `r` until the next
/// entry.
#[derive(Debug)]
pub(crate) struct Schedule {
    pub creators: Vec<CreatorId>,
    pub index: HashMap<CreatorId, u32>,
    by_round: BTreeMap<u64, DenseRoster>,
}

impl Schedule {
    pub fn new(genesis: Roster) -> Self {
        let mut s = Schedule {
            creators: Vec::new(),
            index: HashMap::new(),
            by_round: BTreeMap::new(),
        };
        s.set(1, genesis);
        s
    }

    /// Make `roster` the roster from round `from` on (replacing any later
    /// entries, which cannot exist because changes are scheduled in order).
    pub fn set(&mut self, from: u64, roster: Roster) {
        for (c, _) in roster.members() {
            if !self.index.contains_key(c) {
                let i = self.creators.len() as u32;
                self.creators.push(*c);
                self.index.insert(*c, i);
            }
        }
        let mut stake = vec![0u64; self.creators.len()];
        for (c, s) in roster.members() {
            if let Some(&i) = self.index.get(c) {
                stake[i as usize] = *s;
            }
        }
        let _ = self.by_round.split_off(&from);
        self.by_round.insert(from, DenseRoster { roster, stake });
    }

    /// Roster in force at `round` (rounds start at 1).
    pub fn at(&self, round: u64) -> &DenseRoster {
        self.by_round
            .range(..=round.max(1))
            .next_back()
            .or_else(|| self.by_round.iter().next())
            .map(|(_, r)| r)
            .expect("schedule always holds the genesis roster")
    }

    /// Is `c` a member of any roster in force at or after `round`?
    pub fn known_from(&self, c: &CreatorId, round: u64) -> bool {
        let start = self
            .by_round
            .range(..=round.max(1))
            .next_back()
            .map(|(r, _)| *r)
            .unwrap_or(1);
        self.by_round
            .range(start..)
            .any(|(_, r)| r.roster.contains(c))
    }

    /// Forget rosters only needed for rounds below `round`.
    pub fn prune_below(&mut self, round: u64) {
        let keep_from = self.by_round.range(..=round).next_back().map(|(r, _)| *r);
        if let Some(k) = keep_from {
            self.by_round = self.by_round.split_off(&k);
        }
    }

    pub fn creator_count(&self) -> usize {
        self.creators.len()
    }

    /// Every `(first round, roster)` entry still held, ascending.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &Roster)> {
        self.by_round.iter().map(|(r, d)| (*r, &d.roster))
    }

    /// Rebuild a schedule from its creator table and entries (snapshot
    /// restore). The caller guarantees that `creators` are distinct, that
    /// every roster member is among them and that `entries` is non-empty
    /// with ascending rounds. Dense stakes are laid out over the whole
    /// table, which [`DenseRoster::stake_of`] cannot tell from the shorter
    /// vectors `set` may have built (missing indices read as 0 either way).
    pub fn from_parts(creators: Vec<CreatorId>, entries: Vec<(u64, Roster)>) -> Schedule {
        let index: HashMap<CreatorId, u32> = creators
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u32))
            .collect();
        let mut by_round = BTreeMap::new();
        for (from, roster) in entries {
            let mut stake = vec![0u64; creators.len()];
            for (c, s) in roster.members() {
                if let Some(&i) = index.get(c) {
                    stake[i as usize] = *s;
                }
            }
            by_round.insert(from, DenseRoster { roster, stake });
        }
        Schedule {
            creators,
            index,
            by_round,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exactly_two_thirds_is_not_a_supermajority() {
        assert!(!is_supermajority(2, 3));
        assert!(is_supermajority(3, 4));
        assert!(!is_supermajority(6, 9));
        assert!(is_supermajority(7, 9));
        assert!(!is_supermajority(0, 0));
        assert!(is_supermajority(u64::MAX, u64::MAX));
        let t = u64::MAX; // 2^64 - 1 is divisible by 3
        assert!(!is_supermajority(t / 3 * 2, t));
        assert!(is_supermajority(t / 3 * 2 + 1, t));
    }

    proptest! {
        #[test]
        fn supermajority_matches_exact_rational(part in any::<u64>(), total in any::<u64>()) {
            // Reference: part/total > 2/3 with big-integer arithmetic.
            let exact = (part as u128) * 3 > (total as u128) * 2;
            prop_assert_eq!(is_supermajority(part, total), exact);
            if part <= total && total > 0 {
                // Monotone in part and antitone in total.
                if part < u64::MAX { prop_assert!(!is_supermajority(part, total) || is_supermajority(part + 1, total)); }
                prop_assert!(is_supermajority(part, total) || !is_supermajority(part, total.saturating_add(1)) );
            }
        }
    }

    #[test]
    fn roster_validation() {
        let a = CreatorId([1; 32]);
        let b = CreatorId([2; 32]);
        assert_eq!(Roster::new([]), Err(RosterError::Empty));
        assert_eq!(Roster::new([(a, 0)]), Err(RosterError::ZeroStake));
        assert_eq!(Roster::new([(a, 1), (a, 2)]), Err(RosterError::Duplicate));
        assert_eq!(
            Roster::new([(a, u64::MAX), (b, 1)]),
            Err(RosterError::Overflow)
        );
        let r = Roster::new([(a, 3), (b, 4)]).expect("valid");
        assert_eq!(
            (r.total(), r.stake(&a), r.stake(&CreatorId([9; 32]))),
            (7, 3, 0)
        );
    }

    #[test]
    fn schedule_lookup_and_pruning() {
        let a = CreatorId([1; 32]);
        let b = CreatorId([2; 32]);
        let mut s = Schedule::new(Roster::new([(a, 1)]).expect("valid"));
        s.set(5, Roster::new([(a, 1), (b, 2)]).expect("valid"));
        assert_eq!(s.at(4).roster.total(), 1);
        assert_eq!(s.at(5).roster.total(), 3);
        assert_eq!(s.at(50).stake_of(1), 2);
        assert!(s.known_from(&b, 1));
        s.prune_below(7);
        assert_eq!(s.at(1).roster.total(), 3);
    }
}
