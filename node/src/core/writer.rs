//! The ledger writer: a thread that applies the core's writes in order,
//! grouping whatever has queued up.
//!
//! The core never waits for the disk. Own events are the exception that the
//! grouping makes cheap: a batch holding one is made durable in the event
//! log (one `fdatasync`, see `store::wal`), and only then are its events
//! pushed to peers, its transactions' submitters answered and the machine
//! told (it keeps undurable own events out of sync answers, so no peer can
//! learn of an event a crash could make this node sign again).
//!
//! redb gets the writes afterwards, and lazily: events alone wait (they are
//! in memory and in the log) until a decided round comes, which readers of
//! the order want at once, or [`APPLY_WITHIN`] passes. One redb commit then
//! carries many batches; a commit per event cost more CPU than anything
//! else in the node.

use std::{
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use dagger_consensus::{Event, EventId};
use tokio::sync::{broadcast, oneshot, watch};

use super::SubmitError;
use crate::store::{Store, Write};

/// Most writes taken off the queue at once.
const MAX_BATCH: usize = 512;
/// Writes held back from redb at most this long...
const APPLY_WITHIN: Duration = Duration::from_millis(20);
/// ...and at most this many.
const MAX_UNAPPLIED: usize = 4096;

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

/// Where the writer sends what happened.
pub(crate) struct Reports {
    /// Own events, once durable (for pushing).
    pub own_events: broadcast::Sender<Event>,
    /// Ids of own events once durable (for the machine).
    pub durable: tokio::sync::mpsc::UnboundedSender<EventId>,
    /// Why the ledger failed, if it did.
    pub fatal: watch::Sender<Option<String>>,
}

/// Starts the writer thread. It ends when every sender is dropped, after
/// applying what it holds; a failed write is fatal (reported on `fatal`):
/// the node must not go on without its ledger.
pub(crate) fn spawn(
    store: Arc<Store>,
    reports: Reports,
) -> (mpsc::Sender<LedgerOp>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<LedgerOp>();
    let handle = crate::task::thread("ledger-writer".into(), move || {
        if let Err(err) = run(&store, &rx, &reports) {
            tracing::error!(error = %err, "ledger write failed; stopping");
            let _ = reports.fatal.send(Some(err.to_string()));
        }
    })
    .expect("spawning the ledger writer thread");
    (tx, handle)
}

fn run(
    store: &Store,
    rx: &mpsc::Receiver<LedgerOp>,
    reports: &Reports,
) -> Result<(), crate::store::StoreError> {
    let mut unapplied: Vec<Write> = Vec::new();
    let mut oldest: Option<Instant> = None;
    let apply = |unapplied: &mut Vec<Write>,
                 oldest: &mut Option<Instant>|
     -> Result<(), crate::store::StoreError> {
        *oldest = None;
        if unapplied.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        store.apply(unapplied)?;
        let took = started.elapsed();
        if took > Duration::from_millis(10) {
            tracing::debug!(
                writes = unapplied.len(),
                bytes = unapplied.iter().map(Write::size_hint).sum::<usize>(),
                took_ms = took.as_millis() as u64,
                "slow ledger apply"
            );
        }
        unapplied.clear();
        Ok(())
    };
    loop {
        let first = match oldest {
            None => match rx.recv() {
                Ok(op) => op,
                Err(_) => break,
            },
            Some(since) => match rx.recv_timeout(APPLY_WITHIN.saturating_sub(since.elapsed())) {
                Ok(op) => op,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    apply(&mut unapplied, &mut oldest)?;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let must_sync = batch.iter().any(|op| op.own.is_some());
        let (writes, owns): (Vec<Write>, Vec<Option<OwnEvent>>) =
            batch.into_iter().map(|op| (op.write, op.own)).unzip();
        let install = writes.iter().any(|w| matches!(w, Write::Install { .. }));
        let decided = writes.iter().any(|w| !matches!(w, Write::Events { .. }));
        if install {
            // Not logged: durable in redb before anything else happens.
            unapplied.extend(writes);
            apply(&mut unapplied, &mut oldest)?;
        } else {
            store.log(&writes, must_sync)?;
            unapplied.extend(writes);
            oldest.get_or_insert_with(Instant::now);
        }
        for own in owns.into_iter().flatten() {
            let id = own.event.id();
            let _ = reports.own_events.send(own.event);
            for reply in own.replies {
                let _ = reply.send(Ok(id));
            }
            let _ = reports.durable.send(id);
        }
        if decided || unapplied.len() >= MAX_UNAPPLIED {
            apply(&mut unapplied, &mut oldest)?;
        }
    }
    apply(&mut unapplied, &mut oldest)?;
    store.sync()
}
