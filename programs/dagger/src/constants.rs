//! Seeds and bounds shared by the program and its clients.

use anchor_lang::prelude::*;

#[constant]
pub const CONFIG_SEED: &[u8] = b"config";
#[constant]
pub const OPERATOR_SEED: &[u8] = b"operator";
#[constant]
pub const STAKE_VAULT_SEED: &[u8] = b"stake_vault";
#[constant]
pub const REQUEST_SEED: &[u8] = b"request";
#[constant]
pub const ESCROW_SEED: &[u8] = b"escrow";
#[constant]
pub const ATTESTATION_SEED: &[u8] = b"attestation";

/// Upper bound on the active roster. It bounds the ballots an attestation can
/// hold, so the attestation account has a fixed, rent-predictable size.
#[constant]
pub const MAX_ACTIVE_OPERATORS: u32 = 64;

/// Longest QUIC address an operator may publish (`host:port`).
#[constant]
pub const MAX_ADDRESS_LEN: u32 = 64;

/// Protocol fees are expressed in basis points of each payout.
#[constant]
pub const BPS_DENOMINATOR: u16 = 10_000;

/// The fee can never take more than 10% of an operator's earnings.
#[constant]
pub const MAX_PROTOCOL_FEE_BPS: u16 = 1_000;
