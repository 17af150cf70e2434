//! The API's errors: an HTTP status, a stable code and one line for a
//! person, as `{"error": {"code": ..., "message": ...}}`.
//!
//! The codes are a contract (clients branch on them); the messages are not.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

/// An error the API answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code (see [`codes`]).
    pub code: &'static str,
    /// One line for a person.
    pub message: String,
    /// Seconds after which a retry may succeed (the `Retry-After` header).
    pub retry_after: Option<u64>,
}

/// The stable error codes, with the status each comes with.
pub mod codes {
    /// 400: the body, a path or a query parameter is not what the route takes.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// 400: the queue name is not 1 to 128 characters of `[A-Za-z0-9._-]`.
    pub const INVALID_QUEUE_NAME: &str = "invalid_queue_name";
    /// 401: no bearer token, where the server has tokens.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 403: a token the server does not know, or a read-only token on a change.
    pub const FORBIDDEN: &str = "forbidden";
    /// 404: no such route.
    pub const NOT_FOUND: &str = "not_found";
    /// 404: the queue has no keys in Redis.
    pub const QUEUE_NOT_FOUND: &str = "queue_not_found";
    /// 404: the queue has no such job (or its record is no longer kept).
    pub const JOB_NOT_FOUND: &str = "job_not_found";
    /// 404: the queue has no such dead letter.
    pub const DEAD_LETTER_NOT_FOUND: &str = "dead_letter_not_found";
    /// 404: the queue has no schedule of this name.
    pub const SCHEDULE_NOT_FOUND: &str = "schedule_not_found";
    /// 404: the queue has no such batch (never created, or expired).
    pub const BATCH_NOT_FOUND: &str = "batch_not_found";
    /// 404: the queue has no flow with this root (never enqueued, or expired).
    pub const FLOW_NOT_FOUND: &str = "flow_not_found";
    /// 405: the route does not take this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 409: the queue has a job with this id already.
    pub const DUPLICATE_JOB: &str = "duplicate_job";
    /// 409: a job holds the unique key of an enqueue asked to fail on a
    /// duplicate (`unique.error_on_duplicate`); nothing was written.
    pub const UNIQUE_KEY_HELD: &str = "unique_key_held";
    /// 409: the queue has a batch with this id already; nothing was written.
    pub const BATCH_EXISTS: &str = "batch_exists";
    /// 409: every job of the batch has finished: it takes no more; nothing
    /// was written.
    pub const BATCH_CLOSED: &str = "batch_closed";
    /// 409: the job's state does not allow the change (cancel a finished
    /// job, re-prioritise a running one, retry a job that is not dead).
    pub const CONFLICT: &str = "invalid_state";
    /// 413: the body is larger than the server takes.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// 413: the batch has more jobs than the server takes.
    pub const BATCH_TOO_LARGE: &str = "batch_too_large";
    /// 422: a dependency (`depends_on`) of the job cannot be waited for: it
    /// is the job itself, no such job exists, or it failed and the job's
    /// `on_dependency_failure` is `fail`; nothing was written.
    pub const BAD_DEPENDENCY: &str = "bad_dependency";
    /// 429: the queue is at its maximum depth.
    pub const QUEUE_FULL: &str = "queue_full";
    /// 429: the server holds as many event streams as it serves at once.
    pub const TOO_MANY_STREAMS: &str = "too_many_streams";
    /// 500: anything else (logged by the server).
    pub const INTERNAL: &str = "internal";
    /// 503: Redis did not answer in time, refused the connection, is out of
    /// memory or a read-only replica; retry after `Retry-After`.
    pub const REDIS_UNAVAILABLE: &str = "redis_unavailable";
    /// 503: Redis refused the credentials or a command (its ACL).
    pub const REDIS_REFUSED: &str = "redis_refused";
}

/// The body of every error.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code, e.g. `job_not_found`.
    pub code: String,
    /// One line for a person.
    pub message: String,
}

