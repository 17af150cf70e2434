//! A queue's cron and periodic schedules: list, show, add or replace,
//! remove, pause, resume, trigger.

use std::time::Duration;

use axum::http::StatusCode;
use axum::Json;
use ferry_queue::Priority;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::jobs::{whole, QueuePath};
use super::St;
use crate::enqueue::DEFAULT_MAX_RETRIES;
use crate::schedules::{ScheduleRemoved, ScheduleSpec, ScheduleTriggered, ScheduleView};
use crate::serve::extract::{JsonBody, Path};
use crate::serve::problem::{ApiError, ErrorBody};

/// A schedule in a path.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SchedulePath {
    /// The queue's name.
    #[param(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub queue: String,
    /// The schedule's name: 1 to 64 characters of `[A-Za-z0-9._-]`.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
}

/// A schedule to add or replace: a cron expression (with its time zone)
/// or an interval, and the job it enqueues at each tick. Every field is
/// checked before anything is written.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// A cron expression: five fields (`0 2 * * *`), or six with seconds
    /// first (`*/10 * * * * *`). Give it or `every_ms`, not both.
    #[serde(default)]
    #[schema(max_length = 256, example = "0 2 * * *")]
    pub cron: Option<String>,
    /// The IANA time zone `cron` is read in (default `UTC`); only with
    /// `cron`.
    #[serde(default)]
    #[schema(example = "Europe/Paris")]
    pub time_zone: Option<String>,
    /// An interval, ms (at least 1,000): ticks on its multiples since the
    /// epoch, by the Redis server's clock. Give it or `cron`, not both.
    #[serde(default, deserialize_with = "whole::opt_u64")]
    #[schema(minimum = 1000, maximum = 315_360_000_000_u64)]
    pub every_ms: Option<u64>,
    /// The type of the jobs it enqueues (1 to 128 bytes, no control
    /// characters).
    #[serde(rename = "type")]
    #[schema(pattern = "^[ -~]{1,128}$")]
    pub job_type: String,
    /// The jobs' payload, any JSON value (default `{}`).
    #[serde(default = "empty_object")]
    pub payload: serde_json::Value,
    /// critical, high, normal (the default) or low.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// The jobs' retries after their first attempt (3 by default).
    #[serde(default, deserialize_with = "whole::opt_u32")]
    #[schema(maximum = 10_000)]
    pub max_retries: Option<u32>,
    /// What to do with ticks missed while no worker fired it: `skip` (the
    /// default), `run-once`, or `catch-up:<n>` (n from 1 to 100).
    #[serde(default)]
    #[schema(pattern = "^(skip|run-once|catch-up:[0-9]{1,3})$")]
    pub missed: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl ScheduleRequest {
    /// The schedule `name` this asks for.
    fn into_spec(self, name: String) -> ScheduleSpec {
        let mut spec = ScheduleSpec::new(name, self.job_type);
        spec.cron = self.cron;
        spec.time_zone = self.time_zone;
        spec.every = self.every_ms.map(Duration::from_millis);
        spec.payload = self.payload.to_string();
        spec.priority = self.priority.unwrap_or_default();
        spec.max_retries = self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        if let Some(missed) = self.missed {
            spec.missed = missed;
        }
        spec
    }
}

