//! Permissionless slashing. Every DAG event is an ed25519 signature by an
//! operator's registered node key over `signing_message(network_id,
//! blake3(header))`, so two headers whose signatures verify and which
//! conflict under the consensus crate's evidence rule prove, to anyone,
//! that the operator equivocated.
//!
//! The program does not verify signatures itself: the transaction carries
//! two Ed25519 precompile instructions right before this one (the first for
//! `first_header`, the second for `second_header`), and the runtime refuses
//! the whole transaction if either signature is bad. This instruction reads
//! them back through the instructions sysvar and checks that they verified
//! exactly what it needs: the operator's node key, and the signed message of
//! each header under this network's id, all from bytes inside the Ed25519
//! instruction itself.

use anchor_lang::prelude::*;
use dagger_event_header::{
    evidence_hash, pair_ids, signing_message, EventHeader, EventId, PairError, SIGNATURE_DOMAIN,
    SIGNING_MESSAGE_LEN,
};

use crate::{
    constants::{BPS_DENOMINATOR, CONFIG_SEED, EVIDENCE_SEED, FEE_VAULT_SEED, OPERATOR_SEED},
    errors::DaggerError,
    events::EquivocationReported,
    lamports::{create_pda, pay_out},
    state::{Config, EquivocationRecord, FeeVault, Operator, OperatorStatus},
};

#[derive(Accounts)]
pub struct ReportEquivocation<'info> {
    /// Pays the fees and the record's rent; earns the reward.
    #[account(mut)]
    pub reporter: Signer<'info>,
    #[account(mut, seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Account<'info, Config>,
    #[account(
        mut,
        seeds = [OPERATOR_SEED, operator.node_key.as_ref()],
        bump = operator.bump,
    )]
    pub operator: Account<'info, Operator>,
    /// CHECK: the operator's stake vault (seeds checked). Unchecked so an
    /// operator that withdrew (its vault closed) gets `NothingToSlash`.
    #[account(
        mut,
        seeds = [crate::constants::STAKE_VAULT_SEED, operator.key().as_ref()],
        bump = operator.vault_bump,
    )]
    pub stake_vault: UncheckedAccount<'info>,
    #[account(mut, seeds = [FEE_VAULT_SEED], bump = config.fee_vault_bump)]
    pub fee_vault: Account<'info, FeeVault>,
    /// CHECK: `[EVIDENCE_SEED, evidence_hash]`, checked and created by the
    /// handler (it must not exist yet).
    #[account(mut)]
    pub evidence: UncheckedAccount<'info>,
    /// CHECK: the instructions sysvar (address checked).
    #[account(address = solana_sdk_ids::sysvar::instructions::ID)]
    pub instructions: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

pub(crate) fn handler(
    ctx: Context<ReportEquivocation>,
    first_header: Vec<u8>,
    second_header: Vec<u8>,
) -> Result<()> {
    let accounts = ctx.accounts;
    require!(accounts.config.bootstrapped, DaggerError::NotBootstrapped);
    let first = EventHeader::decode(&first_header).map_err(|_| DaggerError::MalformedHeader)?;
    let second = EventHeader::decode(&second_header).map_err(|_| DaggerError::MalformedHeader)?;
    let (first_id, second_id) = pair_ids(&first, &second).map_err(|e| match e {
        PairError::DifferentCreators => DaggerError::DifferentCreators,
        PairError::SameEvent => DaggerError::SameEvent,
        PairError::NotAConflict => DaggerError::NotAConflict,
    })?;
    let node_key = accounts.operator.node_key;
    // The offender's own keys never collect a reward for its offence. (A
    // wallet it controls under another name still could: that is why the
    // reward is at most half the slash, so reporting oneself always costs
    // at least half of what it is slashed.)
    let reporter = accounts.reporter.key();
    require!(
        reporter != accounts.operator.owner && reporter != node_key,
        DaggerError::ReporterIsOffender
    );
    require!(
        first.creator.0 == node_key.to_bytes(),
        DaggerError::CreatorNotOperator
    );

    let network_id = accounts.config.network_id;
    let sysvar = accounts.instructions.to_account_info();
    let current = solana_instructions_sysvar::load_current_index_checked(&sysvar)? as usize;
    require!(current >= 2, DaggerError::MissingSignatureCheck);
    for (position, id) in [(current - 2, &first_id), (current - 1, &second_id)] {
        let check = solana_instructions_sysvar::load_instruction_at_checked(position, &sysvar)
            .map_err(|_| DaggerError::MissingSignatureCheck)?;
        require_keys_eq!(
            check.program_id,
            solana_sdk_ids::ed25519_program::ID,
            DaggerError::MissingSignatureCheck
        );
        verified_signature(&check.data, &node_key, &network_id, id)?;
    }

    let hash = evidence_hash(&first_id, &second_id);
    let (expected, bump) = Pubkey::find_program_address(&[EVIDENCE_SEED, &hash], &crate::ID);
    require_keys_eq!(accounts.evidence.key(), expected, DaggerError::WrongAccount);
    require!(
        accounts.evidence.owner != &crate::ID,
        DaggerError::EvidenceAlreadyReported
    );
    let operator = &mut accounts.operator;
    require!(
        operator.equivocation == [0; 32],
        DaggerError::AlreadySlashed
    );
    require!(
        operator.status != OperatorStatus::Exited && operator.stake > 0,
        DaggerError::NothingToSlash
    );

    let now = Clock::get()?.unix_timestamp;
    let stake = operator.stake;
    let (slashed, reward) = slash_amounts(
        stake,
        accounts.config.equivocation_slash_bps,
        accounts.config.reporter_reward_bps,
    );
    let was_active = operator.status == OperatorStatus::Active;
    operator.stake = stake - slashed;
    operator.slashed = operator.slashed.saturating_add(slashed);
    operator.equivocation = hash;
    if operator.status != OperatorStatus::Unbonding {
        operator.start_unbonding(now, accounts.config.unbonding_period)?;
    }
    if was_active {
        // The whole stake it was counted with leaves the active set, and a
        // new roster epoch starts: its ballots no longer count.
        accounts.config.deactivate(stake, now)?;
    }
    let operator_key = operator.key();
    let operator_nonce = operator.nonce;

    // The record first: its creation is a CPI, and direct lamport moves
    // are only made after it.
    let info = accounts.evidence.to_account_info();
    create_pda(
        &accounts.reporter,
        &info,
        &accounts.system_program,
        8 + EquivocationRecord::INIT_SPACE,
        &[EVIDENCE_SEED, &hash, &[bump]],
    )?;
    let vault = accounts.stake_vault.to_account_info();
    pay_out(&vault, &accounts.reporter.to_account_info(), reward)?;
    pay_out(
        &vault,
        &accounts.fee_vault.to_account_info(),
        slashed - reward,
    )?;
    let record = EquivocationRecord {
        operator: operator_key,
        operator_nonce,
        node_key,
        reporter: accounts.reporter.key(),
        first: first_id.0,
        second: second_id.0,
        slashed,
        reporter_reward: reward,
        reported_at: now,
        bump,
    };
    record.try_serialize(&mut &mut info.try_borrow_mut_data()?[..])?;

    emit!(EquivocationReported {
        operator: operator_key,
        node_key,
        reporter: accounts.reporter.key(),
        evidence: hash,
        slashed,
        reporter_reward: reward,
        was_active,
        roster_epoch: accounts.config.roster_epoch,
        total_active_stake: accounts.config.total_active_stake,
    });
    Ok(())
}

