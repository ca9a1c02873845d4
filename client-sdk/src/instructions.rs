//! One pure builder per program instruction. Builders derive every PDA
//! themselves, so a caller only names the wallets and keys involved.

use anchor_lang::{
    prelude::Pubkey,
    solana_program::sysvar::SysvarId,
    solana_program::{instruction::Instruction, system_program},
    InstructionData, ToAccountMetas,
};
use dagger::{
    accounts as accs, instruction as ix,
    state::{Capacity, VmSpec, Vote},
    CreateRequestArgs, InitializeArgs, RegisterOperatorArgs, UpdateConfigArgs, UpdateOperatorArgs,
    ID,
};

use crate::pda;

fn build(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: ID,
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

/// Creates the config. `program_data` is required when the program is
/// deployed upgradeable (its upgrade authority must be `admin`).
pub fn initialize(
    admin: &Pubkey,
    program_data: Option<Pubkey>,
    args: InitializeArgs,
) -> Instruction {
    build(
        accs::Initialize {
            admin: *admin,
            config: pda::config().0,
            program: ID,
            program_data,
            system_program: system_program::ID,
        },
        ix::Initialize { args },
    )
}

pub fn update_config(admin: &Pubkey, args: UpdateConfigArgs) -> Instruction {
    build(
        accs::UpdateConfig {
            admin: *admin,
            config: pda::config().0,
        },
        ix::UpdateConfig { args },
    )
}

/// Admits a pending operator into the genesis roster (admin, before bootstrap).
pub fn bootstrap_admit(admin: &Pubkey, node_key: &Pubkey) -> Instruction {
    build(
        accs::BootstrapAdmit {
            admin: *admin,
            config: pda::config().0,
            operator: pda::operator(node_key).0,
        },
        ix::BootstrapAdmit {},
    )
}

pub fn finish_bootstrap(admin: &Pubkey) -> Instruction {
    build(
        accs::FinishBootstrap {
            admin: *admin,
            config: pda::config().0,
        },
        ix::FinishBootstrap {},
    )
}

/// Registers and stakes an operator. Both `owner` and `node_key` sign.
pub fn register_operator(
    owner: &Pubkey,
    node_key: &Pubkey,
    address: String,
    capacity: Capacity,
    stake: u64,
) -> Instruction {
    let operator = pda::operator(node_key).0;
    build(
        accs::RegisterOperator {
            owner: *owner,
            node_key: *node_key,
            config: pda::config().0,
            operator,
            stake_vault: pda::stake_vault(&operator).0,
            system_program: system_program::ID,
        },
        ix::RegisterOperator {
            args: RegisterOperatorArgs {
                address,
                capacity,
                stake,
            },
        },
    )
}

pub fn add_stake(owner: &Pubkey, node_key: &Pubkey, amount: u64) -> Instruction {
    let operator = pda::operator(node_key).0;
    build(
        accs::AddStake {
            owner: *owner,
            config: pda::config().0,
            operator,
            stake_vault: pda::stake_vault(&operator).0,
            system_program: system_program::ID,
        },
        ix::AddStake { amount },
    )
}

pub fn update_operator(
    owner: &Pubkey,
    node_key: &Pubkey,
    address: Option<String>,
    capacity: Option<Capacity>,
) -> Instruction {
    build(
        accs::UpdateOperator {
            owner: *owner,
            operator: pda::operator(node_key).0,
        },
        ix::UpdateOperator {
            args: UpdateOperatorArgs { address, capacity },
        },
    )
}

pub fn request_unstake(owner: &Pubkey, node_key: &Pubkey) -> Instruction {
    build(
        accs::RequestUnstake {
            owner: *owner,
            config: pda::config().0,
            operator: pda::operator(node_key).0,
        },
        ix::RequestUnstake {},
    )
}

pub fn withdraw_stake(owner: &Pubkey, node_key: &Pubkey) -> Instruction {
    let operator = pda::operator(node_key).0;
    build(
        accs::WithdrawStake {
            owner: *owner,
            operator,
            stake_vault: pda::stake_vault(&operator).0,
        },
        ix::WithdrawStake {},
    )
}

/// Opens request `request_id` and pays `price_per_second × duration` into escrow.
pub fn create_request(
    customer: &Pubkey,
    request_id: u64,
    spec: VmSpec,
    price_per_second: u64,
    duration: u64,
) -> Instruction {
    let request = pda::request(customer, request_id).0;
    build(
        accs::CreateRequest {
            customer: *customer,
            config: pda::config().0,
            request,
            escrow: pda::escrow(&request).0,
            system_program: system_program::ID,
        },
        ix::CreateRequest {
            args: CreateRequestArgs {
                request_id,
                spec,
                price_per_second,
                duration,
            },
        },
    )
}

pub fn top_up(customer: &Pubkey, request: &Pubkey, added_seconds: u64) -> Instruction {
    build(
        accs::TopUp {
            customer: *customer,
            request: *request,
            escrow: pda::escrow(request).0,
            system_program: system_program::ID,
        },
        ix::TopUp { added_seconds },
    )
}

pub fn cancel_request(customer: &Pubkey, request: &Pubkey) -> Instruction {
    build(
        accs::CancelRequest {
            customer: *customer,
            request: *request,
            escrow: pda::escrow(request).0,
        },
        ix::CancelRequest {},
    )
}

/// Refunds an expired request to its customer; anyone may send it.
pub fn reclaim_expired(request: &Pubkey, customer: &Pubkey) -> Instruction {
    build(
        accs::ReclaimExpired {
            request: *request,
            escrow: pda::escrow(request).0,
            customer: *customer,
            clock: anchor_lang::prelude::Clock::id(),
        },
        ix::ReclaimExpired {},
    )
}

/// One vote by `node_key`. `rent_payer` is the attestation's recorded rent
/// payer when the tally exists already, otherwise `node_key` itself.
pub fn attest(
    node_key: &Pubkey,
    rent_payer: &Pubkey,
    roster_epoch: u64,
    vote: Vote,
) -> Instruction {
    let voter = pda::operator(node_key).0;
    let (request, subject_operator, assigned_operator) = match vote {
        Vote::Provision {
            request, operator, ..
        } => (Some(request), None, (operator != voter).then_some(operator)),
        Vote::Terminate { request, .. } => (Some(request), None, None),
        Vote::Admit { operator, .. } => (None, Some(operator), None),
        Vote::Remove { operator, .. } => (None, (operator != voter).then_some(operator), None),
    };
    build(
        accs::Attest {
            node_key: *node_key,
            config: pda::config().0,
            voter,
            attestation: pda::attestation(&vote.subject()).0,
            rent_payer: *rent_payer,
            request,
            subject_operator,
            assigned_operator,
            system_program: system_program::ID,
        },
        ix::Attest { roster_epoch, vote },
    )
}

/// The lease's operator claims what accrued. `treasury` is the config's.
pub fn claim(
    owner: &Pubkey,
    node_key: &Pubkey,
    request: &Pubkey,
    customer: &Pubkey,
    treasury: &Pubkey,
) -> Instruction {
    build(
        accs::Claim {
            owner: *owner,
            config: pda::config().0,
            operator: pda::operator(node_key).0,
            request: *request,
            escrow: pda::escrow(request).0,
            treasury: *treasury,
            customer: *customer,
        },
        ix::Claim {},
    )
}

/// The customer ends a lease: `operator` is the lease's Operator account and
/// `operator_owner` its wallet.
pub fn close_lease(
    customer: &Pubkey,
    request: &Pubkey,
    operator: &Pubkey,
    operator_owner: &Pubkey,
    treasury: &Pubkey,
) -> Instruction {
    build(
        accs::CloseLease {
            customer: *customer,
            config: pda::config().0,
            request: *request,
            escrow: pda::escrow(request).0,
            operator: *operator,
            operator_owner: *operator_owner,
            treasury: *treasury,
        },
        ix::CloseLease {},
    )
}
