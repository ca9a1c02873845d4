//! The DAGGER program as a native builtin of the chain's runtime.

use dagger_native_runtime::NativeProgram;
use solana_account_info::AccountInfo;
use solana_program_error::ProgramResult;
use solana_pubkey::Pubkey;

/// `dagger::entry`, run natively by `dagger-native-runtime` (this machine
/// cannot build SBF; the adapter gives the program the loader's ABI instead).
pub(crate) struct DaggerProgram;

impl NativeProgram for DaggerProgram {
    fn entrypoint<'a>(
        program_id: &'a Pubkey,
        accounts: &'a [AccountInfo<'a>],
        data: &'a [u8],
    ) -> ProgramResult {
        dagger::entry(program_id, accounts, data)
    }
}
