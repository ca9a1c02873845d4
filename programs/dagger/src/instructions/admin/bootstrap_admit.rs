use anchor_lang::prelude::*;

use crate::{
    constants::{CONFIG_SEED, GENESIS_SEED, OPERATOR_SEED},
    errors::DaggerError,
    events::OperatorAdmitted,
    lamports::{create_pda, deposit},
    state::{Config, Genesis, GenesisMember, Operator, OperatorStatus},
};

/// The admin seeds the genesis roster; once bootstrapped this is closed for
/// good (until every operator has left, see `reopen_bootstrap`). Each
/// admission is recorded in the `Genesis` account, which grows by one
/// member's worth of rent, paid by the admin.
#[derive(Accounts)]
pub struct BootstrapAdmit<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,
    #[account(
        mut,
        seeds = [CONFIG_SEED],
        bump = config.bump,
        has_one = admin @ DaggerError::Unauthorized,
    )]
    pub config: Account<'info, Config>,
    #[account(
        mut,
        seeds = [OPERATOR_SEED, operator.node_key.as_ref()],
        bump = operator.bump,
    )]
    pub operator: Account<'info, Operator>,
    /// CHECK: the genesis record; created at the first admission and grown
    /// by one member at each (see `record`), so it is handled by hand.
    #[account(mut, seeds = [GENESIS_SEED], bump)]
    pub genesis: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

pub(crate) fn handler(ctx: Context<BootstrapAdmit>) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    let config = &mut accounts.config;
    let operator = &mut accounts.operator;
    require!(!config.bootstrapped, DaggerError::AlreadyBootstrapped);
    require!(
        operator.status == OperatorStatus::Pending,
        DaggerError::InvalidOperatorStatus
    );
    require!(
        operator.stake >= config.min_operator_stake,
        DaggerError::InsufficientStake
    );
    config.activate(operator.stake)?;
    operator.status = OperatorStatus::Active;
    let member = GenesisMember::of(operator);
    emit!(OperatorAdmitted {
        operator: operator.key(),
        stake: operator.stake,
        by_quorum: false,
        roster_epoch: config.roster_epoch,
        total_active_stake: config.total_active_stake,
    });
    record(accounts, member, ctx.bumps.genesis)
}

/// Appends `member` to the genesis record, creating it (or starting a new
/// generation after a reopened bootstrap) as needed.
fn record(accounts: &BootstrapAdmit, member: GenesisMember, bump: u8) -> Result<()> {
    let info = accounts.genesis.to_account_info();
    let mut genesis = if info.owner == &crate::ID && info.data_len() > 0 {
        let data = info.try_borrow_data()?;
        Genesis::try_deserialize(&mut &data[..])?
    } else {
        create_pda(
            &accounts.admin,
            &info,
            &accounts.system_program,
            Genesis::space(0),
            &[GENESIS_SEED, &[bump]],
        )?;
        Genesis {
            bump,
            generation: 0,
            finished: false,
            members: Vec::new(),
        }
    };
    if genesis.finished {
        // A reopened bootstrap: a new roster, a new network.
        genesis.generation = genesis.generation.saturating_add(1);
        genesis.finished = false;
        genesis.members.clear();
    }
    genesis.members.push(member);
    // `Config::activate` bounds the roster, so this stays within
    // `Genesis::MAX_SPACE`.
    let needed = Genesis::space(genesis.members.len());
    if info.data_len() < needed {
        let rent = Rent::get()?.minimum_balance(needed);
        let top_up = rent.saturating_sub(info.lamports());
        if top_up > 0 {
            deposit(&accounts.admin, &info, &accounts.system_program, top_up)?;
        }
        info.resize(needed)?;
    }
    let mut data = info.try_borrow_mut_data()?;
    genesis.try_serialize(&mut &mut data[..])
}
