pub mod cancel_request;
pub mod close_lease;
pub mod create_request;
pub mod reclaim_expired;
pub mod top_up;

pub use cancel_request::*;
pub use close_lease::*;
pub use create_request::*;
pub use reclaim_expired::*;
pub use top_up::*;
