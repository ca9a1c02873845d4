//! Building, sending and confirming transactions.

use std::time::Instant;

use anchor_client::CommitmentConfig;
use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction};
use solana_compute_budget_interface::ComputeBudgetInstruction;
use solana_rpc_client_api::{
    client_error::{Error as RpcClientError, ErrorKind},
    config::{RpcSendTransactionConfig, RpcTransactionConfig},
    request::{RpcError, RpcResponseErrorData},
};
use solana_sdk::{
    hash::Hash,
    message::Message,
    signature::{Signature, Signer},
    transaction::Transaction,
};

use crate::{
    client::{DaggerClient, SignerRef},
    errors::ClientError,
};

/// Per-transaction settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxOptions {
    /// Priority fee: micro-lamports per compute unit
    /// (`ComputeBudgetInstruction::set_compute_unit_price`).
    pub compute_unit_price: Option<u64>,
    /// Compute unit limit (`ComputeBudgetInstruction::set_compute_unit_limit`);
    /// with a priority fee it also bounds what the fee can cost.
    pub compute_unit_limit: Option<u32>,
    /// Send without preflight simulation. Failures are then found when the
    /// transaction lands, and their logs read from its metadata.
    pub skip_preflight: bool,
}

/// A transaction being put together. The client's wallet pays unless
/// [`TransactionBuilder::fee_payer`] names another signer.
pub struct TransactionBuilder<'a> {
    client: &'a DaggerClient,
    fee_payer: SignerRef<'a>,
    signers: Vec<SignerRef<'a>>,
    instructions: Vec<Instruction>,
    options: TxOptions,
    spends: u64,
}

impl<'a> TransactionBuilder<'a> {
    pub(crate) fn new(client: &'a DaggerClient) -> Self {
        TransactionBuilder {
            client,
            fee_payer: client.wallet_signer(),
            signers: Vec::new(),
            instructions: Vec::new(),
            options: client.options().tx.clone(),
            spends: 0,
        }
    }

    pub fn instruction(mut self, instruction: Instruction) -> Self {
        self.instructions.push(instruction);
        self
    }

    /// An additional signer (the fee payer always signs).
    pub fn signer(mut self, signer: SignerRef<'a>) -> Self {
        self.signers.push(signer);
        self
    }

    pub fn fee_payer(mut self, payer: SignerRef<'a>) -> Self {
        self.fee_payer = payer;
        self
    }

    /// Priority fee in micro-lamports per compute unit.
    pub fn priority_fee(mut self, micro_lamports: u64) -> Self {
        self.options.compute_unit_price = Some(micro_lamports);
        self
    }

    pub fn compute_unit_limit(mut self, units: u32) -> Self {
        self.options.compute_unit_limit = Some(units);
        self
    }

    pub fn skip_preflight(mut self, skip: bool) -> Self {
        self.options.skip_preflight = skip;
        self
    }

    pub fn options(mut self, options: TxOptions) -> Self {
        self.options = options;
        self
    }

    /// Lamports the fee payer moves out in this transaction besides the fee
    /// (deposits, stake, rent of new accounts). When set, the balance is
    /// checked before sending.
    pub fn spends(mut self, lamports: u64) -> Self {
        self.spends = self.spends.saturating_add(lamports);
        self
    }

    /// The compute budget instructions the options ask for, then the
    /// caller's instructions.
    pub fn instructions(&self) -> Vec<Instruction> {
        let mut all = self.budget_instructions();
        all.extend(self.instructions.iter().cloned());
        all
    }

    fn budget_instructions(&self) -> Vec<Instruction> {
        let mut budget = Vec::new();
        if let Some(units) = self.options.compute_unit_limit {
            budget.push(ComputeBudgetInstruction::set_compute_unit_limit(units));
        }
        if let Some(price) = self.options.compute_unit_price {
            budget.push(ComputeBudgetInstruction::set_compute_unit_price(price));
        }
        budget
    }

    /// Builds and signs the transaction with `blockhash`.
    pub fn build(&self, blockhash: Hash) -> Result<Transaction, ClientError> {
        let message =
            Message::new_with_blockhash(&self.instructions(), Some(&self.payer()), &blockhash);
        self.sign(message, blockhash)
    }

    fn payer(&self) -> Pubkey {
        self.fee_payer.pubkey()
    }

    fn sign(&self, message: Message, blockhash: Hash) -> Result<Transaction, ClientError> {
        let mut signers: Vec<&dyn Signer> = vec![self.fee_payer];
        for signer in &self.signers {
            let key = signer.pubkey();
            if !signers.iter().any(|s| s.pubkey() == key) {
                signers.push(*signer);
            }
        }
        let mut tx = Transaction::new_unsigned(message);
        tx.try_sign(&signers, blockhash)
            .map_err(|e| ClientError::Signer(e.to_string()))?;
        Ok(tx)
    }

