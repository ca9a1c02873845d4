//! Program failures as typed errors.

pub use anchor_lang::error::ErrorCode as AnchorErrorCode;
use anchor_lang::{prelude::Pubkey, solana_program::instruction::error::InstructionError};
pub use dagger::errors::DaggerError;
use solana_transaction_error::TransactionError;

/// Why the program (or the runtime around it) refused an instruction.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProgramFailure {
    /// One of DAGGER's own errors.
    #[error("DAGGER error {name}: {0}", name = .0.name())]
    Dagger(DaggerError),
    /// A check Anchor makes before the handler runs (seeds, owner, signer...).
    #[error("Anchor error {name}: {0}", name = .0.name())]
    Anchor(AnchorErrorCode),
    /// A custom code that is neither DAGGER's nor Anchor's.
    #[error("unknown custom program error {0}")]
    UnknownCustom(u32),
    /// A runtime error that is not a custom program error.
    #[error("runtime error: {0}")]
    Runtime(InstructionError),
}

impl ProgramFailure {
    /// The failing instruction's index and failure, when the transaction error
    /// came from an instruction.
    pub fn from_transaction_error(err: &TransactionError) -> Option<(u8, ProgramFailure)> {
        match err {
            TransactionError::InstructionError(index, ix_err) => {
                Some((*index, ProgramFailure::from_instruction_error(ix_err)))
            }
            _ => None,
        }
    }

    pub fn from_instruction_error(err: &InstructionError) -> ProgramFailure {
        match err {
            InstructionError::Custom(code) => ProgramFailure::from_code(*code),
            other => ProgramFailure::Runtime(other.clone()),
        }
    }

    /// Maps a custom error code to DAGGER's or Anchor's error.
    pub fn from_code(code: u32) -> ProgramFailure {
        if let Some(error) = DaggerError::from_code(code) {
            return ProgramFailure::Dagger(error);
        }
        match anchor_error(code) {
            Some(error) => ProgramFailure::Anchor(error),
            None => ProgramFailure::UnknownCustom(code),
        }
    }

    /// The custom error code, when there is one.
    pub fn code(&self) -> Option<u32> {
        match self {
            ProgramFailure::Dagger(e) => Some(u32::from(*e)),
            ProgramFailure::Anchor(e) => Some(u32::from(*e)),
            ProgramFailure::UnknownCustom(code) => Some(*code),
            ProgramFailure::Runtime(_) => None,
        }
    }

    /// True when this is the given DAGGER error.
    pub fn is(&self, expected: DaggerError) -> bool {
        matches!(self, ProgramFailure::Dagger(e) if u32::from(*e) == u32::from(expected))
    }

    /// True when this is the given Anchor framework error.
    pub fn is_anchor(&self, expected: AnchorErrorCode) -> bool {
        matches!(self, ProgramFailure::Anchor(e) if u32::from(*e) == u32::from(expected))
    }
}

/// Anchor's framework errors a client can meet, by code.
fn anchor_error(code: u32) -> Option<AnchorErrorCode> {
    use AnchorErrorCode::*;
    const KNOWN: &[AnchorErrorCode] = &[
        InstructionMissing,
        InstructionFallbackNotFound,
        InstructionDidNotDeserialize,
        InstructionDidNotSerialize,
        ConstraintMut,
        ConstraintHasOne,
        ConstraintSigner,
        ConstraintRaw,
        ConstraintOwner,
        ConstraintRentExempt,
        ConstraintSeeds,
        ConstraintExecutable,
        ConstraintState,
        ConstraintAssociated,
        ConstraintAssociatedInit,
        ConstraintClose,
        ConstraintAddress,
        ConstraintZero,
        ConstraintSpace,
        ConstraintDuplicateMutableAccount,
        RequireViolated,
        RequireEqViolated,
        RequireKeysEqViolated,
        RequireNeqViolated,
        RequireKeysNeqViolated,
        RequireGtViolated,
        RequireGteViolated,
        AccountDiscriminatorAlreadySet,
        AccountDiscriminatorNotFound,
        AccountDiscriminatorMismatch,
        AccountDidNotDeserialize,
        AccountDidNotSerialize,
        AccountNotEnoughKeys,
        AccountNotMutable,
        AccountOwnedByWrongProgram,
        InvalidProgramId,
        InvalidProgramExecutable,
        AccountNotSigner,
        AccountNotSystemOwned,
        AccountNotInitialized,
        AccountNotProgramData,
        AccountSysvarMismatch,
        AccountReallocExceedsLimit,
        AccountDuplicateReallocs,
        DeclaredProgramIdMismatch,
        TryingToInitPayerAsProgramAccount,
    ];
    KNOWN
        .iter()
        .copied()
        .find(|known| u32::from(*known) == code)
}

