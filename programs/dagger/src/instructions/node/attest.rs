use anchor_lang::prelude::*;

use crate::{
    constants::{
        ATTESTATION_SEED, BPS_DENOMINATOR, CONFIG_SEED, FEE_VAULT_SEED, MAX_ACTIVE_OPERATORS,
        OPERATOR_SEED, STAKE_VAULT_SEED,
    },
    errors::DaggerError,
    events::{LeaseActivated, LeaseTerminated, OperatorAdmitted, OperatorRemoved, VoteCast},
    lamports::{close_account, create_pda, in_use, pay_out},
    state::{
        Allocation, Attestation, Ballot, Config, FeeVault, OfferMismatch, Operator, OperatorStatus,
        Request, RequestStatus, StakeVault, Vote,
    },
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
    /// One tally per subject *instance*: the nonce is a seed, so ballots for
    /// a request or registration that was closed and recreated at the same
    /// address can never count for the new one.
    /// CHECK: the tally, `Attestation`; read or created by the handler
    /// (`create_pda` tolerates lamports sent to the address beforehand:
    /// every tally address is predictable from public data).
    #[account(
        mut,
        seeds = [
            ATTESTATION_SEED,
            vote.kind_seed(),
            vote.subject_key().as_ref(),
            &vote.nonce().to_le_bytes(),
        ],
        bump,
    )]
    pub attestation: UncheckedAccount<'info>,
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
    /// The operator a Provision vote assigns the lease to, or the lease's
    /// operator for a Terminate vote (its capacity is given back). Omitted
    /// when it is the voter itself.
    #[account(mut)]
    pub assigned_operator: Option<Account<'info, Operator>>,
    /// The removed operator's stake vault, for Remove votes (the slash is
    /// taken from it).
    #[account(mut)]
    pub subject_stake_vault: Option<Account<'info, StakeVault>>,
    #[account(mut, seeds = [FEE_VAULT_SEED], bump = config.fee_vault_bump)]
    pub fee_vault: Account<'info, FeeVault>,
    pub system_program: Program<'info, System>,
}

/// Records one stake-weighted vote; when strictly more than 2/3 of the
/// active stake agrees on one outcome, applies it once and closes the tally.
pub(crate) fn handler(ctx: Context<Attest>, roster_epoch: u64, vote: Vote) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    let now = Clock::get()?.unix_timestamp;

    // Before the bootstrap is finished the roster is the admin's, one
    // admission at a time: its first members may hold every vote there is,
    // and a quorum of them could remove one another and leave a genesis
    // record nothing matches (a launch bricked for good). No vote of any
    // kind counts until the roster is final.
    require!(accounts.config.bootstrapped, DaggerError::NotBootstrapped);
    require!(accounts.voter.is_active(), DaggerError::OperatorNotActive);
    let current_epoch = accounts.config.roster_epoch;
    require!(roster_epoch >= current_epoch, DaggerError::StaleEpoch);
    require!(roster_epoch == current_epoch, DaggerError::FutureEpoch);
    check_subject_pending(accounts, &vote, now)?;

    let mut attestation = open_tally(accounts, &vote, current_epoch, ctx.bumps.attestation)?;
    let attestation = &mut attestation;
    require_keys_eq!(
        accounts.rent_payer.key(),
        attestation.rent_payer,
        DaggerError::WrongAccount
    );
    if attestation.roster_epoch != current_epoch {
        // Stake left the active set since these ballots were cast: they no
        // longer count (a departed voter's stake must never help a quorum).
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

    if let Vote::Provision { request, nonce, .. } = vote {
        let voted: u64 = attestation.ballots.iter().map(|b| b.stake).sum();
        let request = subject_request(&mut accounts.request, &request, nonce)?;
        request.provision_stake = voted;
        request.provision_epoch = current_epoch;
    }
    let outcome_stake = attestation.stake_for(&outcome);
    emit!(VoteCast {
        subject: vote.subject(),
        voter: voter_key,
        stake: accounts.voter.stake,
        roster_epoch: current_epoch,
        outcome_stake,
        total_active_stake: accounts.config.total_active_stake,
    });

    let tally = accounts.attestation.to_account_info();
    if accounts.config.is_supermajority(outcome_stake) {
        apply(accounts, &vote, now)?;
        close_account(&tally, &accounts.rent_payer.to_account_info())?;
    } else {
        attestation.try_serialize(&mut &mut tally.try_borrow_mut_data()?[..])?;
    }
    Ok(())
}

