//! The server itself: health, the OpenAPI document, unknown routes.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::St;
use crate::serve::problem::{codes, ApiError, ErrorBody};

/// The answer of `/healthz`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when Redis does not answer.
    pub status: String,
    /// `host:port` of the Redis behind the server.
    pub redis: String,
}

/// Health: 200 while Redis answers a PING within the request timeout,
/// 503 otherwise. Needs no token.
#[utoipa::path(get, path = "/healthz", tag = "server",
    responses(
        (status = 200, description = "Redis answers", body = Health),
        (status = 503, description = "Redis does not answer", body = ErrorBody),
    ))]
pub async fn healthz(state: St) -> Result<Json<Health>, ApiError> {
    state.run(state.admin.ping()).await?;
    Ok(Json(Health {
        status: "ok".into(),
        redis: state.admin.host().to_owned(),
    }))
}

/// What the caller may do here (the dashboard reads it to offer or hide
/// its actions).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Access {
    /// True when this caller's requests may change things.
    pub write: bool,
    /// True when the server refuses every change (`--read-only`).
    pub read_only: bool,
    /// True when the server needs a token.
    pub token_required: bool,
}

/// What the caller's token (or none) allows.
#[utoipa::path(get, path = "/v1/access", tag = "server",
    responses(
        (status = 200, description = "What this caller may do", body = Access),
        (status = 401, description = "A token is needed", body = ErrorBody),
        (status = 403, description = "A token this server does not know", body = ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn access(state: St, headers: axum::http::HeaderMap) -> Json<Access> {
    let tokens = &state.tokens;
    Json(Access {
        write: tokens
            .check(
                &axum::http::Method::POST,
                crate::serve::auth::bearer_of(&headers),
            )
            .is_ok(),
        read_only: tokens.read_only,
        token_required: tokens.required(),
    })
}

/// The OpenAPI document of this API (3.1, JSON). Needs no token.
pub async fn openapi_document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::serve::openapi::document_json(),
    )
        .into_response()
}

/// A route the API has, with a method it does not take.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}: see /openapi.json", uri.path()),
    )
}

/// Any route the API does not have.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!("no route {}: see /openapi.json", uri.path()),
    )
}
