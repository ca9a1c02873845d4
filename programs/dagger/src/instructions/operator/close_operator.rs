use anchor_lang::prelude::*;

use crate::{
    constants::OPERATOR_SEED,
    errors::DaggerError,
    events::OperatorClosed,
    state::{Operator, OperatorStatus},
};

/// Once its stake is withdrawn, the owner closes the operator account and
/// gets its rent back. The node key stays retired (its `NodeKeyRecord`
/// remains): an operator that comes back registers a new key.
#[derive(Accounts)]
pub struct CloseOperator<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(
        mut,
        close = owner,
        seeds = [OPERATOR_SEED, operator.node_key.as_ref()],
        bump = operator.bump,
        has_one = owner @ DaggerError::NotOwner,
    )]
    pub operator: Account<'info, Operator>,
}

pub(crate) fn handler(ctx: Context<CloseOperator>) -> Result<()> {
    require!(
        ctx.accounts.operator.status == OperatorStatus::Exited,
        DaggerError::OperatorNotExited
    );
    require!(
        ctx.accounts.operator.active_leases == 0,
        DaggerError::LeasesOutstanding
    );
    emit!(OperatorClosed {
        operator: ctx.accounts.operator.key(),
        owner: ctx.accounts.owner.key(),
    });
    Ok(())
}
