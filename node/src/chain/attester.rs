//! Posts this node's attestations on-chain, from a durable outbox.
//!
//! Each vote the controller asks for is queued once per subject instance in
//! redb. The attester sends it with the node key (fee payer), retries until
//! it lands, records the roster epoch it landed in (a vote is never sent
//! twice in one epoch; a new epoch restarts the on-chain tally, so it votes
//! again), and drops the entry once the chain shows the subject applied —
//! or that it can never be (expired, operator gone, a new instance at the
//! address).
//!
//! It also closes the tallies this node opened (and paid rent for) once they
//! can no longer be decided, so their rent comes back: a customer who
//! cancels right after the first vote costs the node a transaction fee, not
//! the tally's rent.

use std::{sync::Arc, time::Duration};

use anchor_lang::{AnchorDeserialize, AnchorSerialize};
use dagger_client::{errors::DaggerError, pda, OperatorStatus, Request, RequestStatus, Vote};
use solana_sdk::signature::Keypair;
use tokio::sync::watch;

use super::client::{ChainError, ChainReader};
use crate::{controller::Duties, metrics::Metrics, store::Store};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub vote: Vote,
    /// The roster epoch our vote landed in, if it did.
    pub voted_in_epoch: Option<u64>,
}

/// A vote for a log line: keys in base58, hashes in hex (never as lists
/// of numbers).
pub fn describe(vote: &Vote) -> String {
    let hex = |h: &[u8; 32]| crate::core::hex(h);
    match vote {
        Vote::Provision {
            request,
            nonce,
            operator,
            endpoint_hash,
        } => format!(
            "provision request {request} (#{nonce}) by operator {operator}, endpoint hash {}",
            hex(endpoint_hash)
        ),
        Vote::Admit {
            operator,
            nonce,
            decision,
        } => format!(
            "admit operator {operator} (#{nonce}), decision {}",
            hex(decision)
        ),
        Vote::Remove {
            operator,
            nonce,
            decision,
        } => format!(
            "remove operator {operator} (#{nonce}), decision {}",
            hex(decision)
        ),
        Vote::Terminate {
            request,
            nonce,
            decision,
        } => format!(
            "terminate request {request} (#{nonce}), decision {}",
            hex(decision)
        ),
    }
}

fn key(vote: &Vote) -> Vec<u8> {
    let subject = vote.subject();
    let mut key = subject.kind_seed().to_vec();
    key.extend_from_slice(subject.key().as_ref());
    key.extend_from_slice(&subject.nonce().to_le_bytes());
    key
}

/// Sweep for this node's closable tallies every this many rounds.
const SWEEP_EVERY_ROUNDS: u32 = 10;

pub struct Attester {
    pub reader: Arc<ChainReader>,
    pub node: Keypair,
    pub store: Arc<Store>,
    pub duties: watch::Receiver<(u64, Duties)>,
    pub metrics: Arc<Metrics>,
    pub interval: Duration,
    /// Rounds since the last sweep for closable tallies.
    pub since_sweep: u32,
    /// Asked before posting: a node whose state came from peers and is not
    /// verified yet votes nothing (its duties might not be the network's).
    pub core: crate::core::CoreHandle,
}

/// What the chain says about a vote's subject.
enum Subject {
    Pending,
    Settled,
}

