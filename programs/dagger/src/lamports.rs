//! Moving lamports. Deposits come from system accounts through the System
//! Program; payouts leave program-owned vaults by direct debit, which the
//! runtime only allows for accounts this program owns.

use anchor_lang::{
    prelude::*,
    system_program::{transfer, Transfer},
};

use crate::errors::DaggerError;

/// Moves `amount` from a signing wallet into a program account.
pub fn deposit<'info>(
    from: &Signer<'info>,
    to: &AccountInfo<'info>,
    system_program: &Program<'info, System>,
    amount: u64,
) -> Result<()> {
    require!(amount > 0, DaggerError::ZeroAmount);
    transfer(
        CpiContext::new(
            system_program.key(),
            Transfer {
                from: from.to_account_info(),
                to: to.clone(),
            },
        ),
        amount,
    )
}

/// Moves `amount` out of an account owned by this program.
pub fn pay_out(from: &AccountInfo, to: &AccountInfo, amount: u64) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    from.sub_lamports(amount)?;
    to.add_lamports(amount)?;
    Ok(())
}
