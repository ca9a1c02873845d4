use anchor_lang::prelude::*;

/// Holds an operator's staked lamports and its unwithdrawn lease earnings
/// (above its own rent): balance = rent + `stake` + `earnings`.
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

/// Collects protocol fees (above its own rent) until the admin sends them
/// to the treasury. Fees never go to an outside account directly, so a
/// treasury that is missing, unfunded or not a wallet cannot make a payout
/// fail.
#[account]
#[derive(InitSpace, Debug)]
pub struct FeeVault {
    pub bump: u8,
}
