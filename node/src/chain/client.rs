//! The node's view of the chain. Every RPC call goes through the SDK
//! (`dagger_client::DaggerClient`): the reads the node needs, its
//! attestations and reports, signed and paid by whichever key the caller
//! names. This module only adapts the SDK's errors to what the node's
//! tasks decide on.

use std::sync::Arc;

use anchor_lang::{prelude::Pubkey, AccountDeserialize, Discriminator};
use dagger_client::{
    instructions as ix, pda, Attestation, ClientError, ClientOptions, CommitmentConfig, Config,
    DaggerClient, Operator, ProgramFailure, Request, Vote,
};
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_sdk::{instruction::Instruction, signature::Keypair, signer::Signer};

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("RPC: {0}")]
    Rpc(String),
    #[error("the program refused the transaction: {0}")]
    Program(ProgramFailure),
    #[error("the DAGGER config account does not exist on this cluster")]
    NoConfig,
    #[error("account {0} is not a valid DAGGER account: {1}")]
    Decode(Pubkey, String),
}

impl From<ClientError> for ChainError {
    fn from(error: ClientError) -> ChainError {
        match error {
            ClientError::Program { failure, .. } => ChainError::Program(failure),
            other => ChainError::Rpc(other.to_string()),
        }
    }
}

/// Reads the program's accounts and sends transactions, at `confirmed`.
pub struct ChainReader {
    client: DaggerClient,
}

impl ChainReader {
    /// A reader of the cluster at `url` (its websocket URL derived the
    /// Solana way).
    pub fn new(url: &str) -> Result<ChainReader, ChainError> {
        let cluster = dagger_client::cluster::resolve(url, None)
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        // Reads need no wallet; every send names its own fee payer.
        let client = DaggerClient::new(
            cluster,
            Arc::new(Keypair::new()),
            ClientOptions {
                commitment: CommitmentConfig::confirmed(),
                ..ClientOptions::default()
            },
        )?;
        Ok(ChainReader { client })
    }

    /// The raw Solana RPC client (balances and the like in tools and tests).
    pub fn rpc(&self) -> &RpcClient {
        self.client.rpc()
    }

    /// Every program account of type `T` (by its Anchor discriminator).
    pub async fn all<T: AccountDeserialize + Discriminator>(
        &self,
    ) -> Result<Vec<(Pubkey, T)>, ChainError> {
        Ok(self.client.reader().all::<T>().await?)
    }

    /// One program account, `None` if there is no DAGGER account there.
    pub async fn one<T: AccountDeserialize + Discriminator>(
        &self,
        address: &Pubkey,
    ) -> Result<Option<T>, ChainError> {
        match self
            .client
            .reader()
            .fetch::<T>(std::any::type_name::<T>(), address)
            .await
        {
            Ok(value) => Ok(value),
            Err(ClientError::WrongOwner { .. }) => Ok(None),
            Err(ClientError::Decode { reason, .. }) => Err(ChainError::Decode(*address, reason)),
            Err(other) => Err(other.into()),
        }
    }

    pub async fn config(&self) -> Result<Config, ChainError> {
        self.one::<Config>(&pda::config().0)
            .await?
            .ok_or(ChainError::NoConfig)
    }

    pub async fn operators(&self) -> Result<Vec<(Pubkey, Operator)>, ChainError> {
        self.all::<Operator>().await
    }

    pub async fn requests(&self) -> Result<Vec<(Pubkey, Request)>, ChainError> {
        self.all::<Request>().await
    }

    /// The tallies `rent_payer` paid for.
    pub async fn tallies_paid_by(
        &self,
        rent_payer: &Pubkey,
    ) -> Result<Vec<(Pubkey, Attestation)>, ChainError> {
        Ok(self.client.reader().tallies_paid_by(rent_payer).await?)
    }

    /// Posts one vote in `roster_epoch` with the node key (which also pays
    /// the fee, and the tally's rent when it opens it).
    pub async fn attest(
        &self,
        node: &Keypair,
        roster_epoch: u64,
        vote: Vote,
    ) -> Result<(), ChainError> {
        let rent_payer = self
            .one::<Attestation>(&pda::attestation(&vote.subject()).0)
            .await?
            .map(|a| a.rent_payer)
            .unwrap_or(node.pubkey());
        let lease_operator = match vote {
            Vote::Terminate { request, .. } => self
                .one::<Request>(&request)
                .await?
                .map(|r| r.assigned_operator),
            _ => None,
        };
        let instruction = ix::attest_lease(
            &node.pubkey(),
            &rent_payer,
            roster_epoch,
            vote,
            lease_operator,
        );
        self.send(&[instruction], node, &[]).await
    }

    /// Sends one transaction (the payer signs; `others` co-sign) and waits
    /// for confirmation. Program failures come back typed.
    pub async fn send(
        &self,
        instructions: &[Instruction],
        payer: &Keypair,
        others: &[&Keypair],
    ) -> Result<(), ChainError> {
        let mut builder = self.client.transaction().fee_payer(payer);
        for other in others {
            builder = builder.signer(*other);
        }
        for instruction in instructions {
            builder = builder.instruction(instruction.clone());
        }
        builder.send().await?;
        Ok(())
    }

    /// A customer pays for a VM (`create_request`); returns the request.
    pub async fn pay_for_vm(
        &self,
        customer: &Keypair,
        request_id: u64,
        spec: dagger_client::VmSpec,
        price_per_second: u64,
        duration_seconds: u64,
    ) -> Result<Pubkey, ChainError> {
        let pay = ix::create_request(
            &customer.pubkey(),
            request_id,
            spec,
            price_per_second,
            duration_seconds,
        );
        self.send(&[pay], customer, &[]).await?;
        Ok(pda::request(&customer.pubkey(), request_id).0)
    }

    /// The customer ends a lease (`close_lease`, through the SDK's customer
    /// face: the operator is paid what accrued, the rest comes back).
    pub async fn close_lease(
        &self,
        customer: &Keypair,
        request: &Pubkey,
    ) -> Result<(), ChainError> {
        let as_customer = self
            .client
            .with_wallet(Arc::new(customer.insecure_clone()))?;
        as_customer.customer().close_lease(request).await?;
        Ok(())
    }

    /// Requests an airdrop and waits until the balance shows it.
    pub async fn airdrop(&self, to: &Pubkey, lamports: u64) -> Result<(), ChainError> {
        Ok(self.client.airdrop(to, lamports).await?)
    }
}
