//! Account types, one file each.

mod attestation;
mod config;
mod evidence;
mod genesis;
mod operator;
mod request;
mod vault;

pub use attestation::*;
pub use config::*;
pub use evidence::*;
pub use genesis::*;
pub use operator::*;
pub use request::*;
pub use vault::*;
