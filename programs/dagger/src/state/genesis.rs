use anchor_lang::prelude::*;

use crate::{
    constants::{MAX_ACTIVE_OPERATORS, MAX_ADDRESS_LEN},
    state::{Capacity, Operator, PriceFloor},
};

/// The roster consensus starts from, recorded as the admin admits it and
/// final once `finish_bootstrap` runs. Every node derives its genesis
/// from this account, whenever it first starts: the operators may have
/// changed their stake, address or terms since, or left.
#[account]
#[derive(Debug)]
pub struct Genesis {
    pub bump: u8,
    /// Bumped when a reopened bootstrap starts a new roster: a new network.
    pub generation: u32,
    /// Set by `finish_bootstrap`; the members are final from then on.
    pub finished: bool,
    pub members: Vec<GenesisMember>,
}

/// An operator as it was admitted into the genesis roster.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, PartialEq, Eq, Debug, InitSpace)]
pub struct GenesisMember {
    pub operator: Pubkey,
    pub nonce: u64,
    pub node_key: Pubkey,
    pub stake: u64,
    pub capacity: Capacity,
    #[max_len(MAX_ADDRESS_LEN)]
    pub address: String,
    pub price_floor: PriceFloor,
}

impl Genesis {
    /// Bytes for a record of `members` (each counted at its largest): the
    /// account grows by one member per admission, as far as the largest
    /// roster.
    pub const fn space(members: usize) -> usize {
        8 + 1 + 4 + 1 + 4 + members * GenesisMember::INIT_SPACE
    }

    pub const MAX_SPACE: usize = Genesis::space(MAX_ACTIVE_OPERATORS as usize);
}

impl GenesisMember {
    pub fn of(operator: &Account<Operator>) -> GenesisMember {
        GenesisMember {
            operator: operator.key(),
            nonce: operator.nonce,
            node_key: operator.node_key,
            stake: operator.stake,
            capacity: operator.capacity,
            address: operator.address.clone(),
            price_floor: operator.price_floor,
        }
    }
}
