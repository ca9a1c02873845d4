//! Deploy check and idempotent initialisation of DAGGER on a cluster.
//!
//! [`initialize`] checks that the program is deployed (an executable account
//! at the program id), creates the `Config` with the given settings when it
//! is missing, and otherwise compares the settings that were given with the
//! ones on chain. Differences are only reported, unless the caller asks for
//! them to be applied (`update_config`, signed by the config's admin). Run it
//! as often as you like: a cluster that already matches is left alone.
//!
//! The `dagger-migrate` binary is a thin command line over it; other tools
//! (a local `devnet` command) call it in-process with their own client.

use anchor_lang::{
    prelude::{ProgramData, Pubkey},
    solana_program::bpf_loader_upgradeable,
    AccountDeserialize,
};
use dagger_client::{
    instructions as ix, pda, ClientError, Config, DaggerClient, InitializeArgs, UpdateConfigArgs,
    PROGRAM_ID,
};
use serde_json::{json, Value};
use solana_sdk::{native_loader, signature::Signature};

/// Values used for settings that are not given when the config is created.
pub mod defaults {
    /// 10 SOL.
    pub const MIN_OPERATOR_STAKE: u64 = 10_000_000_000;
    /// Seven days.
    pub const UNBONDING_PERIOD: i64 = 7 * 24 * 3600;
    /// Ten minutes for the operators to provision a paid request.
    pub const PROVISIONING_TIMEOUT: i64 = 600;
    /// 2.5 % of every payout.
    pub const PROTOCOL_FEE_BPS: u16 = 250;
    /// No operator may grow past 30 % of the active stake.
    pub const MAX_STAKE_SHARE_BPS: u16 = 3_000;
    /// A quorum removal costs 5 % of the stake.
    pub const REMOVAL_SLASH_BPS: u16 = 500;
    /// A proven equivocation costs half of the stake.
    pub const EQUIVOCATION_SLASH_BPS: u16 = 5_000;
    /// A tenth of an equivocation slash goes to whoever reported it.
    pub const REPORTER_REWARD_BPS: u16 = 1_000;
}

/// The settings asked for. `None` means "not given": a default when the
/// config is created, and left out of the comparison with an existing one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Default when creating: the admin's own wallet.
    pub treasury: Option<Pubkey>,
    pub min_operator_stake: Option<u64>,
    pub unbonding_period: Option<i64>,
    pub provisioning_timeout: Option<i64>,
    pub protocol_fee_bps: Option<u16>,
    pub max_stake_share_bps: Option<u16>,
    pub removal_slash_bps: Option<u16>,
    pub equivocation_slash_bps: Option<u16>,
    pub reporter_reward_bps: Option<u16>,
}

impl Settings {
    /// The initialisation arguments, and the names of the settings that took
    /// their default.
    fn resolve(&self, admin: Pubkey) -> (InitializeArgs, Vec<&'static str>) {
        let mut defaulted = Vec::new();
        let treasury = self.treasury.unwrap_or_else(|| {
            defaulted.push("treasury");
            admin
        });
        let min_operator_stake = self.min_operator_stake.unwrap_or_else(|| {
            defaulted.push("min_operator_stake");
            defaults::MIN_OPERATOR_STAKE
        });
        let unbonding_period = self.unbonding_period.unwrap_or_else(|| {
            defaulted.push("unbonding_period");
            defaults::UNBONDING_PERIOD
        });
        let provisioning_timeout = self.provisioning_timeout.unwrap_or_else(|| {
            defaulted.push("provisioning_timeout");
            defaults::PROVISIONING_TIMEOUT
        });
        let protocol_fee_bps = self.protocol_fee_bps.unwrap_or_else(|| {
            defaulted.push("protocol_fee_bps");
            defaults::PROTOCOL_FEE_BPS
        });
        let max_stake_share_bps = self.max_stake_share_bps.unwrap_or_else(|| {
            defaulted.push("max_stake_share_bps");
            defaults::MAX_STAKE_SHARE_BPS
        });
        let removal_slash_bps = self.removal_slash_bps.unwrap_or_else(|| {
            defaulted.push("removal_slash_bps");
            defaults::REMOVAL_SLASH_BPS
        });
        let equivocation_slash_bps = self.equivocation_slash_bps.unwrap_or_else(|| {
            defaulted.push("equivocation_slash_bps");
            defaults::EQUIVOCATION_SLASH_BPS
        });
        let reporter_reward_bps = self.reporter_reward_bps.unwrap_or_else(|| {
            defaulted.push("reporter_reward_bps");
            defaults::REPORTER_REWARD_BPS
        });
        let args = InitializeArgs {
            treasury,
            min_operator_stake,
            unbonding_period,
            provisioning_timeout,
            protocol_fee_bps,
            max_stake_share_bps,
            removal_slash_bps,
            equivocation_slash_bps,
            reporter_reward_bps,
        };
        (args, defaulted)
    }

