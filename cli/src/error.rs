//! What can go wrong, and what kind of failure each is: the command line
//! turns the kind into its exit code, an HTTP API would turn it into a
//! status.

use std::time::Duration;

use ferry_queue::JobState;

/// A shorthand for results of the operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind of a failure, for exit codes (and HTTP statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The operation failed (Redis unreachable, a refused change, bad input
    /// data): exit code 1.
    Failed,
    /// A wait ended before the job finished: exit code 2.
    Timeout,
    /// No such job, dead letter, schedule, batch or flow: exit code 3.
    NotFound,
    /// A unique enqueue found a job holding its key, and was asked to
    /// fail then (`--error-on-duplicate`): exit code 4.
    Duplicate,
    /// The command line is incomplete or wrong (clap's own errors, or a
    /// destructive command without its confirmation): exit code 64.
    Usage,
}

impl ErrorKind {
    /// The `ferry` command's exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::Timeout => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::Duplicate => 4,
            ErrorKind::Usage => 64,
        }
    }
}

/// An error of an operation. Its `Display` is one line, meant for an
/// operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The queue has no job with this id (never enqueued there, or
    /// finished and its record no longer kept).
    #[error("job not found: {id} in queue {queue}")]
    JobNotFound {
        /// The queue.
        queue: String,
        /// The job id asked for.
        id: String,
    },
    /// The queue has no dead letter with this entry id or job id.
    #[error("dead letter not found: {id} in queue {queue}")]
    DeadLetterNotFound {
        /// The queue.
        queue: String,
        /// The entry or job id asked for.
        id: String,
    },
    /// The queue has no flow with this root (never enqueued, or its shape
    /// expired after its retention).
    #[error("flow not found: no flow with root {root} in queue {queue}")]
    FlowNotFound {
        /// The queue.
        queue: String,
        /// The root's id.
        root: String,
    },
    /// The queue has no schedule of this name.
    #[error("schedule not found: {name} in queue {queue}")]
    ScheduleNotFound {
        /// The queue.
        queue: String,
        /// The schedule's name.
        name: String,
    },
    /// The job did not finish within the wait; it is left alone.
    #[error("job {id} did not finish within {}s: it is {state}", timeout.as_secs_f64())]
    WaitTimeout {
        /// The job id.
        id: String,
        /// How long the wait lasted.
        timeout: Duration,
        /// The job's state when the wait ended.
        state: JobState,
    },
    /// Only dead jobs can be retried (see [`Admin::retry`](crate::Admin::retry)).
    #[error("job {id} is {state}: only a dead job can be retried{}", retry_hint(*state))]
    NotRetryable {
        /// The job id.
        id: String,
        /// Its state.
        state: JobState,
    },
    /// A unique enqueue asked to fail on a duplicate found a job holding
    /// its key; nothing new was written (a debounced job's payload was
    /// replaced and its delay restarted, as for any duplicate of it).
    #[error("queue {queue} has a job holding unique key {key:?}: {id}{}", if *debounced { " (debounced: its payload replaced, its delay restarted)" } else { "; nothing enqueued" })]
    DuplicateUnique {
        /// The queue.
        queue: String,
        /// The uniqueness key.
        key: String,
        /// The id of the job that holds it.
        id: String,
        /// True when the holder was a waiting debounced job.
        debounced: bool,
    },
    /// A dependency of a job enqueued after others cannot be waited for: it
    /// is the job itself, no such job exists (never enqueued, or finished
    /// with its record no longer kept), or it failed and the job's policy
    /// is to fail with it. Nothing was written.
    #[error("dependency {dependency} {reason}; nothing enqueued to queue {queue}")]
    BadDependency {
        /// The queue.
        queue: String,
        /// The id the job would have had.
        job: String,
        /// The dependency at fault.
        dependency: String,
        /// Why, in words.
        reason: String,
    },
    /// Redis did not answer: refused, timed out, or the connection dropped.
    #[error("cannot reach redis at {host}: {reason}")]
    Unreachable {
        /// `host:port` (never the password).
        host: String,
        /// What failed.
        reason: String,
    },
    /// Input the operation cannot use (a payload that is not JSON, a file
    /// that cannot be read); nothing was sent.
    #[error("{0}")]
    Input(String),
    /// The command needs more from its caller (a confirmation); nothing
    /// was done.
    #[error("{0}")]
    Usage(String),
    /// Any other error of the SDK or the broker (a refused change, a bad
    /// queue name, credentials, ...).
    #[error(transparent)]
    Ferry(ferry_queue::Error),
}

