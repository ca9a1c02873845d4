use anchor_lang::prelude::*;

#[error_code]
pub enum DaggerError {
    #[msg("Signer is not the configured admin")]
    Unauthorized,
    #[msg("Only the program's upgrade authority may initialize the config")]
    NotUpgradeAuthority,
    #[msg("The program data account does not belong to this program")]
    InvalidProgramData,
    #[msg("Protocol fee is above the allowed maximum")]
    FeeTooHigh,
    #[msg("A duration or period must be greater than zero")]
    ZeroDuration,
    #[msg("Minimum operator stake must be greater than zero")]
    ZeroMinimumStake,
    #[msg("Stake is below the configured minimum")]
    InsufficientStake,
    #[msg("Amount must be greater than zero")]
    ZeroAmount,
    #[msg("Arithmetic overflow")]
    Overflow,
    #[msg("The network is already bootstrapped; membership changes need a quorum attestation")]
    AlreadyBootstrapped,
    #[msg("The network is not bootstrapped yet")]
    NotBootstrapped,
    #[msg("Bootstrap needs at least one active operator")]
    EmptyRoster,
    #[msg("The active roster is full")]
    RosterFull,
    #[msg("Operator is not in the state this instruction needs")]
    InvalidOperatorStatus,
    #[msg("Operator is not active")]
    OperatorNotActive,
    #[msg("Network address is empty or too long")]
    InvalidAddress,
    #[msg("Capacity must have at least one vCPU, some memory and some disk")]
    InvalidCapacity,
    #[msg("The unbonding period has not ended yet")]
    UnbondingNotFinished,
    #[msg("The VM spec is invalid")]
    InvalidSpec,
    #[msg("Price must be greater than zero")]
    ZeroPrice,
    #[msg("Request is not open")]
    RequestNotOpen,
    #[msg("Request is not an active lease")]
    LeaseNotActive,
    #[msg("The lease has already ended")]
    LeaseEnded,
    #[msg("The provisioning deadline has not passed yet")]
    DeadlineNotReached,
    #[msg("The provisioning deadline has passed")]
    RequestExpired,
    #[msg("Vote is for an older roster epoch")]
    StaleEpoch,
    #[msg("Vote names a roster epoch that does not exist yet")]
    FutureEpoch,
    #[msg("This operator already voted on this subject")]
    AlreadyVoted,
    #[msg("The subject was already decided by a quorum")]
    AlreadyApplied,
    #[msg("The subject account passed does not match the vote")]
    SubjectMismatch,
    #[msg("The vote needs the subject account it is about")]
    MissingSubjectAccount,
    #[msg("The assigned operator account passed does not match the vote")]
    AssignedOperatorMismatch,
    #[msg("Nothing to claim")]
    NothingToClaim,
    #[msg("Account does not match the one recorded in the request")]
    WrongAccount,
    #[msg("The treasury account does not match the config")]
    WrongTreasury,
    #[msg("Two accounts that must differ are the same")]
    DuplicateAccounts,
    #[msg("Signer is not the operator's owner")]
    NotOwner,
    #[msg("Signer is not the request's customer")]
    NotCustomer,
    #[msg("This would give one operator more than the allowed share of the active stake")]
    StakeCapExceeded,
    #[msg("A setting is outside its allowed range")]
    ValueOutOfBounds,
    #[msg("The treasury must be a wallet (a system account that is not executable)")]
    InvalidTreasury,
    #[msg("Signer is not the proposed admin")]
    NotPendingAdmin,
    #[msg("The bootstrap can only be reopened once the active stake has been zero for the recovery delay")]
    RecoveryNotAllowed,
    #[msg("The tally's subject is still pending in this roster epoch")]
    TallyStillOpen,
    #[msg("This customer already has a request with this id")]
    RequestIdInUse,
    #[msg("Only the account of an operator that withdrew its stake can be closed")]
    OperatorNotExited,
    #[msg("Nothing to withdraw")]
    NothingToWithdraw,
    #[msg("The operator still has leases that are not settled")]
    LeasesOutstanding,
    #[msg("The recorded genesis roster does not match the admitted operators")]
    GenesisMismatch,
    #[msg("A genesis operator cannot change or leave until the bootstrap is finished")]
    GenesisFrozen,
    #[msg(
        "An event header does not decode (truncated, unknown version, bad flag or trailing bytes)"
    )]
    MalformedHeader,
    #[msg("The two events have different creators")]
    DifferentCreators,
    #[msg("Both headers describe the same event")]
    SameEvent,
    #[msg("The two events can lie on one honest chain: no equivocation")]
    NotAConflict,
    #[msg("The events' creator is not this operator's node key")]
    CreatorNotOperator,
    #[msg("This pair of events was already reported")]
    EvidenceAlreadyReported,
    #[msg("The operator was already slashed for equivocation")]
    AlreadySlashed,
    #[msg("The operator has no stake left to slash")]
    NothingToSlash,
    #[msg(
        "Expected an Ed25519 signature-verify instruction right before (one per header, in order)"
    )]
    MissingSignatureCheck,
    #[msg("The Ed25519 instruction must verify exactly one signature and be well formed")]
    MalformedSignatureCheck,
    #[msg("The Ed25519 instruction's offsets must point into that same instruction")]
    SignatureCheckElsewhere,
    #[msg("The Ed25519 instruction verifies another public key than the operator's node key")]
    SignatureCheckWrongKey,
    #[msg("The Ed25519 instruction verifies a signature under another network id")]
    SignatureCheckWrongNetwork,
    #[msg("The Ed25519 instruction verifies another message than the header's signed message")]
    SignatureCheckWrongMessage,
    #[msg("The program is already initialized")]
    AlreadyInitialized,
    #[msg("This node key is registered (its operator account exists)")]
    NodeKeyInUse,
    #[msg("This node key was registered before: a node key serves one registration, register a new one")]
    NodeKeyRetired,
    #[msg("The offender's owner wallet or node key cannot report it (nor collect the reward)")]
    ReporterIsOffender,
    #[msg("Provisioning has started (votes were cast): the request can no longer be cancelled, wait for the lease or the deadline")]
    ProvisioningStarted,
    #[msg("The price is below the assigned operator's price floor")]
    BelowPriceFloor,
    #[msg("The request asks for another region than the assigned operator's")]
    WrongRegion,
    #[msg("The assigned operator has no capacity left for this request")]
    CapacityExceeded,
}

