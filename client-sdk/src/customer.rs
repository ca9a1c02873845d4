//! The customer's face: request a VM and pay, top up, cancel, reclaim, close
//! the lease, and wait for the lease to start.

use std::time::{Duration, Instant};

use anchor_lang::{prelude::Pubkey, Space};
use futures_util::StreamExt;
use solana_pubsub_client::nonblocking::pubsub_client::PubsubClient;
use solana_rpc_client_api::config::RpcAccountInfoConfig;
use solana_sdk::signature::Signature;

use crate::{
    client::DaggerClient, errors::ClientError, instructions as ix, layout::DISCRIMINATOR_LEN, pda,
    reader::Reader, Escrow, Request, RequestStatus, VmSpec,
};

/// A request that was just paid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRequest {
    /// The request account: what every later command names.
    pub request: Pubkey,
    pub request_id: u64,
    /// Lamports moved into escrow (price × duration).
    pub deposit: u64,
    pub signature: Signature,
}

/// How [`CustomerClient::wait_until_active`] learns about changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMethod {
    /// `accountSubscribe` notifications (with an occasional re-read).
    Websocket,
    /// Reading the account every poll interval (no websocket available).
    Polling,
}

/// Reported to the progress callback after every look at the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitProgress {
    pub method: WatchMethod,
    pub status: RequestStatus,
    pub elapsed: Duration,
    /// Cluster seconds left before the provisioning deadline.
    pub seconds_to_deadline: i64,
}

/// The lease, once active.
#[derive(Debug)]
pub struct ActiveLease {
    pub request: Request,
    pub waited: Duration,
    pub method: WatchMethod,
}

/// Acts as the client's wallet.
#[derive(Clone, Copy)]
pub struct CustomerClient<'a> {
    client: &'a DaggerClient,
}

impl<'a> CustomerClient<'a> {
    pub(crate) fn new(client: &'a DaggerClient) -> Self {
        CustomerClient { client }
    }

