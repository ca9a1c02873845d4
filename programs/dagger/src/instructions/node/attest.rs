use anchor_lang::prelude::*;

use crate::{
    constants::{ATTESTATION_SEED, CONFIG_SEED, MAX_ACTIVE_OPERATORS, OPERATOR_SEED},
    errors::DaggerError,
    events::{LeaseActivated, LeaseTerminated, OperatorAdmitted, OperatorRemoved, VoteCast},
    state::{Attestation, Ballot, Config, Operator, OperatorStatus, Request, RequestStatus, Vote},
};

#[derive(Accounts)]
#[instruction(roster_epoch: u64, vote: Vote)]
pub struct Attest<'info> {
    /// The voter's node identity; it also pays for the tally account.
    #[account(mut)]
    pub node_key: Signer<'info>,
    #[account(mut, seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
    #[account(
        mut,
        seeds = [OPERATOR_SEED, node_key.key().as_ref()],
        bump = voter.bump,
    )]
    pub voter: Account<'info, Operator>,
    #[account(
        init_if_needed,
        payer = node_key,
        space = 8 + Attestation::INIT_SPACE,
        seeds = [ATTESTATION_SEED, vote.kind_seed(), vote.subject_key().as_ref()],
        bump,
    )]
    pub attestation: Account<'info, Attestation>,
    /// CHECK: must be the attestation's recorded rent payer (the first voter);
    /// it gets the tally's rent back when the quorum closes it.
    #[account(mut)]
    pub rent_payer: UncheckedAccount<'info>,
    /// The request, for Provision and Terminate votes.
    #[account(mut)]
    pub request: Option<Account<'info, Request>>,
    /// The operator, for Admit and Remove votes. Omitted when an operator
    /// votes on its own removal: the voter account is the subject then.
    #[account(mut)]
    pub subject_operator: Option<Account<'info, Operator>>,
    /// The operator a Provision vote assigns the lease to. Omitted when it is
    /// the voter itself.
    pub assigned_operator: Option<Account<'info, Operator>>,
    pub system_program: Program<'info, System>,
}

/// Records one stake-weighted vote; when strictly more than 2/3 of the epoch's
/// active stake agrees on one outcome, applies it once and closes the tally.
pub(crate) fn handler(ctx: Context<Attest>, roster_epoch: u64, vote: Vote) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    let now = Clock::get()?.unix_timestamp;

    require!(accounts.voter.is_active(), DaggerError::OperatorNotActive);
    let current_epoch = accounts.config.roster_epoch;
    require!(roster_epoch >= current_epoch, DaggerError::StaleEpoch);
    require!(roster_epoch == current_epoch, DaggerError::FutureEpoch);
    check_subject_pending(accounts, &vote, now)?;

    let attestation = &mut accounts.attestation;
    if attestation.rent_payer == Pubkey::default() {
        attestation.subject = vote.subject();
        attestation.roster_epoch = current_epoch;
        attestation.rent_payer = accounts.node_key.key();
        attestation.bump = ctx.bumps.attestation;
    }
    require_keys_eq!(
        accounts.rent_payer.key(),
        attestation.rent_payer,
        DaggerError::WrongAccount
    );
    if attestation.roster_epoch != current_epoch {
        // A roster change invalidates every earlier ballot: restart the tally.
        attestation.roster_epoch = current_epoch;
        attestation.ballots.clear();
    }
    let voter_key = accounts.voter.key();
    require!(
        !attestation.has_voted(&voter_key),
        DaggerError::AlreadyVoted
    );
    require!(
        attestation.ballots.len() < MAX_ACTIVE_OPERATORS as usize,
        DaggerError::RosterFull
    );
    let outcome = vote.outcome();
    attestation.ballots.push(Ballot {
        voter: voter_key,
        stake: accounts.voter.stake,
        outcome,
    });
    accounts.voter.votes_cast = accounts.voter.votes_cast.saturating_add(1);
    accounts.voter.last_vote_at = now;

    let outcome_stake = attestation.stake_for(&outcome);
    emit!(VoteCast {
        subject: vote.subject(),
        voter: voter_key,
        stake: accounts.voter.stake,
        roster_epoch: current_epoch,
        outcome_stake,
        total_active_stake: accounts.config.total_active_stake,
    });

    if accounts.config.is_supermajority(outcome_stake) {
        apply(accounts, &vote, now)?;
        let rent_payer = accounts.rent_payer.to_account_info();
        accounts.attestation.close(rent_payer)?;
    }
    Ok(())
}

