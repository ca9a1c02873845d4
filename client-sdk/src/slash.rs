//! Anyone's face: report an operator that equivocated and earn the reward.

use solana_sdk::signature::Signature;

use crate::{
    client::DaggerClient,
    errors::{ClientError, DaggerError},
    evidence::Evidence,
    instructions as ix, OperatorStatus, TxOptions,
};

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlashOutcome {
    /// The operator was slashed; the reward went to the reporter.
    Slashed {
        signature: Signature,
        slashed: u64,
        reporter_reward: u64,
    },
    /// This pair was reported before (by anyone): nothing to do.
    AlreadyReported,
    /// The operator was already slashed for another pair: nothing to do.
    AlreadySlashed,
}

impl DaggerClient {
    /// Reports `evidence` with the client's wallet as reporter (it pays the
    /// fee and the record's rent, about 0.003 SOL, and earns the reward).
    /// The pair is checked first exactly as the program will check it
    /// ([`Evidence::check`] under the network id the program records), so
    /// a bad pair costs nothing. Reporting what was already reported is not
    /// an error: the outcome says so.
    pub async fn report_equivocation(
        &self,
        evidence: &Evidence,
    ) -> Result<SlashOutcome, ClientError> {
        let reader = self.reader();
        let config = reader.config().await?;
        if !config.bootstrapped {
            return Err(ClientError::InvalidArgument(
                "the network is not bootstrapped: there is no network id to check against yet"
                    .into(),
            ));
        }
        let checked = evidence.check(&config.network_id)?;
        if reader.equivocation_record(&checked.hash).await?.is_some() {
            return Ok(SlashOutcome::AlreadyReported);
        }
        let operator = reader.operator(&checked.node_key).await?;
        if operator.equivocation != [0; 32] {
            return Ok(SlashOutcome::AlreadySlashed);
        }
        if operator.status == OperatorStatus::Exited || operator.stake == 0 {
            return Err(ClientError::Program {
                index: 2,
                failure: crate::ProgramFailure::Dagger(DaggerError::NothingToSlash),
                logs: Vec::new(),
                signature: None,
            });
        }
        let (slashed, reporter_reward) = dagger::instructions::slash_amounts(
            operator.stake,
            config.equivocation_slash_bps,
            config.reporter_reward_bps,
        );
        let mut builder = self.transaction().options(TxOptions {
            // The report fills the transaction: no room for budget instructions.
            compute_unit_price: None,
            compute_unit_limit: None,
            skip_preflight: self.options().tx.skip_preflight,
        });
        for instruction in ix::report_equivocation(
            &self.wallet(),
            &checked.node_key,
            &config.network_id,
            &evidence.first,
            &evidence.second,
        ) {
            builder = builder.instruction(instruction);
        }
        match builder.send().await {
            Ok(signature) => Ok(SlashOutcome::Slashed {
                signature,
                slashed,
                reporter_reward,
            }),
            Err(e) if e.is_dagger(DaggerError::EvidenceAlreadyReported) => {
                Ok(SlashOutcome::AlreadyReported)
            }
            Err(e) if e.is_dagger(DaggerError::AlreadySlashed) => Ok(SlashOutcome::AlreadySlashed),
            Err(e) => Err(e),
        }
    }
}
