use anchor_lang::{prelude::Clock, AccountDeserialize, Discriminator};
use dagger_client::{accounts::decode, ProgramFailure};
use dagger_native_runtime::{builtin, NativeProgram};
use litesvm::{types::TransactionMetadata, LiteSVM};
use solana_account_info::AccountInfo;
use solana_program_error::ProgramResult;
use solana_pubkey::Pubkey;
use solana_sdk::{
    account::Account,
    instruction::Instruction,
    signature::Keypair,
    signer::Signer,
    transaction::{Transaction, TransactionError},
};

/// The DAGGER program as a native builtin.
pub struct DaggerProgram;

impl NativeProgram for DaggerProgram {
    fn entrypoint<'a>(
        program_id: &'a Pubkey,
        accounts: &'a [AccountInfo<'a>],
        data: &'a [u8],
    ) -> ProgramResult {
        dagger::entry(program_id, accounts, data)
    }
}

/// Why a transaction failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: TransactionError,
    pub logs: Vec<String>,
}

impl Failure {
    /// The program failure and the index of the instruction that failed.
    pub fn program(&self) -> ProgramFailure {
        ProgramFailure::from_transaction_error(&self.error)
            .map(|(_, failure)| failure)
            .unwrap_or_else(|| panic!("not an instruction error: {:?}", self.error))
    }
}

/// A runtime with the program loaded, a clock the test controls, and helpers
/// to send transactions and read accounts.
pub struct TestChain {
    pub svm: LiteSVM,
}

impl Default for TestChain {
    fn default() -> Self {
        Self::new()
    }
}

impl TestChain {
    pub fn new() -> Self {
        let mut svm = LiteSVM::new()
            .with_sigverify(true)
            .with_blockhash_check(true)
            .with_log_bytes_limit(None);
        svm.add_builtin(dagger::ID, builtin::<DaggerProgram>());
        let mut clock: Clock = svm.get_sysvar();
        clock.unix_timestamp = 1_750_000_000;
        svm.set_sysvar(&clock);
        TestChain { svm }
    }

    /// A new keypair holding `lamports`.
    pub fn funded(&mut self, lamports: u64) -> Keypair {
        let keypair = Keypair::new();
        self.svm
            .airdrop(&keypair.pubkey(), lamports)
            .expect("airdrop");
        keypair
    }

    /// Adds `lamports` to an existing account (outside any transaction).
    pub fn airdrop(&mut self, to: &Pubkey, lamports: u64) {
        self.svm.airdrop(to, lamports).expect("airdrop");
    }

    /// Sends one transaction; the first signer pays the fee.
    pub fn send(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<TransactionMetadata, Failure> {
        let payer = signers.first().expect("a fee payer").pubkey();
        let tx = Transaction::new_signed_with_payer(
            instructions,
            Some(&payer),
            signers,
            self.svm.latest_blockhash(),
        );
        // A fresh blockhash per transaction, so identical retries are new transactions.
        let result = self.svm.send_transaction(tx);
        self.svm.expire_blockhash();
        result.map_err(|failed| Failure {
            error: failed.err,
            logs: failed.meta.logs,
        })
    }

    /// Sends a transaction that must succeed.
    pub fn ok(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> TransactionMetadata {
        match self.send(instructions, signers) {
            Ok(meta) => meta,
            Err(failure) => panic!(
                "transaction failed: {:?}\n{}",
                failure.error,
                failure.logs.join("\n")
            ),
        }
    }

    /// Sends a transaction that must fail, and returns why.
    pub fn fail(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> ProgramFailure {
        match self.send(instructions, signers) {
            Ok(_) => panic!("transaction unexpectedly succeeded"),
            Err(failure) => failure.program(),
        }
    }

    pub fn now(&self) -> i64 {
        self.svm.get_sysvar::<Clock>().unix_timestamp
    }

    /// Moves the clock forward by `seconds` (and the slot with it).
    pub fn warp(&mut self, seconds: i64) {
        let mut clock: Clock = self.svm.get_sysvar();
        clock.unix_timestamp += seconds;
        clock.slot += (seconds.max(0) as u64) * 2 + 1;
        self.svm.set_sysvar(&clock);
    }

    pub fn lamports(&self, address: &Pubkey) -> u64 {
        self.svm.get_balance(address).unwrap_or(0)
    }

    pub fn raw_account(&self, address: &Pubkey) -> Option<Account> {
        self.svm
            .get_account(address)
            .filter(|a| a.lamports > 0 || !a.data.is_empty())
    }

    pub fn exists(&self, address: &Pubkey) -> bool {
        self.raw_account(address).is_some()
    }

    /// Decodes a program account, or `None` when the address holds none of
    /// the program's accounts (absent, or only lamports someone sent).
    pub fn account<T: AccountDeserialize + Discriminator>(&self, address: &Pubkey) -> Option<T> {
        let account = self
            .raw_account(address)
            .filter(|a| a.owner == dagger::ID)?;
        Some(decode::<T>(&account.data).expect("account decodes"))
    }

    pub fn rent(&self, data_len: usize) -> u64 {
        self.svm.minimum_balance_for_rent_exemption(data_len)
    }
}
