//! Cross-program invocation from a natively running program.
//!
//! Mirrors what the loader's CPI syscall does for an SBF program: sync the
//! caller's view of the accounts into the transaction, let the runtime check
//! privileges and run the callee, then copy the callee's writes back into the
//! caller's `AccountInfo`s.

use solana_account_info::AccountInfo;
use solana_instruction::{error::InstructionError, Instruction};
use solana_program_runtime::invoke_context::InvokeContext;
use solana_pubkey::Pubkey;
use solana_svm_timings::ExecuteTimings;

pub(crate) fn invoke_signed(
    invoke_context: &mut InvokeContext,
    instruction: &Instruction,
    account_infos: &[AccountInfo],
    signers_seeds: &[&[&[u8]]],
) -> Result<(), InstructionError> {
    let caller = *invoke_context
        .transaction_context
        .get_current_instruction_context()?
        .get_program_key()?;
    let signers = signers_seeds
        .iter()
        .map(|seeds| {
            Pubkey::create_program_address(seeds, &caller)
                .map_err(|_| InstructionError::InvalidSeeds)
        })
        .collect::<Result<Vec<_>, _>>()?;

    let callee_infos = instruction
        .accounts
        .iter()
        .map(|meta| {
            account_infos
                .iter()
                .find(|info| *info.key == meta.pubkey)
                .ok_or(InstructionError::MissingAccount)
        })
        .collect::<Result<Vec<_>, _>>()?;
    for info in &callee_infos {
        push_caller_view(invoke_context, info)?;
    }

    invoke_context.prepare_next_instruction(instruction.clone(), &signers)?;
    let mut compute_units_consumed = 0;
    invoke_context
        .process_instruction(&mut compute_units_consumed, &mut ExecuteTimings::default())?;

    for (meta, info) in instruction.accounts.iter().zip(&callee_infos) {
        if meta.is_writable {
            pull_callee_result(invoke_context, info)?;
        }
    }
    Ok(())
}

/// The caller may have changed lamports, data or owner in its buffer since it
/// was serialised; the callee must see those changes.
fn push_caller_view(
    invoke_context: &mut InvokeContext,
    info: &AccountInfo,
) -> Result<(), InstructionError> {
    let transaction_context = &invoke_context.transaction_context;
    let instruction_context = transaction_context.get_current_instruction_context()?;
    let index_in_transaction = transaction_context
        .find_index_of_account(info.key)
        .ok_or(InstructionError::MissingAccount)?;
    let index_in_caller =
        instruction_context.get_index_of_account_in_instruction(index_in_transaction)?;
    let mut account = instruction_context.try_borrow_instruction_account(index_in_caller)?;

    let lamports = info
        .try_borrow_lamports()
        .map_err(|_| InstructionError::AccountBorrowFailed)?;
    if account.get_lamports() != **lamports {
        account.set_lamports(**lamports)?;
    }
    let data = info
        .try_borrow_data()
        .map_err(|_| InstructionError::AccountBorrowFailed)?;
    match account.can_data_be_resized(data.len()) {
        Ok(()) => {
            if account.get_data() != *data {
                account.set_data_from_slice(&data)?;
            }
        }
        Err(err) if account.get_data() != *data => return Err(err),
        Err(_) => {}
    }
    // Owner last: lamports and data may only change while the caller owns it.
    if account.get_owner() != info.owner {
        account.set_owner(info.owner.as_ref())?;
    }
    Ok(())
}

/// Copies what the callee left in a writable account back into the caller's
/// `AccountInfo` (and so into the caller's serialised buffer).
fn pull_callee_result(
    invoke_context: &mut InvokeContext,
    info: &AccountInfo,
) -> Result<(), InstructionError> {
    let transaction_context = &invoke_context.transaction_context;
    let instruction_context = transaction_context.get_current_instruction_context()?;
    let index_in_transaction = transaction_context
        .find_index_of_account(info.key)
        .ok_or(InstructionError::MissingAccount)?;
    let index_in_caller =
        instruction_context.get_index_of_account_in_instruction(index_in_transaction)?;
    let account = instruction_context.try_borrow_instruction_account(index_in_caller)?;

    **info
        .try_borrow_mut_lamports()
        .map_err(|_| InstructionError::AccountBorrowFailed)? = account.get_lamports();
    if info.owner != account.get_owner() {
        info.assign(account.get_owner());
    }
    let new_data = account.get_data();
    if info.data_len() != new_data.len() {
        info.resize(new_data.len())
            .map_err(|_| InstructionError::InvalidRealloc)?;
    }
    info.try_borrow_mut_data()
        .map_err(|_| InstructionError::AccountBorrowFailed)?
        .copy_from_slice(new_data);
    Ok(())
}
