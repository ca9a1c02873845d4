use anchor_lang::{prelude::*, solana_program::bpf_loader_upgradeable};

use crate::{
    constants::{
        CONFIG_SEED, FEE_VAULT_SEED, LOCAL_MIN_UNBONDING_PERIOD, MAX_EQUIVOCATION_SLASH_BPS,
        MAX_MIN_OPERATOR_STAKE, MAX_PROTOCOL_FEE_BPS, MAX_PROVISIONING_TIMEOUT,
        MAX_REMOVAL_SLASH_BPS, MAX_REPORTER_REWARD_BPS, MAX_STAKE_SHARE_BPS, MAX_UNBONDING_PERIOD,
        MIN_EQUIVOCATION_SLASH_BPS, MIN_PROVISIONING_TIMEOUT, MIN_STAKE_SHARE_BPS,
        MIN_UNBONDING_PERIOD,
    },
    errors::DaggerError,
    events::ConfigInitialized,
    lamports::{create_pda_holding, in_use},
    state::{Config, FeeVault},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct InitializeArgs {
    pub treasury: Pubkey,
    pub min_operator_stake: u64,
    pub unbonding_period: i64,
    pub provisioning_timeout: i64,
    pub protocol_fee_bps: u16,
    pub max_stake_share_bps: u16,
    pub removal_slash_bps: u16,
    pub equivocation_slash_bps: u16,
    pub reporter_reward_bps: u16,
}

impl InitializeArgs {
    /// The settings, checked against their bounds (the treasury is checked
    /// on-chain, where its account is visible).
    pub fn validate(&self, local_cluster: bool) -> Result<()> {
        self.settings(local_cluster).validate()
    }

    pub fn settings(&self, local_cluster: bool) -> Settings {
        Settings {
            local_cluster,
            min_operator_stake: self.min_operator_stake,
            unbonding_period: self.unbonding_period,
            provisioning_timeout: self.provisioning_timeout,
            protocol_fee_bps: self.protocol_fee_bps,
            max_stake_share_bps: self.max_stake_share_bps,
            removal_slash_bps: self.removal_slash_bps,
            equivocation_slash_bps: self.equivocation_slash_bps,
            reporter_reward_bps: self.reporter_reward_bps,
        }
    }
}

/// The values the admin sets, checked together against their bounds.
pub struct Settings {
    /// See `Config::local_cluster`.
    pub local_cluster: bool,
    pub min_operator_stake: u64,
    pub unbonding_period: i64,
    pub provisioning_timeout: i64,
    pub protocol_fee_bps: u16,
    pub max_stake_share_bps: u16,
    pub removal_slash_bps: u16,
    pub equivocation_slash_bps: u16,
    pub reporter_reward_bps: u16,
}

impl Settings {
    pub fn min_unbonding_period(&self) -> i64 {
        if self.local_cluster {
            LOCAL_MIN_UNBONDING_PERIOD
        } else {
            MIN_UNBONDING_PERIOD
        }
    }

    pub fn validate(&self) -> Result<()> {
        require!(self.min_operator_stake > 0, DaggerError::ZeroMinimumStake);
        require!(
            self.unbonding_period > 0 && self.provisioning_timeout > 0,
            DaggerError::ZeroDuration
        );
        require!(
            self.protocol_fee_bps <= MAX_PROTOCOL_FEE_BPS,
            DaggerError::FeeTooHigh
        );
        require!(
            self.min_operator_stake <= MAX_MIN_OPERATOR_STAKE
                && (self.min_unbonding_period()..=MAX_UNBONDING_PERIOD)
                    .contains(&self.unbonding_period)
                && (MIN_PROVISIONING_TIMEOUT..=MAX_PROVISIONING_TIMEOUT)
                    .contains(&self.provisioning_timeout)
                && (MIN_STAKE_SHARE_BPS..=MAX_STAKE_SHARE_BPS).contains(&self.max_stake_share_bps)
                && self.removal_slash_bps <= MAX_REMOVAL_SLASH_BPS
                && (MIN_EQUIVOCATION_SLASH_BPS..=MAX_EQUIVOCATION_SLASH_BPS)
                    .contains(&self.equivocation_slash_bps)
                && self.reporter_reward_bps <= MAX_REPORTER_REWARD_BPS,
            DaggerError::ValueOutOfBounds
        );
        Ok(())
    }
}

/// The treasury receives the fees `withdraw_fees` sends: it must be a
/// wallet (owned by the System Program, not executable), so a sysvar or a
/// program can never be configured there.
pub fn check_treasury(treasury: &AccountInfo, expected: &Pubkey) -> Result<()> {
    require_keys_eq!(treasury.key(), *expected, DaggerError::WrongTreasury);
    require!(
        *treasury.owner == anchor_lang::system_program::ID && !treasury.executable,
        DaggerError::InvalidTreasury
    );
    Ok(())
}

#[derive(Accounts)]
#[instruction(args: InitializeArgs)]
pub struct Initialize<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,
    /// CHECK: created by the handler (`create_pda`), which tolerates
    /// lamports sent to the address beforehand; `AlreadyInitialized` if it
    /// holds the config already.
    #[account(mut, seeds = [CONFIG_SEED], bump)]
    pub config: UncheckedAccount<'info>,
    /// CHECK: created by the handler together with the config.
    #[account(mut, seeds = [FEE_VAULT_SEED], bump)]
    pub fee_vault: UncheckedAccount<'info>,
    /// CHECK: checked to be a wallet by `check_treasury`.
    pub treasury: UncheckedAccount<'info>,
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

/// See `Config::local_cluster`.
pub fn is_local_cluster(program_owner: &Pubkey) -> bool {
    *program_owner == solana_sdk_ids::native_loader::ID
}

pub(crate) fn handler(ctx: Context<Initialize>, args: InitializeArgs) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    let local_cluster = is_local_cluster(accounts.program.owner);
    args.validate(local_cluster)?;
    check_treasury(&accounts.treasury, &args.treasury)?;
    // The two accounts created below are not wallets yet while they are
    // checked: name them.
    require!(
        args.treasury != accounts.config.key() && args.treasury != accounts.fee_vault.key(),
        DaggerError::InvalidTreasury
    );
    let program_data = accounts.program_data.as_ref().map(|pd| (pd.key(), &**pd));
    check_initializer(
        accounts.program.owner,
        program_data.as_ref().map(|(key, data)| (key, *data)),
        accounts.admin.key,
    )?;

    require!(
        !in_use(&accounts.config) && !in_use(&accounts.fee_vault),
        DaggerError::AlreadyInitialized
    );
    let fee_vault = FeeVault {
        bump: ctx.bumps.fee_vault,
    };
    let config = Config {
        admin: accounts.admin.key(),
        pending_admin: Pubkey::default(),
        treasury: args.treasury,
        min_operator_stake: args.min_operator_stake,
        unbonding_period: args.unbonding_period,
        provisioning_timeout: args.provisioning_timeout,
        protocol_fee_bps: args.protocol_fee_bps,
        max_stake_share_bps: args.max_stake_share_bps,
        removal_slash_bps: args.removal_slash_bps,
        equivocation_slash_bps: args.equivocation_slash_bps,
        reporter_reward_bps: args.reporter_reward_bps,
        network_id: [0; 32],
        roster_epoch: 0,
        total_active_stake: 0,
        active_operators: 0,
        bootstrapped: false,
        zero_stake_since: 0,
        next_nonce: 0,
        local_cluster,
        bump: ctx.bumps.config,
        fee_vault_bump: ctx.bumps.fee_vault,
    };
    create_pda_holding(
        &accounts.admin,
        &accounts.fee_vault.to_account_info(),
        &accounts.system_program,
        &[FEE_VAULT_SEED, &[ctx.bumps.fee_vault]],
        &fee_vault,
    )?;
    create_pda_holding(
        &accounts.admin,
        &accounts.config.to_account_info(),
        &accounts.system_program,
        &[CONFIG_SEED, &[ctx.bumps.config]],
        &config,
    )?;
    emit!(ConfigInitialized {
        admin: accounts.admin.key(),
        treasury: args.treasury,
        min_operator_stake: args.min_operator_stake,
        unbonding_period: args.unbonding_period,
        provisioning_timeout: args.provisioning_timeout,
        protocol_fee_bps: args.protocol_fee_bps,
        max_stake_share_bps: args.max_stake_share_bps,
        removal_slash_bps: args.removal_slash_bps,
        equivocation_slash_bps: args.equivocation_slash_bps,
        reporter_reward_bps: args.reporter_reward_bps,
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

    fn settings(local_cluster: bool, unbonding_period: i64, slash_bps: u16) -> Settings {
        Settings {
            local_cluster,
            min_operator_stake: 1,
            unbonding_period,
            provisioning_timeout: MIN_PROVISIONING_TIMEOUT,
            protocol_fee_bps: 0,
            max_stake_share_bps: MAX_STAKE_SHARE_BPS,
            removal_slash_bps: 0,
            equivocation_slash_bps: slash_bps,
            reporter_reward_bps: 0,
        }
    }

    #[test]
    fn a_public_deployment_keeps_the_deterrent() {
        let bounds = DaggerError::ValueOutOfBounds.into();
        // Public: two days at least, a tenth of the stake at least.
        assert_eq!(settings(false, 10, 5_000).validate().unwrap_err(), bounds);
        assert_eq!(
            settings(false, MIN_UNBONDING_PERIOD - 1, 5_000)
                .validate()
                .unwrap_err(),
            bounds
        );
        assert!(settings(false, MIN_UNBONDING_PERIOD, 5_000)
            .validate()
            .is_ok());
        for local in [false, true] {
            let period = if local {
                LOCAL_MIN_UNBONDING_PERIOD
            } else {
                MIN_UNBONDING_PERIOD
            };
            assert_eq!(settings(local, period, 0).validate().unwrap_err(), bounds);
            assert_eq!(
                settings(local, period, MIN_EQUIVOCATION_SLASH_BPS - 1)
                    .validate()
                    .unwrap_err(),
                bounds
            );
            assert!(settings(local, period, MIN_EQUIVOCATION_SLASH_BPS)
                .validate()
                .is_ok());
        }
        // Local: seconds.
        assert!(settings(true, LOCAL_MIN_UNBONDING_PERIOD, 5_000)
            .validate()
            .is_ok());
        assert!(is_local_cluster(&solana_sdk_ids::native_loader::ID));
        assert!(!is_local_cluster(&bpf_loader_upgradeable::ID));
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
