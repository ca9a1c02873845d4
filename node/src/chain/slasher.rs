//! Reports the equivocations this node's consensus core finds to the
//! program (`report_equivocation`), so an operator that signs two
//! conflicting events loses stake and its place in the roster without
//! anyone having to act.
//!
//! One report per creator: once any pair of a creator lands, it is slashed
//! and removed, and every other pair would be refused (`AlreadySlashed`).
//! The outbox is kept in the ledger, so a crash between finding a pair and
//! reporting it loses nothing. Before sending, the chain is read: if
//! another honest node (or anyone) reported first, there is nothing to pay
//! for. Each node waits a delay derived from the pair and its own key
//! before its first attempt, so the honest nodes rarely all pay for the
//! same report. Failures other than "already done" are retried every
//! interval, up to [`MAX_ATTEMPTS`].

use std::{sync::Arc, time::Duration};

use anchor_lang::{prelude::Pubkey, AnchorDeserialize, AnchorSerialize};
use dagger_client::{
    errors::DaggerError,
    evidence::{Evidence, SignedHeader},
    instructions as ix, OperatorStatus, ProgramFailure,
};
use dagger_consensus::Equivocation;
use solana_sdk::signature::{Keypair, Signer};

use super::client::{ChainError, ChainReader};
use crate::{core::CoreHandle, metrics::Metrics, store::Store};

const OUTBOX_KEY: &str = "slasher_outbox";

/// Attempts before a report is given up (and logged as an error).
pub const MAX_ATTEMPTS: u32 = 30;

