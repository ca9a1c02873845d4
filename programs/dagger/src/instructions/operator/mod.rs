pub mod add_stake;
pub mod claim;
pub mod close_operator;
pub mod register_operator;
pub mod request_unstake;
pub mod update_operator;
pub mod withdraw_earnings;
pub mod withdraw_stake;

pub use add_stake::*;
pub use claim::*;
pub use close_operator::*;
pub use register_operator::*;
pub use request_unstake::*;
pub use update_operator::*;
pub use withdraw_earnings::*;
pub use withdraw_stake::*;
