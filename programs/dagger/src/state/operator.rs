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

/// The least an operator accepts, in lamports per second per unit of what a
/// request asks for. Consensus only assigns a request to an operator whose
/// floor its price meets.
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, Default, InitSpace,
)]
pub struct PriceFloor {
    pub per_vcpu: u64,
    /// Per GiB of memory (a started GiB counts whole).
    pub per_memory_gib: u64,
    pub per_disk_gib: u64,
}

impl PriceFloor {
    /// The lowest price per second this floor accepts for `spec`.
    pub fn min_price(&self, spec: &crate::state::VmSpec) -> u128 {
        spec.vcpus as u128 * self.per_vcpu as u128
            + (spec.memory_mib as u128).div_ceil(1024) * self.per_memory_gib as u128
            + spec.disk_gib as u128 * self.per_disk_gib as u128
    }

    /// Whether a request paying `price_per_second` for `spec` meets it.
    pub fn accepts(&self, spec: &crate::state::VmSpec, price_per_second: u64) -> bool {
        price_per_second as u128 >= self.min_price(spec)
    }
}

/// Why an operator's offer does not take a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferMismatch {
    Region,
    PriceFloor,
    Capacity,
}

/// Resources held by an operator's leases.
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, Default, InitSpace,
)]
pub struct Allocation {
    pub vcpus: u64,
    pub memory_mib: u64,
    pub disk_gib: u64,
}

impl Allocation {
    pub fn of(spec: &crate::state::VmSpec) -> Allocation {
        Allocation {
            vcpus: spec.vcpus as u64,
            memory_mib: spec.memory_mib as u64,
            disk_gib: spec.disk_gib as u64,
        }
    }

    pub fn add(&mut self, other: Allocation) {
        self.vcpus = self.vcpus.saturating_add(other.vcpus);
        self.memory_mib = self.memory_mib.saturating_add(other.memory_mib);
        self.disk_gib = self.disk_gib.saturating_add(other.disk_gib);
    }

    pub fn sub(&mut self, other: Allocation) {
        self.vcpus = self.vcpus.saturating_sub(other.vcpus);
        self.memory_mib = self.memory_mib.saturating_sub(other.memory_mib);
        self.disk_gib = self.disk_gib.saturating_sub(other.disk_gib);
    }

    /// Whether `need` more still fits within `capacity`.
    pub fn fits(&self, need: Allocation, capacity: &Capacity) -> bool {
        self.vcpus.saturating_add(need.vcpus) <= capacity.vcpus as u64
            && self.memory_mib.saturating_add(need.memory_mib) <= capacity.memory_mib as u64
            && self.disk_gib.saturating_add(need.disk_gib) <= capacity.disk_gib as u64
    }
}

/// What an operator offers: where, how much, at what least price, and
/// what it already runs.
#[derive(Clone, Copy, Debug)]
pub struct Offer<'a> {
    pub capacity: &'a Capacity,
    pub price_floor: &'a PriceFloor,
    pub allocated: &'a Allocation,
}

impl Offer<'_> {
    /// Whether a request for `spec` paying `price_per_second` may be
    /// assigned here: its region (0 asks for any), the price floor, and the
    /// capacity left beside what it runs. Consensus assigns by this rule
    /// (counting leases assigned and not yet active too) and the program
    /// checks every provisioning vote against it (counting active ones).
    pub fn takes(
        &self,
        spec: &crate::state::VmSpec,
        price_per_second: u64,
    ) -> core::result::Result<(), OfferMismatch> {
        if spec.region != 0 && spec.region != self.capacity.region {
            return Err(OfferMismatch::Region);
        }
        if !self.price_floor.accepts(spec, price_per_second) {
            return Err(OfferMismatch::PriceFloor);
        }
        if !self.allocated.fits(Allocation::of(spec), self.capacity) {
            return Err(OfferMismatch::Capacity);
        }
        Ok(())
    }
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
    /// Lamports of stake slashed so far.
    pub slashed: u64,
    /// `evidence_hash` of the equivocation it was slashed for (zeros if
    /// none): an operator pays for equivocating once per registration.
    pub equivocation: [u8; 32],
    pub votes_cast: u64,
    pub last_vote_at: i64,
    /// Lease payouts held in the stake vault for the owner (above `stake`),
    /// so a payout never depends on the owner's wallet being funded.
    pub earnings: u64,
    pub price_floor: PriceFloor,
    /// Leases assigned to it and not settled yet. While any remain, its
    /// stake vault (where their payouts go) stays: no withdrawal, no close.
    pub active_leases: u32,
    /// Instance number of this registration (tallies are bound to it).
    pub nonce: u64,
    pub bump: u8,
    pub vault_bump: u8,
    /// What its active leases hold (released when a lease is terminated or
    /// settled): provisioning votes beyond its capacity are refused.
    pub allocated: Allocation,
}

impl Operator {
    pub fn offer(&self) -> Offer<'_> {
        Offer {
            capacity: &self.capacity,
            price_floor: &self.price_floor,
            allocated: &self.allocated,
        }
    }

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
