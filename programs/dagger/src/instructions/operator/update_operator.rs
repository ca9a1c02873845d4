use anchor_lang::prelude::*;

use crate::{
    constants::OPERATOR_SEED,
    errors::DaggerError,
    events::OperatorUpdated,
    state::{validate_address, Capacity, Operator, OperatorStatus, PriceFloor},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, Default)]
pub struct UpdateOperatorArgs {
    pub address: Option<String>,
    pub capacity: Option<Capacity>,
    pub price_floor: Option<PriceFloor>,
}

#[derive(Accounts)]
pub struct UpdateOperator<'info> {
    pub owner: Signer<'info>,
    #[account(
        mut,
        seeds = [OPERATOR_SEED, operator.node_key.as_ref()],
        bump = operator.bump,
        has_one = owner @ DaggerError::NotOwner,
    )]
    pub operator: Account<'info, Operator>,
}

pub(crate) fn handler(ctx: Context<UpdateOperator>, args: UpdateOperatorArgs) -> Result<()> {
    let operator = &mut ctx.accounts.operator;
    require!(
        operator.status != OperatorStatus::Exited,
        DaggerError::InvalidOperatorStatus
    );
    if let Some(address) = args.address {
        validate_address(&address)?;
        operator.address = address;
    }
    if let Some(capacity) = args.capacity {
        capacity.validate()?;
        operator.capacity = capacity;
    }
    if let Some(price_floor) = args.price_floor {
        operator.price_floor = price_floor;
    }
    emit!(OperatorUpdated {
        operator: operator.key(),
        address: operator.address.clone(),
        capacity: operator.capacity,
        price_floor: operator.price_floor,
    });
    Ok(())
}