/// The subject's tally: the one on file, or a new one paid by the voter.
fn open_tally(accounts: &Attest, vote: &Vote, epoch: u64, bump: u8) -> Result<Attestation> {
    let info = accounts.attestation.to_account_info();
    if in_use(&info) {
        let data = info.try_borrow_data()?;
        return Attestation::try_deserialize(&mut &data[..]);
    }
    let subject = vote.subject_key();
    let nonce = vote.nonce().to_le_bytes();
    create_pda(
        &accounts.node_key,
        &info,
        &accounts.system_program,
        8 + Attestation::INIT_SPACE,
        &[
            ATTESTATION_SEED,
            vote.kind_seed(),
            subject.as_ref(),
            &nonce,
            &[bump],
        ],
    )?;
    Ok(Attestation {
        rent_payer: accounts.node_key.key(),
        subject: vote.subject(),
        roster_epoch: epoch,
        bump,
        ballots: Vec::new(),
    })
}

fn subject_request<'a, 'info>(
    request: &'a mut Option<Account<'info, Request>>,
    expected: &Pubkey,
    nonce: u64,
) -> Result<&'a mut Account<'info, Request>> {
    let request = request.as_mut().ok_or(DaggerError::MissingSubjectAccount)?;
    require_keys_eq!(request.key(), *expected, DaggerError::SubjectMismatch);
    require!(request.nonce == nonce, DaggerError::SubjectMismatch);
    Ok(request)
}

/// The operator a membership vote is about: the passed subject account, or
/// the voter itself when it votes on its own removal.
fn subject_operator<'a, 'info>(
    accounts: &'a mut Attest<'info>,
    expected: &Pubkey,
    nonce: u64,
) -> Result<&'a mut Account<'info, Operator>> {
    let operator = match accounts.subject_operator.as_mut() {
        Some(operator) => operator,
        None if accounts.voter.key() == *expected => &mut accounts.voter,
        None => return err!(DaggerError::MissingSubjectAccount),
    };
    require_keys_eq!(operator.key(), *expected, DaggerError::SubjectMismatch);
    require!(operator.nonce == nonce, DaggerError::SubjectMismatch);
    Ok(operator)
}

/// The operator a Provision vote assigns the lease to.
fn assigned<'a, 'info>(
    accounts: &'a mut Attest<'info>,
    expected: &Pubkey,
) -> Result<&'a mut Account<'info, Operator>> {
    let assigned = match accounts.assigned_operator.as_mut() {
        Some(operator) => operator,
        None => &mut accounts.voter,
    };
    require_keys_eq!(
        assigned.key(),
        *expected,
        DaggerError::AssignedOperatorMismatch
    );
    Ok(assigned)
}

