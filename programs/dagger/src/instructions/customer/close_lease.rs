use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, ESCROW_SEED},
    errors::DaggerError,
    events::{LeaseClaimed, LeaseSettled},
    settlement::{finish, pay_accrued},
    state::{Config, Escrow, Operator, Request, RequestStatus},
};

#[derive(Accounts)]
pub struct CloseLease<'info> {
    #[account(mut)]
    pub customer: Signer<'info>,
    #[account(seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
    #[account(mut, has_one = customer @ DaggerError::Unauthorized)]
    pub request: Account<'info, Request>,
    #[account(
        mut,
        seeds = [ESCROW_SEED, request.key().as_ref()],
        bump = request.escrow_bump,
    )]
    pub escrow: Account<'info, Escrow>,
    #[account(address = request.assigned_operator @ DaggerError::WrongAccount)]
    pub operator: Account<'info, Operator>,
    /// CHECK: only credited; must be the assigned operator's wallet.
    #[account(mut, address = operator.owner @ DaggerError::WrongAccount)]
    pub operator_owner: UncheckedAccount<'info>,
    /// CHECK: only credited; must be the configured treasury.
    #[account(mut, address = config.treasury @ DaggerError::WrongTreasury)]
    pub treasury: UncheckedAccount<'info>,
}

/// Ends the lease now: the operator gets what accrued, the customer the rest,
/// and the lease's accounts close.
pub(crate) fn handler(ctx: Context<CloseLease>) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    require!(
        matches!(
            accounts.request.status,
            RequestStatus::Active | RequestStatus::Terminated
        ),
        DaggerError::LeaseNotActive
    );
    let now = Clock::get()?.unix_timestamp;
    let released = pay_accrued(
        &mut accounts.request,
        &accounts.escrow.to_account_info(),
        &accounts.operator_owner.to_account_info(),
        &accounts.treasury.to_account_info(),
        &accounts.config,
        now,
    )?;
    emit!(LeaseClaimed {
        request: accounts.request.key(),
        operator: accounts.operator.key(),
        to_operator: released.to_operator,
        fee: released.fee,
    });
    let refunded = finish(
        &accounts.request,
        &accounts.escrow,
        &accounts.customer.to_account_info(),
    )?;
    emit!(LeaseSettled {
        request: accounts.request.key(),
        customer: accounts.customer.key(),
        refunded,
        total_paid_out: accounts.request.paid_out,
    });
    Ok(())
}