    /// Every given setting that differs from `config`.
    pub fn differences(&self, config: &Config) -> Vec<Difference> {
        let mut differences = Vec::new();
        let mut compare = |field: &'static str, current: String, wanted: Option<String>| {
            if let Some(wanted) = wanted {
                if wanted != current {
                    differences.push(Difference {
                        field,
                        current,
                        wanted,
                    });
                }
            }
        };
        compare(
            "treasury",
            config.treasury.to_string(),
            self.treasury.map(|t| t.to_string()),
        );
        compare(
            "min_operator_stake",
            config.min_operator_stake.to_string(),
            self.min_operator_stake.map(|v| v.to_string()),
        );
        compare(
            "unbonding_period",
            config.unbonding_period.to_string(),
            self.unbonding_period.map(|v| v.to_string()),
        );
        compare(
            "provisioning_timeout",
            config.provisioning_timeout.to_string(),
            self.provisioning_timeout.map(|v| v.to_string()),
        );
        compare(
            "protocol_fee_bps",
            config.protocol_fee_bps.to_string(),
            self.protocol_fee_bps.map(|v| v.to_string()),
        );
        compare(
            "max_stake_share_bps",
            config.max_stake_share_bps.to_string(),
            self.max_stake_share_bps.map(|v| v.to_string()),
        );
        compare(
            "removal_slash_bps",
            config.removal_slash_bps.to_string(),
            self.removal_slash_bps.map(|v| v.to_string()),
        );
        compare(
            "equivocation_slash_bps",
            config.equivocation_slash_bps.to_string(),
            self.equivocation_slash_bps.map(|v| v.to_string()),
        );
        compare(
            "reporter_reward_bps",
            config.reporter_reward_bps.to_string(),
            self.reporter_reward_bps.map(|v| v.to_string()),
        );
        differences
    }

    /// `update_config` arguments carrying only the differing settings.
    fn update_args(&self, config: &Config) -> UpdateConfigArgs {
        UpdateConfigArgs {
            treasury: self.treasury.filter(|v| *v != config.treasury),
            min_operator_stake: self
                .min_operator_stake
                .filter(|v| *v != config.min_operator_stake),
            unbonding_period: self
                .unbonding_period
                .filter(|v| *v != config.unbonding_period),
            provisioning_timeout: self
                .provisioning_timeout
                .filter(|v| *v != config.provisioning_timeout),
            protocol_fee_bps: self
                .protocol_fee_bps
                .filter(|v| *v != config.protocol_fee_bps),
            max_stake_share_bps: self
                .max_stake_share_bps
                .filter(|v| *v != config.max_stake_share_bps),
            removal_slash_bps: self
                .removal_slash_bps
                .filter(|v| *v != config.removal_slash_bps),
            equivocation_slash_bps: self
                .equivocation_slash_bps
                .filter(|v| *v != config.equivocation_slash_bps),
            reporter_reward_bps: self
                .reporter_reward_bps
                .filter(|v| *v != config.reporter_reward_bps),
        }
    }
}