    fn reader(&self) -> Reader<'a> {
        self.client.reader()
    }

    /// Opens a request under a fresh random id and pays
    /// `price_per_second × duration` into its escrow.
    pub async fn create_request(
        self,
        spec: VmSpec,
        price_per_second: u64,
        duration: u64,
    ) -> Result<CreatedRequest, ClientError> {
        // A random id rather than "highest id + 1", which two clients of
        // one wallet could both pick; a used id is refused before sending.
        self.create_request_with_id(rand::random(), spec, price_per_second, duration)
            .await
    }

    /// Opens request `request_id` (unique per customer) and pays for it.
    pub async fn create_request_with_id(
        self,
        request_id: u64,
        spec: VmSpec,
        price_per_second: u64,
        duration: u64,
    ) -> Result<CreatedRequest, ClientError> {
        let customer = self.client.wallet();
        let address = pda::request(&customer, request_id).0;
        if self
            .reader()
            .fetch::<Request>("request", &address)
            .await?
            .is_some()
        {
            return Err(ClientError::InvalidArgument(format!(
                "request id {request_id} is already used by {customer} (request {address})"
            )));
        }
        let deposit = price_per_second.checked_mul(duration).ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "price {price_per_second} × duration {duration} overflows a u64"
            ))
        })?;
        let rent = self.rent(DISCRIMINATOR_LEN + Request::INIT_SPACE).await?
            + self.rent(DISCRIMINATOR_LEN + Escrow::INIT_SPACE).await?;
        let signature = self
            .client
            .transaction()
            .instruction(ix::create_request(
                &customer,
                request_id,
                spec,
                price_per_second,
                duration,
            ))
            .spends(deposit.saturating_add(rent))
            .send()
            .await?;
        Ok(CreatedRequest {
            request: address,
            request_id,
            deposit,
            signature,
        })
    }

    async fn rent(self, size: usize) -> Result<u64, ClientError> {
        Ok(self
            .client
            .rpc()
            .get_minimum_balance_for_rent_exemption(size)
            .await
            .map_err(Box::new)?)
    }

    /// Buys `added_seconds` more at the request's price.
    pub async fn top_up(
        self,
        request: &Pubkey,
        added_seconds: u64,
    ) -> Result<Signature, ClientError> {
        let current = self.reader().request(request).await?;
        let amount = current.price_per_second.saturating_mul(added_seconds);
        self.client
            .transaction()
            .instruction(ix::top_up(&self.client.wallet(), request, added_seconds))
            .spends(amount)
            .send()
            .await
    }

    /// Refunds an open request in full; its accounts close.
    pub async fn cancel(self, request: &Pubkey) -> Result<Signature, ClientError> {
        self.reader().request(request).await?;
        self.client
            .transaction()
            .instruction(ix::cancel_request(&self.client.wallet(), request))
            .send()
            .await
    }

    /// Refunds a request whose provisioning deadline passed without a quorum.
    /// Anyone may send it; the money goes to the request's customer.
    pub async fn reclaim(self, request: &Pubkey) -> Result<Signature, ClientError> {
        let current = self.reader().request(request).await?;
        self.client
            .transaction()
            .instruction(ix::reclaim_expired(request, &current.customer))
            .send()
            .await
    }

    /// Ends a lease now: the operator is paid what accrued, the rest comes
    /// back, and the lease's accounts close.
    pub async fn close_lease(self, request: &Pubkey) -> Result<Signature, ClientError> {
        let reader = self.reader();
        let current = reader.request(request).await?;
        if current.status == RequestStatus::Open {
            return Err(ClientError::InvalidArgument(format!(
                "request {request} is still open (no lease yet): cancel it instead"
            )));
        }
        self.client
            .transaction()
            .instruction(ix::close_lease(
                &self.client.wallet(),
                request,
                &current.assigned_operator,
            ))
            .send()
            .await
    }

    /// Waits until `request` is an active lease. Watches the account over the
    /// websocket (`accountSubscribe`) when it can, polling otherwise, and
    /// reports every look to `progress`. Fails with [`ClientError::NotFound`]
    /// for an unknown request, [`ClientError::RequestClosed`] (cancelled,
    /// reclaimed or settled while watched, or before),
    /// [`ClientError::LeaseTerminated`], [`ClientError::RequestExpired`]
    /// (deadline passed while open) or [`ClientError::Timeout`].
    pub async fn wait_until_active(
        self,
        request: &Pubkey,
        timeout: Duration,
        progress: impl FnMut(WaitProgress),
    ) -> Result<ActiveLease, ClientError> {
        // A request that never existed is a different mistake from one that
        // went away while we watched.
        self.reader().request(request).await?;
        let pubsub = match PubsubClient::new(self.client.cluster().ws_url()).await {
            Ok(pubsub) => Some(pubsub),
            Err(error) => {
                tracing::info!(%error, "no websocket; polling the request instead");
                None
            }
        };
        let outcome = self
            .watch(request, timeout, pubsub.as_ref(), progress)
            .await;
        if let Some(pubsub) = pubsub {
            if let Err(error) = pubsub.shutdown().await {
                tracing::debug!(%error, "closing the websocket");
            }
        }
        outcome
    }

    async fn watch(
        self,
        request: &Pubkey,
        timeout: Duration,
        pubsub: Option<&PubsubClient>,
        mut progress: impl FnMut(WaitProgress),
    ) -> Result<ActiveLease, ClientError> {
        let started = Instant::now();
        let give_up = started + timeout;
        let options = self.client.options();
        let subscription = match pubsub {
            Some(pubsub) => {
                let config = RpcAccountInfoConfig {
                    commitment: Some(options.commitment),
                    ..RpcAccountInfoConfig::default()
                };
                match pubsub.account_subscribe(request, Some(config)).await {
                    Ok(subscription) => Some(subscription),
                    Err(error) => {
                        tracing::info!(%error, "accountSubscribe refused; polling instead");
                        None
                    }
                }
            }
            None => None,
        };
        let (mut updates, unsubscribe) = match subscription {
            Some((updates, unsubscribe)) => (Some(updates), Some(unsubscribe)),
            None => (None, None),
        };

        let outcome = loop {
            let method = if updates.is_some() {
                WatchMethod::Websocket
            } else {
                WatchMethod::Polling
            };
            match self.look(request, started, method).await {
                Ok(Looked::Active(lease)) => break Ok(*lease),
                Ok(Looked::Waiting(report)) => progress(report),
                Err(error) => break Err(error),
            }
            let now = Instant::now();
            if now >= give_up {
                break Err(ClientError::Timeout {
                    what: format!("request {request} to become an active lease"),
                    after: timeout,
                });
            }
            // Notifications only wake us up; the account is re-read at the
            // client's commitment either way. A periodic re-read also covers
            // a websocket that silently stops delivering.
            let wait = match updates {
                Some(_) => options.poll_interval * 5,
                None => options.poll_interval,
            }
            .min(give_up - now);
            match updates.as_mut() {
                Some(stream) => match tokio::time::timeout(wait, stream.next()).await {
                    Ok(Some(_)) | Err(_) => {}
                    Ok(None) => {
                        tracing::info!("websocket closed; polling the request instead");
                        updates = None;
                    }
                },
                None => tokio::time::sleep(wait).await,
            }
        };
        drop(updates);
        if let Some(unsubscribe) = unsubscribe {
            unsubscribe().await;
        }
        outcome
    }

    async fn look(
        self,
        request: &Pubkey,
        started: Instant,
        method: WatchMethod,
    ) -> Result<Looked, ClientError> {
        let reader = self.reader();
        let Some(current) = reader.fetch::<Request>("request", request).await? else {
            return Err(ClientError::RequestClosed { request: *request });
        };
        match current.status {
            RequestStatus::Active => Ok(Looked::Active(Box::new(ActiveLease {
                request: current,
                waited: started.elapsed(),
                method,
            }))),
            RequestStatus::Terminated => Err(ClientError::LeaseTerminated { request: *request }),
            RequestStatus::Open => {
                let now = reader.cluster_time().await?;
                if now > current.deadline {
                    return Err(ClientError::RequestExpired {
                        request: *request,
                        deadline: current.deadline,
                        now,
                    });
                }
                Ok(Looked::Waiting(WaitProgress {
                    method,
                    status: current.status,
                    elapsed: started.elapsed(),
                    seconds_to_deadline: current.deadline - now,
                }))
            }
        }
    }
}

enum Looked {
    Active(Box<ActiveLease>),
    Waiting(WaitProgress),
}
