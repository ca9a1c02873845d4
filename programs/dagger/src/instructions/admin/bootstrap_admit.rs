use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, OPERATOR_SEED},
    errors::DaggerError,
    events::OperatorAdmitted,
    state::{Config, Operator, OperatorStatus},
};

/// The admin seeds the genesis roster; once bootstrapped this is closed for good.
#[derive(Accounts)]
pub struct BootstrapAdmit<'info> {
    pub admin: Signer<'info>,
    #[account(
        mut,
        seeds = [CONFIG_SEED],
        bump = config.bump,
        has_one = admin @ DaggerError::Unauthorized,
    )]
    pub config: Account<'info, Config>,
    #[account(
        mut,
        seeds = [OPERATOR_SEED, operator.node_key.as_ref()],
        bump = operator.bump,
    )]
    pub operator: Account<'info, Operator>,
}

pub(crate) fn handler(ctx: Context<BootstrapAdmit>) -> Result<()> {
    let config = &mut ctx.accounts.config;
    let operator = &mut ctx.accounts.operator;
    require!(!config.bootstrapped, DaggerError::AlreadyBootstrapped);
    require!(
        operator.status == OperatorStatus::Pending,
        DaggerError::InvalidOperatorStatus
    );
    require!(
        operator.stake >= config.min_operator_stake,
        DaggerError::InsufficientStake
    );
    config.activate(operator.stake)?;
    operator.status = OperatorStatus::Active;
    emit!(OperatorAdmitted {
        operator: operator.key(),
        stake: operator.stake,
        by_quorum: false,
        roster_epoch: config.roster_epoch,
        total_active_stake: config.total_active_stake,
    });
    Ok(())
}
