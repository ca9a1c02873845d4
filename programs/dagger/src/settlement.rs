//! How lease money leaves an escrow. Every lamport deposited leaves exactly
//! once: to the operator's stake vault as earnings (minus the fee), to the
//! fee vault (the fee), or back to the customer when the request is finished
//! and its accounts close. Nothing is paid into an outside wallet on the
//! way, so no recipient's balance can make a settlement fail.

use anchor_lang::prelude::*;

use crate::{
    errors::DaggerError,
    lamports::pay_out,
    state::{split_fee, Allocation, Escrow, Operator, Request, RequestStatus},
};

/// What one payout released.
pub struct Released {
    pub to_operator: u64,
    pub fee: u64,
}

/// Pays what the lease accrued by `now` and has not been paid yet: the
/// operator's share into its stake vault (as earnings), the fee (at the
/// request's own rate) into the fee vault.
pub fn pay_accrued<'info>(
    request: &mut Request,
    escrow: &AccountInfo<'info>,
    operator: &mut Operator,
    stake_vault: &AccountInfo<'info>,
    fee_vault: &AccountInfo<'info>,
    now: i64,
) -> Result<Released> {
    let due = request.claimable(now);
    let (to_operator, fee) = split_fee(due, request.fee_bps);
    pay_out(escrow, stake_vault, to_operator)?;
    pay_out(escrow, fee_vault, fee)?;
    operator.earnings = operator
        .earnings
        .checked_add(to_operator)
        .ok_or(DaggerError::Overflow)?;
    request.paid_out = request
        .paid_out
        .checked_add(due)
        .ok_or(DaggerError::Overflow)?;
    Ok(Released { to_operator, fee })
}

/// Sends an operator's earnings from its stake vault to its owner's wallet.
/// Returns the amount.
pub fn withdraw_earnings<'info>(
    operator: &mut Operator,
    stake_vault: &AccountInfo<'info>,
    owner: &AccountInfo<'info>,
) -> Result<u64> {
    let amount = operator.earnings;
    pay_out(stake_vault, owner, amount)?;
    operator.earnings = 0;
    Ok(amount)
}

/// Closes the escrow and the request into the customer: the unpaid deposit
/// and both accounts' rent go back to whoever paid them; the lease no longer
/// counts against its operator. Returns the refund.
pub fn finish<'info>(
    request: &Account<'info, Request>,
    escrow: &Account<'info, Escrow>,
    operator: &mut Operator,
    customer: &AccountInfo<'info>,
) -> Result<u64> {
    operator.active_leases = operator.active_leases.saturating_sub(1);
    // A terminated lease gave its capacity back when it was terminated.
    if request.status == RequestStatus::Active {
        operator.allocated.sub(Allocation::of(&request.spec));
    }
    let refund = request.unpaid();
    escrow.close(customer.clone())?;
    request.close(customer.clone())?;
    Ok(refund)
}
