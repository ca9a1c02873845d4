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
//! redb gets the writes afterwards, on a second thread (the applier), and
//! lazily: events alone wait (they are in memory and in the log) until a
//! decided round comes, which readers of the order want at once, or
//! [`APPLY_WITHIN`] passes. One redb commit then carries many batches; a
//! commit per event cost more CPU than anything else in the node. Now and
//! then a redb commit is made durable, which takes tens of milliseconds
//! under load: on its own thread it no longer holds up own events. A state
//! install is the exception: the writer waits until it is durable in redb.

use std::{
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use dagger_consensus::{Event, EventId};
use tokio::sync::{broadcast, oneshot, watch};

use super::SubmitError;
use crate::store::{Store, StoreError, Write};

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

/// How many logged batches may wait for the applier before the writer
/// waits too (the applier is far faster than the log fills, except while a
/// durable commit runs).
const APPLY_QUEUE: usize = 1024;

/// What the writer hands the applier.
enum Apply {
    /// Logged writes; the log's position after them.
    Logged(Vec<Write>, u64),
    /// A batch holding a state install, applied durably at once; the sender
    /// learns when.
    Install(Vec<Write>, u64, mpsc::SyncSender<()>),
}

/// Starts the writer thread. It ends when every sender is dropped, after
/// applying what it holds; a failed write is fatal (reported on `fatal`):
/// the node must not go on without its ledger.
pub(crate) fn spawn(
    store: Arc<Store>,
    reports: Reports,
) -> (mpsc::Sender<LedgerOp>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<LedgerOp>();
    let handle = std::thread::Builder::new()
        .name("ledger-writer".into())
        .spawn(move || {
            let fatal = Arc::new(reports.fatal);
            let (to_applier, applier_rx) = mpsc::sync_channel::<Apply>(APPLY_QUEUE);
            let applier = {
                let (store, fatal) = (store.clone(), fatal.clone());
                std::thread::Builder::new()
                    .name("ledger-applier".into())
                    .spawn(move || {
                        if let Err(err) = apply_loop(&store, &applier_rx) {
                            report_fatal(&fatal, &err);
                        }
                    })
                    .expect("spawning the ledger applier thread")
            };
            let logged = run(
                &store,
                &rx,
                &to_applier,
                &reports.own_events,
                &reports.durable,
            );
            // The applier finishes what it holds and makes redb durable.
            drop(to_applier);
            if applier.join().is_err() {
                report_fatal(
                    &fatal,
                    &StoreError::Db("the ledger applier panicked".into()),
                );
            }
            if let Err(err) = logged {
                report_fatal(&fatal, &err);
            }
        })
        .expect("spawning the ledger writer thread");
    (tx, handle)
}

/// The first failure is the one reported (a failed applier makes the
/// writer fail next).
fn report_fatal(fatal: &watch::Sender<Option<String>>, err: &StoreError) {
    tracing::error!(error = %err, "ledger write failed; stopping");
    fatal.send_if_modified(|reason| {
        if reason.is_some() {
            return false;
        }
        *reason = Some(err.to_string());
        true
    });
}

/// The applier went away: it failed (and reported why).
fn applier_gone<T>(_: T) -> StoreError {
    StoreError::Db("the ledger applier stopped".into())
}

fn run(
    store: &Store,
    rx: &mpsc::Receiver<LedgerOp>,
    to_applier: &mpsc::SyncSender<Apply>,
    own_events: &broadcast::Sender<Event>,
    durable: &tokio::sync::mpsc::UnboundedSender<EventId>,
) -> Result<(), StoreError> {
    while let Ok(first) = rx.recv() {
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
        if install {
            // Not logged: durable in redb before anything else happens.
            let (done, wait) = mpsc::sync_channel(1);
            to_applier
                .send(Apply::Install(writes, store.log_next()?, done))
                .map_err(applier_gone)?;
            wait.recv().map_err(applier_gone)?;
        } else {
            let log_next = store.log(&writes, must_sync)?;
            to_applier
                .send(Apply::Logged(writes, log_next))
                .map_err(applier_gone)?;
        }
        for own in owns.into_iter().flatten() {
            let id = own.event.id();
            let _ = own_events.send(own.event);
            for reply in own.replies {
                let _ = reply.send(Ok(id));
            }
            let _ = durable.send(id);
        }
    }
    Ok(())
}

/// Applies logged writes to redb in order, grouped; makes redb durable
/// when the writer is done.
fn apply_loop(store: &Store, rx: &mpsc::Receiver<Apply>) -> Result<(), StoreError> {
    let mut unapplied: Vec<Write> = Vec::new();
    let mut log_next = 0;
    let mut oldest: Option<Instant> = None;
    let apply = |unapplied: &mut Vec<Write>,
                 oldest: &mut Option<Instant>,
                 log_next: u64|
     -> Result<(), StoreError> {
        *oldest = None;
        if unapplied.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        store.apply(unapplied, log_next)?;
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
        let next = match oldest {
            None => match rx.recv() {
                Ok(op) => op,
                Err(_) => break,
            },
            Some(since) => match rx.recv_timeout(APPLY_WITHIN.saturating_sub(since.elapsed())) {
                Ok(op) => op,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    apply(&mut unapplied, &mut oldest, log_next)?;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        match next {
            Apply::Install(writes, next, done) => {
                unapplied.extend(writes);
                log_next = next;
                apply(&mut unapplied, &mut oldest, log_next)?;
                let _ = done.send(());
            }
            Apply::Logged(writes, next) => {
                let decided = writes.iter().any(|w| !matches!(w, Write::Events { .. }));
                unapplied.extend(writes);
                log_next = next;
                oldest.get_or_insert_with(Instant::now);
                if decided || unapplied.len() >= MAX_UNAPPLIED {
                    apply(&mut unapplied, &mut oldest, log_next)?;
                }
            }
        }
    }
    apply(&mut unapplied, &mut oldest, log_next)?;
    store.sync()
}
