//! What an operator node sends on-chain: attestations, signed and paid by
//! its node key.

use solana_sdk::signature::Signature;

use crate::{
    client::{DaggerClient, SignerRef},
    errors::{ClientError, DaggerError},
    instructions as ix, pda, Subject, Vote,
};

/// What became of one vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestOutcome {
    /// The ballot is in. `decided` is true when the tally is gone afterwards,
    /// i.e. a quorum applied the outcome (possibly with this very vote).
    Recorded { signature: Signature, decided: bool },
    /// This operator had already voted in the current tally: nothing to do.
    /// Retrying an attestation is therefore safe.
    AlreadyVoted,
    /// A quorum had already decided the subject (`AlreadyApplied`); the vote
    /// was not needed.
    AlreadyDecided,
}

#[derive(Clone, Copy)]
pub struct NodeClient<'a> {
    client: &'a DaggerClient,
}

impl<'a> NodeClient<'a> {
    pub(crate) fn new(client: &'a DaggerClient) -> Self {
        NodeClient { client }
    }

    /// Votes `vote` with `node_key`, which also pays (the fee, and the tally's
    /// rent when it opens the tally). The roster epoch is read from the
    /// config and the tally's rent payer from the attestation account. When
    /// either changes between the read and the vote (another node opened the
    /// tally, or the roster moved), the vote is rebuilt once.
    pub async fn attest(
        self,
        node_key: SignerRef<'_>,
        vote: Vote,
    ) -> Result<AttestOutcome, ClientError> {
        let reader = self.client.reader();
        let node = node_key.pubkey();
        let subject = vote.subject();
        let mut retried = false;
        loop {
            let config = reader.config().await?;
            let rent_payer = match reader.attestation(&subject).await? {
                Some(tally) => tally.rent_payer,
                None => node,
            };
            let lease_operator = match vote {
                Vote::Terminate { request, .. } => reader
                    .fetch::<crate::Request>("request", &request)
                    .await?
                    .map(|r| r.assigned_operator),
                _ => None,
            };
            let sent = self
                .client
                .transaction()
                .fee_payer(node_key)
                .instruction(ix::attest_lease(
                    &node,
                    &rent_payer,
                    config.roster_epoch,
                    vote,
                    lease_operator,
                ))
                .send()
                .await;
            match sent {
                Ok(signature) => {
                    let tally = pda::attestation(&subject).0;
                    let rpc = self.client.rpc();
                    let decided = rpc
                        .get_account_with_commitment(&tally, rpc.commitment())
                        .await
                        .map_err(Box::new)?
                        .value
                        .is_none();
                    tracing::debug!(%signature, ?subject, decided, "attested");
                    return Ok(AttestOutcome::Recorded { signature, decided });
                }
                Err(error) if error.is_dagger(DaggerError::AlreadyVoted) => {
                    return Ok(AttestOutcome::AlreadyVoted)
                }
                Err(error) if error.is_dagger(DaggerError::AlreadyApplied) => {
                    return Ok(AttestOutcome::AlreadyDecided)
                }
                Err(error)
                    if !retried
                        && (error.is_dagger(DaggerError::WrongAccount)
                            || error.is_dagger(DaggerError::StaleEpoch)) =>
                {
                    tracing::debug!(%error, "tally or roster moved; voting again");
                    retried = true;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Closes the tally of `subject` if it can no longer be decided (its
    /// subject settled, gone, replaced, expired, or its epoch over); the
    /// rent goes to the node key that paid it. `Ok(None)` when there is no
    /// tally; the program's `TallyStillOpen` when it is still live.
    pub async fn close_tally(
        self,
        payer: SignerRef<'_>,
        subject: &Subject,
    ) -> Result<Option<Signature>, ClientError> {
        let Some(tally) = self.client.reader().attestation(subject).await? else {
            return Ok(None);
        };
        self.client
            .transaction()
            .fee_payer(payer)
            .instruction(ix::close_tally(subject, &tally.rent_payer))
            .send()
            .await
            .map(Some)
    }
}
