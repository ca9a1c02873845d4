use anchor_lang::prelude::*;

use crate::{
    constants::CONFIG_SEED, errors::DaggerError, events::BootstrapFinished, state::Config,
};

/// Irreversible: hands roster changes over to quorum attestations.
#[derive(Accounts)]
pub struct FinishBootstrap<'info> {
    pub admin: Signer<'info>,
    #[account(
        mut,
        seeds = [CONFIG_SEED],
        bump = config.bump,
        has_one = admin @ DaggerError::Unauthorized,
    )]
    pub config: Account<'info, Config>,
}

pub(crate) fn handler(ctx: Context<FinishBootstrap>) -> Result<()> {
    let config = &mut ctx.accounts.config;
    require!(!config.bootstrapped, DaggerError::AlreadyBootstrapped);
    require!(config.active_operators > 0, DaggerError::EmptyRoster);
    config.bootstrapped = true;
    emit!(BootstrapFinished {
        roster_epoch: config.roster_epoch,
        total_active_stake: config.total_active_stake,
        active_operators: config.active_operators,
    });
    Ok(())
}
