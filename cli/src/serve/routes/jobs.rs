//! Jobs by id: enqueue (one or a batch), status, wait, cancel,
//! re-prioritise, retry.

use std::time::Duration;

use axum::http::StatusCode;
use axum::Json;
use ferry_broker::{JobPage, ListState, OnDependencyFailure};
use ferry_queue::{JobStatus, Priority};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::unique::UniqueRequest;
use super::{existing, St};
use crate::enqueue::{RawJob, DEFAULT_MAX_RETRIES};
use crate::jobs::{Cancelled, Reprioritised, Retried};
use crate::serve::extract::{JsonBody, Path, Query};
use crate::serve::problem::{codes, ApiError, ErrorBody};
use crate::{Enqueued, EnqueuedAfter};

/// The longest delay a job may be given: 10 years.
const MAX_DELAY_MS: u64 = 10 * 365 * 24 * 3_600_000;

/// A job to enqueue.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJobRequest {
    /// The job type: chooses the worker's handler (1 to 128 bytes, no
    /// control characters).
    #[serde(rename = "type")]
    #[schema(pattern = "^[ -~]{1,128}$")]
    pub job_type: String,
    /// The payload, any JSON value, as the handler decodes it.
    pub payload: serde_json::Value,
    /// critical, high, normal (the default) or low.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Retries after the first attempt (3 by default).
    #[serde(default, deserialize_with = "whole::opt_u32")]
    #[schema(maximum = 10_000)]
    pub max_retries: Option<u32>,
    /// Run no earlier than this many ms from now (server clock).
    #[serde(default, deserialize_with = "whole::opt_u64")]
    #[schema(maximum = 315_360_000_000_u64)]
    pub delay_ms: Option<u64>,
    /// An id of your own, unique in the queue (409 if it exists): 1 to 128
    /// of `A-Z a-z 0-9 . _ : -`, not of the form `<priority>-<ms>-<seq>`
    /// Ferry gives its own.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub id: Option<String>,
    /// Keep the finished job's record this long (ms) instead of the
    /// queue's retention; 0 keeps none.
    #[serde(default, deserialize_with = "whole::opt_u64")]
    pub retention_ms: Option<u64>,
    /// A concurrency key: the job waits (state `waiting`) while its key's
    /// limit of jobs holds a slot (`PUT .../concurrency/key:<K>`).
    #[serde(default)]
    pub concurrency_key: Option<String>,
    /// Enqueue it only if no job holding its uniqueness key exists (one
    /// job per call: not in a batch).
    #[serde(default)]
    pub unique: Option<UniqueRequest>,
    /// Run only after these jobs of the queue (their ids) succeed: the job
    /// waits (state `waiting`, its status's `depends_on` naming those
    /// left) until the last one does. Each must exist (one that succeeded
    /// counts as done; 422 `bad_dependency` otherwise). Not with
    /// `delay_ms` or `unique`; one job per call: not in a batch.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 10_000)]
    pub depends_on: Option<Vec<String>>,
    /// What a dependency that fails (dead, or cancelled) does to the job:
    /// `fail` (the default: it ends cancelled too), `release` (it counts
    /// as done) or `wait` (it waits until the dependency is replayed and
    /// succeeds). Only with `depends_on`.
    #[serde(default)]
    pub on_dependency_failure: Option<OnDependencyFailure>,
}

/// What an enqueue did.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Enqueued)]
pub struct EnqueueAnswer {
    /// The queue.
    pub queue: String,
    /// The new job's id; for a duplicate, the id of the job that holds
    /// the key.
    pub id: String,
    /// A unique job's key (given, or derived from its type and payload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<String>,
    /// Set when no new job was written: a job holding the key exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<crate::unique::DuplicateOf>,
    /// A job enqueued with `depends_on`: how many of its dependencies it
    /// waits for (0: they had all succeeded, and it is queued).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<u64>,
}

impl From<Enqueued> for EnqueueAnswer {
    fn from(e: Enqueued) -> Self {
        Self {
            queue: e.queue,
            id: e.id,
            unique_key: e.unique_key,
            duplicate: e.duplicate,
            waiting_for: None,
        }
    }
}

impl From<EnqueuedAfter> for EnqueueAnswer {
    fn from(e: EnqueuedAfter) -> Self {
        Self {
            queue: e.queue,
            id: e.id,
            unique_key: None,
            duplicate: None,
            waiting_for: Some(e.waiting_for),
        }
    }
}

