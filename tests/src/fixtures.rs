//! A ready network: config, operators, customers, and voting helpers.

use anchor_lang::Space;
use dagger_client::{
    instructions as ix, pda, Attestation, Capacity, Config, InitializeArgs, Operator, PriceFloor,
    Request, VmSpec, Vote,
};
use litesvm::types::TransactionMetadata;
use solana_pubkey::Pubkey;
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signature::Keypair, signer::Signer};

use crate::chain::{Failure, TestChain};

pub const MIN_STAKE: u64 = 10 * LAMPORTS_PER_SOL;
pub const UNBONDING_PERIOD: i64 = 7 * 24 * 3600;
pub const PROVISIONING_TIMEOUT: i64 = 600;
pub const FEE_BPS: u16 = 250;
/// Fixtures use 4 equal genesis operators (25 % each): under the 30 % cap.
pub const MAX_STAKE_SHARE_BPS: u16 = 3_000;
pub const REMOVAL_SLASH_BPS: u16 = 500;
pub const EQUIVOCATION_SLASH_BPS: u16 = 5_000;
pub const REPORTER_REWARD_BPS: u16 = 1_000;

/// The settings every test network starts with, paid fees to `treasury`.
pub fn initialize_args(treasury: Pubkey) -> InitializeArgs {
    InitializeArgs {
        treasury,
        min_operator_stake: MIN_STAKE,
        unbonding_period: UNBONDING_PERIOD,
        provisioning_timeout: PROVISIONING_TIMEOUT,
        protocol_fee_bps: FEE_BPS,
        max_stake_share_bps: MAX_STAKE_SHARE_BPS,
        removal_slash_bps: REMOVAL_SLASH_BPS,
        equivocation_slash_bps: EQUIVOCATION_SLASH_BPS,
        reporter_reward_bps: REPORTER_REWARD_BPS,
    }
}

pub fn capacity() -> Capacity {
    Capacity {
        vcpus: 16,
        memory_mib: 65_536,
        disk_gib: 1_000,
        region: 1,
    }
}

pub fn spec() -> VmSpec {
    VmSpec {
        vcpus: 2,
        memory_mib: 4_096,
        disk_gib: 40,
        region: 1,
        image_id: [7; 32],
        ssh_key: [42; 32],
    }
}

/// An operator's two keys: the wallet that stakes and the node identity.
pub struct OperatorKeys {
    pub owner: Keypair,
    pub node: Keypair,
}

impl OperatorKeys {
    /// The Operator account.
    pub fn account(&self) -> Pubkey {
        pda::operator(&self.node.pubkey()).0
    }
}

pub struct Network {
    pub chain: TestChain,
    pub admin: Keypair,
    pub treasury: Keypair,
    pub operators: Vec<OperatorKeys>,
}

impl Network {
    /// A chain with the config initialized and nothing else.
    pub fn initialized() -> Network {
        let mut chain = TestChain::new();
        let admin = chain.funded(100 * LAMPORTS_PER_SOL);
        // The treasury is a plain wallet that already exists, so fee credits of
        // any size keep it rent-exempt.
        let treasury = chain.funded(LAMPORTS_PER_SOL);
        chain.ok(
            &[ix::initialize(
                &admin.pubkey(),
                None,
                initialize_args(treasury.pubkey()),
            )],
            &[&admin],
        );
        Network {
            chain,
            admin,
            treasury,
            operators: Vec::new(),
        }
    }

    /// A bootstrapped network whose genesis roster has these stakes.
    pub fn with_operators(stakes: &[u64]) -> Network {
        let mut net = Network::initialized();
        for &stake in stakes {
            let index = net.register(stake);
            let node = net.operators[index].node.pubkey();
            let admin = &net.admin;
            net.chain
                .ok(&[ix::bootstrap_admit(&admin.pubkey(), &node)], &[admin]);
        }
        let admin = &net.admin;
        net.chain
            .ok(&[ix::finish_bootstrap(&admin.pubkey())], &[admin]);
        net
    }