impl Attester {
    pub async fn run(mut self) {
        loop {
            let unverified = self
                .core
                .status()
                .await
                .map_or(true, |s| s.unverified_install.is_some());
            if unverified {
                tracing::debug!("state not verified since a state sync; not attesting yet");
            } else if let Err(err) = self.round().await {
                tracing::warn!(error = %err, "attester round failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                changed = self.duties.changed() => if changed.is_err() { return },
            }
        }
    }

    fn entries(&self) -> Result<Vec<(Vec<u8>, OutboxEntry)>, String> {
        let mut out = Vec::new();
        for (k, v) in self.store.outbox().map_err(|e| e.to_string())? {
            match OutboxEntry::deserialize(&mut v.as_slice()) {
                Ok(entry) => out.push((k, entry)),
                Err(_) => {
                    tracing::warn!("dropping an undecodable outbox entry");
                    let _ = self.store.outbox_remove(&k);
                }
            }
        }
        Ok(out)
    }

    fn put(&self, entry: &OutboxEntry) -> Result<(), String> {
        let mut bytes = Vec::new();
        entry.serialize(&mut bytes).map_err(|e| e.to_string())?;
        self.store
            .outbox_put(&key(&entry.vote), &bytes)
            .map_err(|e| e.to_string())
    }

    /// Closes the tallies this node paid for that can no longer be decided;
    /// the program refuses (`TallyStillOpen`) those that still can.
    async fn sweep_tallies(&self) -> Result<(), String> {
        let me = solana_sdk::signer::Signer::pubkey(&self.node);
        let tallies = self
            .reader
            .tallies_paid_by(&me)
            .await
            .map_err(|e| e.to_string())?;
        for (address, tally) in tallies {
            let close = dagger_client::instructions::close_tally(&tally.subject, &me);
            match self.reader.send(&[close], &self.node, &[]).await {
                Ok(()) => {
                    tracing::info!(%address, subject = ?tally.subject, "closed a tally this node paid for")
                }
                Err(ChainError::Program(failure)) if failure.is(DaggerError::TallyStillOpen) => {}
                Err(err) => tracing::debug!(%address, error = %err, "could not close a tally yet"),
            }
        }
        Ok(())
    }

    async fn round(&mut self) -> Result<(), String> {
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY_ROUNDS {
            self.since_sweep = 0;
            if let Err(err) = self.sweep_tallies().await {
                tracing::debug!(error = %err, "tally sweep failed");
            }
        }
        // Queue what the controller wants that is not queued yet.
        let wanted = self.duties.borrow().1.votes.clone();
        let queued = self.entries()?;
        for vote in wanted {
            if !queued.iter().any(|(k, _)| *k == key(&vote)) {
                self.put(&OutboxEntry {
                    vote,
                    voted_in_epoch: None,
                })?;
            }
        }
        let entries = self.entries()?;
        if entries.is_empty() {
            return Ok(());
        }
        let config = self.reader.config().await.map_err(|e| e.to_string())?;
        let me = pda::operator(&solana_sdk::signer::Signer::pubkey(&self.node)).0;
        let active = self
            .reader
            .one::<dagger_client::Operator>(&me)
            .await
            .map_err(|e| e.to_string())?
            .is_some_and(|op| op.status == OperatorStatus::Active);
        for (k, mut entry) in entries {
            if let Subject::Settled = self.subject(&entry.vote).await.map_err(|e| e.to_string())? {
                self.store.outbox_remove(&k).map_err(|e| e.to_string())?;
                continue;
            }
            if !active || entry.voted_in_epoch == Some(config.roster_epoch) {
                continue;
            }
            match self
                .reader
                .attest(&self.node, config.roster_epoch, entry.vote)
                .await
            {
                Ok(()) => {
                    tracing::info!(vote = %describe(&entry.vote), epoch = config.roster_epoch, "attestation posted");
                    entry.voted_in_epoch = Some(config.roster_epoch);
                    self.put(&entry)?;
                }
                Err(ChainError::Program(failure)) if failure.is(DaggerError::AlreadyVoted) => {
                    entry.voted_in_epoch = Some(config.roster_epoch);
                    self.put(&entry)?;
                }
                Err(ChainError::Program(failure))
                    if [
                        DaggerError::AlreadyApplied,
                        DaggerError::RequestExpired,
                        DaggerError::LeaseEnded,
                        DaggerError::LeaseNotActive,
                        DaggerError::InvalidOperatorStatus,
                    ]
                    .into_iter()
                    .any(|e| failure.is(e)) =>
                {
                    tracing::info!(vote = %describe(&entry.vote), %failure, "attestation no longer applies");
                    self.store.outbox_remove(&k).map_err(|e| e.to_string())?;
                }
                Err(ChainError::Program(failure))
                    if failure.is(DaggerError::WrongAccount)
                        || failure.is(DaggerError::StaleEpoch) =>
                {
                    // Races with other voters, settled by reading again: the
                    // tally was opened (by another rent payer) or the roster
                    // epoch moved between our read and our vote.
                    tracing::debug!(vote = %describe(&entry.vote), %failure, "raced another vote; will retry");
                }
                Err(err) => {
                    self.metrics.reject_message("attestation_failed");
                    tracing::warn!(vote = %describe(&entry.vote), error = %err, "attestation failed; will retry");
                }
            }
        }
        Ok(())
    }

    async fn subject(&self, vote: &Vote) -> Result<Subject, ChainError> {
        let nonce = vote.nonce();
        let settled = match vote {
            Vote::Provision { request, .. } => self
                .reader
                .one::<Request>(request)
                .await?
                .is_none_or(|r| r.nonce != nonce || r.status != RequestStatus::Open),
            Vote::Terminate { request, .. } => self
                .reader
                .one::<Request>(request)
                .await?
                .is_none_or(|r| r.nonce != nonce || r.status != RequestStatus::Active),
            Vote::Admit { operator, .. } => self
                .reader
                .one::<dagger_client::Operator>(operator)
                .await?
                .is_none_or(|op| op.nonce != nonce || op.status != OperatorStatus::Pending),
            Vote::Remove { operator, .. } => self
                .reader
                .one::<dagger_client::Operator>(operator)
                .await?
                .is_none_or(|op| op.nonce != nonce || op.status != OperatorStatus::Active),
        };
        Ok(if settled {
            Subject::Settled
        } else {
            Subject::Pending
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::prelude::Pubkey;

    #[test]
    fn votes_read_as_base58_and_hex() {
        let (request, operator) = (Pubkey::new_unique(), Pubkey::new_unique());
        let text = describe(&Vote::Provision {
            request,
            nonce: 4,
            operator,
            endpoint_hash: [0xab; 32],
        });
        assert!(text.contains(&request.to_string()), "{text}");
        assert!(text.contains(&operator.to_string()), "{text}");
        assert!(text.contains(&"ab".repeat(32)), "{text}");
        assert!(!text.contains("171,"), "no number lists: {text}");
        let text = describe(&Vote::Terminate {
            request,
            nonce: 1,
            decision: [1; 32],
        });
        assert!(text.contains(&"01".repeat(32)), "{text}");
    }
}