impl NewJobRequest {
    fn into_raw(self, at: &str) -> Result<RawJob, ApiError> {
        let delay = match self.delay_ms {
            Some(ms) if ms > MAX_DELAY_MS => {
                return Err(ApiError::bad_request(format!(
                    "field `{at}delay_ms`: at most {MAX_DELAY_MS} (10 years)"
                )))
            }
            Some(0) | None => None,
            Some(ms) => Some(Duration::from_millis(ms)),
        };
        Ok(RawJob {
            job_type: self.job_type,
            payload: self.payload.to_string(),
            priority: self.priority.unwrap_or_default(),
            max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            delay,
            id: self.id,
            retention_ms: self.retention_ms,
            concurrency_key: self.concurrency_key,
        })
    }
}

/// Whole numbers that may arrive written as floats (`3.0`, as Python's
/// json writes a float): taken when they are whole and in range.
pub(crate) mod whole {
    use serde::{Deserialize, Deserializer};

    fn opt<'de, D: Deserializer<'de>>(d: D, max: f64) -> Result<Option<u64>, D::Error> {
        let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
            return Ok(None);
        };
        if let Some(v) = n.as_u64() {
            return if v as f64 <= max {
                Ok(Some(v))
            } else {
                Err(serde::de::Error::custom(format!("{n} is out of range")))
            };
        }
        match n.as_f64() {
            Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= max => Ok(Some(f as u64)),
            _ => Err(serde::de::Error::custom(format!(
                "{n} is not a whole number from 0 to {max}"
            ))),
        }
    }

    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        opt(d, u64::MAX as f64)
    }

    pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        Ok(opt(d, f64::from(u32::MAX))?.and_then(|v| u32::try_from(v).ok()))
    }
}

/// Many jobs to enqueue in one call.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The jobs, in order.
    pub jobs: Vec<NewJobRequest>,
    /// An idempotency key (1 to 128 of `A-Z a-z 0-9 . _ : -`): the same
    /// batch sent again with the same key (after a lost reply or a 503)
    /// writes only what was not written before and answers with the same
    /// ids, for a day after its last write. Job ids are then derived from
    /// the key, unless a job gives its own.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub idempotency_key: Option<String>,
}

/// The ids of a batch's jobs, in the batch's order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BatchEnqueued {
    /// The queue.
    pub queue: String,
    /// The new jobs' ids.
    pub ids: Vec<String>,
}

/// A queue in a path.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct QueuePath {
    /// The queue's name: 1 to 128 characters of `[A-Za-z0-9._-]`.
    #[param(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub queue: String,
}

/// A job in a path.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// The queue's name.
    #[param(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub queue: String,
    /// The job id.
    pub id: String,
}

/// Which jobs, and which page.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// queued, running, scheduled (and retrying), finished (succeeded and
    /// cancelled, with a record kept) or dead.
    pub state: ListState,
    /// Where to go on: the `next` of the page before.
    #[param(pattern = "^[0-9:-]{1,64}$")]
    pub cursor: Option<String>,
    /// Jobs per page (default 50, at most 1,000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// How long to wait.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Answer after at most this many ms (default 30,000; at most the
    /// server's limit, 60,000 by default).
    pub timeout_ms: Option<u64>,
}

/// A new priority.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityRequest {
    /// critical, high, normal or low.
    pub priority: Priority,
}

