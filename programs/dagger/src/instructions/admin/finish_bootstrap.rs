use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, GENESIS_SEED},
    errors::DaggerError,
    events::BootstrapFinished,
    state::{Config, Genesis},
};

/// Irreversible: hands roster changes over to quorum attestations and
/// makes the recorded genesis roster final.
#[derive(Accounts)]
pub struct FinishBootstrap<'info> {
    pub admin: Signer<'info>,
    #[account(
        mut,
        seeds = [CONFIG_SEED],
        bump = config.bump,
        has_one = admin @ DaggerError::Unauthorized,
    )]
    pub config: Account<'info, Config>,
    /// CHECK: the genesis record, read after the roster checks (it does
    /// not exist before the first admission: `EmptyRoster` says why).
    #[account(mut, seeds = [GENESIS_SEED], bump)]
    pub genesis: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<FinishBootstrap>) -> Result<()> {
    let config = &mut ctx.accounts.config;
    require!(!config.bootstrapped, DaggerError::AlreadyBootstrapped);
    require!(config.active_operators > 0, DaggerError::EmptyRoster);
    let info = ctx.accounts.genesis.to_account_info();
    require!(info.owner == &crate::ID, DaggerError::GenesisMismatch);
    let mut genesis = {
        let data = info.try_borrow_data()?;
        Genesis::try_deserialize(&mut &data[..])?
    };
    // Admitted operators can neither change their stake nor leave before
    // this point (`GenesisFrozen`), so the record is the roster.
    require!(
        !genesis.finished
            && genesis.members.len() == config.active_operators as usize
            && genesis.members.iter().map(|m| m.stake).sum::<u64>() == config.total_active_stake,
        DaggerError::GenesisMismatch
    );
    config.bootstrapped = true;
    config.network_id = network_id(&genesis)?;
    genesis.finished = true;
    genesis.try_serialize(&mut &mut info.try_borrow_mut_data()?[..])?;
    emit!(BootstrapFinished {
        roster_epoch: config.roster_epoch,
        total_active_stake: config.total_active_stake,
        active_operators: config.active_operators,
    });
    Ok(())
}

/// Domain tag of the network id.
pub const NETWORK_ID_DOMAIN: &[u8] = b"DAGGER/network-id/1";

/// The id that binds every event signature to this network: the program,
/// the bootstrap generation and the final genesis roster. A reopened
/// bootstrap is a new network with a new id, so evidence signed under an
/// old one never counts against the new one.
pub fn network_id(genesis: &Genesis) -> Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(NETWORK_ID_DOMAIN);
    hasher.update(crate::ID.as_ref());
    hasher.update(&genesis.generation.to_le_bytes());
    hasher.update(&(genesis.members.len() as u32).to_le_bytes());
    let mut bytes = Vec::with_capacity(crate::state::GenesisMember::INIT_SPACE);
    for member in &genesis.members {
        bytes.clear();
        member
            .serialize(&mut bytes)
            .map_err(|_| DaggerError::GenesisMismatch)?;
        hasher.update(&bytes);
    }
    Ok(*hasher.finalize().as_bytes())
}
