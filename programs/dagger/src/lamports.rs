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

/// Whether an address already holds one of this program's accounts.
/// Lamports alone (anyone can send them) do not make an address in use.
pub fn in_use(account: &AccountInfo) -> bool {
    *account.owner == crate::ID || !account.data_is_empty()
}

/// Closes a program account by hand: every lamport to `to`, the address
/// handed back to the System Program with no data (what Anchor's `close`
/// constraint does for typed accounts).
pub fn close_account(account: &AccountInfo, to: &AccountInfo) -> Result<()> {
    let lamports = account.lamports();
    pay_out(account, to, lamports)?;
    account.assign(&anchor_lang::system_program::ID);
    account.resize(0)?;
    Ok(())
}

/// Creates a program-owned PDA (see [`create_pda`]) sized for `T` and
/// writes `value` into it.
pub fn create_pda_holding<'info, T: AccountSerialize + Space>(
    payer: &Signer<'info>,
    account: &AccountInfo<'info>,
    system_program: &Program<'info, System>,
    signer_seeds: &[&[u8]],
    value: &T,
) -> Result<()> {
    create_pda(
        payer,
        account,
        system_program,
        8 + T::INIT_SPACE,
        signer_seeds,
    )?;
    value.try_serialize(&mut &mut account.try_borrow_mut_data()?[..])
}

/// Creates a program-owned PDA of `space` bytes, paid by `payer`. Works even
/// if someone sent lamports to the address beforehand (which would make a
/// plain `create_account` fail): then it only tops up the rent, allocates
/// and assigns. The caller checks the account is not in use yet.
pub fn create_pda<'info>(
    payer: &Signer<'info>,
    account: &AccountInfo<'info>,
    system_program: &Program<'info, System>,
    space: usize,
    signer_seeds: &[&[u8]],
) -> Result<()> {
    use anchor_lang::system_program::{
        allocate, assign, create_account, Allocate, Assign, CreateAccount,
    };
    let rent = Rent::get()?.minimum_balance(space);
    let seeds = &[signer_seeds];
    let current = account.lamports();
    if current == 0 {
        return create_account(
            CpiContext::new_with_signer(
                system_program.key(),
                CreateAccount {
                    from: payer.to_account_info(),
                    to: account.clone(),
                },
                seeds,
            ),
            rent,
            space as u64,
            &crate::ID,
        );
    }
    let top_up = rent.saturating_sub(current);
    if top_up > 0 {
        transfer(
            CpiContext::new(
                system_program.key(),
                Transfer {
                    from: payer.to_account_info(),
                    to: account.clone(),
                },
            ),
            top_up,
        )?;
    }
    allocate(
        CpiContext::new_with_signer(
            system_program.key(),
            Allocate {
                account_to_allocate: account.clone(),
            },
            seeds,
        ),
        space as u64,
    )?;
    assign(
        CpiContext::new_with_signer(
            system_program.key(),
            Assign {
                account_to_assign: account.clone(),
            },
            seeds,
        ),
        &crate::ID,
    )
}
