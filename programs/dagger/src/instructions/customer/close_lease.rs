use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, ESCROW_SEED, FEE_VAULT_SEED, STAKE_VAULT_SEED},
    errors::DaggerError,
    events::{LeaseClaimed, LeaseSettled},
    settlement::{finish, pay_accrued},
    state::{Config, Escrow, FeeVault, Operator, Request, RequestStatus, StakeVault},
};

#[derive(Accounts)]
pub struct CloseLease<'info> {
    #[account(mut)]
    pub customer: Signer<'info>,
    #[account(seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
    #[account(mut, has_one = customer @ DaggerError::NotCustomer)]
    pub request: Account<'info, Request>,
    #[account(
        mut,
        seeds = [ESCROW_SEED, request.key().as_ref()],
        bump = request.escrow_bump,
    )]
    pub escrow: Account<'info, Escrow>,
    #[account(mut, address = request.assigned_operator @ DaggerError::WrongAccount)]
    pub operator: Account<'info, Operator>,
    /// The operator's share is held here for its owner: a payout never
    /// depends on the owner's wallet, so an operator cannot block the exit.
    #[account(
        mut,
        seeds = [STAKE_VAULT_SEED, operator.key().as_ref()],
        bump = operator.vault_bump,
    )]
    pub stake_vault: Account<'info, StakeVault>,
    #[account(mut, seeds = [FEE_VAULT_SEED], bump = config.fee_vault_bump)]
    pub fee_vault: Account<'info, FeeVault>,
}

/// Ends the lease now: the operator gets what accrued (at least
/// `MIN_BILLED_SECONDS` of it, see `Request::billed_until`), the customer
/// the rest, and the lease's accounts close.
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
    let billed_until = accounts.request.billed_until(now);
    let released = pay_accrued(
        &mut accounts.request,
        &accounts.escrow.to_account_info(),
        &mut accounts.operator,
        &accounts.stake_vault.to_account_info(),
        &accounts.fee_vault.to_account_info(),
        billed_until,
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
        &mut accounts.operator,
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
