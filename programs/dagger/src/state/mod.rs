//! Account types, one file each.

mod attestation;
mod config;
mod genesis;
mod operator;
mod request;
mod vault;

pub use attestation::*;
pub use config::*;
pub use genesis::*;
pub use operator::*;
pub use request::*;
pub use vault::*;
