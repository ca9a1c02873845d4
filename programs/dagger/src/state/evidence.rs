use anchor_lang::prelude::*;

/// One reported equivocation, at `[EVIDENCE_SEED, evidence_hash]`: its
/// existence is what refuses the same pair a second time, for good (even
/// against a later registration of the same node key).
#[account]
#[derive(InitSpace, Debug)]
pub struct EquivocationRecord {
    pub operator: Pubkey,
    /// The operator's registration the slash applied to.
    pub operator_nonce: u64,
    pub node_key: Pubkey,
    pub reporter: Pubkey,
    /// The two event ids, in the order reported.
    pub first: [u8; 32],
    pub second: [u8; 32],
    pub slashed: u64,
    pub reporter_reward: u64,
    pub reported_at: i64,
    pub bump: u8,
}
