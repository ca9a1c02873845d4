//! The API's HTTP server against clients that hold connections or trickle
//! bytes: each is cut off within its bound while well-behaved requests
//! keep being served.

use std::{sync::Arc, time::Duration};

use axum::{routing::get, routing::post, Router};
use dagger_node::{
    http::{serve, HttpLimits},
    metrics::Metrics,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const LIMITS: HttpLimits = HttpLimits {
    max_connections: 4,
    header_timeout: Duration::from_millis(300),
    body_timeout: Duration::from_millis(300),
    request_timeout: Duration::from_millis(600),
};

async fn start() -> (
    std::net::SocketAddr,
    Arc<Metrics>,
    tokio::sync::oneshot::Sender<()>,
) {
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/echo", post(|body: String| async move { body }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let m = metrics.clone();
    tokio::spawn(async move {
        serve(
            listener,
            app,
            async move {
                let _ = rx.await;
            },
            m,
            LIMITS,
        )
        .await
    });
    (addr, metrics, tx)
}

/// Everything the server sends until it closes the connection (or 5 s).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection");
    String::from_utf8_lossy(&out).into_owned()
}

async fn get_ok(addr: std::net::SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    s.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut s).await.ends_with("ok")
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let (addr, _, _stop) = start().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // One header byte at a time, never the blank line.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.write_all(b"x").await.is_err() {
            break;
        }
    }
    let answer = read_to_close(&mut s).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(get_ok(addr).await);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let (addr, _, _stop) = start().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[tokio::test]
async fn a_body_that_trickles_is_refused() {
    let (addr, _, _stop) = start().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nab")
        .await
        .unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(answer.contains("timeout"), "{answer}");
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_answered_408() {
    let (addr, _, _stop) = start().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn idle_connections_give_way_and_busy_ones_bound_the_server() {
    let (addr, metrics, _stop) = start().await;
    // Every slot held by a connection that never finishes its headers
    // (idle: no request in flight): a newcomer takes the place of one of
    // them, again and again.
    let mut held = Vec::new();
    for _ in 0..LIMITS.max_connections {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /ok HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..3 {
        assert!(get_ok(addr).await, "an honest client is locked out");
    }
    assert!(metrics.render().contains("http_idle_evicted"));
    drop(held);
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Every slot with a request in flight: nothing to give way, the
    // newcomer is closed at once; service resumes when they end.
    let mut busy = Vec::new();
    for _ in 0..LIMITS.max_connections {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        busy.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await;
    let answer = read_to_close(&mut extra).await;
    assert!(answer.is_empty(), "{answer}");
    assert!(metrics.render().contains("http_connections"));
    // The slow requests are cut off (408); their slots serve others again.
    tokio::time::sleep(LIMITS.request_timeout + LIMITS.header_timeout).await;
    assert!(get_ok(addr).await);
}

#[tokio::test]
async fn stop_ends_the_server() {
    let (addr, _, stop) = start().await;
    assert!(get_ok(addr).await);
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!get_ok(addr).await);
}
