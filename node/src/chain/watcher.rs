//! Follows the program's accounts and reports what changed into the DAG.
//!
//! Every poll reads all Request and Operator accounts (websocket program
//! notifications wake it early; polling is the fallback and the ground
//! truth). For each account it derives the observation the controller needs
//! and submits it unless the cursor — a digest per account, kept in redb —
//! says it was reported already. The cursor is written only after the
//! transaction is durably in an own event, so after a restart nothing is
//! missed (accounts are re-read) and nothing is reported twice (the cursor
//! filters; a duplicate from a crash between the two writes is harmless to
//! the controller, which counts each reporter once).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use anchor_lang::prelude::Pubkey;
use dagger_client::{RequestStatus, PROGRAM_ID};
use futures_util::StreamExt;
use solana_pubsub_client::nonblocking::pubsub_client::PubsubClient;
use tokio::sync::Notify;

use super::client::{ChainError, ChainReader};
use crate::{controller::NodeTx, core::CoreHandle, store::Store};

/// What a poll saw: the observation per account, and which accounts are requests.
pub struct Observations {
    pub by_account: BTreeMap<Pubkey, NodeTx>,
    pub requests: BTreeSet<Pubkey>,
}

/// Reads the chain once and derives the observations.
pub async fn observe(reader: &ChainReader, now_s: i64) -> Result<Observations, ChainError> {
    let mut by_account = BTreeMap::new();
    let mut requests = BTreeSet::new();
    for (address, r) in reader.requests().await? {
        requests.insert(address);
        let tx = match r.status {
            // An open request past its deadline is for the customer to reclaim.
            RequestStatus::Open if now_s > r.deadline => continue,
            RequestStatus::Open => NodeTx::RequestSeen {
                request: address,
                nonce: r.nonce,
                spec: r.spec,
                price_per_second: r.price_per_second,
                duration: r.duration,
                deadline: r.deadline,
            },
            RequestStatus::Active => NodeTx::LeaseActive {
                request: address,
                operator: r.assigned_operator,
            },
            RequestStatus::Terminated => NodeTx::RequestGone { request: address },
        };
        by_account.insert(address, tx);
    }
    for (address, op) in reader.operators().await? {
        by_account.insert(
            address,
            NodeTx::OperatorSeen {
                operator: address,
                nonce: op.nonce,
                node_key: op.node_key,
                stake: op.stake,
                status: op.status,
                capacity: op.capacity,
                address: op.address,
                price_floor: op.price_floor,
            },
        );
    }
    Ok(Observations {
        by_account,
        requests,
    })
}

fn digest(tx: &NodeTx) -> [u8; 32] {
    *blake3::hash(&tx.encode()).as_bytes()
}

pub struct Watcher {
    pub reader: Arc<ChainReader>,
    pub ws_url: Option<String>,
    pub core: CoreHandle,
    pub store: Arc<Store>,
    pub poll_interval: Duration,
    pub health: Arc<crate::health::Health>,
}

impl Watcher {
    pub async fn run(self) {
        let wake = Arc::new(Notify::new());
        if let Some(ws) = self.ws_url.clone() {
            tokio::spawn(subscribe(ws, wake.clone()));
        }
        let mut cursor: BTreeMap<Pubkey, [u8; 32]> = match self.store.cursor() {
            Ok(entries) => entries
                .into_iter()
                .map(|(k, v)| (Pubkey::new_from_array(k), v))
                .collect(),
            Err(err) => {
                tracing::error!(error = %err, "cannot read the watcher cursor");
                return;
            }
        };
        loop {
            match self.poll(&mut cursor).await {
                Ok(()) => self.health.chain_ok(),
                Err(err) => tracing::warn!(error = %err, "chain poll failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = wake.notified() => {}
            }
        }
    }

    async fn poll(&self, cursor: &mut BTreeMap<Pubkey, [u8; 32]>) -> Result<(), String> {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let seen = observe(&self.reader, now_s)
            .await
            .map_err(|e| e.to_string())?;
        let mut changes = Vec::new();
        for (account, tx) in &seen.by_account {
            let d = digest(tx);
            if cursor.get(account) != Some(&d) {
                changes.push((*account, tx.clone(), Some(d)));
            }
        }
        // A request account that disappeared was cancelled, reclaimed or settled.
        for account in cursor.keys() {
            if !seen.by_account.contains_key(account) && !seen.requests.contains(account) {
                changes.push((*account, NodeTx::RequestGone { request: *account }, None));
            }
        }
        // (Operator accounts never close, so a vanished account is a request.)
        for (account, tx, d) in changes {
            self.core
                .report(tx.encode())
                .await
                .map_err(|e| e.to_string())?;
            self.store
                .set_cursor(&[(account.to_bytes(), d)])
                .map_err(|e| e.to_string())?;
            match d {
                Some(d) => {
                    cursor.insert(account, d);
                }
                None => {
                    cursor.remove(&account);
                }
            }
        }
        Ok(())
    }
}

/// Wakes the poller on every program account change (best effort: polling
/// covers a broken or missing websocket).
async fn subscribe(ws_url: String, wake: Arc<Notify>) {
    loop {
        match PubsubClient::new(&ws_url).await {
            Ok(client) => match client.program_subscribe(&PROGRAM_ID, None).await {
                Ok((mut stream, _unsubscribe)) => {
                    while stream.next().await.is_some() {
                        wake.notify_one();
                    }
                }
                Err(err) => tracing::debug!(error = %err, "program subscription failed"),
            },
            Err(err) => tracing::debug!(error = %err, "websocket unavailable"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