/// One setting whose on-chain value is not the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub field: &'static str,
    pub current: String,
    pub wanted: String,
}

/// How the program is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployment {
    /// Upgradeable (BPF loader v3); only its upgrade authority may initialise.
    Upgradeable { authority: Option<Pubkey> },
    /// A builtin of the cluster (as on the local chain): the first caller
    /// initialises.
    Builtin,
    /// Another loader (immutable deployment): the first caller initialises.
    Other { loader: Pubkey },
}

/// What [`initialize`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The config was missing and is now created.
    Initialized {
        signature: Signature,
        /// Settings that were not given and took their default.
        defaulted: Vec<&'static str>,
    },
    /// The config exists and matches every given setting.
    Unchanged,
    /// The config differs from the given settings; nothing was changed.
    Differs { differences: Vec<Difference> },
    /// The differences were applied with `update_config`.
    Updated {
        signature: Signature,
        differences: Vec<Difference>,
    },
}

/// The outcome of a run: where, what was found, what was done.
#[derive(Debug, Clone)]
pub struct Report {
    pub rpc_url: String,
    pub deployment: Deployment,
    pub action: Action,
    /// The config as it is on chain after the run.
    pub config: Config,
}

impl Report {
    /// One JSON object describing the run.
    pub fn to_json(&self) -> Value {
        let deployment = match &self.deployment {
            Deployment::Upgradeable { authority } => json!({
                "kind": "upgradeable",
                "upgrade_authority": authority.map(|a| a.to_string()),
            }),
            Deployment::Builtin => json!({ "kind": "builtin" }),
            Deployment::Other { loader } => {
                json!({ "kind": "other", "loader": loader.to_string() })
            }
        };
        let differences = |list: &[Difference]| {
            list.iter()
                .map(|d| json!({ "field": d.field, "current": d.current, "wanted": d.wanted }))
                .collect::<Vec<_>>()
        };
        let action = match &self.action {
            Action::Initialized {
                signature,
                defaulted,
            } => json!({
                "action": "initialized",
                "signature": signature.to_string(),
                "defaulted": defaulted,
            }),
            Action::Unchanged => json!({ "action": "unchanged" }),
            Action::Differs { differences: list } => json!({
                "action": "differs",
                "differences": differences(list),
                "hint": "run again with --update to apply",
            }),
            Action::Updated {
                signature,
                differences: list,
            } => json!({
                "action": "updated",
                "signature": signature.to_string(),
                "differences": differences(list),
            }),
        };
        let config = &self.config;
        let mut report = json!({
            "program_id": PROGRAM_ID.to_string(),
            "rpc_url": self.rpc_url,
            "deployment": deployment,
            "config": {
                "address": pda::config().0.to_string(),
                "admin": config.admin.to_string(),
                "treasury": config.treasury.to_string(),
                "min_operator_stake": config.min_operator_stake,
                "unbonding_period": config.unbonding_period,
                "provisioning_timeout": config.provisioning_timeout,
                "protocol_fee_bps": config.protocol_fee_bps,
                "max_stake_share_bps": config.max_stake_share_bps,
                "removal_slash_bps": config.removal_slash_bps,
                "equivocation_slash_bps": config.equivocation_slash_bps,
                "reporter_reward_bps": config.reporter_reward_bps,
                "network_id": config.bootstrapped.then(|| hex::encode(config.network_id)),
                "pending_admin": (config.pending_admin != Pubkey::default())
                    .then(|| config.pending_admin.to_string()),
                "roster_epoch": config.roster_epoch,
                "active_operators": config.active_operators,
                "bootstrapped": config.bootstrapped,
            },
        });
        if let (Value::Object(report), Value::Object(action)) = (&mut report, action) {
            report.extend(action);
        }
        report
    }