    /// Signs, checks funds (see [`TransactionBuilder::spends`]), sends and
    /// waits for the client's commitment. Program failures come back as
    /// [`ClientError::Program`] with the transaction's logs.
    pub async fn send(self) -> Result<Signature, ClientError> {
        let client = self.client;
        let rpc = client.rpc();
        let commitment = client.options().commitment;
        let (blockhash, _) = rpc
            .get_latest_blockhash_with_commitment(commitment)
            .await
            .map_err(Box::new)?;
        let message =
            Message::new_with_blockhash(&self.instructions(), Some(&self.payer()), &blockhash);
        if self.spends > 0 {
            self.check_funds(&message).await?;
        }
        let tx = self.sign(message, blockhash)?;
        let skipped = self.budget_instructions().len() as u8;
        let signature = tx.signatures[0];
        let started = Instant::now();
        let config = RpcSendTransactionConfig {
            skip_preflight: self.options.skip_preflight,
            preflight_commitment: Some(commitment.commitment),
            ..RpcSendTransactionConfig::default()
        };
        if let Err(error) = rpc.send_transaction_with_config(&tx, config).await {
            return Err(preflight_failure(error, skipped, signature));
        }
        tracing::debug!(%signature, "sent");
        self.confirm(signature, blockhash, skipped, started).await
    }

    async fn check_funds(&self, message: &Message) -> Result<(), ClientError> {
        let rpc = self.client.rpc();
        let payer = self.payer();
        let fee = rpc.get_fee_for_message(message).await.map_err(Box::new)?;
        let available = rpc.get_balance(&payer).await.map_err(Box::new)?;
        let needed = self.spends.saturating_add(fee);
        if available < needed {
            return Err(ClientError::InsufficientFunds {
                wallet: payer,
                needed,
                available,
            });
        }
        Ok(())
    }

    /// Polls the signature until it reaches the commitment, fails, or its
    /// blockhash expires without it landing.
    async fn confirm(
        &self,
        signature: Signature,
        blockhash: Hash,
        skipped: u8,
        started: Instant,
    ) -> Result<Signature, ClientError> {
        let rpc = self.client.rpc();
        let options = self.client.options();
        let commitment = options.commitment;
        loop {
            let status = rpc
                .get_signature_statuses(&[signature])
                .await
                .map_err(Box::new)?
                .value
                .into_iter()
                .next()
                .flatten();
            match status {
                Some(status) => match status.err.clone() {
                    Some(error) => {
                        let logs = transaction_logs(self.client, &signature).await;
                        return Err(ClientError::from_transaction_error(
                            error,
                            skipped,
                            logs,
                            Some(signature.to_string()),
                        ));
                    }
                    None if status.satisfies_commitment(commitment) => {
                        tracing::debug!(%signature, elapsed = ?started.elapsed(), "confirmed");
                        return Ok(signature);
                    }
                    None => {}
                },
                None => {
                    let valid = rpc
                        .is_blockhash_valid(&blockhash, commitment)
                        .await
                        .map_err(Box::new)?;
                    if !valid {
                        return Err(ClientError::TransactionExpired {
                            signature: signature.to_string(),
                        });
                    }
                }
            }
            if started.elapsed() >= options.confirm_timeout {
                return Err(ClientError::Timeout {
                    what: format!("transaction {signature} to be {:?}", commitment.commitment),
                    after: options.confirm_timeout,
                });
            }
            tokio::time::sleep(options.poll_interval).await;
        }
    }
}

/// A refused `sendTransaction`: the preflight simulation's error and logs
/// when there was one, otherwise the RPC error as it is.
fn preflight_failure(error: RpcClientError, skipped: u8, signature: Signature) -> ClientError {
    if let ErrorKind::RpcError(RpcError::RpcResponseError {
        data: RpcResponseErrorData::SendTransactionPreflightFailure(simulation),
        ..
    }) = error.kind()
    {
        if let Some(err) = simulation.err.clone() {
            return ClientError::from_transaction_error(
                err.into(),
                skipped,
                simulation.logs.clone().unwrap_or_default(),
                // Preflight refused it: this signature never landed.
                None,
            );
        }
    }
    tracing::debug!(%signature, %error, "sendTransaction refused");
    ClientError::Rpc(Box::new(error))
}

/// The logs of a landed transaction. The transaction may take a moment to be
/// served by `getTransaction` after its status is known, hence the retries;
/// a failure to read them leaves the logs empty rather than hiding the
/// program error itself.
async fn transaction_logs(client: &DaggerClient, signature: &Signature) -> Vec<String> {
    let config = RpcTransactionConfig {
        encoding: None,
        commitment: Some(CommitmentConfig::confirmed()),
        max_supported_transaction_version: Some(0),
    };
    for _ in 0..20 {
        match client
            .rpc()
            .get_transaction_with_config(signature, config)
            .await
        {
            Ok(tx) => {
                return tx
                    .transaction
                    .meta
                    .and_then(|meta| Option::<Vec<String>>::from(meta.log_messages))
                    .unwrap_or_default()
            }
            Err(error) => tracing::debug!(%signature, %error, "transaction not served yet"),
        }
        tokio::time::sleep(client.options().poll_interval).await;
    }
    tracing::warn!(%signature, "could not read the failed transaction's logs");
    Vec::new()
}
