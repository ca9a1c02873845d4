//! The HTTP server loop the APIs run on, bounded against clients that
//! hold connections open or trickle bytes:
//!
//! * at most [`MAX_CONNECTIONS`] connections at once. When all are taken,
//!   a new connection takes the place of the one idle longest (no request
//!   in flight: connected and silent, or between requests); only when
//!   every connection has a request in flight is the new one closed at
//!   once. Holding connections open costs an attacker a slot each, never
//!   an honest client its access;
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
    let mut live: Vec<(Arc<Activity>, tokio::task::AbortHandle)> = Vec::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        live.retain(|(_, task)| !task.is_finished());
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: back off a moment.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Full: the connection idle longest gives way, if any is idle.
                let idlest = live
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (activity, _))| activity.idle_since().map(|t| (t, i)))
                    .min();
                let Some((_, i)) = idlest else {
                    metrics.reject_message("http_connections");
                    drop(stream);
                    continue;
                };
                let (_, task) = live.swap_remove(i);
                task.abort();
                metrics.reject_message("http_idle_evicted");
                match tokio::time::timeout(
                    Duration::from_millis(200),
                    slots.clone().acquire_owned(),
                )
                .await
                {
                    Ok(Ok(slot)) => slot,
                    _ => {
                        metrics.reject_message("http_connections");
                        drop(stream);
                        continue;
                    }
                }
            }
        };
        let activity = Arc::new(Activity::new());
        let service = Tracked {
            inner: TowerToHyperService::new(app.clone()),
            activity: activity.clone(),
        };
        let task = connections.spawn(async move {
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
        live.push((activity, task));
    }
    connections.shutdown().await;
}

/// Whether a connection has a request in flight, and since when it has
/// had none.
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    /// Since when it has been idle, µs after `epoch`.
    idle_since_us: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: 0.into(),
            idle_since_us: 0.into(),
            epoch: std::time::Instant::now(),
        }
    }

    fn started(&self) {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn finished(&self) {
        let now = self.epoch.elapsed().as_micros() as u64;
        self.idle_since_us
            .store(now, std::sync::atomic::Ordering::SeqCst);
        self.in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// When it became idle, or `None` while a request is in flight.
    fn idle_since(&self) -> Option<std::time::Instant> {
        if self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return None;
        }
        let us = self.idle_since_us.load(std::sync::atomic::Ordering::SeqCst);
        Some(self.epoch + Duration::from_micros(us))
    }
}

/// The app's service, counting the requests in flight on its connection.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R> hyper::service::Service<R> for Tracked<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, request: R) -> Self::Future {
        self.activity.started();
        let activity = self.activity.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            activity.finished();
            result
        })
    }
}
