use anchor_lang::prelude::*;

use crate::{
    constants::CONFIG_SEED, errors::DaggerError, events::ConfigUpdated,
    instructions::admin::initialize::validate_settings, state::Config,
};

/// Every field is optional: `None` keeps the current value.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, Default)]
pub struct UpdateConfigArgs {
    pub admin: Option<Pubkey>,
    pub treasury: Option<Pubkey>,
    pub min_operator_stake: Option<u64>,
    pub unbonding_period: Option<i64>,
    pub provisioning_timeout: Option<i64>,
    pub protocol_fee_bps: Option<u16>,
}

#[derive(Accounts)]
pub struct UpdateConfig<'info> {
    pub admin: Signer<'info>,
    #[account(
        mut,
        seeds = [CONFIG_SEED],
        bump = config.bump,
        has_one = admin @ DaggerError::Unauthorized,
    )]
    pub config: Account<'info, Config>,
}

pub(crate) fn handler(ctx: Context<UpdateConfig>, args: UpdateConfigArgs) -> Result<()> {
    let config = &mut ctx.accounts.config;
    let min_operator_stake = args.min_operator_stake.unwrap_or(config.min_operator_stake);
    let unbonding_period = args.unbonding_period.unwrap_or(config.unbonding_period);
    let provisioning_timeout = args
        .provisioning_timeout
        .unwrap_or(config.provisioning_timeout);
    let protocol_fee_bps = args.protocol_fee_bps.unwrap_or(config.protocol_fee_bps);
    validate_settings(
        min_operator_stake,
        unbonding_period,
        provisioning_timeout,
        protocol_fee_bps,
    )?;

    config.admin = args.admin.unwrap_or(config.admin);
    config.treasury = args.treasury.unwrap_or(config.treasury);
    config.min_operator_stake = min_operator_stake;
    config.unbonding_period = unbonding_period;
    config.provisioning_timeout = provisioning_timeout;
    config.protocol_fee_bps = protocol_fee_bps;

    emit!(ConfigUpdated {
        admin: config.admin,
        treasury: config.treasury,
        min_operator_stake,
        unbonding_period,
        provisioning_timeout,
        protocol_fee_bps,
    });
    Ok(())
}
