//! Typed reads of the program's accounts and filtered scans.

use anchor_client::{ClientError as AnchorClientError, RpcFilterType};
use anchor_lang::{
    prelude::{Clock, Pubkey},
    solana_program::sysvar::SysvarId,
    AccountDeserialize, Discriminator, Space,
};
use solana_rpc_client_api::filter::Memcmp;

use crate::{
    accounts::decode,
    client::DaggerClient,
    errors::ClientError,
    layout::{self, request_status_byte, DISCRIMINATOR_LEN},
    pda, Attestation, Config, Genesis, Operator, OperatorStatus, Request, RequestStatus, Subject,
    VmSpec, PROGRAM_ID,
};

/// Which operators to list. `owner` is filtered by the RPC node (memcmp);
/// `status` on this side, because it sits after the variable-length address
/// and has no fixed offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperatorFilter {
    pub status: Option<OperatorStatus>,
    pub owner: Option<Pubkey>,
}

/// Which requests to list; both filters run on the RPC node (memcmp).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub customer: Option<Pubkey>,
    pub status: Option<RequestStatus>,
}

/// Reads. Every single-account read checks the owner is the DAGGER program,
/// so an account crafted elsewhere with the right discriminator is refused.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    client: &'a DaggerClient,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(client: &'a DaggerClient) -> Self {
        Reader { client }
    }

    /// The account at `address`, or `None` when there is none.
    pub async fn fetch<T: AccountDeserialize + Discriminator>(
        self,
        kind: &'static str,
        address: &Pubkey,
    ) -> Result<Option<T>, ClientError> {
        let rpc = self.client.rpc();
        let account = rpc
            .get_account_with_commitment(address, rpc.commitment())
            .await
            .map_err(Box::new)?
            .value;
        let Some(account) = account else {
            return Ok(None);
        };
        if account.owner != PROGRAM_ID {
            return Err(ClientError::WrongOwner {
                kind,
                address: *address,
                owner: account.owner,
            });
        }
        decode(&account.data).map(Some)
    }

    /// The account at `address`; [`ClientError::NotFound`] when missing.
    pub async fn get<T: AccountDeserialize + Discriminator>(
        self,
        kind: &'static str,
        address: &Pubkey,
    ) -> Result<T, ClientError> {
        self.fetch(kind, address)
            .await?
            .ok_or(ClientError::NotFound {
                kind,
                address: *address,
            })
    }

    pub async fn config(self) -> Result<Config, ClientError> {
        self.get("config", &pda::config().0).await
    }

    /// The genesis roster record (exists once the first operator is
    /// admitted; final once `finished`).
    pub async fn genesis(self) -> Result<Genesis, ClientError> {
        self.get("genesis", &pda::genesis().0).await
    }

    /// The operator registered with `node_key`.
    pub async fn operator(self, node_key: &Pubkey) -> Result<Operator, ClientError> {
        self.get("operator", &pda::operator(node_key).0).await
    }

    /// The operator at its account address (as a lease names it).
    pub async fn operator_at(self, address: &Pubkey) -> Result<Operator, ClientError> {
        self.get("operator", address).await
    }

    pub async fn request(self, address: &Pubkey) -> Result<Request, ClientError> {
        self.get("request", address).await
    }

    /// The record of a reported equivocation, by the pair's hash.
    pub async fn equivocation_record(
        self,
        evidence_hash: &[u8; 32],
    ) -> Result<Option<crate::EquivocationRecord>, ClientError> {
        self.fetch("equivocation record", &pda::evidence(evidence_hash).0)
            .await
    }

    /// The running tally for `subject`; `None` when nobody voted yet in it
    /// or a quorum already closed it.
    pub async fn attestation(self, subject: &Subject) -> Result<Option<Attestation>, ClientError> {
        self.fetch("attestation", &pda::attestation(subject).0)
            .await
    }

    /// Every program account of type `T` (by its Anchor discriminator).
    pub async fn all<T: AccountDeserialize + Discriminator>(
        self,
    ) -> Result<Vec<(Pubkey, T)>, ClientError> {
        self.scan::<T>(Vec::new()).await
    }

    /// The tallies `rent_payer` paid for (the rent payer is the first field
    /// after the discriminator, so the RPC node filters them).
    pub async fn tallies_paid_by(
        self,
        rent_payer: &Pubkey,
    ) -> Result<Vec<(Pubkey, Attestation)>, ClientError> {
        self.scan::<Attestation>(vec![memcmp(DISCRIMINATOR_LEN, rent_payer.as_ref())])
            .await
    }

    /// Operators, sorted by node key.
    pub async fn operators(
        self,
        filter: OperatorFilter,
    ) -> Result<Vec<(Pubkey, Operator)>, ClientError> {
        let mut filters = vec![data_size::<Operator>()];
        if let Some(owner) = filter.owner {
            filters.push(memcmp(layout::operator::OWNER, owner.as_ref()));
        }
        let mut operators = self.scan::<Operator>(filters).await?;
        if let Some(status) = filter.status {
            operators.retain(|(_, operator)| operator.status == status);
        }
        operators.sort_by_key(|(_, operator)| operator.node_key);
        Ok(operators)
    }

    /// What each active operator that could host `spec` (capacity and
    /// region) asks for it, in lamports per second, cheapest first: the
    /// price a request must offer to be assigned (consensus assigns a request
    /// only to an operator whose floor it meets).
    pub async fn quote(self, spec: &VmSpec) -> Result<Vec<(Pubkey, u128)>, ClientError> {
        let mut quotes: Vec<(Pubkey, u128)> = self
            .operators(OperatorFilter {
                status: Some(OperatorStatus::Active),
                owner: None,
            })
            .await?
            .into_iter()
            .filter(|(_, op)| {
                (spec.region == 0 || op.capacity.region == spec.region)
                    && op.capacity.vcpus >= spec.vcpus
                    && op.capacity.memory_mib >= spec.memory_mib
                    && op.capacity.disk_gib >= spec.disk_gib
            })
            .map(|(address, op)| (address, op.price_floor.min_price(spec)))
            .collect();
        quotes.sort_by_key(|(address, price)| (*price, *address));
        Ok(quotes)
    }

    /// Requests, oldest first.
    pub async fn requests(
        self,
        filter: RequestFilter,
    ) -> Result<Vec<(Pubkey, Request)>, ClientError> {
        let mut filters = vec![data_size::<Request>()];
        if let Some(customer) = filter.customer {
            filters.push(memcmp(layout::request::CUSTOMER, customer.as_ref()));
        }
        if let Some(status) = filter.status {
            filters.push(memcmp(
                layout::request::STATUS,
                &[request_status_byte(status)],
            ));
        }
        let mut requests = self.scan::<Request>(filters).await?;
        requests.sort_by_key(|(address, request)| (request.created_at, *address));
        Ok(requests)
    }

    /// Leases (active or terminated requests), optionally only those assigned
    /// to one operator account.
    pub async fn leases(
        self,
        operator: Option<&Pubkey>,
    ) -> Result<Vec<(Pubkey, Request)>, ClientError> {
        let mut leases = Vec::new();
        for status in [RequestStatus::Active, RequestStatus::Terminated] {
            let mut filters = vec![
                data_size::<Request>(),
                memcmp(layout::request::STATUS, &[request_status_byte(status)]),
            ];
            if let Some(operator) = operator {
                filters.push(memcmp(
                    layout::request::ASSIGNED_OPERATOR,
                    operator.as_ref(),
                ));
            }
            leases.extend(self.scan::<Request>(filters).await?);
        }
        leases.sort_by_key(|(address, request)| (request.lease_start, *address));
        Ok(leases)
    }

    /// The cluster's clock (`unix_timestamp` of the Clock sysvar), which is
    /// what the program compares deadlines with.
    pub async fn cluster_time(self) -> Result<i64, ClientError> {
        let rpc = self.client.rpc();
        let account = rpc
            .get_account_with_commitment(&Clock::id(), rpc.commitment())
            .await
            .map_err(Box::new)?
            .value
            .ok_or(ClientError::NotFound {
                kind: "clock sysvar",
                address: Clock::id(),
            })?;
        clock_unix_timestamp(&account.data).ok_or_else(|| ClientError::Decode {
            account_type: "Clock",
            reason: format!("{} bytes", account.data.len()),
        })
    }

    /// anchor-client's typed scan; it adds the discriminator filter itself.
    async fn scan<T: AccountDeserialize + Discriminator>(
        self,
        filters: Vec<RpcFilterType>,
    ) -> Result<Vec<(Pubkey, T)>, ClientError> {
        self.client
            .program()
            .accounts::<T>(filters)
            .await
            .map_err(|error| match error {
                AnchorClientError::SolanaClientError(error) => ClientError::Rpc(error),
                other => ClientError::Decode {
                    account_type: std::any::type_name::<T>(),
                    reason: other.to_string(),
                },
            })
    }
}

fn memcmp(offset: usize, bytes: &[u8]) -> RpcFilterType {
    RpcFilterType::Memcmp(Memcmp::new_raw_bytes(offset, bytes.to_vec()))
}

/// Accounts are allocated at their maximum size (`8 + INIT_SPACE`), so the
/// size is fixed even for `Operator` with its variable-length address.
fn data_size<T: Space>() -> RpcFilterType {
    RpcFilterType::DataSize((DISCRIMINATOR_LEN + T::INIT_SPACE) as u64)
}

/// The Clock sysvar's account data, decoded as the sysvar type.
fn clock_unix_timestamp(data: &[u8]) -> Option<i64> {
    let account = solana_account::Account {
        lamports: 1,
        data: data.to_vec(),
        owner: Clock::id(),
        executable: false,
        rent_epoch: 0,
    };
    solana_account::from_account::<Clock, _>(&account).map(|clock| clock.unix_timestamp)
}
