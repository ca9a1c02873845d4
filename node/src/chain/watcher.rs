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

/// What a poll saw: the observation per account, and which accounts exist
/// (an account that exists without an observation, such as an expired
/// request, is not gone).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Observations {
    pub by_account: BTreeMap<Pubkey, NodeTx>,
    pub present: BTreeSet<Pubkey>,
}

/// What `agree` of the endpoints' observations say alike: an observation
/// counts when `agree` of them hold it identically, an account is gone only
/// when `agree` of them lack it. Where they disagree nothing is reported
/// (the next poll asks again), so one endpoint, or a provider shared by
/// fewer than `agree` of them, cannot make this node report a fact.
pub fn agreed(seen: &[Observations], agree: usize) -> Observations {
    let agree = agree.max(1);
    let mut votes: BTreeMap<Pubkey, Vec<(&NodeTx, usize)>> = BTreeMap::new();
    let mut accounts: BTreeSet<Pubkey> = BTreeSet::new();
    for observations in seen {
        accounts.extend(observations.present.iter().copied());
        accounts.extend(observations.by_account.keys().copied());
        for (account, tx) in &observations.by_account {
            let tally = votes.entry(*account).or_default();
            match tally.iter_mut().find(|(t, _)| *t == tx) {
                Some((_, n)) => *n += 1,
                None => tally.push((tx, 1)),
            }
        }
    }
    let mut out = Observations::default();
    for (account, tally) in votes {
        if let Some((tx, _)) = tally.into_iter().find(|(_, n)| *n >= agree) {
            out.by_account.insert(account, tx.clone());
        }
    }
    for account in accounts {
        let absent = seen
            .iter()
            .filter(|o| !o.present.contains(&account) && !o.by_account.contains_key(&account))
            .count();
        if absent < agree {
            out.present.insert(account);
        }
    }
    out
}

/// Reads the chain once and derives the observations.
pub async fn observe(reader: &ChainReader, now_s: i64) -> Result<Observations, ChainError> {
    let mut by_account = BTreeMap::new();
    let mut present = BTreeSet::new();
    for (address, r) in reader.requests().await? {
        present.insert(address);
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
        present,
    })
}

/// The active operators in `seen`: node key and stake.
pub fn active_roster(seen: &Observations) -> Vec<(crate::identity::NodeId, u64)> {
    seen.by_account
        .values()
        .filter_map(|tx| match tx {
            NodeTx::OperatorSeen {
                node_key,
                stake,
                status: dagger_client::OperatorStatus::Active,
                ..
            } => Some((node_key.to_bytes(), *stake)),
            _ => None,
        })
        .collect()
}

fn digest(tx: &NodeTx) -> [u8; 32] {
    *blake3::hash(&tx.encode()).as_bytes()
}

pub struct Watcher {
    /// The endpoints read, `rpc_url` first; see [`agreed`].
    pub readers: Vec<Arc<ChainReader>>,
    pub agree: usize,
    /// Where the chain's active operators (node key, stake) are published
    /// after every agreed read (state sync weighs vouchers by them).
    pub roster: Option<tokio::sync::watch::Sender<Vec<(crate::identity::NodeId, u64)>>>,
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
            crate::task::spawn(subscribe(ws, wake.clone()));
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
        let now_s = crate::core::Now::system().unix_s();
        let answers =
            futures_util::future::join_all(self.readers.iter().map(|r| observe(r, now_s))).await;
        let total = answers.len();
        let mut answered = Vec::with_capacity(total);
        let mut errors = Vec::new();
        for answer in answers {
            match answer {
                Ok(observations) => answered.push(observations),
                Err(err) => errors.push(err.to_string()),
            }
        }
        if answered.len() < self.agree {
            return Err(format!(
                "only {} of {total} RPC endpoints answered ({} must agree): {}",
                answered.len(),
                self.agree,
                errors.join("; ")
            ));
        }
        let seen = agreed(&answered, self.agree);
        if let Some(roster) = &self.roster {
            let _ = roster.send(active_roster(&seen));
        }
        let mut changes = Vec::new();
        for (account, tx) in &seen.by_account {
            let d = digest(tx);
            if cursor.get(account) != Some(&d) {
                changes.push((*account, tx.clone(), Some(d)));
            }
        }
        // A request account that disappeared was cancelled, reclaimed or settled.
        for account in cursor.keys() {
            if !seen.by_account.contains_key(account) && !seen.present.contains(account) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn gone(n: u8) -> NodeTx {
        NodeTx::RequestGone {
            request: Pubkey::new_from_array([n; 32]),
        }
    }

    fn seen(facts: &[(u8, NodeTx)], present: &[u8]) -> Observations {
        Observations {
            by_account: facts
                .iter()
                .map(|(a, tx)| (Pubkey::new_from_array([*a; 32]), tx.clone()))
                .collect(),
            present: present
                .iter()
                .map(|a| Pubkey::new_from_array([*a; 32]))
                .collect(),
        }
    }

    #[test]
    fn one_lying_endpoint_of_three_changes_nothing() {
        let honest = seen(&[(1, gone(10)), (2, gone(20))], &[1, 2, 3]);
        // The liar invents account 9, changes account 2's fact and hides 3.
        let liar = seen(&[(1, gone(10)), (2, gone(99)), (9, gone(9))], &[1, 2, 9]);
        let out = agreed(&[honest.clone(), liar.clone(), honest.clone()], 2);
        assert_eq!(out, honest);
        // Two liars of three agreeing would win: that is what `agree` means.
        let out = agreed(&[liar.clone(), honest.clone(), liar.clone()], 2);
        assert_eq!(out.by_account, liar.by_account);
    }

    #[test]
    fn without_agreement_nothing_is_reported_and_nothing_is_gone() {
        let a = seen(&[(1, gone(10))], &[1]);
        let b = seen(&[(1, gone(11))], &[1]);
        let out = agreed(&[a, b], 2);
        assert!(out.by_account.is_empty());
        assert!(out.present.contains(&Pubkey::new_from_array([1; 32])));
    }

    #[test]
    fn one_endpoint_is_its_own_majority() {
        let only = seen(&[(1, gone(10))], &[1, 4]);
        assert_eq!(agreed(std::slice::from_ref(&only), 1), only);
    }
}
