//! A queue's settings: read them, change them, clear its finished jobs'
//! records.

use axum::Json;

use super::jobs::QueuePath;
use super::{existing, St};
use crate::serve::extract::{JsonBody, Path};
use crate::serve::problem::{ApiError, ErrorBody};
use crate::settings::{QueueSettings, ResultsCleared, SettingsChange};

/// A queue's settings: paused, the maximum depth, how long and how many
/// finished jobs' records are kept, and the lifecycle events' cap.
#[utoipa::path(get, path = "/v1/queues/{queue}/settings", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "The settings", body = QueueSettings),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn show(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<QueueSettings>, ApiError> {
    existing(&state, &queue).await?;
    Ok(Json(state.run(state.admin.settings(&queue)).await?))
}

/// Changes a queue's settings: the fields given (every one checked before
/// any is written), `null` turning a limit off. Answers with the settings
/// after. A queue nobody has used yet may be configured ahead of its first
/// job.
#[utoipa::path(patch, path = "/v1/queues/{queue}/settings", tag = "queues",
    params(QueuePath), request_body = SettingsChange,
    responses(
        (status = 200, description = "The settings after the change", body = QueueSettings),
        (status = 400, description = "A bad queue name or field", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn change(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    JsonBody(change): JsonBody<SettingsChange>,
) -> Result<Json<QueueSettings>, ApiError> {
    Ok(Json(
        state
            .run(state.admin.change_settings(&queue, &change))
            .await?,
    ))
}

/// Deletes every finished job's record of a queue (its results); dead
/// letters stay. Answers with how many were deleted.
#[utoipa::path(delete, path = "/v1/queues/{queue}/results", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "The records deleted", body = ResultsCleared),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn clear_results(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<ResultsCleared>, ApiError> {
    Ok(Json(state.run(state.admin.clear_results(&queue)).await?))
}

/// A queue's concurrency limits: queue-wide, every key's, each type's
/// and key's, and the gates' running and waiting jobs, busiest first.
#[utoipa::path(get, path = "/v1/queues/{queue}/concurrency", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "The limits and gates", body = ferry_broker::Concurrency),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn concurrency(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<ferry_broker::Concurrency>, ApiError> {
    Ok(Json(state.run(state.admin.concurrency(&queue)).await?))
}

/// A queue and a limit's scope, `type:<T>` or `key:<K>`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ScopePath {
    /// Queue name.
    pub queue: String,
    /// `type:<T>` or `key:<K>`.
    pub scope: String,
}

/// A limit to set: 1 or more, or null to remove it.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitChange {
    /// The limit (1 or more), or null to remove it.
    #[schema(minimum = 1)]
    pub limit: Option<u32>,
}

/// Sets (or with null removes) the concurrency limit of a job type
/// (`type:<T>`) or a concurrency key (`key:<K>`); answers with the limits
/// after.
#[utoipa::path(put, path = "/v1/queues/{queue}/concurrency/{scope}", tag = "queues",
    params(ScopePath), request_body = LimitChange,
    responses(
        (status = 200, description = "The limits after", body = ferry_broker::Concurrency),
        (status = 400, description = "A bad queue name, scope or limit", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn set_limit(
    state: St,
    Path(ScopePath { queue, scope }): Path<ScopePath>,
    JsonBody(change): JsonBody<LimitChange>,
) -> Result<Json<ferry_broker::Concurrency>, ApiError> {
    let scope = crate::limits::parse_scope(&scope)?;
    Ok(Json(
        state
            .run(state.admin.set_limit(&queue, &scope, change.limit))
            .await?,
    ))
}

/// A queue's rate limits: its own (with its hold and next slot), every
/// key's, and each type's and key's gate (`type:<T>`, `key:<K>`: its
/// limit, hold, next slot and the jobs parked there), server clock.
#[utoipa::path(get, path = "/v1/queues/{queue}/rate_limits", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "The rate limits and gates", body = ferry_broker::RateLimits),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn rate_limits(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<ferry_broker::RateLimits>, ApiError> {
    Ok(Json(state.run(state.admin.rate_limits(&queue)).await?))
}

/// A queue and a rate limit's scope, `type:<T>`, `key:<K>` or `key`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RateScopePath {
    /// Queue name.
    pub queue: String,
    /// `type:<T>` (a job type), `key:<K>` (a concurrency key) or `key`
    /// (every key, where a key has no limit of its own).
    pub scope: String,
}

/// Sets (or with null removes) the rate limit of a job type
/// (`type:<T>`), a concurrency key (`key:<K>`) or every key (`key`): at
/// most n of its jobs start per period, fleet-wide; the rest of the queue
/// goes on meanwhile. Jobs parked under it are looked at again at once.
/// Answers with the rate limits after. The queue's own is `rate_limit` in
/// `PATCH .../settings`.
#[utoipa::path(put, path = "/v1/queues/{queue}/rate_limits/{scope}", tag = "queues",
    params(RateScopePath), request_body = crate::rate_limit::RateLimitChange,
    responses(
        (status = 200, description = "The rate limits after", body = ferry_broker::RateLimits),
        (status = 400, description = "A bad queue name, scope or rate limit", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn set_rate_limit(
    state: St,
    Path(RateScopePath { queue, scope }): Path<RateScopePath>,
    JsonBody(change): JsonBody<crate::rate_limit::RateLimitChange>,
) -> Result<Json<ferry_broker::RateLimits>, ApiError> {
    let scope = crate::rate_limit::parse_scope(&scope)?;
    let limit = change.limit()?;
    Ok(Json(
        state
            .run(state.admin.set_rate_limit_of(&queue, &scope, limit))
            .await?,
    ))
}
