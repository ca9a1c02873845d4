use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, ESCROW_SEED, REQUEST_SEED},
    errors::DaggerError,
    events::RequestCreated,
    lamports::{create_pda_holding, deposit, in_use},
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
    #[account(mut, seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
    /// CHECK: created by the handler, which first refuses an id in use with
    /// `RequestIdInUse` (an `init` constraint would fail with an opaque
    /// System Program error instead).
    #[account(
        mut,
        seeds = [REQUEST_SEED, customer.key().as_ref(), &args.request_id.to_le_bytes()],
        bump,
    )]
    pub request: UncheckedAccount<'info>,
    /// CHECK: created by the handler together with the request.
    #[account(mut, seeds = [ESCROW_SEED, request.key().as_ref()], bump)]
    pub escrow: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

/// Opens a request and pays price × duration into its escrow.
pub(crate) fn handler(ctx: Context<CreateRequest>, args: CreateRequestArgs) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    require!(accounts.config.bootstrapped, DaggerError::NotBootstrapped);
    args.spec.validate()?;
    require!(args.price_per_second > 0, DaggerError::ZeroPrice);
    require!(args.duration > 0, DaggerError::ZeroDuration);
    require!(
        !in_use(&accounts.request) && !in_use(&accounts.escrow),
        DaggerError::RequestIdInUse
    );
    let amount = cost(args.price_per_second, args.duration)?;

    let customer_key = accounts.customer.key();
    let id_bytes = args.request_id.to_le_bytes();
    let request_key = accounts.request.key();
    let now = Clock::get()?.unix_timestamp;
    let deadline = now
        .checked_add(accounts.config.provisioning_timeout)
        .ok_or(DaggerError::Overflow)?;
    let nonce = accounts.config.take_nonce()?;
    let fee_bps = accounts.config.protocol_fee_bps;
    let escrow = Escrow {
        request: request_key,
        bump: ctx.bumps.escrow,
    };
    let request = Request {
        customer: customer_key,
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
        fee_bps,
        nonce,
        bump: ctx.bumps.request,
        escrow_bump: ctx.bumps.escrow,
        provision_stake: 0,
        provision_epoch: 0,
    };
    create_pda_holding(
        &accounts.customer,
        &accounts.request.to_account_info(),
        &accounts.system_program,
        &[
            REQUEST_SEED,
            customer_key.as_ref(),
            &id_bytes,
            &[ctx.bumps.request],
        ],
        &request,
    )?;
    create_pda_holding(
        &accounts.customer,
        &accounts.escrow.to_account_info(),
        &accounts.system_program,
        &[ESCROW_SEED, request_key.as_ref(), &[ctx.bumps.escrow]],
        &escrow,
    )?;
    deposit(
        &accounts.customer,
        &accounts.escrow.to_account_info(),
        &accounts.system_program,
        amount,
    )?;
    emit!(RequestCreated {
        request: request_key,
        customer: customer_key,
        request_id: args.request_id,
        spec: args.spec,
        price_per_second: args.price_per_second,
        duration: args.duration,
        deposit: amount,
        deadline,
        fee_bps,
        nonce,
    });
    Ok(())
}
