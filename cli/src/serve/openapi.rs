//! The OpenAPI document, generated from the handlers' annotations and the
//! types they take and return. `cli/openapi.json` holds a copy, checked
//! against this by a test (regenerate it with `ferry openapi >
//! cli/openapi.json`).

use std::sync::{Arc, LazyLock};

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::routes::{batches, dead, events, flows, jobs, queues, schedules, settings, system};
use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ferry",
        description = "Ferry's HTTP API: enqueue jobs, follow them by id, and operate the queues (stats, dead letters, pause and resume, schedules, workers). Errors are `{\"error\": {\"code\", \"message\"}}` with a stable code. With tokens configured, send `Authorization: Bearer <token>`: the write token allows everything, the read token allows GET.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&Bearer),
    tags(
        (name = "jobs", description = "Jobs by id"),
        (name = "queues", description = "Queues, stats, settings, pause and resume, workers, lifecycle events"),
        (name = "schedules", description = "Cron and periodic schedules: jobs enqueued on a cadence, fired by the workers once per tick"),
        (name = "batches", description = "Batches: jobs enqueued together under an id, with callbacks enqueued when they are done"),
        (name = "dead letters", description = "Jobs that failed for good"),
        (name = "server", description = "Health, metrics, and what a token allows"),
    )
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes (without state) and the OpenAPI document describing
/// them.
pub fn router_and_document() -> (axum::Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::healthz))
        .routes(routes!(system::access))
        .routes(routes!(super::metrics::metrics))
        .routes(routes!(queues::list))
        .routes(routes!(queues::show))
        .routes(routes!(queues::stats))
        .routes(routes!(queues::streams))
        .routes(routes!(queues::pause))
        .routes(routes!(queues::resume))
        .routes(routes!(queues::workers))
        .routes(routes!(queues::queue_workers))
        .routes(routes!(settings::show, settings::change))
        .routes(routes!(settings::clear_results))
        .routes(routes!(settings::concurrency))
        .routes(routes!(settings::set_limit))
        .routes(routes!(settings::rate_limits))
        .routes(routes!(settings::set_rate_limit))
        .routes(routes!(schedules::list))
        .routes(routes!(
            schedules::show,
            schedules::upsert,
            schedules::remove
        ))
        .routes(routes!(schedules::pause))
        .routes(routes!(schedules::resume))
        .routes(routes!(schedules::trigger))
        .routes(routes!(events::page))
        .routes(routes!(events::stream))
        .routes(routes!(jobs::enqueue, jobs::list))
        .routes(routes!(jobs::enqueue_batch))
        .routes(routes!(flows::enqueue_flow))
        .routes(routes!(flows::show_flow))
        .routes(routes!(batches::create, batches::list))
        .routes(routes!(batches::show))
        .routes(routes!(batches::add, batches::jobs))
        .routes(routes!(jobs::show))
        .routes(routes!(jobs::wait))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::reprioritise))
        .routes(routes!(jobs::retry))
        .routes(routes!(dead::list, dead::purge))
        .routes(routes!(dead::groups))
        .routes(routes!(dead::show))
        .routes(routes!(dead::replay_one))
        .routes(routes!(dead::replay_matching))
        .split_for_parts()
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let (_, doc) = router_and_document();
    doc.to_pretty_json().unwrap_or_else(|e| {
        format!("{{\"error\": \"the OpenAPI document does not serialise: {e}\"}}")
    })
});

/// The document as pretty JSON (made once).
pub fn document_json() -> String {
    DOCUMENT.clone()
}
