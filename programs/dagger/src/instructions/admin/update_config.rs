use anchor_lang::prelude::*;

use crate::{
    constants::CONFIG_SEED,
    errors::DaggerError,
    events::ConfigUpdated,
    instructions::admin::initialize::{check_treasury, Settings},
    state::Config,
};

/// Every field is optional: `None` keeps the current value. The admin key
/// moves with `propose_admin` / `accept_admin`, never here.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, Default)]
pub struct UpdateConfigArgs {
    pub treasury: Option<Pubkey>,
    pub min_operator_stake: Option<u64>,
    pub unbonding_period: Option<i64>,
    pub provisioning_timeout: Option<i64>,
    /// Applies to requests paid after the change; every request keeps the
    /// fee it was created with.
    pub protocol_fee_bps: Option<u16>,
    pub max_stake_share_bps: Option<u16>,
    pub removal_slash_bps: Option<u16>,
    pub equivocation_slash_bps: Option<u16>,
    pub reporter_reward_bps: Option<u16>,
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
    /// CHECK: required when `treasury` changes; checked to be a wallet.
    pub treasury: Option<UncheckedAccount<'info>>,
}

pub(crate) fn handler(ctx: Context<UpdateConfig>, args: UpdateConfigArgs) -> Result<()> {
    let config = &mut ctx.accounts.config;
    let settings = Settings {
        local_cluster: config.local_cluster,
        min_operator_stake: args.min_operator_stake.unwrap_or(config.min_operator_stake),
        unbonding_period: args.unbonding_period.unwrap_or(config.unbonding_period),
        provisioning_timeout: args
            .provisioning_timeout
            .unwrap_or(config.provisioning_timeout),
        protocol_fee_bps: args.protocol_fee_bps.unwrap_or(config.protocol_fee_bps),
        max_stake_share_bps: args
            .max_stake_share_bps
            .unwrap_or(config.max_stake_share_bps),
        removal_slash_bps: args.removal_slash_bps.unwrap_or(config.removal_slash_bps),
        equivocation_slash_bps: args
            .equivocation_slash_bps
            .unwrap_or(config.equivocation_slash_bps),
        reporter_reward_bps: args
            .reporter_reward_bps
            .unwrap_or(config.reporter_reward_bps),
    };
    settings.validate()?;
    if let Some(treasury) = args.treasury {
        let account = ctx
            .accounts
            .treasury
            .as_ref()
            .ok_or(DaggerError::InvalidTreasury)?;
        check_treasury(account, &treasury)?;
        config.treasury = treasury;
    }
    config.min_operator_stake = settings.min_operator_stake;
    config.unbonding_period = settings.unbonding_period;
    config.provisioning_timeout = settings.provisioning_timeout;
    config.protocol_fee_bps = settings.protocol_fee_bps;
    config.max_stake_share_bps = settings.max_stake_share_bps;
    config.removal_slash_bps = settings.removal_slash_bps;
    config.equivocation_slash_bps = settings.equivocation_slash_bps;
    config.reporter_reward_bps = settings.reporter_reward_bps;

    emit!(ConfigUpdated {
        treasury: config.treasury,
        min_operator_stake: settings.min_operator_stake,
        unbonding_period: settings.unbonding_period,
        provisioning_timeout: settings.provisioning_timeout,
        protocol_fee_bps: settings.protocol_fee_bps,
        max_stake_share_bps: settings.max_stake_share_bps,
        removal_slash_bps: settings.removal_slash_bps,
        equivocation_slash_bps: settings.equivocation_slash_bps,
        reporter_reward_bps: settings.reporter_reward_bps,
    });
    Ok(())
}
