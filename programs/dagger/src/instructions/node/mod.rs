pub mod attest;

pub use attest::*;
