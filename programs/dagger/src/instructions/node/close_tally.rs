use anchor_lang::prelude::*;

use crate::{
    constants::{ATTESTATION_SEED, CONFIG_SEED},
    errors::DaggerError,
    events::TallyClosed,
    state::{Attestation, Config, Operator, OperatorStatus, Request, RequestStatus, Subject},
};

/// Permissionless clean-up: anyone may close a tally whose subject can no
/// longer be decided by it (settled, gone, replaced by a new instance,
/// expired) or whose ballots belong to an older roster epoch. Its rent goes
/// back to the node key that paid it, so a customer who cancels right after
/// the first vote, or an operator that unstakes during a tally, costs the
/// voters nothing but a transaction fee.
#[derive(Accounts)]
pub struct CloseTally<'info> {
    #[account(seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
    #[account(
        mut,
        close = rent_payer,
        seeds = [
            ATTESTATION_SEED,
            attestation.subject.kind_seed(),
            attestation.subject.key().as_ref(),
            &attestation.subject.nonce().to_le_bytes(),
        ],
        bump = attestation.bump,
    )]
    pub attestation: Account<'info, Attestation>,
    /// CHECK: only credited; must be the tally's recorded rent payer.
    #[account(mut, address = attestation.rent_payer @ DaggerError::WrongAccount)]
    pub rent_payer: UncheckedAccount<'info>,
    /// CHECK: the account the tally is about, read to see whether it is
    /// still pending; any owner or state is accepted (gone is a state).
    #[account(address = *attestation.subject.key() @ DaggerError::SubjectMismatch)]
    pub subject: UncheckedAccount<'info>,
}

/// Deserializes `T` from an account this program owns, if it holds one.
fn read<T: AccountDeserialize>(account: &AccountInfo) -> Option<T> {
    if *account.owner != crate::ID {
        return None;
    }
    let data = account.try_borrow_data().ok()?;
    T::try_deserialize(&mut &data[..]).ok()
}

/// Whether the tally's subject instance can still be decided by it.
fn still_pending(subject: &Subject, account: &AccountInfo, now: i64) -> bool {
    match *subject {
        Subject::Provision { nonce, .. } => read::<Request>(account).is_some_and(|r| {
            r.nonce == nonce && r.status == RequestStatus::Open && now <= r.deadline
        }),
        Subject::Terminate { nonce, .. } => read::<Request>(account).is_some_and(|r| {
            r.nonce == nonce && r.status == RequestStatus::Active && !r.is_over(now)
        }),
        Subject::Admit { nonce, .. } => read::<Operator>(account)
            .is_some_and(|o| o.nonce == nonce && o.status == OperatorStatus::Pending),
        Subject::Remove { nonce, .. } => read::<Operator>(account)
            .is_some_and(|o| o.nonce == nonce && o.status == OperatorStatus::Active),
    }
}

pub(crate) fn handler(ctx: Context<CloseTally>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let tally = &ctx.accounts.attestation;
    let stale = tally.roster_epoch < ctx.accounts.config.roster_epoch;
    require!(
        stale || !still_pending(&tally.subject, &ctx.accounts.subject, now),
        DaggerError::TallyStillOpen
    );
    emit!(TallyClosed {
        subject: tally.subject,
        rent_payer: tally.rent_payer,
        ballots: tally.ballots.len() as u32,
    });
    Ok(())
}
