use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, NODE_KEY_SEED, OPERATOR_SEED, STAKE_VAULT_SEED},
    errors::DaggerError,
    events::OperatorRegistered,
    lamports::{create_pda_holding, deposit, in_use},
    state::{
        validate_address, Allocation, Capacity, Config, NodeKeyRecord, Operator, OperatorStatus,
        PriceFloor, StakeVault,
    },
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
    /// CHECK: created by the handler (`create_pda` tolerates lamports sent
    /// to the address beforehand); `NodeKeyInUse` if it exists.
    #[account(mut, seeds = [OPERATOR_SEED, node_key.key().as_ref()], bump)]
    pub operator: UncheckedAccount<'info>,
    /// CHECK: created by the handler together with the operator.
    #[account(mut, seeds = [STAKE_VAULT_SEED, operator.key().as_ref()], bump)]
    pub stake_vault: UncheckedAccount<'info>,
    /// CHECK: created by the handler; `NodeKeyRetired` if the key ever
    /// registered before (see `NodeKeyRecord`).
    #[account(mut, seeds = [NODE_KEY_SEED, node_key.key().as_ref()], bump)]
    pub node_key_record: UncheckedAccount<'info>,
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
    require!(
        !in_use(&accounts.operator) && !in_use(&accounts.stake_vault),
        DaggerError::NodeKeyInUse
    );
    require!(
        !in_use(&accounts.node_key_record),
        DaggerError::NodeKeyRetired
    );
    let node_key = accounts.node_key.key();
    let operator_key = accounts.operator.key();
    let now = Clock::get()?.unix_timestamp;
    let nonce = accounts.config.take_nonce()?;
    let vault = StakeVault {
        operator: operator_key,
        bump: ctx.bumps.stake_vault,
    };
    let record = NodeKeyRecord {
        node_key,
        operator_nonce: nonce,
        registered_at: now,
        bump: ctx.bumps.node_key_record,
    };
    let operator = Operator {
        owner: accounts.owner.key(),
        node_key,
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
        allocated: Allocation::default(),
    };
    create_pda_holding(
        &accounts.owner,
        &accounts.operator.to_account_info(),
        &accounts.system_program,
        &[OPERATOR_SEED, node_key.as_ref(), &[ctx.bumps.operator]],
        &operator,
    )?;
    create_pda_holding(
        &accounts.owner,
        &accounts.stake_vault.to_account_info(),
        &accounts.system_program,
        &[
            STAKE_VAULT_SEED,
            operator_key.as_ref(),
            &[ctx.bumps.stake_vault],
        ],
        &vault,
    )?;
    create_pda_holding(
        &accounts.owner,
        &accounts.node_key_record.to_account_info(),
        &accounts.system_program,
        &[
            NODE_KEY_SEED,
            node_key.as_ref(),
            &[ctx.bumps.node_key_record],
        ],
        &record,
    )?;
    deposit(
        &accounts.owner,
        &accounts.stake_vault.to_account_info(),
        &accounts.system_program,
        args.stake,
    )?;
    emit!(OperatorRegistered {
        operator: operator_key,
        owner: accounts.owner.key(),
        node_key,
        stake: args.stake,
        address: args.address,
        capacity: args.capacity,
        price_floor: args.price_floor,
        nonce,
    });
    Ok(())
}
