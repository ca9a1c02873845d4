use anchor_lang::prelude::*;

use crate::{constants::MAX_ADDRESS_LEN, errors::DaggerError};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, InitSpace)]
pub enum OperatorStatus {
    /// Staked and registered; waits for the genesis admin or a quorum to admit it.
    Pending,
    /// In the roster: its node votes and its stake counts towards quorums.
    Active,
    /// Out of the roster; its stake is locked until `withdrawable_at`.
    Unbonding,
    /// Stake withdrawn. The record stays so a removal remains on file.
    Exited,
}

/// What an operator offers to run.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, InitSpace)]
pub struct Capacity {
    pub vcpus: u16,
    pub memory_mib: u32,
    pub disk_gib: u32,
    /// A numeric region code agreed off-chain (e.g. 1 = eu-west).
    pub region: u16,
}

impl Capacity {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.vcpus > 0 && self.memory_mib > 0 && self.disk_gib > 0,
            DaggerError::InvalidCapacity
        );
        Ok(())
    }
}

pub fn validate_address(address: &str) -> Result<()> {
    require!(
        !address.is_empty() && address.len() <= MAX_ADDRESS_LEN as usize,
        DaggerError::InvalidAddress
    );
    Ok(())
}

/// One compute operator: its wallet, its node identity and its stake.
#[account]
#[derive(InitSpace, Debug)]
pub struct Operator {
    /// Wallet that staked; receives payouts and the stake back.
    pub owner: Pubkey,
    /// Ed25519 identity of the operator's node: signs DAG events, TLS
    /// certificates and `attest` transactions.
    pub node_key: Pubkey,
    /// QUIC address `host:port` of the node.
    #[max_len(MAX_ADDRESS_LEN)]
    pub address: String,
    pub capacity: Capacity,
    /// Lamports held in the operator's stake vault.
    pub stake: u64,
    pub status: OperatorStatus,
    pub registered_at: i64,
    /// When the stake may leave the vault (set when unbonding starts).
    pub withdrawable_at: i64,
    /// Times a quorum removed this operator (its slash record).
    pub removals: u16,
    pub votes_cast: u64,
    pub last_vote_at: i64,
    pub bump: u8,
    pub vault_bump: u8,
}

impl Operator {
    pub fn is_active(&self) -> bool {
        self.status == OperatorStatus::Active
    }

    /// Moves the operator to unbonding; the caller takes it out of the roster.
    pub fn start_unbonding(&mut self, now: i64, unbonding_period: i64) -> Result<()> {
        self.status = OperatorStatus::Unbonding;
        self.withdrawable_at = now
            .checked_add(unbonding_period)
            .ok_or(DaggerError::Overflow)?;
        Ok(())
    }
}
