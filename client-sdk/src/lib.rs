//! Client SDK for the DAGGER program.
//!
//! Always available (no RPC stack):
//! - [`pda`]: every program-derived address, as `(Pubkey, bump)`.
//! - [`instructions`]: one pure builder per program instruction.
//! - [`accounts`]: typed decoding of the program's accounts.
//! - [`layout`]: field offsets for `getProgramAccounts` memcmp filters.
//! - [`errors`]: program failures mapped to typed Rust errors.
//! - [`evidence`]: equivocation evidence, checked as the program checks it.
//!
//! With the default `rpc` feature, an async client over anchor-client and
//! the Solana RPC client: [`DaggerClient`] and its faces
//! [`CustomerClient`], [`OperatorClient`], [`NodeClient`] and [`Reader`],
//! plus a [`TransactionBuilder`] with priority fees. The `dagger`
//! command-line tool is built on it in its own crate, `dagger-cli`.
//!
//! The builders are what the program's own runtime tests use, so every one of
//! them is exercised against the real program.

pub mod accounts;
pub mod errors;
pub mod evidence;
pub mod images;
pub mod instructions;
pub mod layout;
pub mod pda;
pub mod ssh;

#[cfg(feature = "rpc")]
mod client;
#[cfg(feature = "rpc")]
pub mod cluster;
#[cfg(feature = "rpc")]
mod customer;
pub mod endpoint;
#[cfg(feature = "rpc")]
mod node;
#[cfg(feature = "rpc")]
mod operator;
#[cfg(feature = "rpc")]
mod reader;
#[cfg(feature = "rpc")]
mod slash;
#[cfg(feature = "rpc")]
mod tx;

pub use dagger::{
    constants,
    state::{
        split_fee, Allocation, Attestation, Ballot, Capacity, Config, EquivocationRecord, Escrow,
        FeeVault, Genesis, GenesisMember, NodeKeyRecord, Offer, OfferMismatch, Operator,
        OperatorStatus, Outcome, PriceFloor, Request, RequestStatus, StakeVault, Subject, VmSpec,
        Vote,
    },
    InitializeArgs, UpdateConfigArgs, UpdateOperatorArgs, ID as PROGRAM_ID,
};
pub use errors::{ClientError, ProgramFailure};

#[cfg(feature = "rpc")]
pub use {
    anchor_client::{Cluster, CommitmentConfig},
    client::{ClientOptions, DaggerClient, SharedSigner, SignerRef, Wallet},
    customer::{ActiveLease, CreatedRequest, CustomerClient, WaitProgress, WatchMethod},
    node::{AttestOutcome, NodeClient},
    operator::OperatorClient,
    reader::{OperatorFilter, Reader, RequestFilter},
    slash::SlashOutcome,
    tx::{TransactionBuilder, TxOptions},
};
