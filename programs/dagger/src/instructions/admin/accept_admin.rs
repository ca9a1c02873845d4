use anchor_lang::prelude::*;

use crate::{constants::CONFIG_SEED, errors::DaggerError, events::AdminChanged, state::Config};

/// Second step: the proposed admin takes over by signing.
#[derive(Accounts)]
pub struct AcceptAdmin<'info> {
    pub new_admin: Signer<'info>,
    #[account(mut, seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
}

pub(crate) fn handler(ctx: Context<AcceptAdmin>) -> Result<()> {
    let config = &mut ctx.accounts.config;
    let new_admin = ctx.accounts.new_admin.key();
    require!(
        config.pending_admin != Pubkey::default() && config.pending_admin == new_admin,
        DaggerError::NotPendingAdmin
    );
    let previous = config.admin;
    config.admin = new_admin;
    config.pending_admin = Pubkey::default();
    emit!(AdminChanged {
        previous,
        admin: new_admin,
    });
    Ok(())
}
