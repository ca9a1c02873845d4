//! One event per state change, so indexers can follow the program without
//! re-reading every account.

use anchor_lang::prelude::*;

use crate::state::{Capacity, PriceFloor, Subject, VmSpec};

#[event]
pub struct ConfigInitialized {
    pub admin: Pubkey,
    pub treasury: Pubkey,
    pub min_operator_stake: u64,
    pub unbonding_period: i64,
    pub provisioning_timeout: i64,
    pub protocol_fee_bps: u16,
    pub max_stake_share_bps: u16,
    pub removal_slash_bps: u16,
    pub equivocation_slash_bps: u16,
    pub reporter_reward_bps: u16,
}

#[event]
pub struct ConfigUpdated {
    pub treasury: Pubkey,
    pub min_operator_stake: u64,
    pub unbonding_period: i64,
    pub provisioning_timeout: i64,
    pub protocol_fee_bps: u16,
    pub max_stake_share_bps: u16,
    pub removal_slash_bps: u16,
    pub equivocation_slash_bps: u16,
    pub reporter_reward_bps: u16,
}

#[event]
pub struct AdminProposed {
    pub admin: Pubkey,
    pub proposed: Pubkey,
}

#[event]
pub struct AdminChanged {
    pub previous: Pubkey,
    pub admin: Pubkey,
}

#[event]
pub struct FeesWithdrawn {
    pub treasury: Pubkey,
    pub amount: u64,
}

#[event]
pub struct BootstrapReopened {
    pub zero_stake_since: i64,
    pub roster_epoch: u64,
}

#[event]
pub struct BootstrapFinished {
    pub roster_epoch: u64,
    pub total_active_stake: u64,
    pub active_operators: u32,
}

#[event]
pub struct OperatorRegistered {
    pub operator: Pubkey,
    pub owner: Pubkey,
    pub node_key: Pubkey,
    pub stake: u64,
    pub address: String,
    pub capacity: Capacity,
    pub price_floor: PriceFloor,
    pub nonce: u64,
}

#[event]
pub struct StakeAdded {
    pub operator: Pubkey,
    pub amount: u64,
    pub stake: u64,
    pub roster_epoch: u64,
}

#[event]
pub struct OperatorUpdated {
    pub operator: Pubkey,
    pub address: String,
    pub capacity: Capacity,
    pub price_floor: PriceFloor,
}

#[event]
pub struct EarningsWithdrawn {
    pub operator: Pubkey,
    pub owner: Pubkey,
    pub amount: u64,
}

#[event]
pub struct OperatorClosed {
    pub operator: Pubkey,
    pub owner: Pubkey,
}

#[event]
pub struct UnstakeRequested {
    pub operator: Pubkey,
    pub stake: u64,
    pub withdrawable_at: i64,
    pub roster_epoch: u64,
}

#[event]
pub struct StakeWithdrawn {
    pub operator: Pubkey,
    pub owner: Pubkey,
    pub amount: u64,
}

#[event]
pub struct OperatorAdmitted {
    pub operator: Pubkey,
    pub stake: u64,
    pub by_quorum: bool,
    pub roster_epoch: u64,
    pub total_active_stake: u64,
}

#[event]
pub struct OperatorRemoved {
    pub operator: Pubkey,
    /// Stake left after the slash.
    pub stake: u64,
    pub slashed: u64,
    pub roster_epoch: u64,
    pub total_active_stake: u64,
}

#[event]
pub struct RequestCreated {
    pub request: Pubkey,
    pub customer: Pubkey,
    pub request_id: u64,
    pub spec: VmSpec,
    pub price_per_second: u64,
    pub duration: u64,
    pub deposit: u64,
    pub deadline: i64,
    pub fee_bps: u16,
    pub nonce: u64,
}

#[event]
pub struct RequestToppedUp {
    pub request: Pubkey,
    pub added_seconds: u64,
    pub amount: u64,
    pub duration: u64,
    pub deposit: u64,
}

#[event]
pub struct RequestRefunded {
    pub request: Pubkey,
    pub customer: Pubkey,
    pub amount: u64,
    pub expired: bool,
}

#[event]
pub struct TallyClosed {
    pub subject: Subject,
    pub rent_payer: Pubkey,
    pub ballots: u32,
}

#[event]
pub struct VoteCast {
    pub subject: Subject,
    pub voter: Pubkey,
    pub stake: u64,
    pub roster_epoch: u64,
    pub outcome_stake: u64,
    pub total_active_stake: u64,
}

#[event]
pub struct LeaseActivated {
    pub request: Pubkey,
    pub operator: Pubkey,
    pub endpoint_hash: [u8; 32],
    pub started_at: i64,
}

#[event]
pub struct LeaseTerminated {
    pub request: Pubkey,
    pub ended_at: i64,
}

#[event]
pub struct LeaseClaimed {
    pub request: Pubkey,
    pub operator: Pubkey,
    pub to_operator: u64,
    pub fee: u64,
}

#[event]
pub struct LeaseSettled {
    pub request: Pubkey,
    pub customer: Pubkey,
    pub refunded: u64,
    pub total_paid_out: u64,
}

#[event]
pub struct EquivocationReported {
    pub operator: Pubkey,
    pub node_key: Pubkey,
    pub reporter: Pubkey,
    /// `evidence_hash` of the pair (order independent).
    pub evidence: [u8; 32],
    pub slashed: u64,
    pub reporter_reward: u64,
    /// Whether it was in the active set (and left it now).
    pub was_active: bool,
    pub roster_epoch: u64,
    pub total_active_stake: u64,
}
