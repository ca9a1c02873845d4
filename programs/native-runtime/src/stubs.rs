//! Syscalls of natively running programs, answered from the current
//! `InvokeContext` (see `context`).

use std::sync::Once;

use solana_account_info::AccountInfo;
use solana_instruction::{error::UNSUPPORTED_SYSVAR, Instruction};
use solana_program_error::{ProgramError, ProgramResult};
use solana_program_runtime::solana_sbpf::vm::ContextObject;
use solana_pubkey::Pubkey;
use solana_svm_log_collector::ic_msg;
use solana_sysvar::program_stubs::{set_syscall_stubs, SyscallStubs};

use crate::context::{record_failed_cpi, with_current};

/// Return codes of `sol_get_sysvar`, as the runtime defines them.
const SUCCESS: u64 = 0;
const OFFSET_LENGTH_EXCEEDS_SYSVAR: u64 = 1;
const SYSVAR_NOT_FOUND: u64 = 2;

/// Installs the stubs once per process. Programs that are not running inside
/// a native invocation (plain unit tests) keep printing logs to stdout.
pub fn install_syscall_stubs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        set_syscall_stubs(Box::new(NativeSyscalls));
    });
}

struct NativeSyscalls;

/// Copies a sysvar value into the caller's out-pointer.
fn write_sysvar<T: Clone>(
    value: Result<std::sync::Arc<T>, solana_instruction::error::InstructionError>,
    var_addr: *mut u8,
) -> u64 {
    match value {
        Ok(value) => {
            // SAFETY: the sysvar getters hand us a pointer to a `T` they own.
            unsafe { std::ptr::write_unaligned(var_addr as *mut T, T::clone(&value)) };
            SUCCESS
        }
        Err(_) => UNSUPPORTED_SYSVAR,
    }
}

impl SyscallStubs for NativeSyscalls {
    fn sol_log(&self, message: &str) {
        if with_current(|ic| {
            ic_msg!(ic, "Program log: {}", message);
        })
        .is_none()
        {
            println!("{message}");
        }
    }

    fn sol_log_compute_units(&self) {
        with_current(|ic| {
            let remaining = ic.get_remaining();
            ic_msg!(ic, "Program consumption: {} units remaining", remaining);
        });
    }

    fn sol_remaining_compute_units(&self) -> u64 {
        with_current(|ic| ic.get_remaining()).unwrap_or(0)
    }

    fn sol_invoke_signed(
        &self,
        instruction: &Instruction,
        account_infos: &[AccountInfo],
        signers_seeds: &[&[&[u8]]],
    ) -> ProgramResult {
        let result = with_current(|ic| {
            crate::cpi::invoke_signed(ic, instruction, account_infos, signers_seeds)
        })
        .ok_or(ProgramError::UnsupportedSysvar)?;
        result.map_err(|err| {
            let program_error =
                ProgramError::try_from(err.clone()).unwrap_or(ProgramError::InvalidInstructionData);
            record_failed_cpi(err);
            program_error
        })
    }

    fn sol_get_sysvar(
        &self,
        sysvar_id_addr: *const u8,
        var_addr: *mut u8,
        offset: u64,
        length: u64,
    ) -> u64 {
        // SAFETY: the sysvar API passes a pointer to a 32-byte id.
        let id = unsafe { Pubkey::new_from_array(*(sysvar_id_addr as *const [u8; 32])) };
        with_current(|ic| {
            let Some(bytes) = ic.get_sysvar_cache().sysvar_id_to_buffer(&id) else {
                return SYSVAR_NOT_FOUND;
            };
            let (Ok(offset), Ok(length)) = (usize::try_from(offset), usize::try_from(length))
            else {
                return OFFSET_LENGTH_EXCEEDS_SYSVAR;
            };
            match offset
                .checked_add(length)
                .and_then(|end| bytes.get(offset..end))
            {
                Some(slice) => {
                    // SAFETY: the caller provides `length` writable bytes.
                    unsafe { std::ptr::copy_nonoverlapping(slice.as_ptr(), var_addr, length) };
                    SUCCESS
                }
                None => OFFSET_LENGTH_EXCEEDS_SYSVAR,
            }
        })
        .unwrap_or(UNSUPPORTED_SYSVAR)
    }

    fn sol_get_clock_sysvar(&self, var_addr: *mut u8) -> u64 {
        with_current(|ic| write_sysvar(ic.get_sysvar_cache().get_clock(), var_addr))
            .unwrap_or(UNSUPPORTED_SYSVAR)
    }

    fn sol_get_epoch_schedule_sysvar(&self, var_addr: *mut u8) -> u64 {
        with_current(|ic| write_sysvar(ic.get_sysvar_cache().get_epoch_schedule(), var_addr))
            .unwrap_or(UNSUPPORTED_SYSVAR)
    }

    fn sol_get_rent_sysvar(&self, var_addr: *mut u8) -> u64 {
        with_current(|ic| write_sysvar(ic.get_sysvar_cache().get_rent(), var_addr))
            .unwrap_or(UNSUPPORTED_SYSVAR)
    }

    fn sol_get_epoch_rewards_sysvar(&self, var_addr: *mut u8) -> u64 {
        with_current(|ic| write_sysvar(ic.get_sysvar_cache().get_epoch_rewards(), var_addr))
            .unwrap_or(UNSUPPORTED_SYSVAR)
    }

    fn sol_get_last_restart_slot(&self, var_addr: *mut u8) -> u64 {
        with_current(|ic| write_sysvar(ic.get_sysvar_cache().get_last_restart_slot(), var_addr))
            .unwrap_or(UNSUPPORTED_SYSVAR)
    }

    #[allow(deprecated)]
    fn sol_get_fees_sysvar(&self, var_addr: *mut u8) -> u64 {
        with_current(|ic| write_sysvar(ic.get_sysvar_cache().get_fees(), var_addr))
            .unwrap_or(UNSUPPORTED_SYSVAR)
    }

    fn sol_get_return_data(&self) -> Option<(Pubkey, Vec<u8>)> {
        with_current(|ic| {
            let (program_id, data) = ic.transaction_context.get_return_data();
            (*program_id, data.to_vec())
        })
    }

    fn sol_set_return_data(&self, data: &[u8]) {
        with_current(|ic| {
            let program_id = ic
                .transaction_context
                .get_current_instruction_context()
                .and_then(|ctx| ctx.get_program_key().copied());
            if let Ok(program_id) = program_id {
                let _ = ic
                    .transaction_context
                    .set_return_data(program_id, data.to_vec());
            }
        });
    }

    fn sol_get_stack_height(&self) -> u64 {
        with_current(|ic| ic.get_stack_height() as u64).unwrap_or(0)
    }
}
