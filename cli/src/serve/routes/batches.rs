//! Batches: a group of jobs enqueued together under an id, with callbacks
//! enqueued when it is done; jobs added to an open batch; its status and
//! its jobs.

use axum::http::StatusCode;
use axum::Json;
use ferry_broker::BatchStatus;
use serde::Deserialize;
use utoipa::IntoParams;

use super::jobs::QueuePath;
use super::St;
use crate::batches::{
    AddToBatchRequest, BatchAdded, BatchCreated, BatchJobs, NewBatchRequest, DEFAULT_BATCH_LIST,
    DEFAULT_BATCH_PAGE, MAX_BATCH_LIST, MAX_BATCH_PAGE,
};
use crate::serve::extract::{JsonBody, Path, Query};
use crate::serve::problem::{codes, ApiError, ErrorBody};

/// A batch in a path.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BatchPath {
    /// The queue's name.
    #[param(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub queue: String,
    /// The batch's id.
    pub id: String,
}

/// How many batches.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchesQuery {
    /// Batches to show, newest first (default 50, at most 1,000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Which page of a batch's jobs.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchJobsQuery {
    /// Where to go on: the `next_cursor` of the page before (0, the
    /// default, to start).
    pub cursor: Option<u64>,
    /// About how many jobs per page (default 100, at most 1,000).
    #[param(minimum = 1, maximum = 1000)]
    pub count: Option<usize>,
}

/// `n` (or `default`) if it is from 1 to `max`; a 400 naming `field`
/// otherwise.
fn within(n: Option<usize>, default: usize, max: usize, field: &str) -> Result<usize, ApiError> {
    match n.unwrap_or(default) {
        n @ 1.. if n <= max => Ok(n),
        n => Err(ApiError::bad_request(format!(
            "`{field}` is {n}: from 1 to {max}"
        ))),
    }
}

/// A 413 for more jobs in one call than this server takes.
fn too_many(state: &St, jobs: usize) -> Result<(), ApiError> {
    if jobs > state.limits.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BATCH_TOO_LARGE,
            format!(
                "{jobs} jobs in one call; this server takes at most {}",
                state.limits.max_batch
            ),
        ));
    }
    Ok(())
}

/// Creates a batch, all or none: its jobs queued at once, each counted by
/// the batch, and its callbacks kept until they are due (`on_success` once
/// every job has succeeded, `on_complete` once every job has finished,
/// whatever the outcome). Answers with the ids of its jobs and callbacks.
#[utoipa::path(post, path = "/v1/queues/{queue}/batches", tag = "batches",
    params(QueuePath), request_body = NewBatchRequest,
    responses(
        (status = 201, description = "Created: the batch's id, its jobs' ids in order, and its callbacks' ids", body = BatchCreated),
        (status = 400, description = "A field is missing or wrong (named by its path, e.g. `jobs[1].priority`), or no jobs; nothing was written", body = ErrorBody),
        (status = 409, description = "The batch id exists in the queue (`batch_exists`), or a job's or callback's id does (`duplicate_job`); nothing was written", body = ErrorBody),
        (status = 413, description = "More jobs than the server takes in one call (`batch_too_large`), or the body is too large", body = ErrorBody),
        (status = 429, description = "The queue is full (its max depth)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn create(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    JsonBody(body): JsonBody<NewBatchRequest>,
) -> Result<(StatusCode, Json<BatchCreated>), ApiError> {
    too_many(&state, body.jobs.len())?;
    let batch = body.into_new_batch();
    let done = state.run(state.admin.create_batch(&queue, &batch)).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// The queue's batches, newest first (those kept: open, or finished
/// within the queue's record retention).
#[utoipa::path(get, path = "/v1/queues/{queue}/batches", tag = "batches",
    params(QueuePath, BatchesQuery),
    responses(
        (status = 200, description = "The batches, newest first", body = Vec<BatchStatus>),
        (status = 400, description = "A bad queue name or limit", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn list(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(q): Query<BatchesQuery>,
) -> Result<Json<Vec<BatchStatus>>, ApiError> {
    let limit = within(q.limit, DEFAULT_BATCH_LIST, MAX_BATCH_LIST, "limit")?;
    Ok(Json(state.run(state.admin.batches(&queue, limit)).await?))
}

/// A batch's status: open, complete (every job finished, some failed) or
/// succeeded; its counts, times, and callbacks (`waiting`, `enqueued`, or
/// `dropped` when a job failed for good).
#[utoipa::path(get, path = "/v1/queues/{queue}/batches/{id}", tag = "batches",
    params(BatchPath),
    responses(
        (status = 200, description = "The batch", body = BatchStatus),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 404, description = "No such batch (`batch_not_found`): never created, or expired", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn show(
    state: St,
    Path(BatchPath { queue, id }): Path<BatchPath>,
) -> Result<Json<BatchStatus>, ApiError> {
    Ok(Json(state.run(state.admin.batch(&queue, &id)).await?))
}

/// Adds jobs to an open batch, all or none: the batch waits for them too.
/// A batch is open until its last job finishes.
#[utoipa::path(post, path = "/v1/queues/{queue}/batches/{id}/jobs", tag = "batches",
    params(BatchPath), request_body = AddToBatchRequest,
    responses(
        (status = 201, description = "Added: the new jobs' ids, in order", body = BatchAdded),
        (status = 400, description = "A field is missing or wrong, or no jobs; nothing was written", body = ErrorBody),
        (status = 404, description = "No such batch (`batch_not_found`)", body = ErrorBody),
        (status = 409, description = "Every job of the batch has finished (`batch_closed`), or a job's id exists in the queue (`duplicate_job`); nothing was written", body = ErrorBody),
        (status = 413, description = "More jobs than the server takes in one call (`batch_too_large`), or the body is too large", body = ErrorBody),
        (status = 429, description = "The queue is full (its max depth)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn add(
    state: St,
    Path(BatchPath { queue, id }): Path<BatchPath>,
    JsonBody(body): JsonBody<AddToBatchRequest>,
) -> Result<(StatusCode, Json<BatchAdded>), ApiError> {
    too_many(&state, body.jobs.len())?;
    let jobs = body.into_new_jobs();
    let done = state
        .run(state.admin.add_to_batch(&queue, &id, &jobs))
        .await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// A page of a batch's jobs, each with its state and type (`null` once
/// its record is no longer kept). Pages follow a cursor (SSCAN): a job
/// may show on two pages; none present throughout is missed.
#[utoipa::path(get, path = "/v1/queues/{queue}/batches/{id}/jobs", tag = "batches",
    params(BatchPath, BatchJobsQuery),
    responses(
        (status = 200, description = "A page of jobs; `next_cursor` 0 on the last", body = BatchJobs),
        (status = 400, description = "A bad queue name, cursor or count", body = ErrorBody),
        (status = 404, description = "No such batch (`batch_not_found`)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn jobs(
    state: St,
    Path(BatchPath { queue, id }): Path<BatchPath>,
    Query(q): Query<BatchJobsQuery>,
) -> Result<Json<BatchJobs>, ApiError> {
    let count = within(q.count, DEFAULT_BATCH_PAGE, MAX_BATCH_PAGE, "count")?;
    let cursor = q.cursor.unwrap_or(0);
    Ok(Json(
        state
            .run(state.admin.batch_jobs(&queue, &id, cursor, count))
            .await?,
    ))
}
