use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, ESCROW_SEED},
    errors::DaggerError,
    events::RequestRefunded,
    state::{Config, Escrow, Request, RequestStatus},
};

#[derive(Accounts)]
pub struct CancelRequest<'info> {
    #[account(mut)]
    pub customer: Signer<'info>,
    #[account(seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
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
/// Once more than a third of the stake voted to provision, a VM is being
/// booted for the customer: it waits for the lease (and closes it, billed
/// a minimum) or for the deadline (`reclaim_expired`, a full refund).
pub(crate) fn handler(ctx: Context<CancelRequest>) -> Result<()> {
    let request = &ctx.accounts.request;
    require!(
        request.status == RequestStatus::Open,
        DaggerError::RequestNotOpen
    );
    let config = &ctx.accounts.config;
    require!(
        !request.provisioning_started(config.roster_epoch, config.total_active_stake),
        DaggerError::ProvisioningStarted
    );
    emit!(RequestRefunded {
        request: request.key(),
        customer: request.customer,
        amount: request.deposit,
        expired: false,
    });
    Ok(())
}
