//! Account types, one file each.

mod attestation;
mod config;
mod operator;
mod request;
mod vault;

pub use attestation::*;
pub use config::*;
pub use operator::*;
pub use request::*;
pub use vault::*;
