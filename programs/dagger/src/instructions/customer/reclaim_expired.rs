use anchor_lang::prelude::*;

use crate::{
    constants::ESCROW_SEED,
    errors::DaggerError,
    events::RequestRefunded,
    state::{Escrow, Request, RequestStatus},
};

/// Permissionless: no signer is needed beyond whoever pays the fee, so no
/// operator or admin can keep a customer's money past the deadline.
#[derive(Accounts)]
pub struct ReclaimExpired<'info> {
    #[account(mut, close = customer)]
    pub request: Account<'info, Request>,
    #[account(
        mut,
        close = customer,
        seeds = [ESCROW_SEED, request.key().as_ref()],
        bump = request.escrow_bump,
    )]
    pub escrow: Account<'info, Escrow>,
    /// CHECK: only credited; must be the request's customer.
    #[account(mut, address = request.customer @ DaggerError::WrongAccount)]
    pub customer: UncheckedAccount<'info>,
    /// The deadline is judged against the Clock sysvar account given here;
    /// its address is checked, so a forged clock cannot move the deadline.
    pub clock: Sysvar<'info, Clock>,
}

pub(crate) fn handler(ctx: Context<ReclaimExpired>) -> Result<()> {
    let request = &ctx.accounts.request;
    require!(
        request.status == RequestStatus::Open,
        DaggerError::RequestNotOpen
    );
    require!(
        ctx.accounts.clock.unix_timestamp > request.deadline,
        DaggerError::DeadlineNotReached
    );
    emit!(RequestRefunded {
        request: request.key(),
        customer: request.customer,
        amount: request.deposit,
        expired: true,
    });
    Ok(())
}
