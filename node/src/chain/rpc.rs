//! The little of Solana RPC a node needs: read the program's accounts and
//! send its attestations.

use anchor_lang::{prelude::Pubkey, AccountDeserialize, Discriminator};
use dagger_client::{
    accounts::decode, instructions as ix, pda, Attestation, Config, Operator, ProgramFailure,
    Request, Vote, PROGRAM_ID,
};
use solana_account_decoder_client_types::UiAccountEncoding;
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::{
    config::{RpcAccountInfoConfig, RpcProgramAccountsConfig},
    filter::{Memcmp, RpcFilterType},
};
use solana_sdk::{signature::Keypair, signer::Signer, transaction::Transaction};

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

pub struct ChainReader {
    pub rpc: RpcClient,
}

impl ChainReader {
    pub fn new(url: &str) -> ChainReader {
        ChainReader {
            rpc: RpcClient::new_with_commitment(url.to_string(), CommitmentConfig::confirmed()),
        }
    }

    /// Every program account of type `T` (by its Anchor discriminator).
    pub async fn all<T: AccountDeserialize + Discriminator>(
        &self,
    ) -> Result<Vec<(Pubkey, T)>, ChainError> {
        let config = RpcProgramAccountsConfig {
            filters: Some(vec![RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
                0,
                T::DISCRIMINATOR.to_vec(),
            ))]),
            account_config: RpcAccountInfoConfig {
                encoding: Some(UiAccountEncoding::Base64),
                ..Default::default()
            },
            ..Default::default()
        };
        let accounts = self
            .rpc
            .get_program_ui_accounts_with_config(&PROGRAM_ID, config)
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        accounts
            .into_iter()
            .map(|(key, account)| {
                let data = account
                    .data
                    .decode()
                    .ok_or_else(|| ChainError::Decode(key, "undecodable data".into()))?;
                let value =
                    decode::<T>(&data).map_err(|e| ChainError::Decode(key, e.to_string()))?;
                Ok((key, value))
            })
            .collect()
    }

    /// One program account, `None` if it does not exist.
    pub async fn one<T: AccountDeserialize + Discriminator>(
        &self,
        address: &Pubkey,
    ) -> Result<Option<T>, ChainError> {
        let response = self
            .rpc
            .get_account_with_commitment(address, self.rpc.commitment())
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        match response.value {
            Some(account) if account.owner == PROGRAM_ID && !account.data.is_empty() => {
                decode::<T>(&account.data)
                    .map(Some)
                    .map_err(|e| ChainError::Decode(*address, e.to_string()))
            }
            _ => Ok(None),
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

    /// The tallies `rent_payer` paid for (it is the first field after the
    /// discriminator, so the RPC node filters them).
    pub async fn tallies_paid_by(
        &self,
        rent_payer: &Pubkey,
    ) -> Result<Vec<(Pubkey, Attestation)>, ChainError> {
        let config = RpcProgramAccountsConfig {
            filters: Some(vec![
                RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
                    0,
                    Attestation::DISCRIMINATOR.to_vec(),
                )),
                RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
                    Attestation::DISCRIMINATOR.len(),
                    rent_payer.to_bytes().to_vec(),
                )),
            ]),
            account_config: RpcAccountInfoConfig {
                encoding: Some(UiAccountEncoding::Base64),
                ..Default::default()
            },
            ..Default::default()
        };
        let accounts = self
            .rpc
            .get_program_ui_accounts_with_config(&PROGRAM_ID, config)
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        accounts
            .into_iter()
            .map(|(key, account)| {
                let data = account
                    .data
                    .decode()
                    .ok_or_else(|| ChainError::Decode(key, "undecodable data".into()))?;
                let value = decode::<Attestation>(&data)
                    .map_err(|e| ChainError::Decode(key, e.to_string()))?;
                Ok((key, value))
            })
            .collect()
    }

    /// Posts one vote with the node key (which also pays the fee).
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
        let instruction = ix::attest(&node.pubkey(), &rent_payer, roster_epoch, vote);
        self.send(&[instruction], node, &[]).await
    }

    /// Sends one transaction (the payer signs; `others` co-sign) and waits
    /// for confirmation. Program failures come back typed.
    pub async fn send(
        &self,
        instructions: &[solana_sdk::instruction::Instruction],
        payer: &Keypair,
        others: &[&Keypair],
    ) -> Result<(), ChainError> {
        let blockhash = self
            .rpc
            .get_latest_blockhash()
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        let mut signers: Vec<&Keypair> = vec![payer];
        signers.extend_from_slice(others);
        let tx = Transaction::new_signed_with_payer(
            instructions,
            Some(&payer.pubkey()),
            &signers,
            blockhash,
        );
        match self.rpc.send_and_confirm_transaction(&tx).await {
            Ok(_) => Ok(()),
            Err(err) => match err.get_transaction_error() {
                Some(tx_err) => match ProgramFailure::from_transaction_error(&tx_err) {
                    Some((_, failure)) => Err(ChainError::Program(failure)),
                    None => Err(ChainError::Rpc(tx_err.to_string())),
                },
                None => Err(ChainError::Rpc(err.to_string())),
            },
        }
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

    /// Requests an airdrop and waits until the balance shows it.
    pub async fn airdrop(&self, to: &Pubkey, lamports: u64) -> Result<(), ChainError> {
        let before = self
            .rpc
            .get_balance(to)
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        self.rpc
            .request_airdrop(to, lamports)
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        for _ in 0..200 {
            let now = self
                .rpc
                .get_balance(to)
                .await
                .map_err(|e| ChainError::Rpc(e.to_string()))?;
            if now >= before + lamports {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(ChainError::Rpc(format!("airdrop to {to} did not arrive")))
    }
}
