use anchor_lang::prelude::*;

/// Marks a node key as used, at `[NODE_KEY_SEED, node_key]`, for good: it
/// outlives the operator account, so the key can never register again.
/// A node key is the identity of one registration. Evidence is a pair of
/// events signed by the key, and an event does not say which registration
/// signed it; with one registration per key, evidence can only ever be
/// about the registration that signed it, and one offence can only ever be
/// punished once (the operator's `equivocation` field refuses a second).
#[account]
#[derive(InitSpace, Debug)]
pub struct NodeKeyRecord {
    pub node_key: Pubkey,
    /// The operator's registration nonce.
    pub operator_nonce: u64,
    pub registered_at: i64,
    pub bump: u8,
}
