//! Client SDK for the DAGGER program.
//!
//! - [`pda`]: every program-derived address, as `(Pubkey, bump)`.
//! - [`instructions`]: one pure builder per program instruction.
//! - [`accounts`]: typed decoding of the program's accounts.
//! - [`errors`]: program failures mapped to typed Rust errors.
//!
//! The builders are what the program's own runtime tests use, so every one of
//! them is exercised against the real program.

pub mod accounts;
pub mod errors;
pub mod instructions;
pub mod pda;

pub use dagger::{
    constants,
    state::{
        Attestation, Ballot, Capacity, Config, Escrow, Operator, OperatorStatus, Outcome, Request,
        RequestStatus, StakeVault, Subject, VmSpec, Vote,
    },
    InitializeArgs, UpdateConfigArgs, UpdateOperatorArgs, ID as PROGRAM_ID,
};
pub use errors::{ClientError, ProgramFailure};