/// A queue's schedules, by name, each with its next tick and its last
/// job's state. A queue without schedules (or never used) has an empty
/// list.
#[utoipa::path(get, path = "/v1/queues/{queue}/schedules", tag = "schedules",
    params(QueuePath),
    responses(
        (status = 200, description = "The schedules", body = Vec<ScheduleView>),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn list(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    Ok(Json(state.run(state.admin.schedules(&queue)).await?))
}

/// One schedule, with its next tick and its last job's state.
#[utoipa::path(get, path = "/v1/queues/{queue}/schedules/{name}", tag = "schedules",
    params(SchedulePath),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 400, description = "A bad queue or schedule name", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn show(
    state: St,
    Path(SchedulePath { queue, name }): Path<SchedulePath>,
) -> Result<Json<ScheduleView>, ApiError> {
    Ok(Json(state.run(state.admin.schedule(&queue, &name)).await?))
}

/// Adds a schedule, or replaces the one of that name (201 when added, 200
/// when replaced). Its first tick is the first after the server's now;
/// replacing it with the same recurrence keeps its next tick and its
/// pause. A queue nobody has used yet may get schedules ahead of its
/// first job.
#[utoipa::path(put, path = "/v1/queues/{queue}/schedules/{name}", tag = "schedules",
    params(SchedulePath), request_body = ScheduleRequest,
    responses(
        (status = 200, description = "Replaced", body = ScheduleView),
        (status = 201, description = "Added", body = ScheduleView),
        (status = 400, description = "A bad name, cron expression, time zone, interval or field", body = ErrorBody),
        (status = 413, description = "The body or payload is too large", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn upsert(
    state: St,
    Path(SchedulePath { queue, name }): Path<SchedulePath>,
    JsonBody(body): JsonBody<ScheduleRequest>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    let spec = body.into_spec(name);
    spec.check()?;
    let done = state
        .run(state.admin.upsert_schedule(&queue, &spec))
        .await?;
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(done.schedule)))
}

/// Removes a schedule: no tick fires after this answers; the jobs it
/// enqueued stay.
#[utoipa::path(delete, path = "/v1/queues/{queue}/schedules/{name}", tag = "schedules",
    params(SchedulePath),
    responses(
        (status = 200, description = "Removed", body = ScheduleRemoved),
        (status = 400, description = "A bad queue or schedule name", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn remove(
    state: St,
    Path(SchedulePath { queue, name }): Path<SchedulePath>,
) -> Result<Json<ScheduleRemoved>, ApiError> {
    Ok(Json(
        state
            .run(state.admin.remove_schedule(&queue, &name))
            .await?,
    ))
}

/// Pauses a schedule: it fires no tick until resumed. Pausing a paused
/// schedule is fine.
#[utoipa::path(post, path = "/v1/queues/{queue}/schedules/{name}/pause", tag = "schedules",
    params(SchedulePath),
    responses(
        (status = 200, description = "Paused", body = ScheduleView),
        (status = 400, description = "A bad queue or schedule name", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn pause(
    state: St,
    Path(SchedulePath { queue, name }): Path<SchedulePath>,
) -> Result<Json<ScheduleView>, ApiError> {
    Ok(Json(
        state.run(state.admin.pause_schedule(&queue, &name)).await?,
    ))
}

/// Resumes a schedule from its first tick after now (the ticks of the
/// pause do not run). Resuming one that is not paused is fine.
#[utoipa::path(post, path = "/v1/queues/{queue}/schedules/{name}/resume", tag = "schedules",
    params(SchedulePath),
    responses(
        (status = 200, description = "Resumed", body = ScheduleView),
        (status = 400, description = "A bad queue or schedule name", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn resume(
    state: St,
    Path(SchedulePath { queue, name }): Path<SchedulePath>,
) -> Result<Json<ScheduleView>, ApiError> {
    Ok(Json(
        state
            .run(state.admin.resume_schedule(&queue, &name))
            .await?,
    ))
}

/// Enqueues the schedule's job now, outside its cadence (its next tick
/// stays; a paused schedule can be triggered); answers with the job's id.
#[utoipa::path(post, path = "/v1/queues/{queue}/schedules/{name}/trigger", tag = "schedules",
    params(SchedulePath),
    responses(
        (status = 201, description = "Enqueued", body = ScheduleTriggered),
        (status = 400, description = "A bad queue or schedule name", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 429, description = "The queue is full (its max depth)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn trigger(
    state: St,
    Path(SchedulePath { queue, name }): Path<SchedulePath>,
) -> Result<(StatusCode, Json<ScheduleTriggered>), ApiError> {
    let done = state
        .run(state.admin.trigger_schedule(&queue, &name))
        .await?;
    Ok((StatusCode::CREATED, Json(done)))
}
