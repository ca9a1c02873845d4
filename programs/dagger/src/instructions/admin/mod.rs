pub mod bootstrap_admit;
pub mod finish_bootstrap;
pub mod initialize;
pub mod update_config;

pub use bootstrap_admit::*;
pub use finish_bootstrap::*;
pub use initialize::*;
pub use update_config::*;
