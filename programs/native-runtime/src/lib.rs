//! Runs a program written against `solana-program`'s entrypoint (an Anchor
//! program's `entry`, say) as a *builtin* inside a real Solana runtime such as
//! LiteSVM or surfpool, without compiling it to SBF.
//!
//! The adapter does what the BPF loader does around a program, on the host:
//! it serialises the instruction's accounts in the loader's aligned ABI,
//! hands the program `AccountInfo`s that point into that buffer, and writes
//! the buffer back through the loader's own `deserialize_parameters`, so
//! ownership, writability and realloc rules are enforced by the runtime's code.
//! Syscalls the program makes natively (CPI, sysvars, logs, return data) are
//! routed to the current `InvokeContext` by [`install_syscall_stubs`].

mod context;
mod cpi;
mod stubs;

use std::panic::{catch_unwind, AssertUnwindSafe};

use solana_account_info::AccountInfo;
use solana_instruction::error::InstructionError;
use solana_program_error::{ProgramError, ProgramResult};
use solana_program_runtime::{
    invoke_context::{BuiltinFunctionWithContext, InvokeContext},
    serialization::{deserialize_parameters, serialize_parameters},
    solana_sbpf::declare_builtin_function,
};
use solana_pubkey::Pubkey;

pub use stubs::install_syscall_stubs;

/// Compute units charged per top-level invocation of a native program. The
/// program's own instructions are not metered natively; this keeps the
/// runtime's accounting honest about the call having happened.
pub const INVOCATION_COMPUTE_UNITS: u64 = 1_000;

/// A program whose entrypoint can run natively.
pub trait NativeProgram: 'static {
    /// The entrypoint, in the shape Anchor generates (`dagger::entry`).
    fn entrypoint<'a>(
        program_id: &'a Pubkey,
        accounts: &'a [AccountInfo<'a>],
        data: &'a [u8],
    ) -> ProgramResult;
}

/// The builtin to register with the runtime for program `P`
/// (`LiteSVM::add_builtin(id, builtin::<P>())`). It installs the syscall stubs
/// the first time a program runs.
pub fn builtin<P: NativeProgram>() -> BuiltinFunctionWithContext {
    install_syscall_stubs();
    NativeEntrypoint::vm::<P>
}

declare_builtin_function!(
    NativeEntrypoint<P: NativeProgram>,
    fn rust(
        invoke_context: &mut InvokeContext,
        _arg0: u64,
        _arg1: u64,
        _arg2: u64,
        _arg3: u64,
        _arg4: u64,
        _memory_mapping: &mut solana_program_runtime::solana_sbpf::memory_region::MemoryMapping,
    ) -> Result<u64, Box<dyn std::error::Error>> {
        execute::<P>(invoke_context).map(|()| 0).map_err(|e| e.into())
    }
);

fn execute<P: NativeProgram>(invoke_context: &mut InvokeContext) -> Result<(), InstructionError> {
    invoke_context
        .consume_checked(INVOCATION_COMPUTE_UNITS)
        .map_err(|_| InstructionError::ComputationalBudgetExceeded)?;
    // The runtime itself logs "invoke", "success" and "failed" around every
    // program, builtins included, so the adapter logs nothing of its own.
    let (mut buffer, accounts_metadata) = {
        let instruction_context = invoke_context
            .transaction_context
            .get_current_instruction_context()?;
        // No VM: direct mapping and the stricter ABI cannot apply, as in the loader
        // for programs it copies in and out.
        let (buffer, _regions, accounts_metadata, _instruction_data_offset) =
            serialize_parameters(&instruction_context, false, false, false)?;
        (buffer, accounts_metadata)
    };

    let frame = context::Frame::enter(invoke_context);
    let outcome = {
        // SAFETY: `buffer` holds a loader-format input region built just above
        // and outlives every `AccountInfo` made from it (they die in this block).
        let (input_program_id, account_infos, data) =
            unsafe { solana_program_entrypoint::deserialize(buffer.as_slice_mut().as_mut_ptr()) };
        catch_unwind(AssertUnwindSafe(|| {
            P::entrypoint(input_program_id, &account_infos, data)
        }))
    };
    let failed_cpi = frame.leave();

    let result = match (failed_cpi, outcome) {
        // A failed CPI aborts the caller in the real runtime, whatever it returns.
        (Some(err), _) => Err(err),
        (None, Ok(Ok(()))) => Ok(()),
        (None, Ok(Err(program_error))) => Err(program_error_to_instruction_error(program_error)),
        (None, Err(_panic)) => Err(InstructionError::ProgramFailedToComplete),
    };
    result?;

    let instruction_context = invoke_context
        .transaction_context
        .get_current_instruction_context()?;
    deserialize_parameters(
        &instruction_context,
        false,
        false,
        buffer.as_slice(),
        &accounts_metadata,
    )?;
    Ok(())
}

fn program_error_to_instruction_error(err: ProgramError) -> InstructionError {
    InstructionError::from(u64::from(err))
}