/// `(slashed, reporter_reward)` for an operator holding `stake`: the slash
/// is `slash_bps` of the stake, the reward `reward_bps` of the slash, both
/// rounded down; the rest of the slash goes to the fee vault.
pub fn slash_amounts(stake: u64, slash_bps: u16, reward_bps: u16) -> (u64, u64) {
    let share = |amount: u64, bps: u16| -> u64 {
        (amount as u128 * bps.min(BPS_DENOMINATOR) as u128 / BPS_DENOMINATOR as u128) as u64
    };
    let slashed = share(stake, slash_bps);
    (slashed, share(slashed, reward_bps))
}

/// Size of one signature's offsets in an Ed25519 instruction.
const OFFSETS_LEN: usize = 14;
/// Where the offsets start: after the signature count and a padding byte.
const OFFSETS_START: usize = 2;
/// "This instruction" as an Ed25519 offsets instruction index.
const THIS_INSTRUCTION: u16 = u16::MAX;

/// Checks that an Ed25519 precompile instruction verified one signature of
/// `node_key` over the signed message of event `id` under `network_id`,
/// every part read from the instruction's own data. The precompile has
/// already checked the signature itself, or the transaction would not run.
fn verified_signature(
    data: &[u8],
    node_key: &Pubkey,
    network_id: &[u8; 32],
    id: &EventId,
) -> Result<()> {
    require!(
        data.len() >= OFFSETS_START + OFFSETS_LEN && data[0] == 1,
        DaggerError::MalformedSignatureCheck
    );
    let field = |i: usize| {
        let at = OFFSETS_START + 2 * i;
        u16::from_le_bytes([data[at], data[at + 1]])
    };
    let (signature_offset, signature_ix) = (field(0) as usize, field(1));
    let (key_offset, key_ix) = (field(2) as usize, field(3));
    let (message_offset, message_len, message_ix) =
        (field(4) as usize, field(5) as usize, field(6));
    require!(
        signature_ix == THIS_INSTRUCTION
            && key_ix == THIS_INSTRUCTION
            && message_ix == THIS_INSTRUCTION,
        DaggerError::SignatureCheckElsewhere
    );
    let slice = |offset: usize, len: usize| {
        data.get(offset..offset + len)
            .ok_or(DaggerError::MalformedSignatureCheck)
    };
    slice(signature_offset, 64)?;
    require!(
        slice(key_offset, 32)? == node_key.as_ref(),
        DaggerError::SignatureCheckWrongKey
    );
    let message = slice(message_offset, message_len)?;
    require!(
        message.len() == SIGNING_MESSAGE_LEN && message[..24] == SIGNATURE_DOMAIN[..],
        DaggerError::SignatureCheckWrongMessage
    );
    require!(
        message[24..56] == network_id[..],
        DaggerError::SignatureCheckWrongNetwork
    );
    require!(
        message == signing_message(network_id, id),
        DaggerError::SignatureCheckWrongMessage
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_amounts_round_down_and_never_exceed_the_stake() {
        for stake in [0u64, 1, 3, 9_999, 10_000, 1_000_000_007, u64::MAX] {
            for slash_bps in [0u16, 1, 2_500, 5_000, 10_000, u16::MAX] {
                for reward_bps in [0u16, 1, 1_000, 5_000, 10_000] {
                    let (slashed, reward) = slash_amounts(stake, slash_bps, reward_bps);
                    assert!(slashed <= stake);
                    assert!(reward <= slashed);
                    let bps = slash_bps.min(BPS_DENOMINATOR) as u128;
                    assert_eq!(slashed as u128, stake as u128 * bps / 10_000);
                }
            }
        }
        assert_eq!(slash_amounts(1_000_000, 5_000, 1_000), (500_000, 50_000));
    }
}
