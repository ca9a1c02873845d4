use anchor_lang::prelude::*;

use crate::{constants::CONFIG_SEED, errors::DaggerError, events::AdminProposed, state::Config};

/// First of two steps: the admin names its successor (or
/// `Pubkey::default()` to withdraw a proposal). Nothing changes until the
/// successor signs `accept_admin`, so a mistyped key loses nothing.
#[derive(Accounts)]
pub struct ProposeAdmin<'info> {
    pub admin: Signer<'info>,
    #[account(
        mut,
        seeds = [CONFIG_SEED],
        bump = config.bump,
        has_one = admin @ DaggerError::Unauthorized,
    )]
    pub config: Account<'info, Config>,
}

pub(crate) fn handler(ctx: Context<ProposeAdmin>, proposed: Pubkey) -> Result<()> {
    let config = &mut ctx.accounts.config;
    config.pending_admin = proposed;
    emit!(AdminProposed {
        admin: config.admin,
        proposed,
    });
    Ok(())
}