/// Enqueues one job; answers with its id. With `unique`, only if no job
/// holding its uniqueness key exists: a duplicate answers 200 with the id
/// of the job that holds the key and `duplicate` (`existing`, or
/// `debounced` when a waiting debounced job took its payload), or a 409
/// `unique_key_held` with `unique.error_on_duplicate`.
///
/// With `depends_on`, the job runs after those jobs succeed: 201 with
/// `waiting_for`, how many it waits for; a dependency that cannot be
/// waited for (the job itself, no such job, or one that failed while
/// `on_dependency_failure` is `fail`) is a 422 `bad_dependency`, nothing
/// written.
#[utoipa::path(post, path = "/v1/queues/{queue}/jobs", tag = "jobs",
    params(QueuePath), request_body = NewJobRequest,
    responses(
        (status = 201, description = "Enqueued (with `depends_on`: `waiting_for` says how many of them it waits for)", body = EnqueueAnswer),
        (status = 200, description = "A duplicate of a unique job: nothing new written; `id` and `duplicate.of` name the job that holds the key", body = EnqueueAnswer),
        (status = 400, description = "A field is missing or wrong", body = ErrorBody),
        (status = 409, description = "The id exists in the queue (`duplicate_job`), or a job holds the unique key and `unique.error_on_duplicate` is set (`unique_key_held`)", body = ErrorBody),
        (status = 413, description = "The body or payload is too large", body = ErrorBody),
        (status = 422, description = "A dependency cannot be waited for (`bad_dependency`): it is the job itself, no such job exists, or it failed and `on_dependency_failure` is `fail`; nothing was written", body = ErrorBody),
        (status = 429, description = "The queue is full (its max depth)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn enqueue(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    JsonBody(mut job): JsonBody<NewJobRequest>,
) -> Result<(StatusCode, Json<EnqueueAnswer>), ApiError> {
    if let Some(deps) = job.depends_on.take() {
        let policy = job.on_dependency_failure.take().unwrap_or_default();
        if job.unique.is_some() {
            return Err(ApiError::bad_request(
                "field `unique`: a job with `depends_on` cannot be unique",
            ));
        }
        if job.delay_ms.is_some_and(|ms| ms > 0) {
            return Err(ApiError::bad_request(
                "field `delay_ms`: a job with `depends_on` runs when they succeed: it takes no delay",
            ));
        }
        let raw = job.into_raw("")?;
        let done = state
            .run(state.admin.enqueue_after(&queue, raw, &deps, policy))
            .await?;
        return Ok((StatusCode::CREATED, Json(done.into())));
    }
    if job.on_dependency_failure.is_some() {
        return Err(ApiError::bad_request(
            "field `on_dependency_failure`: only with `depends_on`",
        ));
    }
    let unique = job.unique.take().map(|u| u.spec("")).transpose()?;
    let raw = job.into_raw("")?;
    let done: EnqueueAnswer = match &unique {
        Some(u) => {
            state
                .run(state.admin.enqueue_unique(&queue, raw, u))
                .await?
        }
        None => state.run(state.admin.enqueue(&queue, raw)).await?,
    }
    .into();
    let status = if done.duplicate.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(done)))
}

/// Enqueues many jobs in one call (at most the server's batch limit,
/// 1,000 by default); answers with their ids in order.
#[utoipa::path(post, path = "/v1/queues/{queue}/jobs/batch", tag = "jobs",
    params(QueuePath), request_body = BatchRequest,
    responses(
        (status = 201, description = "Enqueued", body = BatchEnqueued),
        (status = 400, description = "A field is missing or wrong", body = ErrorBody),
        (status = 409, description = "An id exists in the queue; nothing was written", body = ErrorBody),
        (status = 413, description = "Too many jobs, or the body is too large", body = ErrorBody),
        (status = 429, description = "The queue is full", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn enqueue_batch(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    JsonBody(batch): JsonBody<BatchRequest>,
) -> Result<(StatusCode, Json<BatchEnqueued>), ApiError> {
    if batch.jobs.len() > state.limits.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BATCH_TOO_LARGE,
            format!(
                "{} jobs in one batch; this server takes at most {}",
                batch.jobs.len(),
                state.limits.max_batch
            ),
        ));
    }
    let jobs = batch
        .jobs
        .into_iter()
        .enumerate()
        .map(|(i, j)| {
            if j.unique.is_some() {
                return Err(ApiError::bad_request(format!(
                    "field `jobs[{i}].unique`: unique jobs are enqueued one at a time (POST /v1/queues/{{queue}}/jobs)"
                )));
            }
            if j.depends_on.is_some() || j.on_dependency_failure.is_some() {
                let field = if j.depends_on.is_some() {
                    "depends_on"
                } else {
                    "on_dependency_failure"
                };
                return Err(ApiError::bad_request(format!(
                    "field `jobs[{i}].{field}`: a job with dependencies is enqueued alone (POST /v1/queues/{{queue}}/jobs)"
                )));
            }
            j.into_raw(&format!("jobs[{i}]."))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ids = state
        .run(
            state
                .admin
                .enqueue_batch(&queue, jobs, batch.idempotency_key.as_deref()),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(BatchEnqueued { queue, ids })))
}

