//! Byte offsets of account fields, for `getProgramAccounts` memcmp filters.
//!
//! Accounts are Borsh-encoded behind Anchor's 8-byte discriminator, so a
//! field's offset is the sum of the fixed sizes before it. Only fields that
//! come before any variable-length field have a fixed offset: in `Operator`
//! that is `owner` and `node_key` (the `address: String` after them is a
//! 4-byte length plus its bytes, which shifts everything that follows,
//! `status` included). `Request` has no variable-length field, so every field
//! has a fixed offset. `Attestation` starts with its rent payer, so a node
//! finds the tallies it paid for.

/// Anchor's account discriminator.
pub const DISCRIMINATOR_LEN: usize = 8;

/// `Operator` fields with a fixed offset.
pub mod operator {
    use super::DISCRIMINATOR_LEN;

    pub const OWNER: usize = DISCRIMINATOR_LEN;
    pub const NODE_KEY: usize = OWNER + 32;
    /// The `u32` length prefix of `address`; every later field moves with it.
    pub const ADDRESS_LEN: usize = NODE_KEY + 32;
}

/// `Request` fields. `VmSpec` is vcpus u16, memory u32, disk u32, region u16,
/// a 32-byte image id and a 32-byte SSH key: 76 bytes.
pub mod request {
    use super::DISCRIMINATOR_LEN;

    pub const CUSTOMER: usize = DISCRIMINATOR_LEN;
    pub const REQUEST_ID: usize = CUSTOMER + 32;
    pub const SPEC: usize = REQUEST_ID + 8;
    pub const PRICE_PER_SECOND: usize = SPEC + 76;
    pub const DURATION: usize = PRICE_PER_SECOND + 8;
    pub const DEPOSIT: usize = DURATION + 8;
    pub const PAID_OUT: usize = DEPOSIT + 8;
    pub const CREATED_AT: usize = PAID_OUT + 8;
    pub const DEADLINE: usize = CREATED_AT + 8;
    /// One byte: the `RequestStatus` variant index.
    pub const STATUS: usize = DEADLINE + 8;
    pub const ASSIGNED_OPERATOR: usize = STATUS + 1;
}

/// `Attestation` fields with a fixed offset.
pub mod attestation {
    use super::DISCRIMINATOR_LEN;

    pub const RENT_PAYER: usize = DISCRIMINATOR_LEN;
}

/// The byte Borsh writes for a fieldless enum variant: its index.
pub fn request_status_byte(status: crate::RequestStatus) -> u8 {
    use crate::RequestStatus::*;
    match status {
        Open => 0,
        Active => 1,
        Terminated => 2,
    }
}

#[cfg(test)]
mod tests {
    use anchor_lang::{prelude::Pubkey, AccountSerialize, Space};

    use super::*;
    use crate::{Capacity, Operator, OperatorStatus, Request, RequestStatus, VmSpec};

    fn sample_request(status: RequestStatus) -> Request {
        Request {
            customer: Pubkey::new_from_array([1; 32]),
            request_id: 0x0202_0202_0202_0202,
            spec: VmSpec {
                vcpus: 3,
                memory_mib: 4,
                disk_gib: 5,
                region: 6,
                image_id: [7; 32],
                ssh_key: [42; 32],
            },
            price_per_second: 8,
            duration: 9,
            deposit: 10,
            paid_out: 11,
            created_at: 12,
            deadline: 13,
            status,
            assigned_operator: Pubkey::new_from_array([14; 32]),
            endpoint_hash: [15; 32],
            lease_start: 16,
            ended_at: 17,
            fee_bps: 250,
            nonce: 20,
            bump: 18,
            escrow_bump: 19,
            provision_stake: 0,
            provision_epoch: 0,
        }
    }

    fn bytes(account: &impl AccountSerialize) -> Vec<u8> {
        let mut data = Vec::new();
        account.try_serialize(&mut data).unwrap();
        data
    }

    #[test]
    fn request_offsets_match_the_serialized_account() {
        for status in [
            RequestStatus::Open,
            RequestStatus::Active,
            RequestStatus::Terminated,
        ] {
            let data = bytes(&sample_request(status));
            assert_eq!(data.len(), DISCRIMINATOR_LEN + Request::INIT_SPACE);
            assert_eq!(&data[request::CUSTOMER..request::CUSTOMER + 32], &[1; 32]);
            assert_eq!(&data[request::REQUEST_ID..request::REQUEST_ID + 8], &[2; 8]);
            assert_eq!(data[request::SPEC], 3);
            let u64_at =
                |offset: usize| u64::from_le_bytes(data[offset..offset + 8].try_into().unwrap());
            assert_eq!(u64_at(request::PRICE_PER_SECOND), 8);
            assert_eq!(u64_at(request::DURATION), 9);
            assert_eq!(u64_at(request::DEPOSIT), 10);
            assert_eq!(u64_at(request::PAID_OUT), 11);
            assert_eq!(u64_at(request::CREATED_AT), 12);
            assert_eq!(u64_at(request::DEADLINE), 13);
            assert_eq!(data[request::STATUS], request_status_byte(status));
            assert_eq!(
                &data[request::ASSIGNED_OPERATOR..request::ASSIGNED_OPERATOR + 32],
                &[14; 32]
            );
        }
    }

    #[test]
    fn operator_offsets_hold_before_the_variable_address() {
        let operator = |address: &str| Operator {
            owner: Pubkey::new_from_array([1; 32]),
            node_key: Pubkey::new_from_array([2; 32]),
            address: address.into(),
            capacity: Capacity {
                vcpus: 1,
                memory_mib: 1,
                disk_gib: 1,
                region: 1,
            },
            stake: 3,
            status: OperatorStatus::Active,
            registered_at: 0,
            withdrawable_at: 0,
            removals: 0,
            slashed: 0,
            equivocation: [0; 32],
            votes_cast: 0,
            last_vote_at: 0,
            earnings: 0,
            price_floor: Default::default(),
            active_leases: 0,
            nonce: 0,
            bump: 0,
            vault_bump: 0,
            allocated: Default::default(),
        };
        let short = bytes(&operator("a:1"));
        let long = bytes(&operator("a-much-longer-host.example:65535"));
        for data in [&short, &long] {
            assert_eq!(&data[operator::OWNER..operator::OWNER + 32], &[1; 32]);
            assert_eq!(&data[operator::NODE_KEY..operator::NODE_KEY + 32], &[2; 32]);
        }
        assert_eq!(short[operator::ADDRESS_LEN], 3);
        // Why `status` cannot be filtered server-side: its offset moves.
        let status_offset =
            |address_len: usize| operator::ADDRESS_LEN + 4 + address_len + Capacity::INIT_SPACE + 8;
        assert_eq!(short[status_offset(3)], 1);
        assert_eq!(long[status_offset(32)], 1);
        assert_ne!(status_offset(3), status_offset(32));
    }
}
