use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, OPERATOR_SEED, STAKE_VAULT_SEED},
    errors::DaggerError,
    events::StakeAdded,
    lamports::deposit,
    state::{Config, Operator, OperatorStatus, StakeVault},
};

#[derive(Accounts)]
pub struct AddStake<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(mut, seeds = [CONFIG_SEED], bump = config.bump)]
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
    pub system_program: Program<'info, System>,
}

/// Stake added to an active operator counts at once, for votes cast from
/// now on, without starting a new roster epoch: open tallies keep their
/// ballots (see `Config::roster_epoch`), so adding stake cannot stall them.
/// After bootstrap no operator may grow past the configured share of the
/// active stake.
pub(crate) fn handler(ctx: Context<AddStake>, amount: u64) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    require!(amount > 0, DaggerError::ZeroAmount);
    require!(
        matches!(
            accounts.operator.status,
            OperatorStatus::Pending | OperatorStatus::Active
        ),
        DaggerError::InvalidOperatorStatus
    );
    let stake_after = accounts
        .operator
        .stake
        .checked_add(amount)
        .ok_or(DaggerError::Overflow)?;
    // The genesis roster records admitted stakes; they are final only once
    // the bootstrap is finished.
    require!(
        accounts.config.bootstrapped || !accounts.operator.is_active(),
        DaggerError::GenesisFrozen
    );
    if accounts.operator.is_active() {
        let total_after = accounts
            .config
            .total_active_stake
            .checked_add(amount)
            .ok_or(DaggerError::Overflow)?;
        accounts.config.check_share(stake_after, total_after)?;
    }
    deposit(
        &accounts.owner,
        &accounts.stake_vault.to_account_info(),
        &accounts.system_program,
        amount,
    )?;
    let operator = &mut accounts.operator;
    operator.stake = stake_after;
    if operator.is_active() {
        accounts.config.add_active_stake(amount)?;
    }
    emit!(StakeAdded {
        operator: operator.key(),
        amount,
        stake: operator.stake,
        roster_epoch: accounts.config.roster_epoch,
    });
    Ok(())
}
