//! The operator's face, acting as the owner wallet: register a node, manage
//! its stake and settings, and claim what its leases earned.

use anchor_lang::{prelude::Pubkey, Space};
use solana_sdk::signature::Signature;

use crate::{
    client::{DaggerClient, SignerRef},
    errors::ClientError,
    instructions as ix,
    layout::DISCRIMINATOR_LEN,
    pda,
    reader::Reader,
    Capacity, Operator, PriceFloor, StakeVault, UpdateOperatorArgs,
};

#[derive(Clone, Copy)]
pub struct OperatorClient<'a> {
    client: &'a DaggerClient,
}

impl<'a> OperatorClient<'a> {
    pub(crate) fn new(client: &'a DaggerClient) -> Self {
        OperatorClient { client }
    }

    fn reader(&self) -> Reader<'a> {
        self.client.reader()
    }

    /// Registers `node_key` under this wallet with `stake` lamports. The node
    /// key co-signs, proving the operator holds it. The operator starts
    /// Pending until the admin (before bootstrap) or a quorum admits it.
    pub async fn register(
        self,
        node_key: SignerRef<'_>,
        address: String,
        capacity: Capacity,
        stake: u64,
        price_floor: PriceFloor,
    ) -> Result<Signature, ClientError> {
        let rpc = self.client.rpc();
        // The program would refuse it as the system program's opaque
        // "account already in use": say what it means instead.
        let existing = pda::operator(&node_key.pubkey()).0;
        if self
            .reader()
            .fetch::<Operator>("operator", &existing)
            .await?
            .is_some()
        {
            return Err(ClientError::InvalidArgument(format!(
                "node key {} is already registered (operator account {existing})",
                node_key.pubkey()
            )));
        }
        let mut rent = 0u64;
        for size in [
            DISCRIMINATOR_LEN + Operator::INIT_SPACE,
            DISCRIMINATOR_LEN + StakeVault::INIT_SPACE,
        ] {
            rent += rpc
                .get_minimum_balance_for_rent_exemption(size)
                .await
                .map_err(Box::new)?;
        }
        self.client
            .transaction()
            .instruction(ix::register_operator(
                &self.client.wallet(),
                &node_key.pubkey(),
                address,
                capacity,
                stake,
                price_floor,
            ))
            .signer(node_key)
            .spends(stake.saturating_add(rent))
            .send()
            .await
    }

    pub async fn add_stake(self, node_key: &Pubkey, amount: u64) -> Result<Signature, ClientError> {
        self.reader().operator(node_key).await?;
        self.client
            .transaction()
            .instruction(ix::add_stake(&self.client.wallet(), node_key, amount))
            .spends(amount)
            .send()
            .await
    }

    /// Leaves the roster; the stake unlocks after the unbonding period.
    pub async fn request_unstake(self, node_key: &Pubkey) -> Result<Signature, ClientError> {
        self.reader().operator(node_key).await?;
        self.client
            .transaction()
            .instruction(ix::request_unstake(&self.client.wallet(), node_key))
            .send()
            .await
    }

    /// Takes the stake (and the vault's rent) back once unbonding is over.
    pub async fn withdraw_stake(self, node_key: &Pubkey) -> Result<Signature, ClientError> {
        self.reader().operator(node_key).await?;
        self.client
            .transaction()
            .instruction(ix::withdraw_stake(&self.client.wallet(), node_key))
            .send()
            .await
    }

    /// Changes the node's address, capacity and/or price floor; `None`
    /// keeps a value.
    pub async fn update(
        self,
        node_key: &Pubkey,
        args: UpdateOperatorArgs,
    ) -> Result<Signature, ClientError> {
        if args.address.is_none() && args.capacity.is_none() && args.price_floor.is_none() {
            return Err(ClientError::InvalidArgument(
                "nothing to update: give an address, a capacity and/or a price floor".into(),
            ));
        }
        self.reader().operator(node_key).await?;
        self.client
            .transaction()
            .instruction(ix::update_operator(&self.client.wallet(), node_key, args))
            .send()
            .await
    }

    /// Takes the lease earnings held in the operator's stake vault.
    pub async fn withdraw_earnings(self, node_key: &Pubkey) -> Result<Signature, ClientError> {
        let operator = self.reader().operator(node_key).await?;
        if operator.earnings == 0 {
            return Err(ClientError::InvalidArgument(format!(
                "operator {} has no earnings to withdraw",
                pda::operator(node_key).0
            )));
        }
        self.client
            .transaction()
            .instruction(ix::withdraw_earnings(&self.client.wallet(), node_key))
            .send()
            .await
    }

    /// Closes the operator account after its stake was withdrawn (its rent
    /// comes back; the node key stays retired: a returning operator
    /// registers a new one).
    pub async fn close(self, node_key: &Pubkey) -> Result<Signature, ClientError> {
        self.reader().operator(node_key).await?;
        self.client
            .transaction()
            .instruction(ix::close_operator(&self.client.wallet(), node_key))
            .send()
            .await
    }

    /// Claims what the lease `request` accrued for this operator (minus the
    /// protocol fee). Once the lease is over it also settles and closes it.
    pub async fn claim(
        self,
        node_key: &Pubkey,
        request: &Pubkey,
    ) -> Result<Signature, ClientError> {
        let lease = self.reader().request(request).await?;
        self.client
            .transaction()
            .instruction(ix::claim(
                &self.client.wallet(),
                node_key,
                request,
                &lease.customer,
            ))
            .send()
            .await
    }
}
