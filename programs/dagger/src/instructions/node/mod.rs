pub mod attest;
pub mod close_tally;

pub use attest::*;
pub use close_tally::*;
