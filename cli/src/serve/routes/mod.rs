//! The handlers, one module per concern. Each carries its OpenAPI
//! description (`#[utoipa::path]`); [`super::openapi`] collects them.

pub mod batches;
pub mod dead;
pub mod events;
pub mod flows;
pub mod jobs;
pub mod queues;
pub mod schedules;
pub mod settings;
pub mod system;
pub mod unique;

use std::sync::Arc;

use super::problem::{codes, ApiError};
use super::AppState;

/// The state every handler gets.
pub type St = axum::extract::State<Arc<AppState>>;

/// 404 `queue_not_found` unless `queue` has keys in Redis (reads of a
/// queue nobody ever used say so, instead of showing zeros).
///
/// # Errors
/// 404, 400 for a bad name, 503.
pub async fn existing(state: &AppState, queue: &str) -> Result<(), ApiError> {
    if state.run(state.admin.queue_exists(queue)).await? {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            codes::QUEUE_NOT_FOUND,
            format!("no queue {queue:?}: it has no keys in this redis under this prefix"),
        ))
    }
}
