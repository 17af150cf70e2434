//! Flows: a job and the jobs it waits for, enqueued as one tree in one
//! atomic step, and shown as one graph.

use axum::http::StatusCode;
use axum::Json;
use ferry_broker::FlowGraph;
use serde_json::value::RawValue;

use super::jobs::QueuePath;
use super::St;
use crate::flows::{parse_flow, FlowEnqueued, FlowJobRequest};
use crate::serve::extract::{JsonBody, Path};
use crate::serve::problem::{codes, ApiError, ErrorBody};

/// Enqueues a flow: the job of the body and its `children` (each of the
/// same shape, with theirs), all or none. Children are written first; a
/// parent waits (state `waiting`, its status's `depends_on` naming them)
/// until its children (and its `depends_on`) have finished as its
/// `on_child_failure` says; leaves are queued at once. Answers with every
/// job's id and how many jobs it waits for, in the tree's shape.
///
/// At most 100 levels and 10,000 jobs; the body is read a job at a time,
/// so a deeper tree is a 400 at the first job past the limit.
#[utoipa::path(post, path = "/v1/queues/{queue}/flows", tag = "jobs",
    params(QueuePath), request_body = FlowJobRequest,
    responses(
        (status = 201, description = "Enqueued: each job's id and `waiting_for` (0: it is queued), in the tree's shape", body = FlowEnqueued),
        (status = 400, description = "A field is missing or wrong (named by its path, e.g. `children[1].priority`), or the tree is over 100 levels or 10,000 jobs; nothing was written", body = ErrorBody),
        (status = 409, description = "An id of the flow exists in the queue (`duplicate_job`); nothing was written", body = ErrorBody),
        (status = 413, description = "The body or a payload is too large", body = ErrorBody),
        (status = 422, description = "A `depends_on` cannot be waited for (`bad_dependency`): no such job, or it failed and the job's `on_child_failure` is `fail`; nothing was written", body = ErrorBody),
        (status = 429, description = "The queue is full (its max depth)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn enqueue_flow(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    JsonBody(body): JsonBody<Box<RawValue>>,
) -> Result<(StatusCode, Json<FlowEnqueued>), ApiError> {
    let root = parse_flow(body.get())?;
    let done = state.run(state.admin.enqueue_flow(&queue, &root)).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// A flow's root in a path.
#[derive(Clone, Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FlowPath {
    /// The queue's name.
    #[param(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub queue: String,
    /// The id of the flow's root job (any job's status names its flow's
    /// root as `flow`).
    pub root: String,
}

/// A flow: every job of the tree, parents before their children (depth
/// first), each with its parent, depth, state, type and what it waits for.
#[utoipa::path(get, path = "/v1/queues/{queue}/flows/{root}", tag = "jobs",
    params(FlowPath),
    responses(
        (status = 200, description = "The flow's jobs, parents first", body = FlowGraph),
        (status = 400, description = "A bad queue name", body = ErrorBody),
        (status = 404, description = "No flow with this root (`flow_not_found`): never enqueued, or expired", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn show_flow(
    state: St,
    Path(FlowPath { queue, root }): Path<FlowPath>,
) -> Result<Json<FlowGraph>, ApiError> {
    match state.run(state.admin.flow(&queue, &root)).await? {
        Some(graph) => Ok(Json(graph)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::FLOW_NOT_FOUND,
            format!("queue {queue}: no flow with root {root}"),
        )),
    }
}
