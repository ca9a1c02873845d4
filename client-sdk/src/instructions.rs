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
    state::{Capacity, PriceFloor, Subject, VmSpec, Vote},
    CreateRequestArgs, InitializeArgs, RegisterOperatorArgs, UpdateConfigArgs, UpdateOperatorArgs,
    ID,
};

use crate::{evidence::SignedHeader, pda};

fn build(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: ID,
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

/// Creates the config and the fee vault. `program_data` is required when
/// the program is deployed upgradeable (its upgrade authority must be
/// `admin`).
pub fn initialize(
    admin: &Pubkey,
    program_data: Option<Pubkey>,
    args: InitializeArgs,
) -> Instruction {
    build(
        accs::Initialize {
            admin: *admin,
            config: pda::config().0,
            fee_vault: pda::fee_vault().0,
            treasury: args.treasury,
            program: ID,
            program_data,
            system_program: system_program::ID,
        },
        ix::Initialize { args },
    )
}

/// Changes settings (`None` keeps a value); a new treasury is passed along
/// so the program can check it is a wallet.
pub fn update_config(admin: &Pubkey, args: UpdateConfigArgs) -> Instruction {
    build(
        accs::UpdateConfig {
            admin: *admin,
            config: pda::config().0,
            treasury: args.treasury,
        },
        ix::UpdateConfig { args },
    )
}

/// First step of an admin change: `admin` names its successor.
pub fn propose_admin(admin: &Pubkey, proposed: &Pubkey) -> Instruction {
    build(
        accs::ProposeAdmin {
            admin: *admin,
            config: pda::config().0,
        },
        ix::ProposeAdmin {
            proposed: *proposed,
        },
    )
}

/// Second step: the proposed admin signs and takes over.
pub fn accept_admin(new_admin: &Pubkey) -> Instruction {
    build(
        accs::AcceptAdmin {
            new_admin: *new_admin,
            config: pda::config().0,
        },
        ix::AcceptAdmin {},
    )
}

/// Sends `amount` of collected fees (0 = all) to the configured treasury.
pub fn withdraw_fees(admin: &Pubkey, treasury: &Pubkey, amount: u64) -> Instruction {
    build(
        accs::WithdrawFees {
            admin: *admin,
            config: pda::config().0,
            fee_vault: pda::fee_vault().0,
            treasury: *treasury,
        },
        ix::WithdrawFees { amount },
    )
}

/// Reopens the bootstrap once no stake has been active for the recovery delay.
pub fn reopen_bootstrap(admin: &Pubkey) -> Instruction {
    build(
        accs::ReopenBootstrap {
            admin: *admin,
            config: pda::config().0,
        },
        ix::ReopenBootstrap {},
    )
}

/// Admits a pending operator into the genesis roster (admin, before bootstrap).
pub fn bootstrap_admit(admin: &Pubkey, node_key: &Pubkey) -> Instruction {
    build(
        accs::BootstrapAdmit {
            admin: *admin,
            config: pda::config().0,
            operator: pda::operator(node_key).0,
            genesis: pda::genesis().0,
            system_program: system_program::ID,
        },
        ix::BootstrapAdmit {},
    )
}

pub fn finish_bootstrap(admin: &Pubkey) -> Instruction {
    build(
        accs::FinishBootstrap {
            admin: *admin,
            config: pda::config().0,
            genesis: pda::genesis().0,
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
    price_floor: PriceFloor,
) -> Instruction {
    let operator = pda::operator(node_key).0;
    build(
        accs::RegisterOperator {
            owner: *owner,
            node_key: *node_key,
            config: pda::config().0,
            operator,
            stake_vault: pda::stake_vault(&operator).0,
            node_key_record: pda::node_key_record(node_key).0,
            system_program: system_program::ID,
        },
        ix::RegisterOperator {
            args: RegisterOperatorArgs {
                address,
                capacity,
                stake,
                price_floor,
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

pub fn update_operator(owner: &Pubkey, node_key: &Pubkey, args: UpdateOperatorArgs) -> Instruction {
    build(
        accs::UpdateOperator {
            owner: *owner,
            operator: pda::operator(node_key).0,
        },
        ix::UpdateOperator { args },
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

/// The owner takes the lease earnings held in its stake vault.
pub fn withdraw_earnings(owner: &Pubkey, node_key: &Pubkey) -> Instruction {
    let operator = pda::operator(node_key).0;
    build(
        accs::WithdrawEarnings {
            owner: *owner,
            operator,
            stake_vault: pda::stake_vault(&operator).0,
        },
        ix::WithdrawEarnings {},
    )
}

/// Closes an exited operator's account (its rent back to the owner).
pub fn close_operator(owner: &Pubkey, node_key: &Pubkey) -> Instruction {
    build(
        accs::CloseOperator {
            owner: *owner,
            operator: pda::operator(node_key).0,
        },
        ix::CloseOperator {},
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
            config: pda::config().0,
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
    attest_lease(node_key, rent_payer, roster_epoch, vote, None)
}

/// [`attest`] naming the lease's operator account, which a Terminate vote
/// needs (the lease gives its capacity back; see `Request::assigned_operator`).
pub fn attest_lease(
    node_key: &Pubkey,
    rent_payer: &Pubkey,
    roster_epoch: u64,
    vote: Vote,
    lease_operator: Option<Pubkey>,
) -> Instruction {
    let voter = pda::operator(node_key).0;
    let (request, subject_operator, assigned_operator, subject_stake_vault) = match vote {
        Vote::Provision {
            request, operator, ..
        } => (
            Some(request),
            None,
            (operator != voter).then_some(operator),
            None,
        ),
        Vote::Terminate { request, .. } => (
            Some(request),
            None,
            // An open request has no operator yet (the vote is refused
            // on-chain for that, with its own error).
            lease_operator.filter(|operator| *operator != voter && *operator != Pubkey::default()),
            None,
        ),
        Vote::Admit { operator, .. } => (None, Some(operator), None, None),
        Vote::Remove { operator, .. } => (
            None,
            (operator != voter).then_some(operator),
            None,
            Some(pda::stake_vault(&operator).0),
        ),
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
            subject_stake_vault,
            fee_vault: pda::fee_vault().0,
            system_program: system_program::ID,
        },
        ix::Attest { roster_epoch, vote },
    )
}

/// Closes the tally of `subject` (anyone may, once it can no longer be
/// decided); its rent goes back to `rent_payer`, the node key that paid it.
pub fn close_tally(subject: &Subject, rent_payer: &Pubkey) -> Instruction {
    build(
        accs::CloseTally {
            config: pda::config().0,
            attestation: pda::attestation(subject).0,
            rent_payer: *rent_payer,
            subject: *subject.key(),
        },
        ix::CloseTally {},
    )
}

/// The lease's operator claims what accrued (and any earnings it left in
/// its stake vault); once the lease is over it also settles it.
pub fn claim(
    owner: &Pubkey,
    node_key: &Pubkey,
    request: &Pubkey,
    customer: &Pubkey,
) -> Instruction {
    let operator = pda::operator(node_key).0;
    build(
        accs::Claim {
            owner: *owner,
            config: pda::config().0,
            operator,
            stake_vault: pda::stake_vault(&operator).0,
            request: *request,
            escrow: pda::escrow(request).0,
            fee_vault: pda::fee_vault().0,
            customer: *customer,
        },
        ix::Claim {},
    )
}

/// The customer ends a lease: `operator` is the lease's Operator account.
/// The three instructions of an equivocation report, in the order the
/// program requires: an Ed25519 check of the first header's signature, one
/// of the second's, then `report_equivocation`. They fill most of a
/// transaction (about 1 210 of its 1 232 bytes with two full headers):
/// send them alone, without compute-budget instructions. Use
/// [`crate::evidence::Evidence::check`] first for clear errors.
pub fn report_equivocation(
    reporter: &Pubkey,
    node_key: &Pubkey,
    network_id: &[u8; 32],
    first: &SignedHeader,
    second: &SignedHeader,
) -> Vec<Instruction> {
    let (first_id, second_id) = (first.id(), second.id());
    let mut instructions: Vec<Instruction> = [(first, &first_id), (second, &second_id)]
        .into_iter()
        .map(|(signed, id)| {
            solana_ed25519_program::new_ed25519_instruction_with_signature(
                &dagger_event_header::signing_message(network_id, id),
                &signed.signature,
                &node_key.to_bytes(),
            )
        })
        .collect();
    let hash = dagger_event_header::evidence_hash(&first_id, &second_id);
    let operator = pda::operator(node_key).0;
    instructions.push(build(
        accs::ReportEquivocation {
            reporter: *reporter,
            config: pda::config().0,
            operator,
            stake_vault: pda::stake_vault(&operator).0,
            fee_vault: pda::fee_vault().0,
            evidence: pda::evidence(&hash).0,
            instructions: solana_sdk_ids::sysvar::instructions::ID,
            system_program: system_program::ID,
        },
        ix::ReportEquivocation {
            first_header: first.header.clone(),
            second_header: second.header.clone(),
        },
    ));
    instructions
}

pub fn close_lease(customer: &Pubkey, request: &Pubkey, operator: &Pubkey) -> Instruction {
    build(
        accs::CloseLease {
            customer: *customer,
            config: pda::config().0,
            request: *request,
            escrow: pda::escrow(request).0,
            operator: *operator,
            stake_vault: pda::stake_vault(operator).0,
            fee_vault: pda::fee_vault().0,
        },
        ix::CloseLease {},
    )
}
