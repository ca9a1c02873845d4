use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, OPERATOR_SEED, STAKE_VAULT_SEED},
    errors::DaggerError,
    events::OperatorRegistered,
    lamports::deposit,
    state::{validate_address, Capacity, Config, Operator, OperatorStatus, PriceFloor, StakeVault},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct RegisterOperatorArgs {
    pub address: String,
    pub capacity: Capacity,
    pub stake: u64,
    pub price_floor: PriceFloor,
}

/// The node key signs too: nobody can register a node identity they do not hold.
#[derive(Accounts)]
pub struct RegisterOperator<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    pub node_key: Signer<'info>,
    #[account(mut, seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
    #[account(
        init,
        payer = owner,
        space = 8 + Operator::INIT_SPACE,
        seeds = [OPERATOR_SEED, node_key.key().as_ref()],
        bump,
    )]
    pub operator: Account<'info, Operator>,
    #[account(
        init,
        payer = owner,
        space = 8 + StakeVault::INIT_SPACE,
        seeds = [STAKE_VAULT_SEED, operator.key().as_ref()],
        bump,
    )]
    pub stake_vault: Account<'info, StakeVault>,
    pub system_program: Program<'info, System>,
}

pub(crate) fn handler(ctx: Context<RegisterOperator>, args: RegisterOperatorArgs) -> Result<()> {
    validate_address(&args.address)?;
    args.capacity.validate()?;
    let accounts = &mut *ctx.accounts;
    require!(
        args.stake >= accounts.config.min_operator_stake,
        DaggerError::InsufficientStake
    );
    deposit(
        &accounts.owner,
        &accounts.stake_vault.to_account_info(),
        &accounts.system_program,
        args.stake,
    )?;

    let now = Clock::get()?.unix_timestamp;
    let nonce = accounts.config.take_nonce()?;
    accounts.stake_vault.set_inner(StakeVault {
        operator: accounts.operator.key(),
        bump: ctx.bumps.stake_vault,
    });
    accounts.operator.set_inner(Operator {
        owner: accounts.owner.key(),
        node_key: accounts.node_key.key(),
        address: args.address.clone(),
        capacity: args.capacity,
        stake: args.stake,
        status: OperatorStatus::Pending,
        registered_at: now,
        withdrawable_at: 0,
        removals: 0,
        slashed: 0,
        equivocation: [0; 32],
        votes_cast: 0,
        last_vote_at: 0,
        earnings: 0,
        price_floor: args.price_floor,
        active_leases: 0,
        nonce,
        bump: ctx.bumps.operator,
        vault_bump: ctx.bumps.stake_vault,
    });
    emit!(OperatorRegistered {
        operator: accounts.operator.key(),
        owner: accounts.owner.key(),
        node_key: accounts.node_key.key(),
        stake: args.stake,
        address: args.address,
        capacity: args.capacity,
        price_floor: args.price_floor,
        nonce,
    });
    Ok(())
}
