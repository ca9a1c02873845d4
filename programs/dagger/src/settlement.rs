//! How lease money leaves an escrow. Every lamport deposited leaves exactly
//! once: to the operator (minus the fee), to the treasury (the fee), or back
//! to the customer when the request is finished and its accounts close.

use anchor_lang::prelude::*;

use crate::{
    lamports::pay_out,
    state::{Config, Escrow, Request},
};

/// What one payout released.
pub struct Released {
    pub to_operator: u64,
    pub fee: u64,
}

/// Pays what the lease accrued by `now` and has not been paid yet.
pub fn pay_accrued<'info>(
    request: &mut Request,
    escrow: &AccountInfo<'info>,
    operator_wallet: &AccountInfo<'info>,
    treasury: &AccountInfo<'info>,
    config: &Config,
    now: i64,
) -> Result<Released> {
    let due = request.claimable(now);
    let (to_operator, fee) = config.split_fee(due);
    pay_out(escrow, operator_wallet, to_operator)?;
    pay_out(escrow, treasury, fee)?;
    request.paid_out += due;
    Ok(Released { to_operator, fee })
}

/// Closes the escrow and the request into the customer: the unpaid deposit
/// and both accounts' rent go back to whoever paid them. Returns the refund.
pub fn finish<'info>(
    request: &Account<'info, Request>,
    escrow: &Account<'info, Escrow>,
    customer: &AccountInfo<'info>,
) -> Result<u64> {
    let refund = request.unpaid();
    escrow.close(customer.clone())?;
    request.close(customer.clone())?;
    Ok(refund)
}
