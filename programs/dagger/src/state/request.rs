use anchor_lang::prelude::*;

use crate::errors::DaggerError;

/// The machine a customer asks for.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, InitSpace)]
pub struct VmSpec {
    pub vcpus: u16,
    pub memory_mib: u32,
    pub disk_gib: u32,
    pub region: u16,
    /// Content hash of the VM image the customer wants booted.
    pub image_id: [u8; 32],
    /// The customer's ed25519 SSH public key (raw 32 bytes): the VM lets
    /// in whoever holds its secret key, and no one else.
    pub ssh_key: [u8; 32],
}

impl VmSpec {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.vcpus > 0
                && self.memory_mib > 0
                && self.disk_gib > 0
                && self.image_id != [0u8; 32]
                && self.ssh_key != [0u8; 32],
            DaggerError::InvalidSpec
        );
        Ok(())
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, InitSpace)]
pub enum RequestStatus {
    /// Paid and waiting for a provisioning quorum before the deadline.
    Open,
    /// A quorum provisioned it: the lease accrues from `lease_start`.
    Active,
    /// A quorum found the VM failed: accrual stopped at `ended_at`.
    Terminated,
}

/// A paid request for a VM, and once provisioned, its lease.
#[account]
#[derive(InitSpace, Debug)]
pub struct Request {
    pub customer: Pubkey,
    pub request_id: u64,
    pub spec: VmSpec,
    pub price_per_second: u64,
    /// Seconds paid for.
    pub duration: u64,
    /// Lamports paid into the escrow (price × duration).
    pub deposit: u64,
    /// Lamports already released from the escrow to operator and treasury.
    pub paid_out: u64,
    pub created_at: i64,
    /// Last moment a provisioning quorum can activate the request.
    pub deadline: i64,
    pub status: RequestStatus,
    /// Operator account the lease was assigned to (default while Open).
    pub assigned_operator: Pubkey,
    /// Hash of the VM endpoint the operator reported.
    pub endpoint_hash: [u8; 32],
    pub lease_start: i64,
    /// Set when a quorum terminates the lease.
    pub ended_at: i64,
    /// The protocol fee when the request was paid: a later fee change never
    /// touches this lease.
    pub fee_bps: u16,
    /// Instance number (tallies are bound to it, not just to the address).
    pub nonce: u64,
    pub bump: u8,
    pub escrow_bump: u8,
    /// Stake that has voted to provision this request (any outcome) in
    /// `provision_epoch`. Once it passes a third of the active stake an
    /// honest operator is among the voters, so the VM is being booted: the
    /// customer can no longer cancel for a full refund.
    pub provision_stake: u64,
    pub provision_epoch: u64,
}

impl Request {
    /// Whether provisioning has started as far as cancelling is concerned
    /// (see `provision_stake`).
    pub fn provisioning_started(&self, roster_epoch: u64, total_active_stake: u64) -> bool {
        self.provision_epoch == roster_epoch
            && self.provision_stake as u128 * 3 > total_active_stake as u128
    }

    /// The moment a customer's `close_lease` at `now` bills up to: at least
    /// `MIN_BILLED_SECONDS` after the lease started (never past what was
    /// paid for). A lease a quorum terminated bills only what ran.
    pub fn billed_until(&self, now: i64) -> i64 {
        match self.status {
            RequestStatus::Active => now.max(
                self.lease_start
                    .saturating_add(crate::constants::MIN_BILLED_SECONDS),
            ),
            _ => now,
        }
    }

    /// The moment accrual stops: the paid duration, or termination if earlier.
    pub fn accrual_end(&self) -> i64 {
        let paid_end = self
            .lease_start
            .saturating_add(i64::try_from(self.duration).unwrap_or(i64::MAX));
        match self.status {
            RequestStatus::Terminated => self.ended_at.min(paid_end),
            _ => paid_end,
        }
    }

