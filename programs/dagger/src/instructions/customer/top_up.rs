use anchor_lang::prelude::*;

use crate::{
    constants::ESCROW_SEED,
    errors::DaggerError,
    events::RequestToppedUp,
    lamports::deposit,
    state::{cost, Escrow, Request, RequestStatus},
};

#[derive(Accounts)]
pub struct TopUp<'info> {
    #[account(mut)]
    pub customer: Signer<'info>,
    #[account(mut, has_one = customer @ DaggerError::NotCustomer)]
    pub request: Account<'info, Request>,
    #[account(
        mut,
        seeds = [ESCROW_SEED, request.key().as_ref()],
        bump = request.escrow_bump,
    )]
    pub escrow: Account<'info, Escrow>,
    pub system_program: Program<'info, System>,
}

/// Buys `added_seconds` more at the request's price, while it is open or its
/// lease still runs.
pub(crate) fn handler(ctx: Context<TopUp>, added_seconds: u64) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    require!(added_seconds > 0, DaggerError::ZeroDuration);
    let now = Clock::get()?.unix_timestamp;
    let request = &accounts.request;
    match request.status {
        RequestStatus::Open => {}
        RequestStatus::Active => require!(!request.is_over(now), DaggerError::LeaseEnded),
        RequestStatus::Terminated => return err!(DaggerError::LeaseEnded),
    }
    let amount = cost(request.price_per_second, added_seconds)?;
    let duration = request
        .duration
        .checked_add(added_seconds)
        .ok_or(DaggerError::Overflow)?;
    let new_deposit = request
        .deposit
        .checked_add(amount)
        .ok_or(DaggerError::Overflow)?;
    deposit(
        &accounts.customer,
        &accounts.escrow.to_account_info(),
        &accounts.system_program,
        amount,
    )?;
    let request = &mut accounts.request;
    request.duration = duration;
    request.deposit = new_deposit;
    emit!(RequestToppedUp {
        request: request.key(),
        added_seconds,
        amount,
        duration,
        deposit: new_deposit,
    });
    Ok(())
}
