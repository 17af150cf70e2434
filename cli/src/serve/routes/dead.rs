//! Dead letters: list (filtered, paged), grouped by error, show, replay
//! (one, or every match), purge.

use axum::Json;
use ferry_broker::DeadFilter;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::jobs::QueuePath;
use super::{existing, St};
use crate::serve::extract::{JsonBody, Path, Query};
use crate::serve::problem::{ApiError, ErrorBody};
use crate::{DeadGroups, DeadListing, DeadView, Purged, Replayed};

/// The most letters one page returns.
const MAX_LIMIT: usize = 1_000;

/// A dead letter in a path.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct LetterPath {
    /// The queue's name.
    #[param(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub queue: String,
    /// The dead letter's entry id, or its job's id.
    pub id: String,
}

/// Which letters, and which page.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only letters of this job type.
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    /// Only letters whose error contains this text (any case).
    pub error: Option<String>,
    /// Start after this entry id (the `next` of the page before).
    #[param(pattern = "^[0-9]{1,20}-[0-9]{1,20}$")]
    pub after: Option<String>,
    /// Letters per page (default 50, at most 1,000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Which letters to group.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupQuery {
    /// Only letters of this job type.
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    /// Only letters whose error contains this text (any case).
    pub error: Option<String>,
}

/// Which letters to replay: those matching a filter, or all of them.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Only letters of this job type.
    #[serde(rename = "type", default)]
    pub job_type: Option<String>,
    /// Only letters whose error contains this text (any case).
    #[serde(default)]
    pub error: Option<String>,
    /// Every letter; needed when no filter is given.
    #[serde(default)]
    pub all: bool,
}

fn filter(job_type: Option<String>, error: Option<String>) -> DeadFilter {
    DeadFilter {
        job_type: job_type.filter(|t| !t.is_empty()),
        error: error.filter(|e| !e.is_empty()),
    }
}

/// A page of dead letters, oldest first.
#[utoipa::path(get, path = "/v1/queues/{queue}/dead", tag = "dead letters",
    params(QueuePath, ListQuery),
    responses(
        (status = 200, description = "A page of letters; `next` continues", body = DeadListing),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn list(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(q): Query<ListQuery>,
) -> Result<Json<DeadListing>, ApiError> {
    existing(&state, &queue).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let f = filter(q.job_type, q.error);
    Ok(Json(
        state
            .run(state.admin.dead_list(&queue, &f, q.after.as_deref(), limit))
            .await?,
    ))
}

/// The dead letters grouped by error, the largest group first.
#[utoipa::path(get, path = "/v1/queues/{queue}/dead/groups", tag = "dead letters",
    params(QueuePath, GroupQuery),
    responses(
        (status = 200, description = "The groups", body = DeadGroups),
        (status = 400, description = "A bad queue name or parameter", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn groups(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(q): Query<GroupQuery>,
) -> Result<Json<DeadGroups>, ApiError> {
    existing(&state, &queue).await?;
    let f = filter(q.job_type, q.error);
    Ok(Json(
        state.run(state.admin.dead_groups(&queue, &f, None)).await?,
    ))
}

/// One dead letter, by its entry id or its job's id.
#[utoipa::path(get, path = "/v1/queues/{queue}/dead/{id}", tag = "dead letters",
    params(LetterPath),
    responses(
        (status = 200, description = "The letter", body = DeadView),
        (status = 400, description = "A bad queue name or parameter", body = ErrorBody),
        (status = 404, description = "No such letter", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn show(
    state: St,
    Path(LetterPath { queue, id }): Path<LetterPath>,
) -> Result<Json<DeadView>, ApiError> {
    Ok(Json(state.run(state.admin.dead_show(&queue, &id)).await?))
}

/// Replays one dead letter: its job goes back to its stream as attempt 1,
/// keeping its id.
#[utoipa::path(post, path = "/v1/queues/{queue}/dead/{id}/replay", tag = "dead letters",
    params(LetterPath),
    responses(
        (status = 200, description = "Replayed", body = Replayed),
        (status = 400, description = "A bad queue name or parameter", body = ErrorBody),
        (status = 404, description = "No such letter", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn replay_one(
    state: St,
    Path(LetterPath { queue, id }): Path<LetterPath>,
) -> Result<Json<Replayed>, ApiError> {
    Ok(Json(state.run(state.admin.dead_replay(&queue, &id)).await?))
}

/// Replays every dead letter matching a filter, or all with `"all": true`.
#[utoipa::path(post, path = "/v1/queues/{queue}/dead/replay", tag = "dead letters",
    params(QueuePath), request_body = ReplayRequest,
    responses(
        (status = 200, description = "Replayed", body = Replayed),
        (status = 400, description = "Neither a filter nor all", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn replay_matching(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    JsonBody(body): JsonBody<ReplayRequest>,
) -> Result<Json<Replayed>, ApiError> {
    let f = filter(body.job_type, body.error);
    if f.job_type.is_none() && f.error.is_none() && !body.all {
        return Err(ApiError::bad_request(
            "give `type` or `error` to choose letters, or `\"all\": true` to replay every one",
        ));
    }
    Ok(Json(
        state
            .run(state.admin.dead_replay_matching(&queue, &f))
            .await?,
    ))
}

/// Deletes every dead letter of the queue.
#[utoipa::path(delete, path = "/v1/queues/{queue}/dead", tag = "dead letters",
    params(QueuePath),
    responses(
        (status = 200, description = "Purged", body = Purged),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn purge(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<Purged>, ApiError> {
    Ok(Json(state.run(state.admin.dead_purge(&queue)).await?))
}
