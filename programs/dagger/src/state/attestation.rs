use anchor_lang::prelude::*;

use crate::constants::MAX_ACTIVE_OPERATORS;

/// What a quorum decides about: an account and the instance of it (its
/// `nonce`), so ballots for a request or registration that was closed and
/// recreated at the same address never count for the new one.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, InitSpace)]
pub enum Subject {
    /// Turn an open request (account) into an active lease.
    Provision { request: Pubkey, nonce: u64 },
    /// Admit a pending operator (account) into the roster.
    Admit { operator: Pubkey, nonce: u64 },
    /// Remove an active operator (account) from the roster.
    Remove { operator: Pubkey, nonce: u64 },
    /// Stop an active lease (account) whose VM failed.
    Terminate { request: Pubkey, nonce: u64 },
}

impl Subject {
    /// First PDA seed after the prefix: one byte naming the kind of subject.
    pub fn kind_seed(&self) -> &'static [u8] {
        match self {
            Subject::Provision { .. } => &[0],
            Subject::Admit { .. } => &[1],
            Subject::Remove { .. } => &[2],
            Subject::Terminate { .. } => &[3],
        }
    }

    /// The account the subject is about (the second PDA seed).
    pub fn key(&self) -> &Pubkey {
        match self {
            Subject::Provision { request, .. } | Subject::Terminate { request, .. } => request,
            Subject::Admit { operator, .. } | Subject::Remove { operator, .. } => operator,
        }
    }

    /// The subject's instance number (the third PDA seed, little-endian).
    pub fn nonce(&self) -> u64 {
        match *self {
            Subject::Provision { nonce, .. }
            | Subject::Admit { nonce, .. }
            | Subject::Remove { nonce, .. }
            | Subject::Terminate { nonce, .. } => nonce,
        }
    }
}

/// One operator's vote: the subject and the outcome it saw ordered by consensus.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Vote {
    /// `operator` (an Operator account) runs the VM; `endpoint_hash` commits
    /// to the endpoint it reported.
    Provision {
        request: Pubkey,
        nonce: u64,
        operator: Pubkey,
        endpoint_hash: [u8; 32],
    },
    /// `decision` commits to the consensus decision (e.g. its order hash).
    Admit {
        operator: Pubkey,
        nonce: u64,
        decision: [u8; 32],
    },
    Remove {
        operator: Pubkey,
        nonce: u64,
        decision: [u8; 32],
    },
    Terminate {
        request: Pubkey,
        nonce: u64,
        decision: [u8; 32],
    },
}

impl Vote {
    /// See [`Subject::kind_seed`].
    pub fn kind_seed(&self) -> &'static [u8] {
        self.subject().kind_seed()
    }

    /// The account the vote is about.
    pub fn subject_key(&self) -> &Pubkey {
        match self {
            Vote::Provision { request, .. } | Vote::Terminate { request, .. } => request,
            Vote::Admit { operator, .. } | Vote::Remove { operator, .. } => operator,
        }
    }

    /// The subject's instance number.
    pub fn nonce(&self) -> u64 {
        self.subject().nonce()
    }

    pub fn subject(&self) -> Subject {
        match *self {
            Vote::Provision { request, nonce, .. } => Subject::Provision { request, nonce },
            Vote::Admit {
                operator, nonce, ..
            } => Subject::Admit { operator, nonce },
            Vote::Remove {
                operator, nonce, ..
            } => Subject::Remove { operator, nonce },
            Vote::Terminate { request, nonce, .. } => Subject::Terminate { request, nonce },
        }
    }

    /// The part of the vote that must agree for votes to add up.
    pub fn outcome(&self) -> Outcome {
        match *self {
            Vote::Provision {
                operator,
                endpoint_hash,
                ..
            } => Outcome {
                operator,
                digest: endpoint_hash,
            },
            Vote::Admit { decision, .. }
            | Vote::Remove { decision, .. }
            | Vote::Terminate { decision, .. } => Outcome {
                operator: Pubkey::default(),
                digest: decision,
            },
        }
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, InitSpace)]
pub struct Outcome {
    pub operator: Pubkey,
    pub digest: [u8; 32],
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, InitSpace)]
pub struct Ballot {
    /// The voter's Operator account.
    pub voter: Pubkey,
    /// Its stake when it voted.
    pub stake: u64,
    pub outcome: Outcome,
}

/// The running tally for one subject instance. It lives until a quorum
/// applies the outcome, or until anyone closes it once its subject is
/// settled, gone or its epoch is over (`close_tally`); either way its rent
/// returns to whoever paid it.
#[account]
#[derive(InitSpace, Debug)]
pub struct Attestation {
    /// The node key that created the account and gets its rent back (first,
    /// at a fixed offset, so a node can find the tallies it paid for).
    pub rent_payer: Pubkey,
    pub subject: Subject,
    /// Ballots only count within this epoch; a newer epoch restarts the tally.
    pub roster_epoch: u64,
    pub bump: u8,
    #[max_len(MAX_ACTIVE_OPERATORS)]
    pub ballots: Vec<Ballot>,
}

impl Attestation {
    pub fn has_voted(&self, voter: &Pubkey) -> bool {
        self.ballots.iter().any(|b| &b.voter == voter)
    }

    /// Stake behind one outcome. Ballots are bounded by the roster size and
    /// each stake by the total active stake, so u128 cannot overflow.
    pub fn stake_for(&self, outcome: &Outcome) -> u64 {
        let sum: u128 = self
            .ballots
            .iter()
            .filter(|b| &b.outcome == outcome)
            .map(|b| b.stake as u128)
            .sum();
        sum.min(u64::MAX as u128) as u64
    }
}
