//! Program-derived addresses. Each returns the canonical `(address, bump)`.

use anchor_lang::prelude::Pubkey;
use dagger::{
    constants::{
        ATTESTATION_SEED, CONFIG_SEED, ESCROW_SEED, EVIDENCE_SEED, FEE_VAULT_SEED, GENESIS_SEED,
        NODE_KEY_SEED, OPERATOR_SEED, REQUEST_SEED, STAKE_VAULT_SEED,
    },
    state::Subject,
    ID,
};

pub fn config() -> (Pubkey, u8) {
    Pubkey::find_program_address(&[CONFIG_SEED], &ID)
}

/// The operator registered with this node identity key.
pub fn operator(node_key: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[OPERATOR_SEED, node_key.as_ref()], &ID)
}

/// The record that a node key has registered (it outlives the operator).
pub fn node_key_record(node_key: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[NODE_KEY_SEED, node_key.as_ref()], &ID)
}

pub fn stake_vault(operator: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[STAKE_VAULT_SEED, operator.as_ref()], &ID)
}

pub fn request(customer: &Pubkey, request_id: u64) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[REQUEST_SEED, customer.as_ref(), &request_id.to_le_bytes()],
        &ID,
    )
}

pub fn escrow(request: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[ESCROW_SEED, request.as_ref()], &ID)
}

/// The tally of one subject instance.
pub fn attestation(subject: &Subject) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[
            ATTESTATION_SEED,
            subject.kind_seed(),
            subject.key().as_ref(),
            &subject.nonce().to_le_bytes(),
        ],
        &ID,
    )
}

/// Where protocol fees collect until the admin withdraws them.
/// The genesis roster record (written by `bootstrap_admit`, final after
/// `finish_bootstrap`).
pub fn genesis() -> (Pubkey, u8) {
    Pubkey::find_program_address(&[GENESIS_SEED], &ID)
}

/// The record of one reported equivocation, by its `evidence_hash`.
pub fn evidence(evidence_hash: &[u8; 32]) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[EVIDENCE_SEED, evidence_hash], &ID)
}

pub fn fee_vault() -> (Pubkey, u8) {
    Pubkey::find_program_address(&[FEE_VAULT_SEED], &ID)
}
