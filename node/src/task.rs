//! Spawning that keeps the caller's tracing span. A node's tasks and
//! threads log inside the span its embedder started it in (the devnet
//! starts each node in a `node{n=..}` span), so several nodes in one
//! process can still tell their lines apart — the devnet writes each
//! node's log to a file of its own. With no span entered this costs
//! nothing.

use std::future::Future;

use tracing::Instrument;

/// `tokio::spawn`, in the current span.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_span())
}

/// `tokio::task::spawn_blocking`, in the current span.
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
}

/// A named OS thread, in the current span.
pub fn thread<F, R>(name: String, f: F) -> std::io::Result<std::thread::JoinHandle<R>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || span.in_scope(f))
}
