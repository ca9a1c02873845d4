//! Account types, one file each.

mod attestation;
mod config;
mod evidence;
mod genesis;
mod node_key;
mod operator;
mod request;
mod vault;

pub use attestation::*;
pub use config::*;
pub use evidence::*;
pub use genesis::*;
pub use node_key::*;
pub use operator::*;
pub use request::*;
pub use vault::*;
