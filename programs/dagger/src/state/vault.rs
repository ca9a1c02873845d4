use anchor_lang::prelude::*;

/// Holds an operator's staked lamports (above its own rent) and nothing else,
/// so stake accounting is just this account's balance.
#[account]
#[derive(InitSpace, Debug)]
pub struct StakeVault {
    pub operator: Pubkey,
    pub bump: u8,
}

/// Holds a request's deposit (above its own rent) until it is paid out or
/// refunded.
#[account]
#[derive(InitSpace, Debug)]
pub struct Escrow {
    pub request: Pubkey,
    pub bump: u8,
}