    /// What a person reads.
    pub fn to_text(&self) -> String {
        let deployment = match &self.deployment {
            Deployment::Upgradeable {
                authority: Some(authority),
            } => format!("upgradeable, upgrade authority {authority}"),
            Deployment::Upgradeable { authority: None } => "upgradeable, now immutable".into(),
            Deployment::Builtin => "a builtin of this cluster".into(),
            Deployment::Other { loader } => format!("owned by loader {loader}"),
        };
        let config = &self.config;
        let settings = format!(
            "  admin {}\n  treasury {}\n  min_operator_stake {} lamports\n  unbonding_period {} s\n  \
             provisioning_timeout {} s\n  protocol_fee_bps {}\n  max_stake_share_bps {}\n  \
             removal_slash_bps {}\n  equivocation_slash_bps {}\n  reporter_reward_bps {}",
            config.admin,
            config.treasury,
            config.min_operator_stake,
            config.unbonding_period,
            config.provisioning_timeout,
            config.protocol_fee_bps,
            config.max_stake_share_bps,
            config.removal_slash_bps,
            config.equivocation_slash_bps,
            config.reporter_reward_bps
        );
        let listed = |list: &[Difference]| {
            list.iter()
                .map(|d| format!("  {}: {} on chain, {} given", d.field, d.current, d.wanted))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let action = match &self.action {
            Action::Initialized {
                signature,
                defaulted,
            } => {
                let mut text =
                    format!("Initialized the config (signature {signature}):\n{settings}");
                if !defaulted.is_empty() {
                    text.push_str(&format!("\nDefaults used for: {}", defaulted.join(", ")));
                }
                text
            }
            Action::Unchanged => format!(
                "The config is already initialized and matches the given settings; nothing to \
                 do.\n{settings}"
            ),
            Action::Differs { differences } => format!(
                "The config on chain differs from the given settings:\n{}\nNothing was changed; \
                 run again with --update to apply (signed by the admin {}).",
                listed(differences),
                config.admin
            ),
            Action::Updated {
                signature,
                differences,
            } => format!(
                "Updated the config (signature {signature}):\n{}",
                listed(differences)
            ),
        };
        format!(
            "Program {PROGRAM_ID} on {}: deployed ({deployment}).\n{action}",
            self.rpc_url
        )
    }
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the DAGGER program {program_id} is not deployed on {url}.\n\
         Deploy it first, from the repository root on a machine with the Solana tools:\n  \
         anchor build && anchor deploy --provider.cluster {url}\n\
         or\n  \
         solana program deploy target/deploy/dagger.so \
         --program-id target/deploy/dagger-keypair.json -u {url}\n\
         then run dagger-migrate again."
    )]
    ProgramMissing { program_id: Pubkey, url: String },
    #[error(
        "account {program_id} exists on {url} but is not an executable program (owner \
         {owner}); deploy DAGGER there with `anchor deploy` or `solana program deploy`"
    )]
    ProgramNotExecutable {
        program_id: Pubkey,
        url: String,
        owner: Pubkey,
    },
    #[error(
        "only the program's upgrade authority ({authority}) may initialize it; the wallet is \
         {wallet}. Pass the authority's keypair with -k"
    )]
    NotUpgradeAuthority { authority: String, wallet: Pubkey },
    #[error(
        "only the config's admin ({admin}) may update it; the wallet is {wallet}. Pass the \
         admin's keypair with -k"
    )]
    NotAdmin { admin: Pubkey, wallet: Pubkey },
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Checks the deployment, then creates or compares the config. With
/// `apply_updates`, differences are applied through `update_config`; without
/// it they are only reported ([`Action::Differs`]). The client's wallet pays
/// and signs as the admin.
pub async fn initialize(
    client: &DaggerClient,
    settings: &Settings,
    apply_updates: bool,
) -> Result<Report, MigrationError> {
    let rpc_url = client.cluster().url().to_string();
    let deployment = check_deployment(client).await?;
    let reader = client.reader();
    let wallet = client.wallet();
    let action = match reader.fetch::<Config>("config", &pda::config().0).await? {
        None => {
            let (args, defaulted) = settings.resolve(wallet);
            // A builtin is a local cluster's (see `Config::local_cluster`).
            args.validate(matches!(deployment, Deployment::Builtin))
                .map_err(|e| MigrationError::InvalidSettings(e.to_string()))?;
            let program_data = match &deployment {
                Deployment::Upgradeable { authority } => {
                    if *authority != Some(wallet) {
                        return Err(MigrationError::NotUpgradeAuthority {
                            authority: authority.map_or_else(
                                || "none: the program is immutable".into(),
                                |a| a.to_string(),
                            ),
                            wallet,
                        });
                    }
                    Some(bpf_loader_upgradeable::get_program_data_address(
                        &PROGRAM_ID,
                    ))
                }
                Deployment::Builtin | Deployment::Other { .. } => None,
            };
            let signature = client
                .transaction()
                .instruction(ix::initialize(&wallet, program_data, args))
                .send()
                .await?;
            tracing::info!(%signature, "config initialized");
            Action::Initialized {
                signature,
                defaulted,
            }
        }
        Some(config) => {
            let differences = settings.differences(&config);
            if differences.is_empty() {
                Action::Unchanged
            } else if !apply_updates {
                Action::Differs { differences }
            } else {
                if config.admin != wallet {
                    return Err(MigrationError::NotAdmin {
                        admin: config.admin,
                        wallet,
                    });
                }
                let args = settings.update_args(&config);
                let merged = InitializeArgs {
                    treasury: args.treasury.unwrap_or(config.treasury),
                    min_operator_stake: args
                        .min_operator_stake
                        .unwrap_or(config.min_operator_stake),
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
                merged
                    .validate(config.local_cluster)
                    .map_err(|e| MigrationError::InvalidSettings(e.to_string()))?;
                let signature = client
                    .transaction()
                    .instruction(ix::update_config(&wallet, args))
                    .send()
                    .await?;
                tracing::info!(%signature, "config updated");
                Action::Updated {
                    signature,
                    differences,
                }
            }
        }
    };
    let config = reader.config().await?;
    Ok(Report {
        rpc_url,
        deployment,
        action,
        config,
    })
}

/// The program account must exist and be executable.
async fn check_deployment(client: &DaggerClient) -> Result<Deployment, MigrationError> {
    let rpc = client.rpc();
    let url = client.cluster().url().to_string();
    let program = rpc
        .get_account_with_commitment(&PROGRAM_ID, rpc.commitment())
        .await
        .map_err(|e| ClientError::Rpc(Box::new(e)))?
        .value
        .ok_or(MigrationError::ProgramMissing {
            program_id: PROGRAM_ID,
            url: url.clone(),
        })?;
    if !program.executable {
        return Err(MigrationError::ProgramNotExecutable {
            program_id: PROGRAM_ID,
            url,
            owner: program.owner,
        });
    }
    if program.owner == native_loader::ID {
        return Ok(Deployment::Builtin);
    }
    if program.owner != bpf_loader_upgradeable::ID {
        return Ok(Deployment::Other {
            loader: program.owner,
        });
    }
    let address = bpf_loader_upgradeable::get_program_data_address(&PROGRAM_ID);
    let data = rpc
        .get_account_with_commitment(&address, rpc.commitment())
        .await
        .map_err(|e| ClientError::Rpc(Box::new(e)))?
        .value
        .ok_or(MigrationError::ProgramNotExecutable {
            program_id: PROGRAM_ID,
            url,
            owner: program.owner,
        })?;
    Ok(Deployment::Upgradeable {
        authority: upgrade_authority(&data.data)?,
    })
}

/// The upgrade authority recorded in a program data account.
fn upgrade_authority(data: &[u8]) -> Result<Option<Pubkey>, MigrationError> {
    let mut slice = data;
    ProgramData::try_deserialize(&mut slice)
        .map(|program_data| program_data.upgrade_authority_address)
        .map_err(|e| {
            MigrationError::Client(ClientError::Decode {
                account_type: "ProgramData",
                reason: e.to_string(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bincode of `UpgradeableLoaderState::ProgramData`: a u32 variant
    /// index (3), the slot, then an `Option<Pubkey>`.
    fn program_data(authority: Option<Pubkey>) -> Vec<u8> {
        let mut data = 3u32.to_le_bytes().to_vec();
        data.extend(42u64.to_le_bytes());
        match authority {
            Some(key) => {
                data.push(1);
                data.extend(key.to_bytes());
            }
            None => data.push(0),
        }
        data
    }

    #[test]
    fn reads_the_upgrade_authority() {
        let key = Pubkey::new_unique();
        assert_eq!(
            upgrade_authority(&program_data(Some(key))).unwrap(),
            Some(key)
        );
        assert_eq!(upgrade_authority(&program_data(None)).unwrap(), None);
        // A program account (variant 2) is not program data.
        let mut program = 2u32.to_le_bytes().to_vec();
        program.extend([0; 32]);
        assert!(upgrade_authority(&program).is_err());
    }

    fn config() -> Config {
        Config {
            admin: Pubkey::new_unique(),
            pending_admin: Pubkey::default(),
            treasury: Pubkey::new_unique(),
            min_operator_stake: 5,
            unbonding_period: 6,
            provisioning_timeout: 7,
            protocol_fee_bps: 8,
            max_stake_share_bps: 3_000,
            removal_slash_bps: 500,
            equivocation_slash_bps: 5_000,
            reporter_reward_bps: 1_000,
            network_id: [0; 32],
            roster_epoch: 0,
            total_active_stake: 0,
            active_operators: 0,
            bootstrapped: false,
            zero_stake_since: 0,
            next_nonce: 0,
            local_cluster: true,
            bump: 255,
            fee_vault_bump: 254,
        }
    }

    #[test]
    fn only_given_settings_are_compared_and_updated() {
        let config = config();
        assert!(Settings::default().differences(&config).is_empty());
        let same = Settings {
            treasury: Some(config.treasury),
            min_operator_stake: Some(5),
            unbonding_period: Some(6),
            provisioning_timeout: Some(7),
            protocol_fee_bps: Some(8),
            max_stake_share_bps: Some(3_000),
            removal_slash_bps: Some(500),
            equivocation_slash_bps: Some(5_000),
            reporter_reward_bps: Some(1_000),
        };
        assert!(same.differences(&config).is_empty());

        let changed = Settings {
            protocol_fee_bps: Some(9),
            min_operator_stake: Some(5),
            unbonding_period: Some(60),
            ..Settings::default()
        };
        let differences = changed.differences(&config);
        assert_eq!(
            differences,
            vec![
                Difference {
                    field: "unbonding_period",
                    current: "6".into(),
                    wanted: "60".into()
                },
                Difference {
                    field: "protocol_fee_bps",
                    current: "8".into(),
                    wanted: "9".into()
                },
            ]
        );
        let args = changed.update_args(&config);
        assert_eq!(args.protocol_fee_bps, Some(9));
        assert_eq!(args.unbonding_period, Some(60));
        assert_eq!(args.min_operator_stake, None, "unchanged values stay out");
        assert_eq!(args.treasury, None);
    }

    #[test]
    fn missing_settings_take_documented_defaults() {
        let admin = Pubkey::new_unique();
        let (args, defaulted) = Settings {
            protocol_fee_bps: Some(100),
            ..Settings::default()
        }
        .resolve(admin);
        assert_eq!(args.treasury, admin);
        assert_eq!(args.min_operator_stake, defaults::MIN_OPERATOR_STAKE);
        assert_eq!(args.unbonding_period, defaults::UNBONDING_PERIOD);
        assert_eq!(args.provisioning_timeout, defaults::PROVISIONING_TIMEOUT);
        assert_eq!(args.protocol_fee_bps, 100);
        assert_eq!(
            defaulted,
            vec![
                "treasury",
                "min_operator_stake",
                "unbonding_period",
                "provisioning_timeout",
                "max_stake_share_bps",
                "removal_slash_bps",
                "equivocation_slash_bps",
                "reporter_reward_bps"
            ]
        );
    }
}
