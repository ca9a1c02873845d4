use anchor_lang::prelude::*;

use crate::{
    constants::{OPERATOR_SEED, STAKE_VAULT_SEED},
    errors::DaggerError,
    events::StakeWithdrawn,
    state::{Operator, OperatorStatus, StakeVault},
};

#[derive(Accounts)]
pub struct WithdrawStake<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(
        mut,
        seeds = [OPERATOR_SEED, operator.node_key.as_ref()],
        bump = operator.bump,
        has_one = owner @ DaggerError::NotOwner,
    )]
    pub operator: Account<'info, Operator>,
    /// Closed into the owner: the stake, any unwithdrawn earnings and the
    /// vault's rent go back together.
    #[account(
        mut,
        close = owner,
        seeds = [STAKE_VAULT_SEED, operator.key().as_ref()],
        bump = operator.vault_bump,
    )]
    pub stake_vault: Account<'info, StakeVault>,
}

pub(crate) fn handler(ctx: Context<WithdrawStake>) -> Result<()> {
    let operator = &mut ctx.accounts.operator;
    require!(
        operator.status == OperatorStatus::Unbonding,
        DaggerError::InvalidOperatorStatus
    );
    let now = Clock::get()?.unix_timestamp;
    require!(
        now >= operator.withdrawable_at,
        DaggerError::UnbondingNotFinished
    );
    // Unsettled leases pay into this vault: it stays until they are settled.
    require!(operator.active_leases == 0, DaggerError::LeasesOutstanding);
    let amount = ctx.accounts.stake_vault.to_account_info().lamports();
    operator.stake = 0;
    operator.earnings = 0;
    operator.status = OperatorStatus::Exited;
    emit!(StakeWithdrawn {
        operator: operator.key(),
        owner: ctx.accounts.owner.key(),
        amount,
    });
    Ok(())
}
