//! Queues: the list, one queue, its stats, pause and resume, and the
//! live workers.

use axum::Json;
use ferry_broker::StreamInfo;
use ferry_queue::WorkerInfo;

use super::jobs::QueuePath;
use super::{existing, St};
use crate::serve::extract::Path;
use crate::serve::problem::{ApiError, ErrorBody};
use crate::{PauseState, QueueSummary, StatsReport};

/// The queues under the server's prefix, with depth per priority, paused
/// state and live workers.
#[utoipa::path(get, path = "/v1/queues", tag = "queues",
    responses(
        (status = 200, description = "The queues", body = Vec<QueueSummary>),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn list(state: St) -> Result<Json<Vec<QueueSummary>>, ApiError> {
    Ok(Json(state.run(state.admin.queues()).await?))
}

/// One queue at a glance.
#[utoipa::path(get, path = "/v1/queues/{queue}", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "The queue", body = QueueSummary),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn show(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<QueueSummary>, ApiError> {
    existing(&state, &queue).await?;
    Ok(Json(state.run(state.admin.summary(&queue)).await?))
}

/// A queue's stats: depths, counters, and the last 15 minutes (per-minute
/// counts, wait and run time percentiles, failure rate), for the queue and
/// per priority.
#[utoipa::path(get, path = "/v1/queues/{queue}/stats", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "The stats", body = StatsReport),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn stats(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<StatsReport>, ApiError> {
    existing(&state, &queue).await?;
    Ok(Json(state.run(state.admin.stats(&queue)).await?))
}

/// Each priority stream of the queue and its consumer group: length,
/// pending, the group's lag as Redis counts it, and the age of the oldest
/// pending and the oldest waiting entry (server clock).
#[utoipa::path(get, path = "/v1/queues/{queue}/streams", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "The streams, highest priority first", body = Vec<StreamInfo>),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn streams(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<Vec<StreamInfo>>, ApiError> {
    existing(&state, &queue).await?;
    Ok(Json(state.run(state.admin.streams(&queue)).await?))
}

/// Pauses a queue: within about a second no worker claims from it; jobs
/// running finish. Pausing a paused queue is fine.
#[utoipa::path(post, path = "/v1/queues/{queue}/pause", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "Paused", body = PauseState),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn pause(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<PauseState>, ApiError> {
    Ok(Json(state.run(state.admin.pause(&queue)).await?))
}

/// Resumes a paused queue.
#[utoipa::path(post, path = "/v1/queues/{queue}/resume", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "Resumed", body = PauseState),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn resume(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<PauseState>, ApiError> {
    Ok(Json(state.run(state.admin.resume(&queue)).await?))
}

/// The live workers of every queue under the prefix.
#[utoipa::path(get, path = "/v1/workers", tag = "queues",
    responses(
        (status = 200, description = "The live workers", body = Vec<WorkerInfo>),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn workers(state: St) -> Result<Json<Vec<WorkerInfo>>, ApiError> {
    Ok(Json(state.run(state.admin.workers(None)).await?))
}

/// The live workers serving one queue.
#[utoipa::path(get, path = "/v1/queues/{queue}/workers", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "The live workers", body = Vec<WorkerInfo>),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn queue_workers(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<Vec<WorkerInfo>>, ApiError> {
    existing(&state, &queue).await?;
    Ok(Json(state.run(state.admin.workers(Some(&queue))).await?))
}
