use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, RECOVERY_DELAY},
    errors::DaggerError,
    events::BootstrapReopened,
    state::Config,
};

/// The way back when every operator has left: with no active stake no
/// quorum can ever admit anyone again. Once the active stake has been zero
/// for `RECOVERY_DELAY`, the admin may reopen the bootstrap and admit a new
/// genesis roster (`bootstrap_admit`, then `finish_bootstrap`). While any
/// stake is active this is impossible.
#[derive(Accounts)]
pub struct ReopenBootstrap<'info> {
    pub admin: Signer<'info>,
    #[account(
        mut,
        seeds = [CONFIG_SEED],
        bump = config.bump,
        has_one = admin @ DaggerError::Unauthorized,
    )]
    pub config: Account<'info, Config>,
}

pub(crate) fn handler(ctx: Context<ReopenBootstrap>) -> Result<()> {
    let config = &mut ctx.accounts.config;
    let now = Clock::get()?.unix_timestamp;
    require!(
        config.bootstrapped
            && config.total_active_stake == 0
            && config.active_operators == 0
            && config.zero_stake_since > 0
            && now >= config.zero_stake_since.saturating_add(RECOVERY_DELAY),
        DaggerError::RecoveryNotAllowed
    );
    config.bootstrapped = false;
    emit!(BootstrapReopened {
        zero_stake_since: config.zero_stake_since,
        roster_epoch: config.roster_epoch,
    });
    Ok(())
}
