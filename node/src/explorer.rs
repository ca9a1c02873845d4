//! The DAG explorer page (`GET /explorer`): plain HTML, CSS and JS compiled
//! into the binary (no CDN, no build step), drawing the live DAG the node
//! streams on `/dag/stream` and reading its other read-only routes.

use axum::{
    http::{header, HeaderValue},
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Router,
};

const INDEX: &str = include_str!("explorer/index.html");
const APP: &str = include_str!("explorer/app.js");
const STYLE: &str = include_str!("explorer/style.css");

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // Everything the page loads comes from this node.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'self'; img-src 'self' data:"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The explorer's routes, merged into the read-only API.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/explorer") }))
        .route(
            "/explorer",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/explorer/app.js",
            get(|| async { asset(APP, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/explorer/style.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
}