/// What to do instead of retrying a job in `state`.
fn retry_hint(state: JobState) -> &'static str {
    match state {
        JobState::Retrying => " (it will run again when its backoff ends)",
        JobState::Succeeded | JobState::Cancelled => {
            " (a finished job's payload is not kept: enqueue it again)"
        }
        _ => " (it has not failed for good)",
    }
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::JobNotFound { .. }
            | Error::DeadLetterNotFound { .. }
            | Error::ScheduleNotFound { .. }
            | Error::FlowNotFound { .. }
            | Error::Ferry(ferry_queue::Error::BatchNotFound { .. }) => ErrorKind::NotFound,
            Error::WaitTimeout { .. } => ErrorKind::Timeout,
            Error::DuplicateUnique { .. } => ErrorKind::Duplicate,
            Error::Usage(_) => ErrorKind::Usage,
            _ => ErrorKind::Failed,
        }
    }

    /// The SDK's error `e` of a call to the Redis at `host`, in this
    /// crate's terms (not found, timeout, unreachable).
    pub fn from_sdk(e: ferry_queue::Error, host: &str) -> Self {
        use ferry_queue::Error as E;
        match e {
            E::JobNotFound { queue, id } => Error::JobNotFound { queue, id },
            E::DeadLetterNotFound { queue, entry_id } => Error::DeadLetterNotFound {
                queue,
                id: entry_id,
            },
            E::WaitTimeout { id, timeout, state } => Error::WaitTimeout { id, timeout, state },
            E::BadDependency {
                queue,
                job,
                dependency,
                reason,
            } => Error::BadDependency {
                queue,
                job,
                dependency,
                reason,
            },
            E::Redis(r) if ferry_broker::error::is_connection_failure(&r) => Error::Unreachable {
                host: host.to_owned(),
                reason: r.to_string(),
            },
            other => Error::Ferry(other),
        }
    }
}

impl From<ferry_queue::ConfigError> for Error {
    fn from(e: ferry_queue::ConfigError) -> Self {
        Error::Ferry(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_give_the_documented_exit_codes() {
        let not_found = Error::JobNotFound {
            queue: "emails".into(),
            id: "normal-123-0".into(),
        };
        assert_eq!(
            not_found.to_string(),
            "job not found: normal-123-0 in queue emails"
        );
        assert_eq!(not_found.kind().exit_code(), 3);
        let timeout = Error::WaitTimeout {
            id: "x".into(),
            timeout: Duration::from_millis(1500),
            state: JobState::Queued,
        };
        assert_eq!(
            timeout.to_string(),
            "job x did not finish within 1.5s: it is queued"
        );
        assert_eq!(timeout.kind().exit_code(), 2);
        assert_eq!(Error::Usage("confirm".into()).kind().exit_code(), 64);
        let duplicate = Error::DuplicateUnique {
            queue: "emails".into(),
            key: "digest".into(),
            id: "0194".into(),
            debounced: false,
        };
        assert_eq!(
            duplicate.to_string(),
            "queue emails has a job holding unique key \"digest\": 0194; nothing enqueued"
        );
        assert_eq!(duplicate.kind().exit_code(), 4);
        assert_eq!(Error::Input("bad".into()).kind().exit_code(), 1);
        let bad = Error::from_sdk(
            ferry_queue::Error::BadDependency {
                queue: "emails".into(),
                job: "j".into(),
                dependency: "nobody".into(),
                reason: "does not exist (never enqueued)".into(),
            },
            "h:1",
        );
        assert_eq!(
            bad.to_string(),
            "dependency nobody does not exist (never enqueued); nothing enqueued to queue emails"
        );
        assert_eq!(bad.kind().exit_code(), 1);
    }
}
