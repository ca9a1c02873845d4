use anchor_lang::{prelude::*, solana_program::bpf_loader_upgradeable};

use crate::{
    constants::{CONFIG_SEED, MAX_PROTOCOL_FEE_BPS},
    errors::DaggerError,
    events::ConfigInitialized,
    state::Config,
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct InitializeArgs {
    pub treasury: Pubkey,
    pub min_operator_stake: u64,
    pub unbonding_period: i64,
    pub provisioning_timeout: i64,
    pub protocol_fee_bps: u16,
}

impl InitializeArgs {
    pub fn validate(&self) -> Result<()> {
        validate_settings(
            self.min_operator_stake,
            self.unbonding_period,
            self.provisioning_timeout,
            self.protocol_fee_bps,
        )
    }
}

pub fn validate_settings(
    min_operator_stake: u64,
    unbonding_period: i64,
    provisioning_timeout: i64,
    protocol_fee_bps: u16,
) -> Result<()> {
    require!(min_operator_stake > 0, DaggerError::ZeroMinimumStake);
    require!(
        unbonding_period > 0 && provisioning_timeout > 0,
        DaggerError::ZeroDuration
    );
    require!(
        protocol_fee_bps <= MAX_PROTOCOL_FEE_BPS,
        DaggerError::FeeTooHigh
    );
    Ok(())
}

#[derive(Accounts)]
pub struct Initialize<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,
    #[account(
        init,
        payer = admin,
        space = 8 + Config::INIT_SPACE,
        seeds = [CONFIG_SEED],
        bump,
    )]
    pub config: Account<'info, Config>,
    /// CHECK: only its owner is read, to know whether it is upgradeable.
    #[account(address = crate::ID)]
    pub program: UncheckedAccount<'info>,
    /// Required when the program is deployed upgradeable: its upgrade
    /// authority is the only one who may initialize.
    pub program_data: Option<Account<'info, ProgramData>>,
    pub system_program: Program<'info, System>,
}

/// Who may initialize: on an upgradeable deployment only the upgrade
/// authority, so nobody can front-run the deployer. A builtin or immutable
/// deployment has no such authority and takes the first caller.
pub fn check_initializer(
    program_owner: &Pubkey,
    program_data: Option<(&Pubkey, &ProgramData)>,
    admin: &Pubkey,
) -> Result<()> {
    if *program_owner != bpf_loader_upgradeable::ID {
        return Ok(());
    }
    let (address, data) = program_data.ok_or(DaggerError::InvalidProgramData)?;
    require_keys_eq!(
        *address,
        bpf_loader_upgradeable::get_program_data_address(&crate::ID),
        DaggerError::InvalidProgramData
    );
    require!(
        data.upgrade_authority_address == Some(*admin),
        DaggerError::NotUpgradeAuthority
    );
    Ok(())
}

pub(crate) fn handler(ctx: Context<Initialize>, args: InitializeArgs) -> Result<()> {
    args.validate()?;
    let accounts = &mut *ctx.accounts;
    let program_data = accounts.program_data.as_ref().map(|pd| (pd.key(), &**pd));
    check_initializer(
        accounts.program.owner,
        program_data.as_ref().map(|(key, data)| (key, *data)),
        accounts.admin.key,
    )?;

    accounts.config.set_inner(Config {
        admin: accounts.admin.key(),
        treasury: args.treasury,
        min_operator_stake: args.min_operator_stake,
        unbonding_period: args.unbonding_period,
        provisioning_timeout: args.provisioning_timeout,
        protocol_fee_bps: args.protocol_fee_bps,
        roster_epoch: 0,
        total_active_stake: 0,
        active_operators: 0,
        bootstrapped: false,
        bump: ctx.bumps.config,
    });
    emit!(ConfigInitialized {
        admin: accounts.admin.key(),
        treasury: args.treasury,
        min_operator_stake: args.min_operator_stake,
        unbonding_period: args.unbonding_period,
        provisioning_timeout: args.provisioning_timeout,
        protocol_fee_bps: args.protocol_fee_bps,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program_data(authority: Option<Pubkey>) -> ProgramData {
        ProgramData {
            slot: 1,
            upgrade_authority_address: authority,
        }
    }

    #[test]
    fn builtin_or_immutable_deployments_take_the_first_caller() {
        let admin = Pubkey::new_unique();
        let native_loader = Pubkey::new_unique();
        assert!(check_initializer(&native_loader, None, &admin).is_ok());
    }

    #[test]
    fn upgradeable_deployment_requires_its_upgrade_authority() {
        let admin = Pubkey::new_unique();
        let address = bpf_loader_upgradeable::get_program_data_address(&crate::ID);
        let owner = bpf_loader_upgradeable::ID;

        assert!(
            check_initializer(&owner, Some((&address, &program_data(Some(admin)))), &admin).is_ok()
        );
        let stranger = Pubkey::new_unique();
        assert_eq!(
            check_initializer(
                &owner,
                Some((&address, &program_data(Some(admin)))),
                &stranger
            )
            .unwrap_err(),
            DaggerError::NotUpgradeAuthority.into()
        );
        assert_eq!(
            check_initializer(&owner, Some((&address, &program_data(None))), &admin).unwrap_err(),
            DaggerError::NotUpgradeAuthority.into()
        );
        assert_eq!(
            check_initializer(&owner, None, &admin).unwrap_err(),
            DaggerError::InvalidProgramData.into()
        );
        let wrong = Pubkey::new_unique();
        assert_eq!(
            check_initializer(&owner, Some((&wrong, &program_data(Some(admin)))), &admin)
                .unwrap_err(),
            DaggerError::InvalidProgramData.into()
        );
    }
}
