//! The adapter on its own: a small hand-written program (no Anchor macros)
//! exercising each thing the loader does around a program, run as a builtin
//! in LiteSVM.

use anchor_lang::{
    prelude::{Clock, SolanaSysvar},
    solana_program::{
        program::{invoke, invoke_signed},
        system_instruction,
    },
};
use dagger_native_runtime::{builtin, NativeProgram};
use litesvm::LiteSVM;
use solana_account_info::AccountInfo;
use solana_program_error::{ProgramError, ProgramResult};
use solana_pubkey::Pubkey;
use solana_sdk::{
    account::Account,
    instruction::{AccountMeta, Instruction, InstructionError},
    native_token::LAMPORTS_PER_SOL,
    signature::Keypair,
    signer::Signer,
    transaction::{Transaction, TransactionError},
};

const PROGRAM_ID: Pubkey = Pubkey::new_from_array([7; 32]);
const VAULT_SEED: &[u8] = b"vault";

struct Probe;

impl NativeProgram for Probe {
    fn entrypoint<'a>(
        program_id: &'a Pubkey,
        accounts: &'a [AccountInfo<'a>],
        data: &'a [u8],
    ) -> ProgramResult {
        match data.first().copied() {
            // Write bytes into a program-owned account and move lamports between two.
            Some(0) => {
                accounts[0].try_borrow_mut_data()?[..4].copy_from_slice(&data[1..5]);
                **accounts[0].try_borrow_mut_lamports()? -= 10;
                **accounts[1].try_borrow_mut_lamports()? += 10;
                Ok(())
            }
            // CPI: a system transfer signed by the transaction's signer.
            Some(1) => invoke(
                &system_instruction::transfer(accounts[0].key, accounts[1].key, 1_000),
                &accounts[..3],
            ),
            // CPI with PDA signer: create an account, then write into it.
            Some(2) => {
                let (pda, bump) = Pubkey::find_program_address(&[VAULT_SEED], program_id);
                assert_eq!(pda, *accounts[1].key);
                let space = 100;
                invoke_signed(
                    &system_instruction::create_account(
                        accounts[0].key,
                        &pda,
                        LAMPORTS_PER_SOL,
                        space,
                        program_id,
                    ),
                    &accounts[..3],
                    &[&[VAULT_SEED, &[bump]]],
                )?;
                assert_eq!(accounts[1].owner, program_id);
                accounts[1].try_borrow_mut_data()?[99] = 42;
                Ok(())
            }
            Some(3) => Err(ProgramError::Custom(77)),
            Some(4) => panic!("the probe panics"),
            // Sysvar through the stubs: write the clock's unix time.
            Some(5) => {
                let clock = Clock::get()?;
                accounts[0].try_borrow_mut_data()?[..8]
                    .copy_from_slice(&clock.unix_timestamp.to_le_bytes());
                Ok(())
            }
            // Write into an account this program does not own.
            Some(6) => {
                accounts[0].try_borrow_mut_data()?[0] = 1;
                Ok(())
            }
            // A CPI fails but the program ignores the error and returns Ok.
            Some(7) => {
                let _ = invoke(
                    &system_instruction::transfer(accounts[0].key, accounts[1].key, u64::MAX / 2),
                    &accounts[..3],
                );
                Ok(())
            }
            // Return data. (solana-cpi's `set_return_data` is a no-op off-chain,
            // so the probe calls the syscall stub the way the SBF syscall would.)
            Some(8) => {
                solana_sysvar::program_stubs::sol_set_return_data(b"pong");
                Ok(())
            }
            // Grow a program-owned account within the realloc limit.
            Some(9) => accounts[0].resize(accounts[0].data_len() + 1_000),
            _ => Err(ProgramError::InvalidInstructionData),
        }
    }
}

struct Env {
    svm: LiteSVM,
    payer: Keypair,
}

impl Env {
    fn new() -> Env {
        let mut svm = LiteSVM::new();
        svm.add_builtin(PROGRAM_ID, builtin::<Probe>());
        let payer = Keypair::new();
        svm.airdrop(&payer.pubkey(), 10 * LAMPORTS_PER_SOL).unwrap();
        Env { svm, payer }
    }

    fn owned_account(&mut self, owner: Pubkey, len: usize) -> Pubkey {
        let key = Pubkey::new_unique();
        let lamports = self.svm.minimum_balance_for_rent_exemption(len) + 1_000;
        self.svm
            .set_account(
                key,
                Account {
                    lamports,
                    data: vec![0; len],
                    owner,
                    executable: false,
                    rent_epoch: 0,
                },
            )
            .unwrap();
        key
    }

    fn run(
        &mut self,
        data: Vec<u8>,
        accounts: Vec<AccountMeta>,
    ) -> Result<litesvm::types::TransactionMetadata, TransactionError> {
        let ix = Instruction {
            program_id: PROGRAM_ID,
            accounts,
            data,
        };
        let tx = Transaction::new_signed_with_payer(
            &[ix],
            Some(&self.payer.pubkey()),
            &[&self.payer],
            self.svm.latest_blockhash(),
        );
        let result = self.svm.send_transaction(tx).map_err(|f| f.err);
        self.svm.expire_blockhash();
        result
    }
}

#[test]
fn writes_to_owned_accounts_are_committed() {
    let mut env = Env::new();
    let a = env.owned_account(PROGRAM_ID, 8);
    let b = env.owned_account(PROGRAM_ID, 8);
    let (a_before, b_before) = (
        env.svm.get_balance(&a).unwrap(),
        env.svm.get_balance(&b).unwrap(),
    );
    let meta = env
        .run(
            vec![0, 1, 2, 3, 4],
            vec![AccountMeta::new(a, false), AccountMeta::new(b, false)],
        )
        .unwrap();
    // The runtime logs the invocation once (the adapter adds no duplicate).
    let invokes = meta
        .logs
        .iter()
        .filter(|l| l.contains("invoke [1]"))
        .count();
    assert_eq!(invokes, 1, "{:?}", meta.logs);
    assert_eq!(&env.svm.get_account(&a).unwrap().data[..4], &[1, 2, 3, 4]);
    assert_eq!(env.svm.get_balance(&a).unwrap(), a_before - 10);
    assert_eq!(env.svm.get_balance(&b).unwrap(), b_before + 10);
}

