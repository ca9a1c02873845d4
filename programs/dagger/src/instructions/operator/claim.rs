use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, ESCROW_SEED, OPERATOR_SEED},
    errors::DaggerError,
    events::{LeaseClaimed, LeaseSettled},
    settlement::{finish, pay_accrued},
    state::{Config, Escrow, Operator, Request, RequestStatus},
};

#[derive(Accounts)]
pub struct Claim<'info> {
    /// The operator's wallet: signs and receives the payout.
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
    #[account(
        seeds = [OPERATOR_SEED, operator.node_key.as_ref()],
        bump = operator.bump,
        has_one = owner @ DaggerError::Unauthorized,
    )]
    pub operator: Account<'info, Operator>,
    #[account(
        mut,
        constraint = request.assigned_operator == operator.key() @ DaggerError::WrongAccount,
    )]
    pub request: Account<'info, Request>,
    #[account(
        mut,
        seeds = [ESCROW_SEED, request.key().as_ref()],
        bump = request.escrow_bump,
    )]
    pub escrow: Account<'info, Escrow>,
    /// CHECK: only credited; must be the configured treasury.
    #[account(mut, address = config.treasury @ DaggerError::WrongTreasury)]
    pub treasury: UncheckedAccount<'info>,
    /// CHECK: only credited; must be the request's customer, who gets the
    /// rest back once the lease is over.
    #[account(mut, address = request.customer @ DaggerError::WrongAccount)]
    pub customer: UncheckedAccount<'info>,
}

/// Pays the operator what accrued. Once the lease is over (paid time used up
/// or terminated) it also settles: the rest goes back to the customer and the
/// lease's accounts close.
pub(crate) fn handler(ctx: Context<Claim>) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    require!(
        matches!(
            accounts.request.status,
            RequestStatus::Active | RequestStatus::Terminated
        ),
        DaggerError::LeaseNotActive
    );
    let now = Clock::get()?.unix_timestamp;
    let over = accounts.request.is_over(now);
    let due = accounts.request.claimable(now);
    require!(due > 0 || over, DaggerError::NothingToClaim);

    let released = pay_accrued(
        &mut accounts.request,
        &accounts.escrow.to_account_info(),
        &accounts.owner.to_account_info(),
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
    if over {
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
    }
    Ok(())
}
