use anchor_lang::prelude::*;

use crate::{
    constants::{OPERATOR_SEED, STAKE_VAULT_SEED},
    errors::DaggerError,
    events::EarningsWithdrawn,
    settlement,
    state::{Operator, StakeVault},
};

/// The owner takes the lease earnings held in its stake vault.
#[derive(Accounts)]
pub struct WithdrawEarnings<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
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
}

pub(crate) fn handler(ctx: Context<WithdrawEarnings>) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    require!(
        accounts.operator.earnings > 0,
        DaggerError::NothingToWithdraw
    );
    let amount = settlement::withdraw_earnings(
        &mut accounts.operator,
        &accounts.stake_vault.to_account_info(),
        &accounts.owner.to_account_info(),
    )?;
    emit!(EarningsWithdrawn {
        operator: accounts.operator.key(),
        owner: accounts.owner.key(),
        amount,
    });
    Ok(())
}