    /// Lamports the lease has earned by `now`; never more than the deposit.
    pub fn accrued(&self, now: i64) -> u64 {
        if self.status == RequestStatus::Open {
            return 0;
        }
        let end = self.accrual_end().min(now);
        let elapsed = end.saturating_sub(self.lease_start).max(0) as u128;
        let earned = elapsed.saturating_mul(self.price_per_second as u128);
        earned.min(self.deposit as u128) as u64
    }

    /// Accrued but not yet paid out.
    pub fn claimable(&self, now: i64) -> u64 {
        self.accrued(now).saturating_sub(self.paid_out)
    }

    /// Nothing more can accrue: terminated, or the paid time is used up.
    pub fn is_over(&self, now: i64) -> bool {
        match self.status {
            RequestStatus::Open => false,
            RequestStatus::Active => now >= self.accrual_end(),
            RequestStatus::Terminated => true,
        }
    }

    /// Deposit not owed to anyone but the customer.
    pub fn unpaid(&self) -> u64 {
        self.deposit.saturating_sub(self.paid_out)
    }
}

/// `price × seconds`, or a typed overflow error.
pub fn cost(price_per_second: u64, seconds: u64) -> Result<u64> {
    price_per_second
        .checked_mul(seconds)
        .ok_or_else(|| error!(DaggerError::Overflow))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(price: u64, duration: u64, start: i64) -> Request {
        Request {
            customer: Pubkey::default(),
            request_id: 0,
            spec: VmSpec {
                vcpus: 1,
                memory_mib: 1,
                disk_gib: 1,
                region: 0,
                image_id: [1; 32],
                ssh_key: [42; 32],
            },
            price_per_second: price,
            duration,
            deposit: price * duration,
            paid_out: 0,
            created_at: 0,
            deadline: 0,
            status: RequestStatus::Active,
            assigned_operator: Pubkey::default(),
            endpoint_hash: [0; 32],
            lease_start: start,
            ended_at: 0,
            fee_bps: 0,
            nonce: 0,
            bump: 0,
            escrow_bump: 0,
            provision_stake: 0,
            provision_epoch: 0,
        }
    }

    #[test]
    fn accrual_is_capped_by_duration_and_termination() {
        let mut r = lease(10, 100, 1_000);
        assert_eq!(r.accrued(999), 0);
        assert_eq!(r.accrued(1_050), 500);
        assert_eq!(r.accrued(5_000), 1_000);
        assert!(r.is_over(1_100));
        r.status = RequestStatus::Terminated;
        r.ended_at = 1_020;
        assert_eq!(r.accrued(5_000), 200);
        assert!(r.is_over(1_021));
    }

    #[test]
    fn a_closed_lease_bills_a_minimum_but_never_past_what_was_paid() {
        let min = crate::constants::MIN_BILLED_SECONDS;
        let r = lease(10, 1_000, 1_000);
        assert_eq!(r.accrued(r.billed_until(1_000)), 10 * min as u64);
        assert_eq!(
            r.accrued(r.billed_until(1_000 + min + 5)),
            10 * (min as u64 + 5)
        );
        let short = lease(10, 3, 1_000);
        assert_eq!(short.accrued(short.billed_until(1_000)), 30);
        let mut failed = lease(10, 1_000, 1_000);
        failed.status = RequestStatus::Terminated;
        failed.ended_at = 1_001;
        assert_eq!(failed.accrued(failed.billed_until(1_001)), 10);
    }

    #[test]
    fn provisioning_starts_beyond_a_third_in_the_current_epoch() {
        let mut r = lease(1, 1, 0);
        r.provision_stake = 34;
        r.provision_epoch = 7;
        assert!(r.provisioning_started(7, 100));
        assert!(!r.provisioning_started(8, 100));
        r.provision_stake = 33;
        assert!(!r.provisioning_started(7, 99));
        assert!(!r.provisioning_started(7, 100));
    }

    #[test]
    fn accrual_never_exceeds_deposit_even_at_extremes() {
        let r = lease(u64::MAX / 2, 2, i64::MIN / 2);
        assert_eq!(r.accrued(i64::MAX), r.deposit);
    }
}
