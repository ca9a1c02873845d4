//! Typed decoding of the program's accounts from raw account data.

use anchor_lang::{AccountDeserialize, Discriminator};

use crate::errors::ClientError;

/// Decodes an account, checking its discriminator. Use it with the state
/// types re-exported at the crate root: `decode::<Request>(&data)`.
pub fn decode<T: AccountDeserialize + Discriminator>(data: &[u8]) -> Result<T, ClientError> {
    let mut slice = data;
    T::try_deserialize(&mut slice).map_err(|err| ClientError::Decode {
        account_type: std::any::type_name::<T>(),
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use anchor_lang::AccountSerialize;

    use super::*;
    use crate::{Config, Operator};

    fn sample_config() -> Config {
        Config {
            admin: Default::default(),
            pending_admin: Default::default(),
            treasury: Default::default(),
            min_operator_stake: 5,
            unbonding_period: 6,
            provisioning_timeout: 7,
            protocol_fee_bps: 8,
            max_stake_share_bps: 3_000,
            removal_slash_bps: 500,
            equivocation_slash_bps: 5_000,
            reporter_reward_bps: 1_000,
            network_id: [4; 32],
            roster_epoch: 9,
            total_active_stake: 10,
            active_operators: 1,
            bootstrapped: true,
            zero_stake_since: 0,
            next_nonce: 3,
            local_cluster: true,
            bump: 254,
            fee_vault_bump: 253,
        }
    }

    #[test]
    fn round_trips_and_rejects_other_types() {
        let mut data = Vec::new();
        sample_config().try_serialize(&mut data).unwrap();
        let decoded: Config = decode(&data).unwrap();
        assert_eq!(decoded.roster_epoch, 9);
        assert!(matches!(
            decode::<Operator>(&data),
            Err(ClientError::Decode { .. })
        ));
        assert!(decode::<Config>(&data[..4]).is_err());
        assert!(decode::<Config>(&[]).is_err());
    }
}
