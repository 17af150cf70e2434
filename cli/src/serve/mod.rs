//! `ferry serve`: an HTTP API over the same operations as the command
//! line, for producers in any language, dashboards and scripts.
//!
//! - [`routes`]: the handlers, one module per concern (jobs, queues,
//!   settings, events, schedules, dead letters, the server itself), each
//!   documented for the OpenAPI document.
//! - [`openapi`]: the document, generated from the handlers and types.
//! - [`metrics`]: `/metrics` in the Prometheus text format.
//! - [`dashboard`]: the web dashboard at `/` (embedded page, script and style).
//! - [`auth`]: bearer tokens (write and read-only).
//! - [`problem`]: JSON errors with stable codes.
//! - [`extract`]: body, path and query extractors that fail with those errors.
//!
//! Every call to Redis is bounded by [`Limits::request_timeout`]: a Redis
//! that is down or stuck gives a 503 with `Retry-After`, never a hang.

pub mod auth;
pub mod dashboard;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod schedule_firer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;

use crate::admin::Admin;
use crate::error::{Error, Result};
pub use auth::Tokens;
pub use problem::ApiError;

/// How much the server takes, and how long it waits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest request body, bytes (413 past it).
    pub max_body_bytes: usize,
    /// The most jobs in one batch enqueue (413 past it).
    pub max_batch: usize,
    /// The longest wait a client may ask of the wait route.
    pub max_wait: Duration,
    /// How long one operation may take before it fails with a 503.
    pub request_timeout: Duration,
}

impl Default for Limits {
    /// 1 MiB bodies, 1,000 jobs a batch, waits of at most 60 s, 10 s per
    /// operation.
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_batch: 1_000,
            max_wait: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The operations.
    pub admin: Admin,
    /// Who may do what.
    pub tokens: Tokens,
    /// The limits.
    pub limits: Limits,
    /// Operations that failed because Redis could not serve them.
    pub redis_errors: AtomicU64,
    /// Requests answered, by class of status (2xx, 4xx, 5xx).
    pub responses: [AtomicU64; 3],
    /// Event streams open (each holds a Redis connection): at most
    /// [`MAX_EVENT_STREAMS`].
    pub event_streams: Arc<tokio::sync::Semaphore>,
}

/// The most event streams (`/v1/queues/{queue}/events/stream`) served at
/// once; each holds a Redis connection of its own.
pub const MAX_EVENT_STREAMS: usize = 64;

impl AppState {
    /// The shared state of a server.
    pub fn new(admin: Admin, tokens: Tokens, limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            admin,
            tokens,
            limits,
            redis_errors: AtomicU64::new(0),
            responses: Default::default(),
            event_streams: Arc::new(tokio::sync::Semaphore::new(MAX_EVENT_STREAMS)),
        })
    }

    /// Runs one operation within the request timeout, in the API's terms.
    ///
    /// # Errors
    /// The operation's error as an [`ApiError`]; a 503 when it took too long.
    pub async fn run<T>(&self, op: impl Future<Output = Result<T>>) -> Result<T, ApiError> {
        self.run_for(self.limits.request_timeout, op).await
    }

    /// As [`AppState::run`], with a deadline of `timeout`.
    ///
    /// # Errors
    /// As [`AppState::run`].
    pub async fn run_for<T>(
        &self,
        timeout: Duration,
        op: impl Future<Output = Result<T>>,
    ) -> Result<T, ApiError> {
        let failed = match tokio::time::timeout(timeout, op).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => ApiError::from(e),
            Err(_) => ApiError::unavailable(format!(
                "redis at {} did not answer within {:.1}s",
                self.admin.host(),
                timeout.as_secs_f64()
            )),
        };
        if failed.is_redis_failure() {
            self.redis_errors.fetch_add(1, Ordering::Relaxed);
        }
        Err(failed)
    }

    fn count(&self, status: StatusCode) {
        let class = match status.as_u16() {
            500.. => 2,
            400..=499 => 1,
            _ => 0,
        };
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// The whole application: the API under `/v1`, `/healthz`, `/metrics` and
/// `/openapi.json`, with its limits and auth.
pub fn app(state: Arc<AppState>) -> Router {
    let (router, _) = openapi::router_and_document();
    let body_limit = state.limits.max_body_bytes;
    router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ))
        .route(
            "/openapi.json",
            axum::routing::get(routes::system::openapi_document),
        )
        .merge(dashboard::router())
        .fallback(routes::system::not_found)
        .method_not_allowed_fallback(routes::system::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

async fn count_responses(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(req).await;
    state.count(response.status());
    response
}

/// Where and how `ferry serve` listens.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Tokens and read-only mode.
    pub tokens: Tokens,
    /// Body, batch and time limits.
    pub limits: Limits,
}

impl ServeConfig {
    /// Refuses a configuration that would expose the API unguarded: a
    /// non-loopback address without a token.
    ///
    /// # Errors
    /// [`Error::Usage`] saying what to add.
    pub fn check(&self) -> Result<()> {
        if !self.listen.ip().is_loopback() && !self.tokens.required() {
            return Err(Error::Usage(format!(
                "refusing to listen on {} without a token: anyone who can reach it could change the queues. \
                 Set FERRY_TOKEN (and FERRY_READ_TOKEN for read-only clients), or listen on 127.0.0.1",
                self.listen
            )));
        }
        if self.tokens.write.as_deref() == Some("") || self.tokens.read.as_deref() == Some("") {
            return Err(Error::Usage("a token cannot be empty".into()));
        }
        Ok(())
    }
}

/// Serves `admin` on `listener` until `shutdown` resolves; requests in
/// flight then finish.
///
/// # Errors
/// [`Error::Input`] when the server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Input(format!("the HTTP server failed: {e}")))
}
