//! DAGGER on-chain program: the operator registry, customers' payment escrow,
//! leases, and the stake-weighted quorum attestations that connect them to the
//! operators' off-chain consensus.
//!
//! `lib.rs` only dispatches; each instruction lives in its own file under
//! `instructions/<role>/`.

use anchor_lang::prelude::*;

pub mod constants;
pub mod errors;
pub mod events;
pub mod instructions;
pub mod lamports;
pub mod settlement;
pub mod state;

pub use instructions::*;
pub use state::*;

declare_id!("DAGGRvZ7zX8s7yT1Hn3W8pRkJ4dQe2bLmC9fVuNaPq1k");

#[program]
pub mod dagger {
    use super::*;

    pub fn initialize(ctx: Context<Initialize>, args: InitializeArgs) -> Result<()> {
        instructions::admin::initialize::handler(ctx, args)
    }

    pub fn update_config(ctx: Context<UpdateConfig>, args: UpdateConfigArgs) -> Result<()> {
        instructions::admin::update_config::handler(ctx, args)
    }

    pub fn bootstrap_admit(ctx: Context<BootstrapAdmit>) -> Result<()> {
        instructions::admin::bootstrap_admit::handler(ctx)
    }

    pub fn finish_bootstrap(ctx: Context<FinishBootstrap>) -> Result<()> {
        instructions::admin::finish_bootstrap::handler(ctx)
    }

    pub fn reopen_bootstrap(ctx: Context<ReopenBootstrap>) -> Result<()> {
        instructions::admin::reopen_bootstrap::handler(ctx)
    }

    pub fn propose_admin(ctx: Context<ProposeAdmin>, proposed: Pubkey) -> Result<()> {
        instructions::admin::propose_admin::handler(ctx, proposed)
    }

    pub fn accept_admin(ctx: Context<AcceptAdmin>) -> Result<()> {
        instructions::admin::accept_admin::handler(ctx)
    }

    pub fn withdraw_fees(ctx: Context<WithdrawFees>, amount: u64) -> Result<()> {
        instructions::admin::withdraw_fees::handler(ctx, amount)
    }

    pub fn register_operator(
        ctx: Context<RegisterOperator>,
        args: RegisterOperatorArgs,
    ) -> Result<()> {
        instructions::operator::register_operator::handler(ctx, args)
    }

    pub fn add_stake(ctx: Context<AddStake>, amount: u64) -> Result<()> {
        instructions::operator::add_stake::handler(ctx, amount)
    }

    pub fn update_operator(ctx: Context<UpdateOperator>, args: UpdateOperatorArgs) -> Result<()> {
        instructions::operator::update_operator::handler(ctx, args)
    }

    pub fn request_unstake(ctx: Context<RequestUnstake>) -> Result<()> {
        instructions::operator::request_unstake::handler(ctx)
    }

    pub fn withdraw_stake(ctx: Context<WithdrawStake>) -> Result<()> {
        instructions::operator::withdraw_stake::handler(ctx)
    }

    pub fn withdraw_earnings(ctx: Context<WithdrawEarnings>) -> Result<()> {
        instructions::operator::withdraw_earnings::handler(ctx)
    }

    pub fn close_operator(ctx: Context<CloseOperator>) -> Result<()> {
        instructions::operator::close_operator::handler(ctx)
    }

    pub fn create_request(ctx: Context<CreateRequest>, args: CreateRequestArgs) -> Result<()> {
        instructions::customer::create_request::handler(ctx, args)
    }

    pub fn top_up(ctx: Context<TopUp>, added_seconds: u64) -> Result<()> {
        instructions::customer::top_up::handler(ctx, added_seconds)
    }

    pub fn cancel_request(ctx: Context<CancelRequest>) -> Result<()> {
        instructions::customer::cancel_request::handler(ctx)
    }

    pub fn reclaim_expired(ctx: Context<ReclaimExpired>) -> Result<()> {
        instructions::customer::reclaim_expired::handler(ctx)
    }

    pub fn attest(ctx: Context<Attest>, roster_epoch: u64, vote: Vote) -> Result<()> {
        instructions::node::attest::handler(ctx, roster_epoch, vote)
    }

    pub fn close_tally(ctx: Context<CloseTally>) -> Result<()> {
        instructions::node::close_tally::handler(ctx)
    }

    pub fn claim(ctx: Context<Claim>) -> Result<()> {
        instructions::operator::claim::handler(ctx)
    }

    pub fn close_lease(ctx: Context<CloseLease>) -> Result<()> {
        instructions::customer::close_lease::handler(ctx)
    }

    /// Anyone: prove that an operator's node signed two conflicting events
    /// (the two Ed25519 signature checks come as the two instructions right
    /// before this one). Slashes and removes the operator, pays the reporter.
    pub fn report_equivocation(
        ctx: Context<ReportEquivocation>,
        first_header: Vec<u8>,
        second_header: Vec<u8>,
    ) -> Result<()> {
        instructions::reporter::report_equivocation::handler(ctx, first_header, second_header)
    }
}
