//! A queue's lifecycle events: a page of those kept, or a stream of those
//! to come as server-sent events.

use std::convert::Infallible;

use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as Sse_, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use super::jobs::QueuePath;
use super::{existing, St};
use crate::events::{check_position, EventPage, EventView};
use crate::serve::extract::{Path, Query};
use crate::serve::problem::{codes, ApiError, ErrorBody};

/// Where a page of events starts, and its size.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Events after this entry id (`ms-seq`); `0`, the default, for the
    /// oldest kept.
    #[param(pattern = "^(0|[1-9][0-9]{0,19})(-(0|[1-9][0-9]{0,19}))?$")]
    pub after: Option<String>,
    /// Most events (1 to 1,000; 100 by default).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Where an event stream starts.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Events after this entry id (`ms-seq`; `0` for every event kept);
    /// by default those to come. A `Last-Event-ID` header (sent by a
    /// reconnecting EventSource) takes precedence.
    #[param(pattern = "^(0|[1-9][0-9]{0,19})(-(0|[1-9][0-9]{0,19}))?$")]
    pub after: Option<String>,
}

/// One server-sent event of an event stream, as a client's SSE parser
/// reads it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ServerSentEvent {
    /// The event's entry id in the events stream (send it back as
    /// `Last-Event-ID`); absent on an `error` event.
    pub id: Option<String>,
    /// enqueued, started, progress, retrying, succeeded, dead, cancelled,
    /// recovered, or `error` (then the stream ends).
    pub event: Option<String>,
    /// The event as JSON text (an EventView), or the error's message.
    pub data: String,
}

/// A page of a queue's lifecycle events, oldest first, without waiting
/// (events are kept only while the queue's `events` setting is on; see
/// `/v1/queues/{queue}/settings`). Read on from `next`.
#[utoipa::path(get, path = "/v1/queues/{queue}/events", tag = "queues",
    params(QueuePath, EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "A bad queue name, position or limit", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn page(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let after = q.after.unwrap_or_else(|| "0".to_owned());
    check_position(&after)?;
    existing(&state, &queue).await?;
    let limit = q.limit.unwrap_or(100);
    Ok(Json(
        state.run(state.admin.events(&queue, &after, limit)).await?,
    ))
}

/// A queue's lifecycle events as they happen, as server-sent events
/// (`text/event-stream`): each has `id` (its entry id), `event` (enqueued,
/// started, progress, retrying, succeeded, dead, cancelled, recovered) and
/// `data` (the event as JSON, an EventView). The server ends the stream
/// after its longest wait (`ferry serve --max-wait`, 60 s by default) or
/// at a Redis error (an `error` event says which); an EventSource then
/// reconnects with `Last-Event-ID` and misses nothing the stream still
/// keeps. Blocks in Redis (XREAD BLOCK): nothing polls.
#[utoipa::path(get, path = "/v1/queues/{queue}/events/stream", tag = "queues",
    params(QueuePath, StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event's entry id (ms-seq)", pattern = "^(0|[1-9][0-9]{0,19})(-(0|[1-9][0-9]{0,19}))?$")),
    responses(
        (status = 200, description = "The events, as they come", content_type = "text/event-stream", body = ServerSentEvent),
        (status = 400, description = "A bad queue name or position", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 429, description = "The server serves as many event streams as it can", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn stream(
    state: St,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Sse_, Infallible>>>, ApiError> {
    let after = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("Last-Event-ID is not text"))?
                .to_owned(),
        ),
        None => q.after,
    };
    if let Some(a) = &after {
        check_position(a)?;
    }
    existing(&state, &queue).await?;
    let permit = state
        .event_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::TOO_MANY_STREAMS,
                format!(
                    "this server serves at most {} event streams at once; try again later",
                    crate::serve::MAX_EVENT_STREAMS
                ),
            )
            .retry_after(5)
        })?;
    let subscription = state
        .run(state.admin.subscribe(&queue, after.as_deref()))
        .await?;
    let deadline = tokio::time::Instant::now() + state.limits.max_wait;
    let events = futures::stream::unfold(Some((subscription, permit)), move |open| async move {
        let (mut sub, permit) = open?;
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Ok(e)) => Some((Ok(sse_event(EventView::from(e))), Some((sub, permit)))),
            Ok(Err(e)) => Some((
                Ok(Sse_::default()
                    .event("error")
                    .data(format!("reading the events failed: {e}"))),
                None,
            )),
            Err(_) => None,
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One event as an SSE message. Its name and id are the stream's, cleaned
/// of what SSE cannot carry (a line break: a name a stranger wrote into
/// the stream must not break the framing, nor panic).
fn sse_event(e: EventView) -> Sse_ {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '\n' | '\r' | '\0'))
            .collect()
    };
    let data = serde_json::to_string(&e).unwrap_or_else(|_| "{}".to_owned());
    let mut out = Sse_::default().id(clean(&e.entry_id)).data(data);
    let name = clean(&e.event);
    if !name.is_empty() {
        out = out.event(name);
    }
    out
}