/// Rejects votes on subjects that are already decided or can no longer be.
fn check_subject_pending(accounts: &mut Attest, vote: &Vote, now: i64) -> Result<()> {
    match *vote {
        Vote::Provision {
            request,
            nonce,
            operator,
            ..
        } => {
            let request = subject_request(&mut accounts.request, &request, nonce)?;
            match request.status {
                RequestStatus::Open => {}
                _ => return err!(DaggerError::AlreadyApplied),
            }
            require!(now <= request.deadline, DaggerError::RequestExpired);
            let (spec, price) = (request.spec, request.price_per_second);
            let assigned = assigned(accounts, &operator)?;
            require!(assigned.is_active(), DaggerError::OperatorNotActive);
            // The one rule the nodes' assignment follows too.
            assigned.offer().takes(&spec, price).map_err(|m| match m {
                OfferMismatch::Region => DaggerError::WrongRegion,
                OfferMismatch::PriceFloor => DaggerError::BelowPriceFloor,
                OfferMismatch::Capacity => DaggerError::CapacityExceeded,
            })?;
        }
        Vote::Admit {
            operator, nonce, ..
        } => {
            let min_stake = accounts.config.min_operator_stake;
            let operator = subject_operator(accounts, &operator, nonce)?;
            match operator.status {
                OperatorStatus::Pending => {}
                OperatorStatus::Active => return err!(DaggerError::AlreadyApplied),
                _ => return err!(DaggerError::InvalidOperatorStatus),
            }
            require!(operator.stake >= min_stake, DaggerError::InsufficientStake);
        }
        Vote::Remove {
            operator, nonce, ..
        } => {
            let operator = subject_operator(accounts, &operator, nonce)?;
            require!(operator.is_active(), DaggerError::OperatorNotActive);
        }
        Vote::Terminate { request, nonce, .. } => {
            let request = subject_request(&mut accounts.request, &request, nonce)?;
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
            nonce,
            operator,
            endpoint_hash,
        } => {
            let request = subject_request(&mut accounts.request, &request, nonce)?;
            request.status = RequestStatus::Active;
            request.assigned_operator = operator;
            request.endpoint_hash = endpoint_hash;
            request.lease_start = now;
            let request_key = request.key();
            let need = Allocation::of(&request.spec);
            let assigned = assigned(accounts, &operator)?;
            assigned.active_leases = assigned.active_leases.saturating_add(1);
            assigned.allocated.add(need);
            emit!(LeaseActivated {
                request: request_key,
                operator,
                endpoint_hash,
                started_at: now,
            });
        }
        Vote::Admit {
            operator, nonce, ..
        } => {
            let target = subject_operator(accounts, &operator, nonce)?;
            target.status = OperatorStatus::Active;
            let stake = target.stake;
            let total_after = accounts
                .config
                .total_active_stake
                .checked_add(stake)
                .ok_or(DaggerError::Overflow)?;
            accounts.config.check_share(stake, total_after)?;
            accounts.config.activate(stake)?;
            emit!(OperatorAdmitted {
                operator,
                stake,
                by_quorum: true,
                roster_epoch: accounts.config.roster_epoch,
                total_active_stake: accounts.config.total_active_stake,
            });
        }
        Vote::Remove {
            operator, nonce, ..
        } => {
            let unbonding_period = accounts.config.unbonding_period;
            let slash_bps = accounts.config.removal_slash_bps;
            let target = subject_operator(accounts, &operator, nonce)?;
            target.start_unbonding(now, unbonding_period)?;
            target.removals = target.removals.saturating_add(1);
            let stake = target.stake;
            let slash = (stake as u128 * slash_bps as u128 / BPS_DENOMINATOR as u128) as u64;
            let vault_bump = target.vault_bump;
            if slash > 0 {
                target.stake = stake - slash;
                target.slashed = target.slashed.saturating_add(slash);
                let expected_vault = Pubkey::create_program_address(
                    &[STAKE_VAULT_SEED, operator.as_ref(), &[vault_bump]],
                    &crate::ID,
                )
                .map_err(|_| DaggerError::WrongAccount)?;
                let vault = accounts
                    .subject_stake_vault
                    .as_ref()
                    .ok_or(DaggerError::MissingSubjectAccount)?;
                require_keys_eq!(vault.key(), expected_vault, DaggerError::WrongAccount);
                pay_out(
                    &vault.to_account_info(),
                    &accounts.fee_vault.to_account_info(),
                    slash,
                )?;
            }
            accounts.config.deactivate(stake, now)?;
            emit!(OperatorRemoved {
                operator,
                stake: stake - slash,
                slashed: slash,
                roster_epoch: accounts.config.roster_epoch,
                total_active_stake: accounts.config.total_active_stake,
            });
        }
        Vote::Terminate { request, nonce, .. } => {
            let request = subject_request(&mut accounts.request, &request, nonce)?;
            request.status = RequestStatus::Terminated;
            request.ended_at = now;
            let (request_key, lease_operator, need) = (
                request.key(),
                request.assigned_operator,
                Allocation::of(&request.spec),
            );
            // Its capacity is free again (the lease's accounts may stay
            // until someone settles them).
            assigned(accounts, &lease_operator)?.allocated.sub(need);
            emit!(LeaseTerminated {
                request: request_key,
                ended_at: now,
            });
        }
    }
    Ok(())
}
