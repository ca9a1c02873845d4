//! Test harness: the DAGGER program registered natively in LiteSVM (a real
//! Solana runtime with signature and blockhash checks on), driven only
//! through the client SDK's instruction builders.

pub mod chain;
pub mod fixtures;

pub use chain::{Failure, TestChain};
pub use fixtures::*;