fn subject_request<'a, 'info>(
    request: &'a mut Option<Account<'info, Request>>,
    expected: &Pubkey,
) -> Result<&'a mut Account<'info, Request>> {
    let request = request.as_mut().ok_or(DaggerError::MissingSubjectAccount)?;
    require_keys_eq!(request.key(), *expected, DaggerError::SubjectMismatch);
    Ok(request)
}

/// The operator a membership vote is about: the passed subject account, or
/// the voter itself when it votes on its own removal.
fn subject_operator<'a, 'info>(
    accounts: &'a mut Attest<'info>,
    expected: &Pubkey,
) -> Result<&'a mut Account<'info, Operator>> {
    let operator = match accounts.subject_operator.as_mut() {
        Some(operator) => operator,
        None if accounts.voter.key() == *expected => &mut accounts.voter,
        None => return err!(DaggerError::MissingSubjectAccount),
    };
    require_keys_eq!(operator.key(), *expected, DaggerError::SubjectMismatch);
    Ok(operator)
}

/// Rejects votes on subjects that are already decided or can no longer be.
fn check_subject_pending(accounts: &mut Attest, vote: &Vote, now: i64) -> Result<()> {
    match vote {
        Vote::Provision {
            request, operator, ..
        } => {
            let request = subject_request(&mut accounts.request, request)?;
            match request.status {
                RequestStatus::Open => {}
                _ => return err!(DaggerError::AlreadyApplied),
            }
            require!(now <= request.deadline, DaggerError::RequestExpired);
            let assigned = accounts
                .assigned_operator
                .as_ref()
                .unwrap_or(&accounts.voter);
            require_keys_eq!(
                assigned.key(),
                *operator,
                DaggerError::AssignedOperatorMismatch
            );
            require!(assigned.is_active(), DaggerError::OperatorNotActive);
        }
        Vote::Admit { operator, .. } => {
            require!(accounts.config.bootstrapped, DaggerError::NotBootstrapped);
            let min_stake = accounts.config.min_operator_stake;
            let operator = subject_operator(accounts, operator)?;
            match operator.status {
                OperatorStatus::Pending => {}
                OperatorStatus::Active => return err!(DaggerError::AlreadyApplied),
                _ => return err!(DaggerError::InvalidOperatorStatus),
            }
            require!(operator.stake >= min_stake, DaggerError::InsufficientStake);
        }
        Vote::Remove { operator, .. } => {
            let operator = subject_operator(accounts, operator)?;
            require!(operator.is_active(), DaggerError::OperatorNotActive);
        }
        Vote::Terminate { request, .. } => {
            let request = subject_request(&mut accounts.request, request)?;
            match request.status {
                RequestStatus::Active => {}
                RequestStatus::Terminated => return err!(DaggerError::AlreadyApplied),
                RequestStatus::Open => return err!(DaggerError::LeaseNotActive),
            }
            require!(!request.is_over(now), DaggerError::LeaseEnded);
        }
    }
    Ok(())
}

fn apply(accounts: &mut Attest, vote: &Vote, now: i64) -> Result<()> {
    match *vote {
        Vote::Provision {
            request,
            operator,
            endpoint_hash,
        } => {
            let request = subject_request(&mut accounts.request, &request)?;
            request.status = RequestStatus::Active;
            request.assigned_operator = operator;
            request.endpoint_hash = endpoint_hash;
            request.lease_start = now;
            emit!(LeaseActivated {
                request: request.key(),
                operator,
                endpoint_hash,
                started_at: now,
            });
        }
        Vote::Admit { operator, .. } => {
            let target = subject_operator(accounts, &operator)?;
            target.status = OperatorStatus::Active;
            let stake = target.stake;
            accounts.config.activate(stake)?;
            emit!(OperatorAdmitted {
                operator,
                stake,
                by_quorum: true,
                roster_epoch: accounts.config.roster_epoch,
                total_active_stake: accounts.config.total_active_stake,
            });
        }
        Vote::Remove { operator, .. } => {
            let unbonding_period = accounts.config.unbonding_period;
            let target = subject_operator(accounts, &operator)?;
            target.start_unbonding(now, unbonding_period)?;
            target.removals = target.removals.saturating_add(1);
            let stake = target.stake;
            accounts.config.deactivate(stake)?;
            emit!(OperatorRemoved {
                operator,
                stake,
                roster_epoch: accounts.config.roster_epoch,
                total_active_stake: accounts.config.total_active_stake,
            });
        }
        Vote::Terminate { request, .. } => {
            let request = subject_request(&mut accounts.request, &request)?;
            request.status = RequestStatus::Terminated;
            request.ended_at = now;
            emit!(LeaseTerminated {
                request: request.key(),
                ended_at: now,
            });
        }
    }
    Ok(())
}
