//! The HTTP server loop the APIs run on, bounded against clients that
//! hold connections open or trickle bytes:
//!
//! * at most [`MAX_CONNECTIONS`] connections at once (beyond, new ones are
//!   closed at once);
//! * a request's headers must arrive within [`HEADER_TIMEOUT`], its body
//!   within [`BODY_TIMEOUT`] (or the request is refused), and a
//!   request is answered within [`REQUEST_TIMEOUT`] (above the longest
//!   `/order` long poll) or cut off with 408;
//! * an idle kept-alive connection is closed after [`HEADER_TIMEOUT`] too
//!   (waiting for the next request's headers).

use std::{future::Future, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::net::TcpListener;

/// Bounds on what HTTP clients may hold.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time for a request's headers (and between requests on one
    /// connection).
    pub header_timeout: Duration,
    /// Time for a request's body.
    pub body_timeout: Duration,
    /// Time for a whole request.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Time for a request's headers (and between requests on one connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole request, the `/order` long poll (30 s) included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);

/// Serves `app` on `listener` until `stop` completes; connections still
/// open then are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stop: impl Future<Output = ()>,
    metrics: Arc<crate::metrics::Metrics>,
    limits: HttpLimits,
) {
    let app = app
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            limits.body_timeout,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ));
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: back off a moment.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.reject_message("http_connections");
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    connections.shutdown().await;
}
