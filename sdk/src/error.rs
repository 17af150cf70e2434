//! SDK error types.

use std::fmt;

pub use ferry_broker::ConfigError;

/// An error from the client or the worker runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid input or configuration; nothing was sent to Redis. Fix the call.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Redis could not be reached, timed out, or refused the command. Nothing
    /// is known to have been written: retry the call when Redis is back.
    #[error("redis unavailable or refused the command: {0}")]
    Redis(#[from] redis::RedisError),
    /// The job could not be serialized to JSON. Fix the job type's Serialize impl.
    #[error("could not serialize the job: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Redis answered with something unexpected: a bug, or another program
    /// writing Ferry's keys. Report it with the message.
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
}

impl From<ferry_broker::Error> for Error {
    fn from(e: ferry_broker::Error) -> Self {
        match e {
            ferry_broker::Error::Config(c) => Error::Config(c),
            ferry_broker::Error::Redis(r) => Error::Redis(r),
            ferry_broker::Error::Encode(j) => Error::Serialize(j),
            ferry_broker::Error::Protocol(p) => Error::Protocol(p),
            other => Error::Protocol(other.to_string()),
        }
    }
}

impl Error {
    /// True when the error came from the connection (outage, timeout): the
    /// same call may succeed later.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::Redis(e) => ferry_broker::error::is_connection_failure(e),
            _ => false,
        }
    }
}

/// A shorthand for SDK results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a handler returns when a job fails: retry it later, or give up.
///
/// `?` on any `std::error::Error` gives a retryable error. Use
/// [`JobError::permanent`] for failures a retry cannot fix (bad input): the
/// job goes straight to the dead-letter stream.
#[derive(Debug)]
pub struct JobError {
    message: String,
    permanent: bool,
}

impl JobError {
    /// A failure worth retrying (with backoff, up to the job's `max_retries`).
    pub fn retry(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            permanent: false,
        }
    }

    /// A failure no retry can fix: the job is dead-lettered at once.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            permanent: true,
        }
    }

    /// True for [`JobError::permanent`].
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The error text, as recorded in `last_error` or the dead-letter `error` field.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for JobError {
    fn from(e: E) -> Self {
        JobError::retry(e)
    }
}
