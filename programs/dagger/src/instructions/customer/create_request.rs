use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, ESCROW_SEED, REQUEST_SEED},
    errors::DaggerError,
    events::RequestCreated,
    lamports::deposit,
    state::{cost, Config, Escrow, Request, RequestStatus, VmSpec},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct CreateRequestArgs {
    /// Chosen by the customer; unique per customer (it seeds the request PDA).
    pub request_id: u64,
    pub spec: VmSpec,
    pub price_per_second: u64,
    /// Seconds to pay for up front.
    pub duration: u64,
}

#[derive(Accounts)]
#[instruction(args: CreateRequestArgs)]
pub struct CreateRequest<'info> {
    #[account(mut)]
    pub customer: Signer<'info>,
    #[account(seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
    #[account(
        init,
        payer = customer,
        space = 8 + Request::INIT_SPACE,
        seeds = [REQUEST_SEED, customer.key().as_ref(), &args.request_id.to_le_bytes()],
        bump,
    )]
    pub request: Account<'info, Request>,
    #[account(
        init,
        payer = customer,
        space = 8 + Escrow::INIT_SPACE,
        seeds = [ESCROW_SEED, request.key().as_ref()],
        bump,
    )]
    pub escrow: Account<'info, Escrow>,
    pub system_program: Program<'info, System>,
}

/// Opens a request and pays price × duration into its escrow.
pub(crate) fn handler(ctx: Context<CreateRequest>, args: CreateRequestArgs) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    require!(accounts.config.bootstrapped, DaggerError::NotBootstrapped);
    args.spec.validate()?;
    require!(args.price_per_second > 0, DaggerError::ZeroPrice);
    require!(args.duration > 0, DaggerError::ZeroDuration);
    let amount = cost(args.price_per_second, args.duration)?;
    deposit(
        &accounts.customer,
        &accounts.escrow.to_account_info(),
        &accounts.system_program,
        amount,
    )?;

    let now = Clock::get()?.unix_timestamp;
    let deadline = now
        .checked_add(accounts.config.provisioning_timeout)
        .ok_or(DaggerError::Overflow)?;
    accounts.escrow.set_inner(Escrow {
        request: accounts.request.key(),
        bump: ctx.bumps.escrow,
    });
    accounts.request.set_inner(Request {
        customer: accounts.customer.key(),
        request_id: args.request_id,
        spec: args.spec,
        price_per_second: args.price_per_second,
        duration: args.duration,
        deposit: amount,
        paid_out: 0,
        created_at: now,
        deadline,
        status: RequestStatus::Open,
        assigned_operator: Pubkey::default(),
        endpoint_hash: [0; 32],
        lease_start: 0,
        ended_at: 0,
        bump: ctx.bumps.request,
        escrow_bump: ctx.bumps.escrow,
    });
    emit!(RequestCreated {
        request: accounts.request.key(),
        customer: accounts.customer.key(),
        request_id: args.request_id,
        spec: args.spec,
        price_per_second: args.price_per_second,
        duration: args.duration,
        deposit: amount,
        deadline,
    });
    Ok(())
}