    /// Registers (Pending) an operator with `stake`; returns its index.
    pub fn register(&mut self, stake: u64) -> usize {
        let owner = self.chain.funded(stake + 10 * LAMPORTS_PER_SOL);
        let node = self.chain.funded(10 * LAMPORTS_PER_SOL);
        self.chain.ok(
            &[ix::register_operator(
                &owner.pubkey(),
                &node.pubkey(),
                format!("127.0.0.1:{}", 9000 + self.operators.len()),
                capacity(),
                stake,
                PriceFloor::default(),
            )],
            &[&owner, &node],
        );
        self.operators.push(OperatorKeys { owner, node });
        self.operators.len() - 1
    }

    pub fn config(&self) -> Config {
        self.chain.account(&pda::config().0).expect("config exists")
    }

    pub fn operator(&self, index: usize) -> Operator {
        self.chain
            .account(&self.operators[index].account())
            .expect("operator exists")
    }

    pub fn request(&self, address: &Pubkey) -> Option<Request> {
        self.chain.account(address)
    }

    pub fn customer(&mut self) -> Keypair {
        self.chain.funded(1_000 * LAMPORTS_PER_SOL)
    }

    /// Opens a request; returns its address.
    pub fn create_request(
        &mut self,
        customer: &Keypair,
        request_id: u64,
        price_per_second: u64,
        duration: u64,
    ) -> Pubkey {
        self.chain.ok(
            &[ix::create_request(
                &customer.pubkey(),
                request_id,
                spec(),
                price_per_second,
                duration,
            )],
            &[customer],
        );
        pda::request(&customer.pubkey(), request_id).0
    }

    /// Operator `index`'s owner changes its offer (address, capacity, floor).
    pub fn update_operator(&mut self, index: usize, args: dagger_client::UpdateOperatorArgs) {
        let owner = self.operators[index].owner.insecure_clone();
        let node = self.operators[index].node.pubkey();
        self.chain.ok(
            &[ix::update_operator(&owner.pubkey(), &node, args)],
            &[&owner],
        );
    }

    /// Operator `index` votes in the current epoch.
    pub fn vote(&mut self, index: usize, vote: Vote) -> Result<TransactionMetadata, Failure> {
        let epoch = self.config().roster_epoch;
        self.vote_in_epoch(index, epoch, vote)
    }

    pub fn vote_in_epoch(
        &mut self,
        index: usize,
        epoch: u64,
        vote: Vote,
    ) -> Result<TransactionMetadata, Failure> {
        let node = &self.operators[index].node;
        let rent_payer = self
            .chain
            .account::<Attestation>(&pda::attestation(&vote.subject()).0)
            .map(|a| a.rent_payer)
            .unwrap_or(node.pubkey());
        let lease_operator = match vote {
            Vote::Terminate { request, .. } => self
                .chain
                .account::<Request>(&request)
                .map(|r| r.assigned_operator),
            _ => None,
        };
        let instruction =
            ix::attest_lease(&node.pubkey(), &rent_payer, epoch, vote, lease_operator);
        self.chain.send(&[instruction], &[node])
    }

    /// A provisioning vote assigning `request` to operator `assignee`.
    pub fn provision_vote(&self, request: &Pubkey, assignee: usize) -> Vote {
        Vote::Provision {
            request: *request,
            nonce: self.request(request).expect("request exists").nonce,
            operator: self.operators[assignee].account(),
            endpoint_hash: [9; 32],
        }
    }

    /// The fee vault's balance above its rent (collected fees).
    pub fn fees_collected(&self) -> u64 {
        let vault = pda::fee_vault().0;
        let rent = self.chain.rent(8 + dagger_client::FeeVault::INIT_SPACE);
        self.chain.lamports(&vault) - rent
    }

    /// Votes with operators in order until the provisioning quorum applies it.
    pub fn provision(&mut self, request: &Pubkey, assignee: usize) {
        let vote = self.provision_vote(request, assignee);
        for index in 0..self.operators.len() {
            if !self.operator(index).is_active() {
                continue;
            }
            self.vote(index, vote).expect("vote accepted");
            if self.chain.account::<Request>(request).unwrap().status
                == dagger_client::RequestStatus::Active
            {
                return;
            }
        }
        panic!("provisioning never reached quorum");
    }
}
