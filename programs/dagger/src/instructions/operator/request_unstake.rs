use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, OPERATOR_SEED},
    errors::DaggerError,
    events::UnstakeRequested,
    state::{Config, Operator, OperatorStatus},
};

#[derive(Accounts)]
pub struct RequestUnstake<'info> {
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
}

/// The stake leaves the active total at once (and the roster epoch moves), so
/// a departing operator stops weighing on quorums immediately; the lamports
/// stay locked for the unbonding period.
pub(crate) fn handler(ctx: Context<RequestUnstake>) -> Result<()> {
    let config = &mut ctx.accounts.config;
    let operator = &mut ctx.accounts.operator;
    let was_active = match operator.status {
        OperatorStatus::Active => true,
        OperatorStatus::Pending => false,
        OperatorStatus::Unbonding | OperatorStatus::Exited => {
            return err!(DaggerError::InvalidOperatorStatus)
        }
    };
    // A genesis member leaving before consensus even starts would leave
    // dead stake in every node's first roster.
    require!(
        config.bootstrapped || !was_active,
        DaggerError::GenesisFrozen
    );
    let now = Clock::get()?.unix_timestamp;
    if was_active {
        config.deactivate(operator.stake, now)?;
    }
    operator.start_unbonding(now, config.unbonding_period)?;
    emit!(UnstakeRequested {
        operator: operator.key(),
        stake: operator.stake,
        withdrawable_at: operator.withdrawable_at,
        roster_epoch: config.roster_epoch,
    });
    Ok(())
}
