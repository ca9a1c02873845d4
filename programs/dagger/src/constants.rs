//! Seeds and bounds shared by the program and its clients.

use anchor_lang::prelude::*;

#[constant]
pub const CONFIG_SEED: &[u8] = b"config";
#[constant]
pub const OPERATOR_SEED: &[u8] = b"operator";
#[constant]
pub const STAKE_VAULT_SEED: &[u8] = b"stake_vault";
#[constant]
pub const GENESIS_SEED: &[u8] = b"genesis";
#[constant]
pub const REQUEST_SEED: &[u8] = b"request";
#[constant]
pub const ESCROW_SEED: &[u8] = b"escrow";
#[constant]
pub const ATTESTATION_SEED: &[u8] = b"attestation";
#[constant]
pub const EVIDENCE_SEED: &[u8] = b"evidence";
#[constant]
pub const NODE_KEY_SEED: &[u8] = b"node_key";

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

#[constant]
pub const FEE_VAULT_SEED: &[u8] = b"fee_vault";

/// Bounds on the values the admin sets: no setting may freeze stake or
/// deposits (an unbonding period or timeout that overflows, or that nobody
/// can wait out), stop requests from being created, or expire them before
/// the operators can provision them (consensus plus a quorum of
/// attestations takes about a second; the minimum timeout is ten).
///
/// The unbonding period is the window in which an equivocation can still
/// cost its author: evidence must land before the stake leaves. Every
/// honest node sees a fork within seconds and anyone holding the two
/// headers can report it, but reports travel through RPC providers and a
/// congested or halted chain: Solana's longest halts lasted about 17 hours.
/// Two days cover that with room to spare.
#[constant]
pub const MIN_UNBONDING_PERIOD: i64 = 2 * 24 * 3600;
/// The floor on a local cluster (the program running as a builtin of a
/// validator or test runtime someone started on their machine, see
/// `Config::local_cluster`), where demos and tests need stake back in
/// seconds.
#[constant]
pub const LOCAL_MIN_UNBONDING_PERIOD: i64 = 5;
#[constant]
pub const MAX_UNBONDING_PERIOD: i64 = 365 * 24 * 3600;
#[constant]
pub const MIN_PROVISIONING_TIMEOUT: i64 = 10;
#[constant]
pub const MAX_PROVISIONING_TIMEOUT: i64 = 30 * 24 * 3600;
/// 1 000 000 SOL: a minimum stake above it would shut everyone out.
#[constant]
pub const MAX_MIN_OPERATOR_STAKE: u64 = 1_000_000_000_000_000u64;

/// The largest share of the active stake one operator may reach by adding
/// stake or being admitted: always below a third, so no single operator can
/// block quorums, let alone make one.
#[constant]
pub const MAX_STAKE_SHARE_BPS: u16 = 3_333;
/// The smallest cap the admin may set (a lower one would only make joining
/// harder without making anything safer).
#[constant]
pub const MIN_STAKE_SHARE_BPS: u16 = 1_000;

/// At most half of an operator's stake is slashed when a quorum removes it.
#[constant]
pub const MAX_REMOVAL_SLASH_BPS: u16 = 5_000;

/// Equivocation may cost an operator up to all of its stake: signing two
/// conflicting events is the one act that attacks safety directly.
#[constant]
pub const MAX_EQUIVOCATION_SLASH_BPS: u16 = 10_000;
/// And never less than a tenth: the deterrent cannot be switched off.
#[constant]
pub const MIN_EQUIVOCATION_SLASH_BPS: u16 = 1_000;

/// The reporter of an equivocation earns at most half of what is slashed,
/// so an operator reporting itself still loses at least half the slash.
#[constant]
pub const MAX_REPORTER_REWARD_BPS: u16 = 5_000;

/// How long the active stake must have been zero before the admin may
/// reopen the bootstrap (the recovery path when every operator left).
#[constant]
pub const RECOVERY_DELAY: i64 = 3 * 24 * 3600;

/// A lease the customer closes bills at least this long (or what was paid
/// for, if less): booting a VM costs the operator the same whether it runs
/// a second or an hour.
#[constant]
pub const MIN_BILLED_SECONDS: i64 = 60;