/// Errors of the SDK: program refusals (with the transaction's logs), RPC
/// failures, missing accounts, timeouts and the lease states a customer can
/// run into while waiting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("account data is not a valid {account_type}: {reason}")]
    Decode {
        account_type: &'static str,
        reason: String,
    },
    /// The program (or Anchor or the runtime on its behalf) refused an
    /// instruction. `index` counts the caller's instructions only (compute
    /// budget instructions the SDK adds are not counted); `logs` are the
    /// transaction's log lines, from preflight simulation or from the
    /// confirmed transaction's metadata.
    #[error("program refused instruction {index}: {failure}")]
    Program {
        index: u8,
        failure: ProgramFailure,
        logs: Vec<String>,
        signature: Option<String>,
    },
    /// The transaction failed for a reason that is not an instruction's
    /// (the fee payer cannot pay, a blockhash is unknown, ...).
    #[error("transaction failed: {error}{hint}", hint = transaction_hint(.error))]
    Transaction {
        error: TransactionError,
        logs: Vec<String>,
        signature: Option<String>,
    },
    /// Checked before sending, so no fee is spent on a transaction that would
    /// fail for want of lamports.
    #[error(
        "insufficient funds: {wallet} has {available} lamports but needs {needed} \
         (amount, rent of new accounts and fees)"
    )]
    InsufficientFunds {
        wallet: Pubkey,
        needed: u64,
        available: u64,
    },
    #[error("{kind} {address} not found{hint}", hint = not_found_hint(kind))]
    NotFound { kind: &'static str, address: Pubkey },
    /// An account exists at the address but the DAGGER program does not own it.
    #[error("{address} is not a DAGGER {kind} (owned by {owner})")]
    WrongOwner {
        kind: &'static str,
        address: Pubkey,
        owner: Pubkey,
    },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        what: String,
        after: std::time::Duration,
    },
    /// The blockhash expired before the transaction was seen: it was dropped.
    #[error("transaction {signature} expired before it was confirmed (it did not land)")]
    TransactionExpired { signature: String },
    #[error(
        "request {request} no longer exists: it was cancelled, reclaimed after its deadline, \
         or its lease was closed and settled"
    )]
    RequestClosed { request: Pubkey },
    #[error("the lease of request {request} was terminated by the operators' quorum")]
    LeaseTerminated { request: Pubkey },
    #[error(
        "request {request} expired: its provisioning deadline {deadline} passed (cluster time \
         {now}) without a quorum; reclaim the deposit with `reclaim`"
    )]
    RequestExpired {
        request: Pubkey,
        deadline: i64,
        now: i64,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A node's answer about a VM's endpoint could not be used or does not
    /// match what the quorum attested on-chain.
    #[error("VM endpoint: {0}")]
    Endpoint(String),
    #[error("signing failed: {0}")]
    Signer(String),
    /// Equivocation evidence the program would refuse (checked before
    /// anything is sent).
    #[error("evidence: {0}")]
    Evidence(#[from] crate::evidence::EvidenceError),
    /// Display includes the RPC error itself, so it is not also a `source`
    /// (which would print it twice in an error chain).
    #[cfg(feature = "rpc")]
    #[error("RPC error: {0}")]
    Rpc(Box<solana_rpc_client_api::client_error::Error>),
}

#[cfg(feature = "rpc")]
impl From<Box<solana_rpc_client_api::client_error::Error>> for ClientError {
    fn from(error: Box<solana_rpc_client_api::client_error::Error>) -> Self {
        ClientError::Rpc(error)
    }
}

impl ClientError {
    /// The program failure, when the program refused an instruction.
    pub fn program_failure(&self) -> Option<&ProgramFailure> {
        match self {
            ClientError::Program { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// True when the program refused with this DAGGER error.
    pub fn is_dagger(&self, expected: DaggerError) -> bool {
        self.program_failure().is_some_and(|f| f.is(expected))
    }

    /// The transaction's log lines, when the failure came with any.
    pub fn logs(&self) -> &[String] {
        match self {
            ClientError::Program { logs, .. } | ClientError::Transaction { logs, .. } => logs,
            _ => &[],
        }
    }

    /// The failed transaction's signature, when it was sent.
    pub fn signature(&self) -> Option<&str> {
        match self {
            ClientError::Program { signature, .. } | ClientError::Transaction { signature, .. } => {
                signature.as_deref()
            }
            ClientError::TransactionExpired { signature } => Some(signature),
            _ => None,
        }
    }

    /// Sorts a transaction error into [`ClientError::Program`] (an
    /// instruction failed) or [`ClientError::Transaction`]. `skipped` is the
    /// number of instructions the SDK put in front of the caller's.
    pub fn from_transaction_error(
        error: TransactionError,
        skipped: u8,
        logs: Vec<String>,
        signature: Option<String>,
    ) -> ClientError {
        match ProgramFailure::from_transaction_error(&error) {
            Some((index, failure)) if index >= skipped => ClientError::Program {
                index: index - skipped,
                failure,
                logs,
                signature,
            },
            _ => ClientError::Transaction {
                error,
                logs,
                signature,
            },
        }
    }
}

fn transaction_hint(error: &TransactionError) -> &'static str {
    match error {
        TransactionError::AccountNotFound => {
            " (the fee payer has no SOL on this cluster: fund it first)"
        }
        TransactionError::InsufficientFundsForFee => " (the fee payer cannot pay the fee)",
        TransactionError::BlockhashNotFound => " (the blockhash expired: try again)",
        _ => "",
    }
}

fn not_found_hint(kind: &str) -> &'static str {
    match kind {
        "config" => " (DAGGER is not initialised on this cluster: run `dagger-migrate`)",
        "request" => " (never created, or already cancelled, reclaimed or closed)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_codes_to_typed_errors() {
        let code = u32::from(DaggerError::StaleEpoch);
        assert!(ProgramFailure::from_code(code).is(DaggerError::StaleEpoch));
        let seeds = u32::from(AnchorErrorCode::ConstraintSeeds);
        assert!(ProgramFailure::from_code(seeds).is_anchor(AnchorErrorCode::ConstraintSeeds));
        assert!(matches!(
            ProgramFailure::from_code(1),
            ProgramFailure::UnknownCustom(1)
        ));
        let tx = TransactionError::InstructionError(2, InstructionError::Custom(code));
        let (index, failure) = ProgramFailure::from_transaction_error(&tx).unwrap();
        assert_eq!(index, 2);
        assert_eq!(failure.code(), Some(code));
        assert!(
            ProgramFailure::from_transaction_error(&TransactionError::AccountNotFound).is_none()
        );
        let runtime = ProgramFailure::from_instruction_error(&InstructionError::MissingAccount);
        assert!(matches!(runtime, ProgramFailure::Runtime(_)));
        assert_eq!(runtime.code(), None);
    }

    #[test]
    fn every_error_in_the_idl_maps_to_a_typed_error() {
        let idl: serde_json::Value =
            serde_json::from_str(include_str!("../../programs/dagger/idl/dagger.json"))
                .expect("IDL is valid JSON");
        let errors = idl["errors"].as_array().expect("IDL lists errors");
        assert_eq!(errors.len(), DaggerError::ALL.len());
        for error in errors {
            let code = error["code"].as_u64().unwrap() as u32;
            let name = error["name"].as_str().unwrap();
            match ProgramFailure::from_code(code) {
                ProgramFailure::Dagger(e) => {
                    // IDL names are camelCase, Rust names PascalCase.
                    assert!(
                        e.name().eq_ignore_ascii_case(name),
                        "{name} vs {}",
                        e.name()
                    )
                }
                other => panic!("IDL error {name} ({code}) maps to {other:?}"),
            }
        }
    }
}
