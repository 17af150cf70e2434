//! The web dashboard: a page and its scripts and style sheet, embedded in
//! the binary (no build step), served at `/` and `/ui/*`. They hold no
//! data and need no token; the page reads the API under `/v1` with the
//! token its user gives it, so the dashboard has exactly the rights of
//! that token (none to change anything on a `--read-only` server).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../../dashboard/index.html");
const SCRIPT: &str = include_str!("../../dashboard/app.js");
/// The queue page's Limits panel, a module `app.js` imports.
const LIMITS_SCRIPT: &str = include_str!("../../dashboard/limits.js");
/// The queue page's Batches panel and the batch and flow pages, a module
/// `app.js` imports.
const BATCHES_SCRIPT: &str = include_str!("../../dashboard/batches.js");
const STYLE: &str = include_str!("../../dashboard/style.css");

/// Only this origin's script and style, no framing, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// True for the paths the dashboard's files are served at (no token needed).
pub fn is_asset_path(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/")
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn limits_script() -> Response {
    asset("text/javascript; charset=utf-8", LIMITS_SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// The dashboard's routes.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/app.js", get(script))
        .route("/ui/limits.js", get(limits_script))
        .route(
            "/ui/batches.js",
            get(|| async { asset("text/javascript; charset=utf-8", BATCHES_SCRIPT) }),
        )
        .route("/ui/style.css", get(style))
}