/// The evidence as the program and the SDK take it.
pub fn to_evidence(pair: &Equivocation) -> Evidence {
    let signed = |e: &dagger_consensus::Event| SignedHeader {
        header: e.header().encode().to_vec(),
        signature: *e.signature(),
    };
    Evidence {
        first: signed(&pair.first),
        second: signed(&pair.second),
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub enum ReportState {
    Pending {
        attempts: u32,
    },
    /// Slashed (by this node's report or anyone's), or nothing left to do.
    Done,
    /// Gave up after [`MAX_ATTEMPTS`].
    Failed,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub creator: [u8; 32],
    pub first_header: Vec<u8>,
    pub first_signature: [u8; 64],
    pub second_header: Vec<u8>,
    pub second_signature: [u8; 64],
    pub state: ReportState,
}

impl OutboxEntry {
    fn evidence(&self) -> Evidence {
        Evidence {
            first: SignedHeader {
                header: self.first_header.clone(),
                signature: self.first_signature,
            },
            second: SignedHeader {
                header: self.second_header.clone(),
                signature: self.second_signature,
            },
        }
    }
}

pub struct Slasher {
    pub reader: Arc<ChainReader>,
    pub node: Keypair,
    pub store: Arc<Store>,
    pub core: CoreHandle,
    pub metrics: Arc<Metrics>,
    pub network_id: [u8; 32],
    pub interval: Duration,
}

/// What the chain says about a pending report.
enum Needed {
    Report,
    Nothing(&'static str),
}

impl Slasher {
    pub async fn run(self) {
        loop {
            if let Err(err) = self.round().await {
                tracing::warn!(error = %err, "slasher round failed; retrying");
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    fn load(&self) -> Result<Vec<OutboxEntry>, String> {
        match self.store.meta(OUTBOX_KEY).map_err(|e| e.to_string())? {
            Some(bytes) => Vec::<OutboxEntry>::deserialize(&mut bytes.as_slice())
                .map_err(|e| format!("the slasher outbox is corrupt: {e}")),
            None => Ok(Vec::new()),
        }
    }

    fn save(&self, outbox: &[OutboxEntry]) -> Result<(), String> {
        let mut bytes = Vec::new();
        outbox.serialize(&mut bytes).map_err(|e| e.to_string())?;
        self.store
            .set_meta(OUTBOX_KEY, &bytes)
            .map_err(|e| e.to_string())
    }

    async fn round(&self) -> Result<(), String> {
        let mut outbox = self.load()?;
        let found = self.core.evidence().await.map_err(|e| e.to_string())?;
        let me = self.node.pubkey().to_bytes();
        let mut changed = false;
        for pair in &found {
            let creator = pair.first.creator().0;
            if creator == me || outbox.iter().any(|e| e.creator == creator) {
                continue;
            }
            let evidence = to_evidence(pair);
            if let Err(err) = evidence.check(&self.network_id) {
                // The core only keeps verified pairs; this would be a bug.
                tracing::error!(error = %err, "the core's evidence does not check; not reporting it");
                continue;
            }
            tracing::warn!(creator = %Pubkey::new_from_array(creator), "queueing an equivocation report");
            let hash = evidence.hash();
            outbox.push(OutboxEntry {
                creator,
                first_header: evidence.first.header,
                first_signature: evidence.first.signature,
                second_header: evidence.second.header,
                second_signature: evidence.second.signature,
                state: ReportState::Pending { attempts: 0 },
            });
            changed = true;
            // A first attempt after a delay of its own (see the module docs).
            let mut seed = blake3::Hasher::new();
            seed.update(&hash);
            seed.update(&me);
            let slot = u64::from(seed.finalize().as_bytes()[0] % 4);
            tokio::time::sleep(self.interval * slot as u32).await;
        }
        if changed {
            self.save(&outbox)?;
        }
        for index in 0..outbox.len() {
            let ReportState::Pending { attempts } = outbox[index].state else {
                continue;
            };
            let evidence = outbox[index].evidence();
            let state = match self.report(&evidence).await {
                Ok(()) => ReportState::Done,
                Err(err) if attempts + 1 >= MAX_ATTEMPTS => {
                    tracing::error!(error = %err, attempts = attempts + 1, "giving up an equivocation report");
                    ReportState::Failed
                }
                Err(err) => {
                    tracing::warn!(error = %err, attempt = attempts + 1, "equivocation report failed; will retry");
                    ReportState::Pending {
                        attempts: attempts + 1,
                    }
                }
            };
            outbox[index].state = state;
            self.save(&outbox)?;
        }
        Ok(())
    }

    async fn needed(&self, evidence: &Evidence, node_key: &Pubkey) -> Result<Needed, ChainError> {
        if self
            .reader
            .one::<dagger_client::EquivocationRecord>(
                &dagger_client::pda::evidence(&evidence.hash()).0,
            )
            .await?
            .is_some()
        {
            return Ok(Needed::Nothing("this pair was already reported"));
        }
        let Some(operator) = self
            .reader
            .one::<dagger_client::Operator>(&dagger_client::pda::operator(node_key).0)
            .await?
        else {
            return Ok(Needed::Nothing("no operator is registered with this key"));
        };
        if operator.equivocation != [0; 32] {
            return Ok(Needed::Nothing("the operator was already slashed"));
        }
        if operator.status == OperatorStatus::Exited || operator.stake == 0 {
            return Ok(Needed::Nothing("the operator has no stake left"));
        }
        Ok(Needed::Report)
    }

    /// `Ok` once nothing is left to do for this pair.
    async fn report(&self, evidence: &Evidence) -> Result<(), String> {
        let node_key = evidence
            .check(&self.network_id)
            .map_err(|e| e.to_string())?
            .node_key;
        match self
            .needed(evidence, &node_key)
            .await
            .map_err(|e| e.to_string())?
        {
            Needed::Nothing(why) => {
                tracing::info!(operator = %node_key, why, "equivocation report not needed");
                return Ok(());
            }
            Needed::Report => {}
        }
        let instructions = ix::report_equivocation(
            &self.node.pubkey(),
            &node_key,
            &self.network_id,
            &evidence.first,
            &evidence.second,
        );
        match self.reader.send(&instructions, &self.node, &[]).await {
            Ok(()) => {
                self.metrics.equivocations_reported.inc();
                tracing::warn!(operator = %node_key, "reported an equivocation: the operator is slashed and removed");
                Ok(())
            }
            Err(ChainError::Program(ProgramFailure::Dagger(
                DaggerError::EvidenceAlreadyReported
                | DaggerError::AlreadySlashed
                | DaggerError::NothingToSlash,
            ))) => Ok(()),
            Err(err) => Err(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_entries_round_trip() {
        let entry = OutboxEntry {
            creator: [1; 32],
            first_header: vec![2; 175],
            first_signature: [3; 64],
            second_header: vec![4; 135],
            second_signature: [5; 64],
            state: ReportState::Pending { attempts: 7 },
        };
        let mut bytes = Vec::new();
        vec![entry.clone()].serialize(&mut bytes).unwrap();
        let back = Vec::<OutboxEntry>::deserialize(&mut bytes.as_slice()).unwrap();
        assert_eq!(back, vec![entry.clone()]);
        assert_eq!(back[0].evidence().first.signature, [3; 64]);
    }
}
