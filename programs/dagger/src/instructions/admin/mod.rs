pub mod accept_admin;
pub mod bootstrap_admit;
pub mod finish_bootstrap;
pub mod initialize;
pub mod propose_admin;
pub mod reopen_bootstrap;
pub mod update_config;
pub mod withdraw_fees;

pub use accept_admin::*;
pub use bootstrap_admit::*;
pub use finish_bootstrap::*;
pub use initialize::*;
pub use propose_admin::*;
pub use reopen_bootstrap::*;
pub use update_config::*;
pub use withdraw_fees::*;
