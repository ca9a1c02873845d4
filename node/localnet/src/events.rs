//! Drains surfpool's event channel into `tracing`, and reports the lifecycle
//! events `LocalChain` waits on.
//!
//! The drain is not optional: surfpool's event channel is bounded (1024) and
//! surfpool sends on it with blocking `send`s from the block-production loop,
//! so a chain whose events nobody reads stops producing blocks.

use std::thread::JoinHandle;

use crossbeam_channel::{select, Receiver, Sender};
use surfpool_types::SimnetEvent;

/// What `LocalChain` needs to know about the chain's progress.
#[derive(Debug)]
pub(crate) enum Lifecycle {
    /// Accounts, sysvars and the RPC servers are up.
    Ready,
    /// Surfpool gave up starting (a server could not start, say).
    Aborted(String),
    /// One of the two RPC servers (HTTP, websocket) has stopped.
    ServerClosed,
    /// The runloop returned; `Err` carries its error.
    RunloopExited(Result<(), String>),
}

/// Spawns the drain thread. It runs until `stop` fires or every sender of
/// `events` is gone.
pub(crate) fn spawn_drain(
    events: Receiver<SimnetEvent>,
    lifecycle: Sender<Lifecycle>,
    stop: Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("localnet-events".into())
        .spawn(move || loop {
            select! {
                recv(events) -> event => match event {
                    Ok(event) => forward(event, &lifecycle),
                    Err(_) => break,
                },
                recv(stop) -> _ => break,
            }
        })
}

fn forward(event: SimnetEvent, lifecycle: &Sender<Lifecycle>) {
    // The receiver lives as long as the `LocalChain`; after it is gone nobody
    // waits for lifecycle events any more, so a failed send is not an error.
    match event {
        SimnetEvent::Ready(stored_transactions) => {
            tracing::info!(stored_transactions, "surfnet ready");
            let _ = lifecycle.send(Lifecycle::Ready);
        }
        SimnetEvent::Aborted(reason) => {
            tracing::error!(%reason, "surfnet aborted");
            let _ = lifecycle.send(Lifecycle::Aborted(reason));
        }
        SimnetEvent::Shutdown => {
            tracing::debug!("an RPC server stopped");
            let _ = lifecycle.send(Lifecycle::ServerClosed);
        }
        SimnetEvent::InfoLog(_, message) => tracing::info!(target: "surfpool", "{message}"),
        SimnetEvent::WarnLog(_, message) => tracing::warn!(target: "surfpool", "{message}"),
        SimnetEvent::ErrorLog(_, message) => tracing::error!(target: "surfpool", "{message}"),
        SimnetEvent::DebugLog(_, message) => tracing::debug!(target: "surfpool", "{message}"),
        SimnetEvent::TransactionProcessed(_, meta, error) => match error {
            None => tracing::debug!(signature = %meta.signature, "transaction executed"),
            Some(error) => {
                tracing::debug!(signature = %meta.signature, %error, "transaction failed")
            }
        },
        other => tracing::trace!(event = ?other, "surfnet event"),
    }
}