/// A queue's jobs in one state, a page at a time, without their
/// payloads: queued and running ones in the order workers claim them,
/// scheduled ones soonest first, finished ones and dead letters newest
/// first. Each page costs O(page) in Redis, however deep the queue.
#[utoipa::path(get, path = "/v1/queues/{queue}/jobs", tag = "jobs",
    params(QueuePath, ListQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "A bad queue name, state, cursor or limit", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn list(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(q): Query<ListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    existing(&state, &queue).await?;
    let limit = q.limit.unwrap_or(50);
    Ok(Json(
        state
            .run(
                state
                    .admin
                    .list_jobs(&queue, q.state, q.cursor.as_deref(), limit),
            )
            .await?,
    ))
}

/// A job's status: state, priority, attempts, times, worker, last error,
/// progress, result, and its payload where it is still held (not for a
/// finished job).
#[utoipa::path(get, path = "/v1/queues/{queue}/jobs/{id}", tag = "jobs",
    params(JobPath),
    responses(
        (status = 200, description = "The job", body = JobStatus),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn show(
    state: St,
    Path(JobPath { queue, id }): Path<JobPath>,
) -> Result<Json<JobStatus>, ApiError> {
    Ok(Json(state.run(state.admin.show(&queue, &id)).await?))
}

/// Waits until the job finishes (long poll) and answers with its status;
/// at the timeout, answers with its status then (a state that is not
/// succeeded, dead or cancelled). A finished job answers at once.
#[utoipa::path(get, path = "/v1/queues/{queue}/jobs/{id}/wait", tag = "jobs",
    params(JobPath, WaitQuery),
    responses(
        (status = 200, description = "The job, finished or as it is at the timeout", body = JobStatus),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn wait(
    state: St,
    Path(JobPath { queue, id }): Path<JobPath>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<JobStatus>, ApiError> {
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(30_000)).min(state.limits.max_wait);
    let deadline = timeout + state.limits.request_timeout;
    match state
        .run_for(deadline, async {
            match state.admin.wait(&queue, &id, timeout).await {
                Err(crate::Error::WaitTimeout { .. }) => state.admin.show(&queue, &id).await,
                other => other,
            }
        })
        .await
    {
        Ok(status) => Ok(Json(status)),
        Err(e) => Err(e),
    }
}

/// Cancels a job: a scheduled, retrying or queued job is removed at once;
/// a running job's handler is told, and the job ends cancelled.
/// Cancelling again is fine; cancelling a finished job is a 409.
#[utoipa::path(post, path = "/v1/queues/{queue}/jobs/{id}/cancel", tag = "jobs",
    params(JobPath),
    responses(
        (status = 200, description = "Cancelled, or its worker told", body = Cancelled),
        (status = 400, description = "A bad queue name or parameter", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job finished already", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn cancel(
    state: St,
    Path(JobPath { queue, id }): Path<JobPath>,
) -> Result<Json<Cancelled>, ApiError> {
    Ok(Json(state.run(state.admin.cancel(&queue, &id)).await?))
}

/// Gives a waiting job (scheduled, retrying or queued) another priority,
/// keeping its id.
#[utoipa::path(post, path = "/v1/queues/{queue}/jobs/{id}/reprioritise", tag = "jobs",
    params(JobPath), request_body = PriorityRequest,
    responses(
        (status = 200, description = "Moved", body = Reprioritised),
        (status = 400, description = "A bad priority", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is running or finished", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn reprioritise(
    state: St,
    Path(JobPath { queue, id }): Path<JobPath>,
    JsonBody(body): JsonBody<PriorityRequest>,
) -> Result<Json<Reprioritised>, ApiError> {
    Ok(Json(
        state
            .run(state.admin.reprioritise(&queue, &id, body.priority))
            .await?,
    ))
}

/// Runs a dead job again: its dead letter goes back to its stream as
/// attempt 1, keeping its id.
#[utoipa::path(post, path = "/v1/queues/{queue}/jobs/{id}/retry", tag = "jobs",
    params(JobPath),
    responses(
        (status = 200, description = "Queued again", body = Retried),
        (status = 400, description = "A bad queue name or parameter", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not dead", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn retry(
    state: St,
    Path(JobPath { queue, id }): Path<JobPath>,
) -> Result<Json<Retried>, ApiError> {
    Ok(Json(state.run(state.admin.retry(&queue, &id)).await?))
}
