use anchor_lang::prelude::*;

use crate::{constants::MAX_ACTIVE_OPERATORS, errors::DaggerError};

/// Global protocol settings and the roster summary every quorum is measured
/// against.
#[account]
#[derive(InitSpace, Debug)]
pub struct Config {
    pub admin: Pubkey,
    /// Receives the protocol fee on every operator payout.
    pub treasury: Pubkey,
    pub min_operator_stake: u64,
    /// Seconds between `request_unstake` and `withdraw_stake`.
    pub unbonding_period: i64,
    /// Seconds a paid request may wait for a provisioning quorum.
    pub provisioning_timeout: i64,
    pub protocol_fee_bps: u16,
    /// Bumped on every change of the active set or its stakes; votes are only
    /// counted within one epoch, so a tally never mixes two rosters.
    pub roster_epoch: u64,
    pub total_active_stake: u64,
    pub active_operators: u32,
    /// Set once by `finish_bootstrap`; from then on only quorums change the roster.
    pub bootstrapped: bool,
    pub bump: u8,
}

impl Config {
    /// Adds an operator's stake to the active set and starts a new epoch.
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
        self.bump_epoch()
    }

    /// Takes an operator's stake out of the active set and starts a new epoch.
    pub fn deactivate(&mut self, stake: u64) -> Result<()> {
        self.total_active_stake = self
            .total_active_stake
            .checked_sub(stake)
            .ok_or(DaggerError::Overflow)?;
        self.active_operators = self
            .active_operators
            .checked_sub(1)
            .ok_or(DaggerError::Overflow)?;
        self.bump_epoch()
    }

    /// Grows an active operator's stake, which changes the roster too.
    pub fn add_active_stake(&mut self, amount: u64) -> Result<()> {
        self.total_active_stake = self
            .total_active_stake
            .checked_add(amount)
            .ok_or(DaggerError::Overflow)?;
        self.bump_epoch()
    }

    fn bump_epoch(&mut self) -> Result<()> {
        self.roster_epoch = self
            .roster_epoch
            .checked_add(1)
            .ok_or(DaggerError::Overflow)?;
        Ok(())
    }

    /// Strictly more than two thirds of the active stake, in integers that
    /// cannot overflow.
    pub fn is_supermajority(&self, stake: u64) -> bool {
        is_supermajority(stake, self.total_active_stake)
    }

    /// Splits a payout into (operator share, protocol fee). The fee rounds down.
    pub fn split_fee(&self, amount: u64) -> (u64, u64) {
        let fee = (amount as u128 * self.protocol_fee_bps as u128
            / crate::constants::BPS_DENOMINATOR as u128) as u64;
        (amount - fee, fee)
    }
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
}
