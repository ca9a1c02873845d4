use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, ESCROW_SEED, FEE_VAULT_SEED, OPERATOR_SEED, STAKE_VAULT_SEED},
    errors::DaggerError,
    events::{EarningsWithdrawn, LeaseClaimed, LeaseSettled},
    settlement::{finish, pay_accrued, withdraw_earnings},
    state::{Config, Escrow, FeeVault, Operator, Request, RequestStatus, StakeVault},
};

#[derive(Accounts)]
pub struct Claim<'info> {
    /// The operator's wallet: signs and receives the payout.
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
    #[account(
        mut,
        seeds = [OPERATOR_SEED, operator.node_key.as_ref()],
        bump = operator.bump,
        has_one = owner @ DaggerError::NotOwner,
    )]
    pub operator: Account<'info, Operator>,
    #[account(
        mut,
        seeds = [STAKE_VAULT_SEED, operator.key().as_ref()],
        bump = operator.vault_bump,
    )]
    pub stake_vault: Account<'info, StakeVault>,
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
    #[account(mut, seeds = [FEE_VAULT_SEED], bump = config.fee_vault_bump)]
    pub fee_vault: Account<'info, FeeVault>,
    /// CHECK: only credited; must be the request's customer, who gets the
    /// rest back once the lease is over.
    #[account(mut, address = request.customer @ DaggerError::WrongAccount)]
    pub customer: UncheckedAccount<'info>,
}

/// Pays the operator what accrued (and any earnings it had not taken yet)
/// into its owner's wallet. Once the lease is over (paid time used up or
/// terminated) it also settles: the rest goes back to the customer and the
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

    let vault = accounts.stake_vault.to_account_info();
    let released = pay_accrued(
        &mut accounts.request,
        &accounts.escrow.to_account_info(),
        &mut accounts.operator,
        &vault,
        &accounts.fee_vault.to_account_info(),
        now,
    )?;
    emit!(LeaseClaimed {
        request: accounts.request.key(),
        operator: accounts.operator.key(),
        to_operator: released.to_operator,
        fee: released.fee,
    });
    let amount = withdraw_earnings(
        &mut accounts.operator,
        &vault,
        &accounts.owner.to_account_info(),
    )?;
    emit!(EarningsWithdrawn {
        operator: accounts.operator.key(),
        owner: accounts.owner.key(),
        amount,
    });
    if over {
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
    }
    Ok(())
}