#[test]
fn cpi_transfer_reaches_the_system_program() {
    let mut env = Env::new();
    let to = Pubkey::new_unique();
    env.svm.airdrop(&to, LAMPORTS_PER_SOL).unwrap();
    let payer = env.payer.pubkey();
    env.run(
        vec![1],
        vec![
            AccountMeta::new(payer, true),
            AccountMeta::new(to, false),
            AccountMeta::new_readonly(anchor_lang::solana_program::system_program::ID, false),
        ],
    )
    .unwrap();
    assert_eq!(env.svm.get_balance(&to).unwrap(), LAMPORTS_PER_SOL + 1_000);
}

#[test]
fn cpi_with_pda_signer_creates_and_fills_an_account() {
    let mut env = Env::new();
    let (pda, _) = Pubkey::find_program_address(&[VAULT_SEED], &PROGRAM_ID);
    let payer = env.payer.pubkey();
    env.run(
        vec![2],
        vec![
            AccountMeta::new(payer, true),
            AccountMeta::new(pda, false),
            AccountMeta::new_readonly(anchor_lang::solana_program::system_program::ID, false),
        ],
    )
    .unwrap();
    let account = env.svm.get_account(&pda).unwrap();
    assert_eq!(account.owner, PROGRAM_ID);
    assert_eq!(account.data.len(), 100);
    assert_eq!(account.data[99], 42);
    assert_eq!(account.lamports, LAMPORTS_PER_SOL);
}

#[test]
fn program_errors_and_panics_fail_the_transaction() {
    let mut env = Env::new();
    assert_eq!(
        env.run(vec![3], vec![]).unwrap_err(),
        TransactionError::InstructionError(0, InstructionError::Custom(77))
    );
    assert_eq!(
        env.run(vec![4], vec![]).unwrap_err(),
        TransactionError::InstructionError(0, InstructionError::ProgramFailedToComplete)
    );
    assert_eq!(
        env.run(vec![200], vec![]).unwrap_err(),
        TransactionError::InstructionError(0, InstructionError::InvalidInstructionData)
    );
}

#[test]
fn sysvars_come_from_the_runtime() {
    let mut env = Env::new();
    let mut clock: Clock = env.svm.get_sysvar();
    clock.unix_timestamp = 1_234_567;
    env.svm.set_sysvar(&clock);
    let a = env.owned_account(PROGRAM_ID, 8);
    env.run(vec![5], vec![AccountMeta::new(a, false)]).unwrap();
    assert_eq!(
        env.svm.get_account(&a).unwrap().data,
        1_234_567i64.to_le_bytes()
    );
}

#[test]
fn the_runtime_refuses_writes_to_foreign_accounts() {
    let mut env = Env::new();
    let foreign = env.owned_account(Pubkey::new_unique(), 8);
    assert_eq!(
        env.run(vec![6], vec![AccountMeta::new(foreign, false)])
            .unwrap_err(),
        TransactionError::InstructionError(0, InstructionError::ExternalAccountDataModified)
    );
    let readonly = env.owned_account(PROGRAM_ID, 8);
    assert_eq!(
        env.run(vec![6], vec![AccountMeta::new_readonly(readonly, false)])
            .unwrap_err(),
        TransactionError::InstructionError(0, InstructionError::ReadonlyDataModified)
    );
    assert_eq!(env.svm.get_account(&foreign).unwrap().data, vec![0; 8]);
}

#[test]
fn a_failed_cpi_fails_the_caller_even_if_it_returns_ok() {
    let mut env = Env::new();
    let to = Pubkey::new_unique();
    let payer = env.payer.pubkey();
    let err = env
        .run(
            vec![7],
            vec![
                AccountMeta::new(payer, true),
                AccountMeta::new(to, false),
                AccountMeta::new_readonly(anchor_lang::solana_program::system_program::ID, false),
            ],
        )
        .unwrap_err();
    assert!(
        matches!(err, TransactionError::InstructionError(0, _)),
        "{err:?}"
    );
}

#[test]
fn return_data_and_realloc_work() {
    let mut env = Env::new();
    let meta = env.run(vec![8], vec![]).unwrap();
    assert_eq!(meta.return_data.data, b"pong");
    assert_eq!(meta.return_data.program_id, PROGRAM_ID);

    let a = env.owned_account(PROGRAM_ID, 8);
    let rent = env.svm.minimum_balance_for_rent_exemption(1_008);
    let mut account = env.svm.get_account(&a).unwrap();
    account.lamports = rent;
    env.svm.set_account(a, account).unwrap();
    env.run(vec![9], vec![AccountMeta::new(a, false)]).unwrap();
    assert_eq!(env.svm.get_account(&a).unwrap().data.len(), 1_008);
}

#[test]
fn many_invocations_do_not_grow_memory_per_call() {
    // Each call allocates its buffer and frees it; run a batch and make sure
    // the runtime stays usable (the frame stack is balanced, even after panics).
    let mut env = Env::new();
    let a = env.owned_account(PROGRAM_ID, 8);
    for i in 0..200u8 {
        if i % 10 == 0 {
            let _ = env.run(vec![4], vec![]);
        }
        env.run(vec![5], vec![AccountMeta::new(a, false)]).unwrap();
    }
}
