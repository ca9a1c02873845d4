//! Instructions anyone may call.

pub mod report_equivocation;

pub use report_equivocation::*;
