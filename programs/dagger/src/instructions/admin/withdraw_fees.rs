use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, FEE_VAULT_SEED},
    errors::DaggerError,
    events::FeesWithdrawn,
    lamports::pay_out,
    state::{Config, FeeVault},
};

/// The admin sends collected fees from the fee vault to the treasury; the
/// vault keeps its rent.
#[derive(Accounts)]
pub struct WithdrawFees<'info> {
    pub admin: Signer<'info>,
    #[account(
        seeds = [CONFIG_SEED],
        bump = config.bump,
        has_one = admin @ DaggerError::Unauthorized,
        has_one = treasury @ DaggerError::WrongTreasury,
    )]
    pub config: Account<'info, Config>,
    #[account(mut, seeds = [FEE_VAULT_SEED], bump = config.fee_vault_bump)]
    pub fee_vault: Account<'info, FeeVault>,
    /// CHECK: only credited; must be the configured treasury.
    #[account(mut)]
    pub treasury: UncheckedAccount<'info>,
}

/// `amount = 0` withdraws everything above the vault's rent.
pub(crate) fn handler(ctx: Context<WithdrawFees>, amount: u64) -> Result<()> {
    let vault = ctx.accounts.fee_vault.to_account_info();
    let rent = Rent::get()?.minimum_balance(vault.data_len());
    let available = vault.lamports().saturating_sub(rent);
    let amount = if amount == 0 { available } else { amount };
    require!(amount > 0, DaggerError::NothingToWithdraw);
    require!(amount <= available, DaggerError::NothingToWithdraw);
    pay_out(&vault, &ctx.accounts.treasury.to_account_info(), amount)?;
    emit!(FeesWithdrawn {
        treasury: ctx.accounts.treasury.key(),
        amount,
    });
    Ok(())
}