impl ApiError {
    /// An error of `status` and `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, message)
    }

    /// 503 `redis_unavailable`, retry after a second.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::REDIS_UNAVAILABLE,
            message,
        )
        .retry_after(1)
    }

    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// True for the errors that mean Redis could not serve the request.
    pub fn is_redis_failure(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE || self.status.is_server_error()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        match e {
            Error::JobNotFound { .. } => Self::new(S::NOT_FOUND, codes::JOB_NOT_FOUND, message),
            Error::DeadLetterNotFound { .. } => {
                Self::new(S::NOT_FOUND, codes::DEAD_LETTER_NOT_FOUND, message)
            }
            Error::ScheduleNotFound { .. } => {
                Self::new(S::NOT_FOUND, codes::SCHEDULE_NOT_FOUND, message)
            }
            Error::FlowNotFound { .. } => Self::new(S::NOT_FOUND, codes::FLOW_NOT_FOUND, message),
            Error::NotRetryable { .. } => Self::new(S::CONFLICT, codes::CONFLICT, message),
            Error::DuplicateUnique { .. } => {
                Self::new(S::CONFLICT, codes::UNIQUE_KEY_HELD, message)
            }
            Error::BadDependency { .. } => {
                Self::new(S::UNPROCESSABLE_ENTITY, codes::BAD_DEPENDENCY, message)
            }
            Error::Unreachable { .. } => Self::unavailable(message),
            Error::Input(_) | Error::Usage(_) => Self::bad_request(message),
            // A wait's timeout is not an error of the API (the wait route
            // answers with the job's status); should one reach here, it is
            // the server's own deadline.
            Error::WaitTimeout { .. } => Self::unavailable(message),
            Error::Ferry(inner) => Self::from_sdk(inner, message),
        }
    }
}

impl ApiError {
    fn from_sdk(e: ferry_queue::Error, message: String) -> Self {
        use ferry_broker::ConfigError as C;
        use ferry_queue::Error as E;
        use StatusCode as S;
        match e {
            E::Config(C::InvalidQueueName(_)) => {
                Self::new(S::BAD_REQUEST, codes::INVALID_QUEUE_NAME, message)
            }
            E::Config(C::PayloadTooLarge { .. }) => {
                Self::new(S::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE, message)
            }
            E::Config(_) | E::Serialize(_) => Self::bad_request(message),
            E::DuplicateJob { .. } => Self::new(S::CONFLICT, codes::DUPLICATE_JOB, message),
            E::BatchExists { .. } => Self::new(S::CONFLICT, codes::BATCH_EXISTS, message),
            E::BatchClosed { .. } => Self::new(S::CONFLICT, codes::BATCH_CLOSED, message),
            E::BatchNotFound { .. } => Self::new(S::NOT_FOUND, codes::BATCH_NOT_FOUND, message),
            E::BadDependency { .. } => {
                Self::new(S::UNPROCESSABLE_ENTITY, codes::BAD_DEPENDENCY, message)
            }
            E::QueueFull { .. } => {
                Self::new(S::TOO_MANY_REQUESTS, codes::QUEUE_FULL, message).retry_after(1)
            }
            E::JobNotFound { .. } => Self::new(S::NOT_FOUND, codes::JOB_NOT_FOUND, message),
            E::DeadLetterNotFound { .. } => {
                Self::new(S::NOT_FOUND, codes::DEAD_LETTER_NOT_FOUND, message)
            }
            E::NotCancellable { .. } | E::NotWaiting { .. } => {
                Self::new(S::CONFLICT, codes::CONFLICT, message)
            }
            E::OutOfMemory { .. } | E::ReadOnly { .. } | E::PartialBatch { .. } => {
                Self::unavailable(message)
            }
            E::Redis(ref r) if ferry_broker::error::is_connection_failure(r) => {
                Self::unavailable(message)
            }
            E::AuthFailed { .. }
            | E::AuthRequired { .. }
            | E::CommandRefused { .. }
            | E::EvictionPolicy { .. } => {
                Self::new(S::SERVICE_UNAVAILABLE, codes::REDIS_REFUSED, message)
            }
            _ => Self::new(S::INTERNAL_SERVER_ERROR, codes::INTERNAL, message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, status = %self.status, "{}", self.message);
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ferry\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_the_operations_map_to_statuses_and_codes() {
        let e: ApiError = Error::JobNotFound {
            queue: "q".into(),
            id: "x".into(),
        }
        .into();
        assert_eq!((e.status, e.code), (StatusCode::NOT_FOUND, "job_not_found"));
        let e: ApiError = Error::Unreachable {
            host: "h:1".into(),
            reason: "refused".into(),
        }
        .into();
        assert_eq!(
            (e.status, e.code, e.retry_after),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "redis_unavailable",
                Some(1)
            )
        );
        let e: ApiError = Error::Ferry(ferry_queue::Error::QueueFull {
            queue: "q".into(),
            depth: 3,
            max_depth: 3,
        })
        .into();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::TOO_MANY_REQUESTS, "queue_full")
        );
        let e: ApiError = Error::from_sdk(
            ferry_queue::Error::BadDependency {
                queue: "q".into(),
                job: "j".into(),
                dependency: "nobody".into(),
                reason: "does not exist".into(),
            },
            "h:1",
        )
        .into();
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_dependency",
                "dependency nobody does not exist; nothing enqueued to queue q"
            )
        );
    }
}
