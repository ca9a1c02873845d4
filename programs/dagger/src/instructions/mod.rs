//! One file per instruction, grouped by who calls it.

pub mod admin;
pub mod customer;
pub mod node;
pub mod operator;
pub mod reporter;

pub use admin::*;
pub use customer::*;
pub use node::*;
pub use operator::*;
pub use reporter::*;