impl DaggerError {
    /// Every variant in code order, so clients can turn a custom error code
    /// back into a typed error (`DaggerError::from_code`).
    pub const ALL: [DaggerError; 72] = [
        DaggerError::Unauthorized,
        DaggerError::NotUpgradeAuthority,
        DaggerError::InvalidProgramData,
        DaggerError::FeeTooHigh,
        DaggerError::ZeroDuration,
        DaggerError::ZeroMinimumStake,
        DaggerError::InsufficientStake,
        DaggerError::ZeroAmount,
        DaggerError::Overflow,
        DaggerError::AlreadyBootstrapped,
        DaggerError::NotBootstrapped,
        DaggerError::EmptyRoster,
        DaggerError::RosterFull,
        DaggerError::InvalidOperatorStatus,
        DaggerError::OperatorNotActive,
        DaggerError::InvalidAddress,
        DaggerError::InvalidCapacity,
        DaggerError::UnbondingNotFinished,
        DaggerError::InvalidSpec,
        DaggerError::ZeroPrice,
        DaggerError::RequestNotOpen,
        DaggerError::LeaseNotActive,
        DaggerError::LeaseEnded,
        DaggerError::DeadlineNotReached,
        DaggerError::RequestExpired,
        DaggerError::StaleEpoch,
        DaggerError::FutureEpoch,
        DaggerError::AlreadyVoted,
        DaggerError::AlreadyApplied,
        DaggerError::SubjectMismatch,
        DaggerError::MissingSubjectAccount,
        DaggerError::AssignedOperatorMismatch,
        DaggerError::NothingToClaim,
        DaggerError::WrongAccount,
        DaggerError::WrongTreasury,
        DaggerError::DuplicateAccounts,
        DaggerError::NotOwner,
        DaggerError::NotCustomer,
        DaggerError::StakeCapExceeded,
        DaggerError::ValueOutOfBounds,
        DaggerError::InvalidTreasury,
        DaggerError::NotPendingAdmin,
        DaggerError::RecoveryNotAllowed,
        DaggerError::TallyStillOpen,
        DaggerError::RequestIdInUse,
        DaggerError::OperatorNotExited,
        DaggerError::NothingToWithdraw,
        DaggerError::LeasesOutstanding,
        DaggerError::GenesisMismatch,
        DaggerError::GenesisFrozen,
        DaggerError::MalformedHeader,
        DaggerError::DifferentCreators,
        DaggerError::SameEvent,
        DaggerError::NotAConflict,
        DaggerError::CreatorNotOperator,
        DaggerError::EvidenceAlreadyReported,
        DaggerError::AlreadySlashed,
        DaggerError::NothingToSlash,
        DaggerError::MissingSignatureCheck,
        DaggerError::MalformedSignatureCheck,
        DaggerError::SignatureCheckElsewhere,
        DaggerError::SignatureCheckWrongKey,
        DaggerError::SignatureCheckWrongNetwork,
        DaggerError::SignatureCheckWrongMessage,
        DaggerError::AlreadyInitialized,
        DaggerError::NodeKeyInUse,
        DaggerError::NodeKeyRetired,
        DaggerError::ReporterIsOffender,
        DaggerError::ProvisioningStarted,
        DaggerError::BelowPriceFloor,
        DaggerError::WrongRegion,
        DaggerError::CapacityExceeded,
    ];

    /// The error for a custom program error code, if it is one of ours.
    pub fn from_code(code: u32) -> Option<DaggerError> {
        let index = code.checked_sub(anchor_lang::error::ERROR_CODE_OFFSET)?;
        Self::ALL.get(index as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_variant_in_code_order() {
        for (index, error) in DaggerError::ALL.iter().enumerate() {
            let code = u32::from(*error);
            assert_eq!(code, anchor_lang::error::ERROR_CODE_OFFSET + index as u32);
            assert_eq!(DaggerError::from_code(code).map(u32::from), Some(code));
        }
        let past_end = anchor_lang::error::ERROR_CODE_OFFSET + DaggerError::ALL.len() as u32;
        assert!(DaggerError::from_code(past_end).is_none());
        assert!(DaggerError::from_code(0).is_none());
    }
}
