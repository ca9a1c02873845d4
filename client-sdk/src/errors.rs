//! Program failures as typed errors.

pub use anchor_lang::error::ErrorCode as AnchorErrorCode;
use anchor_lang::solana_program::instruction::error::InstructionError;
pub use dagger::errors::DaggerError;
use solana_transaction_error::TransactionError;

/// Why the program (or the runtime around it) refused an instruction.
#[derive(Debug, Clone, thiserror::Error)]
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

/// Errors of the SDK itself.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("account data is not a valid {account_type}: {reason}")]
    Decode {
        account_type: &'static str,
        reason: String,
    },
    #[error("program refused instruction {index}: {failure}")]
    Program { index: u8, failure: ProgramFailure },
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
