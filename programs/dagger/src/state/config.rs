use anchor_lang::prelude::*;

use crate::{
    constants::{BPS_DENOMINATOR, MAX_ACTIVE_OPERATORS},
    errors::DaggerError,
};

/// Global protocol settings and the roster summary every quorum is measured
/// against.
#[account]
#[derive(InitSpace, Debug)]
pub struct Config {
    pub admin: Pubkey,
    /// Proposed by the admin, takes over when it accepts (two steps, so a
    /// typo cannot lose the key). `Pubkey::default()` when none.
    pub pending_admin: Pubkey,
    /// Where `withdraw_fees` sends the protocol's fees (a system account).
    pub treasury: Pubkey,
    pub min_operator_stake: u64,
    /// Seconds between `request_unstake` and `withdraw_stake`.
    pub unbonding_period: i64,
    /// Seconds a paid request may wait for a provisioning quorum.
    pub provisioning_timeout: i64,
    /// Fee on operator payouts; each request keeps the fee of its creation.
    pub protocol_fee_bps: u16,
    /// Largest share of the active stake one operator may reach.
    pub max_stake_share_bps: u16,
    /// Share of its stake an operator loses when a quorum removes it.
    pub removal_slash_bps: u16,
    /// Share of its stake an operator loses when anyone proves it signed two
    /// conflicting events (`report_equivocation`).
    pub equivocation_slash_bps: u16,
    /// Share of an equivocation slash paid to whoever reported it; the rest
    /// goes to the fee vault (and from there to the treasury).
    pub reporter_reward_bps: u16,
    /// Bumped whenever stake leaves the active set (an unstake, a removal):
    /// ballots of an older epoch no longer count, so a departed voter's
    /// stake never helps a quorum. Stake that joins does not bump it: a
    /// ballot then weighs at most what its voter holds now, which can only
    /// make a quorum harder, so open tallies keep their ballots.
    pub roster_epoch: u64,
    pub total_active_stake: u64,
    pub active_operators: u32,
    /// Set by `finish_bootstrap`; from then on only quorums change the roster
    /// (unless every operator left, see `reopen_bootstrap`).
    pub bootstrapped: bool,
    /// The network id every event signature of this network covers, set by
    /// `finish_bootstrap` from the genesis record (zeros before).
    pub network_id: [u8; 32],
    /// When the active stake last dropped to zero (0 while it is not).
    pub zero_stake_since: i64,
    /// Numbers requests and operator registrations, so a tally is bound to
    /// one instance of its subject even when its address is reused.
    pub next_nonce: u64,
    /// Set at `initialize` when the program runs as a builtin, owned by the
    /// native loader: only a validator or test runtime started locally can
    /// load a third party's program that way, never a public cluster. Only
    /// then may the unbonding period go below `MIN_UNBONDING_PERIOD`.
    pub local_cluster: bool,
    pub bump: u8,
    pub fee_vault_bump: u8,
}

impl Config {
    /// Adds an operator's stake to the active set.
    pub fn activate(&mut self, stake: u64) -> Result<()> {
        require!(
            self.active_operators < MAX_ACTIVE_OPERATORS,
            DaggerError::RosterFull
        );
        self.total_active_stake = self
            .total_active_stake
            .checked_add(stake)
            .ok_or(DaggerError::Overflow)?;
        self.active_operators += 1;
        self.zero_stake_since = 0;
        Ok(())
    }

    /// Takes an operator's stake out of the active set and starts a new epoch.
    pub fn deactivate(&mut self, stake: u64, now: i64) -> Result<()> {
        self.total_active_stake = self
            .total_active_stake
            .checked_sub(stake)
            .ok_or(DaggerError::Overflow)?;
        self.active_operators = self
            .active_operators
            .checked_sub(1)
            .ok_or(DaggerError::Overflow)?;
        if self.total_active_stake == 0 {
            self.zero_stake_since = now.max(1);
        }
        self.bump_epoch()
    }

    /// Grows an active operator's stake (no new epoch: see `roster_epoch`).
    pub fn add_active_stake(&mut self, amount: u64) -> Result<()> {
        self.total_active_stake = self
            .total_active_stake
            .checked_add(amount)
            .ok_or(DaggerError::Overflow)?;
        Ok(())
    }

    fn bump_epoch(&mut self) -> Result<()> {
        self.roster_epoch = self
            .roster_epoch
            .checked_add(1)
            .ok_or(DaggerError::Overflow)?;
        Ok(())
    }

    /// After bootstrap, no operator may grow to hold more than
    /// `max_stake_share_bps` of the active stake: `stake_after` is its stake
    /// and `total_after` the active total once the change is applied.
    pub fn check_share(&self, stake_after: u64, total_after: u64) -> Result<()> {
        if !self.bootstrapped {
            return Ok(());
        }
        require!(
            stake_after as u128 * BPS_DENOMINATOR as u128
                <= self.max_stake_share_bps as u128 * total_after as u128,
            DaggerError::StakeCapExceeded
        );
        Ok(())
    }

    /// The next instance number.
    pub fn take_nonce(&mut self) -> Result<u64> {
        let n = self.next_nonce;
        self.next_nonce = n.checked_add(1).ok_or(DaggerError::Overflow)?;
        Ok(n)
    }

    /// Strictly more than two thirds of the active stake, in integers that
    /// cannot overflow.
    pub fn is_supermajority(&self, stake: u64) -> bool {
        is_supermajority(stake, self.total_active_stake)
    }
}

/// Splits a payout into (operator share, protocol fee) at `fee_bps`. The fee
/// rounds down.
pub fn split_fee(amount: u64, fee_bps: u16) -> (u64, u64) {
    let fee = (amount as u128 * fee_bps as u128 / BPS_DENOMINATOR as u128) as u64;
    (amount - fee, fee)
}

/// `3 * part > 2 * total`, computed in u128 so no stake value can overflow it.
pub fn is_supermajority(part: u64, total: u64) -> bool {
    total > 0 && 3 * part as u128 > 2 * total as u128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_two_thirds_is_not_enough() {
        assert!(!is_supermajority(2, 3));
        assert!(is_supermajority(3, 4));
        assert!(!is_supermajority(0, 0));
        assert!(is_supermajority(u64::MAX, u64::MAX));
        assert!(!is_supermajority(u64::MAX / 3 * 2, u64::MAX / 3 * 3));
    }

    #[test]
    fn threshold_matches_floor_definition() {
        // For integers, part/total > 2/3 holds exactly when part > floor(2·total/3).
        for total in 1u64..300 {
            for part in 0..=total {
                assert_eq!(
                    is_supermajority(part, total),
                    part > 2 * total / 3,
                    "{part}/{total}"
                );
            }
        }
    }

    #[test]
    fn fee_split_adds_up_and_rounds_down() {
        for amount in [0u64, 1, 39, 40, 10_000, u64::MAX] {
            for bps in [0u16, 1, 250, 1_000] {
                let (op, fee) = split_fee(amount, bps);
                assert_eq!(op as u128 + fee as u128, amount as u128);
                assert!(fee as u128 * 10_000 <= amount as u128 * bps as u128);
            }
        }
    }
}
