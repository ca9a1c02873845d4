use anchor_lang::prelude::*;

use crate::{
    constants::ESCROW_SEED,
    errors::DaggerError,
    events::RequestRefunded,
    state::{Escrow, Request, RequestStatus},
};

#[derive(Accounts)]
pub struct CancelRequest<'info> {
    #[account(mut)]
    pub customer: Signer<'info>,
    #[account(mut, close = customer, has_one = customer @ DaggerError::NotCustomer)]
    pub request: Account<'info, Request>,
    #[account(
        mut,
        close = customer,
        seeds = [ESCROW_SEED, request.key().as_ref()],
        bump = request.escrow_bump,
    )]
    pub escrow: Account<'info, Escrow>,
}

/// Refunds everything while nothing is provisioned; both accounts close.
pub(crate) fn handler(ctx: Context<CancelRequest>) -> Result<()> {
    let request = &ctx.accounts.request;
    require!(
        request.status == RequestStatus::Open,
        DaggerError::RequestNotOpen
    );
    emit!(RequestRefunded {
        request: request.key(),
        customer: request.customer,
        amount: request.deposit,
        expired: false,
    });
    Ok(())
}
