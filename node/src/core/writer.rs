//! The ledger writer: a thread that applies the core's writes in order,
//! grouping whatever has queued up into one redb transaction.
//!
//! The core never waits for the disk. Own events are the exception that the
//! grouping makes cheap: a batch holding one is committed durably (fsync),
//! and only then are its events pushed to peers, its transactions'
//! submitters answered and the machine told (it keeps undurable own events
//! out of sync answers, so no peer can learn of an event a crash could make
//! this node sign again).

use std::sync::Arc;

use dagger_consensus::{Event, EventId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::SubmitError;
use crate::store::{Store, Write};

/// Most writes grouped into one commit.
const MAX_BATCH: usize = 512;

pub(crate) type Reply = oneshot::Sender<Result<EventId, SubmitError>>;

/// An own event waiting to become durable.
pub(crate) struct OwnEvent {
    pub event: Event,
    pub replies: Vec<Reply>,
}

pub(crate) struct LedgerOp {
    pub write: Write,
    pub own: Option<OwnEvent>,
}

/// Starts the writer thread. It ends when every sender is dropped; a failed
/// commit is fatal (reported on `fatal`): the node must not go on without
/// its ledger.
pub(crate) fn spawn(
    store: Arc<Store>,
    own_events: broadcast::Sender<Event>,
    durable: mpsc::UnboundedSender<EventId>,
    fatal: watch::Sender<Option<String>>,
) -> (mpsc::UnboundedSender<LedgerOp>, std::thread::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<LedgerOp>();
    let handle = std::thread::Builder::new()
        .name("ledger-writer".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(op) => batch.push(op),
                        Err(_) => break,
                    }
                }
                let must_sync = batch.iter().any(|op| op.own.is_some());
                let writes: Vec<Write> = batch.iter().map(|op| op.write.clone()).collect();
                if let Err(err) = store.commit(&writes, must_sync) {
                    tracing::error!(error = %err, "ledger write failed; stopping");
                    let _ = fatal.send(Some(err.to_string()));
                    return;
                }
                for op in batch {
                    if let Some(own) = op.own {
                        let id = own.event.id();
                        let _ = own_events.send(own.event);
                        for reply in own.replies {
                            let _ = reply.send(Ok(id));
                        }
                        let _ = durable.send(id);
                    }
                }
            }
        })
        .expect("spawning the ledger writer thread");
    (tx, handle)
}
