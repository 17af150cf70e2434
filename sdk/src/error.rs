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
    /// The server refused the user or password in the URL.
    #[error("redis at {host} refused the credentials ({reason}): check the user and password in the redis URL (redis://user:password@host:port) against the server's requirepass or ACL users")]
    AuthFailed {
        /// `host:port` of the server (never the password).
        host: String,
        /// What the server said.
        reason: String,
    },
    /// The server needs a password and the URL gave none.
    #[error("redis at {host} requires authentication and the URL has no password ({reason}): put it in the redis URL, redis://:password@host:port or redis://user:password@host:port")]
    AuthRequired {
        /// `host:port` of the server.
        host: String,
        /// What the server said.
        reason: String,
    },
    /// The server is at `maxmemory` with the `noeviction` policy and refused
    /// a write. Nothing of the call was written.
    #[error("redis at {host} is out of memory and refused the write ({reason}); nothing of this call was written: raise maxmemory, free memory, or let workers drain the queues, then retry")]
    OutOfMemory {
        /// `host:port` of the server.
        host: String,
        /// What the server said.
        reason: String,
    },
    /// The server is a read-only replica, even after a reconnect to the
    /// address (a failover in progress, or a URL that names a replica).
    /// Nothing was written.
    #[error("redis at {host} is a read-only replica ({reason}); nothing was written: point the URL at the primary, or retry once the failover has finished")]
    ReadOnly {
        /// `host:port` of the server.
        host: String,
        /// What the server said.
        reason: String,
    },
    /// The server may evict keys under memory pressure, so queued jobs could
    /// vanish, and the strict eviction check was asked for.
    #[error("redis at {host} has maxmemory-policy {policy}: under memory pressure it deletes keys, queued jobs included. Set `maxmemory-policy noeviction` (CONFIG SET maxmemory-policy noeviction, or in redis.conf)")]
    EvictionPolicy {
        /// `host:port` of the server.
        host: String,
        /// The server's `maxmemory-policy`.
        policy: String,
    },
    /// A batch failed part way (it went in chunks): which jobs are known
    /// written, which may be, and how many were not sent. Retrying the
    /// same batch with the same
    /// [`idempotency_key`](crate::EnqueueOptions::idempotency_key) writes
    /// only what is missing.
    #[error("the batch stopped part way: {} jobs written, {} may be written (the reply was lost), {not_sent} not sent; retry with the same idempotency key to add only what is missing ({source})", written.len(), unknown.len())]
    PartialBatch {
        /// Ids of the jobs known written: the first ones of the batch, in order.
        written: Vec<String>,
        /// Ids of the jobs whose chunk's reply was lost: each may or may not be written.
        unknown: Vec<String>,
        /// How many jobs after those were not sent.
        not_sent: usize,
        /// Why the batch stopped.
        source: Box<Error>,
    },
    /// The server's ACL does not let this user run a command Ferry needs.
    #[error("redis at {host} does not let this user run {command} ({reason}): add +{} to the user's ACL (the README's Security section has the whole line)", command.to_lowercase())]
    CommandRefused {
        /// `host:port` of the server.
        host: String,
        /// The command refused.
        command: &'static str,
        /// What the server said.
        reason: String,
    },
    /// A job id given at enqueue ([`EnqueueOptions::job_id`](crate::EnqueueOptions::job_id))
    /// already exists in the queue; nothing was written. Enqueue with
    /// [`OnDuplicate::ReturnExisting`](crate::OnDuplicate) to get the
    /// existing job's id instead.
    #[error("queue {queue:?} already has a job with id {id:?}; nothing was written")]
    DuplicateJob {
        /// The queue.
        queue: String,
        /// The id.
        id: String,
    },
    /// The queue is at its maximum depth ([`Client::set_max_depth`](crate::Client::set_max_depth)),
    /// decided in Redis atomically with the write; nothing was written.
    /// Back off and retry, or raise the limit.
    #[error("queue {queue:?} is full: {depth} jobs waiting, running or delayed, and its max_depth is {max_depth}; nothing was written")]
    QueueFull {
        /// The queue.
        queue: String,
        /// Jobs waiting, running or delayed when it was refused.
        depth: u64,
        /// The limit.
        max_depth: u64,
    },
    /// No job with this id in the queue: never enqueued there, or finished
    /// and its record no longer kept (see the queue's retention).
    #[error("queue {queue:?} has no job {id:?} (never enqueued there, or finished and its record no longer kept)")]
    JobNotFound {
        /// The queue.
        queue: String,
        /// The id.
        id: String,
    },
    /// [`Client::wait`](crate::Client::wait) gave up before the job
    /// finished; the job is left alone, in the state given.
    #[error("job {id:?} did not finish within {timeout:?} (it is {state})")]
    WaitTimeout {
        /// The job id.
        id: String,
        /// How long the wait lasted.
        timeout: std::time::Duration,
        /// The job's state when the wait gave up.
        state: ferry_broker::JobState,
    },
    /// [`Client::cancel`](crate::Client::cancel) of a job that has
    /// finished already (succeeded or dead); nothing changed.
    #[error("job {id:?} cannot be cancelled: it is {state} already")]
    NotCancellable {
        /// The job id.
        id: String,
        /// Its final state.
        state: ferry_broker::JobState,
    },
    /// [`Client::reprioritise`](crate::Client::reprioritise) of a job that
    /// is not waiting (scheduled, retrying or queued).
    #[error("job {id:?} cannot be re-prioritised: it is {state}")]
    NotWaiting {
        /// The job id.
        id: String,
        /// `running`, `finished` or `dead`.
        state: String,
    },
    /// A job's dependency cannot be waited for (it is the job itself, no
    /// such job exists, or it failed and the policy is to fail with it).
    /// Nothing was written.
    #[error("job {job} in queue {queue}: dependency {dependency} {reason}")]
    BadDependency {
        /// The queue.
        queue: String,
        /// The job enqueued.
        job: String,
        /// The dependency.
        dependency: String,
        /// Why.
        reason: String,
    },
    /// A batch with this id exists. Nothing was written.
    #[error("queue {queue}: a batch with id {batch} already exists")]
    BatchExists {
        /// The queue.
        queue: String,
        /// The batch id.
        batch: String,
    },
    /// No such batch (never created, or expired after its retention).
    #[error("queue {queue}: no batch {batch}")]
    BatchNotFound {
        /// The queue.
        queue: String,
        /// The batch id.
        batch: String,
    },
    /// The batch is closed: every job of it has finished. Nothing was
    /// written.
    #[error("queue {queue}: batch {batch} is closed (every job of it has finished)")]
    BatchClosed {
        /// The queue.
        queue: String,
        /// The batch id.
        batch: String,
    },
    /// A dependency's result is not of the type asked for
    /// ([`JobContext::dependency_results_as`](crate::JobContext::dependency_results_as)).
    #[error("job {job}: the result of its dependency {dependency} is not of the type asked for: {reason}")]
    DependencyResult {
        /// The job reading the results.
        job: String,
        /// The dependency whose result did not decode.
        dependency: String,
        /// Why, as serde says.
        reason: String,
    },
    /// The server lacks something Ferry needs in this setup (for a Redis
    /// Cluster: sharded Pub/Sub, Redis 7.0 or later).
    #[error("redis at {host} runs version {version}: {reason}")]
    UnsupportedServer {
        /// The server (`host:port`).
        host: String,
        /// Its `redis_version`.
        version: String,
        /// What is missing, and what to run instead.
        reason: String,
    },
    /// No dead-letter entry with this id in this queue.
    #[error("no dead-letter entry {entry_id:?} in queue {queue:?}: list them with Client::dead_letters (or XRANGE on the queue's dead-letter stream)")]
    DeadLetterNotFound {
        /// The queue.
        queue: String,
        /// The entry id asked for.
        entry_id: String,
    },
}

impl From<ferry_broker::Error> for Error {
    fn from(e: ferry_broker::Error) -> Self {
        match e {
            ferry_broker::Error::Config(c) => Error::Config(c),
            ferry_broker::Error::Redis(r) => Error::Redis(r),
            ferry_broker::Error::Encode(j) => Error::Serialize(j),
            ferry_broker::Error::Protocol(p) => Error::Protocol(p),
            ferry_broker::Error::PartialBatch(p) => {
                let p = *p;
                Error::PartialBatch {
                    written: p.written,
                    unknown: p.unknown,
                    not_sent: p.not_sent,
                    source: Box::new(Error::from(p.source)),
                }
            }
            ferry_broker::Error::DuplicateJob { queue, id } => Error::DuplicateJob { queue, id },
            ferry_broker::Error::QueueFull {
                queue,
                depth,
                max_depth,
            } => Error::QueueFull {
                queue,
                depth,
                max_depth,
            },
            ferry_broker::Error::BadDependency {
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
            ferry_broker::Error::BatchExists { queue, batch } => {
                Error::BatchExists { queue, batch }
            }
            ferry_broker::Error::BatchNotFound { queue, batch } => {
                Error::BatchNotFound { queue, batch }
            }
            ferry_broker::Error::BatchClosed { queue, batch } => {
                Error::BatchClosed { queue, batch }
            }
            other => Error::Protocol(other.to_string()),
        }
    }
}

impl Error {
    /// True when the error came from the connection (outage, timeout) or
    /// from a failover in progress (a read-only replica): the same call may
    /// succeed later.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::Redis(e) => ferry_broker::error::is_connection_failure(e),
            Error::ReadOnly { .. } => true,
            Error::PartialBatch { source, .. } => source.is_connection_error(),
            _ => false,
        }
    }

    /// True when retrying cannot help until someone changes a setting: the
    /// credentials, or (with the strict check) the eviction policy.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            Error::AuthFailed { .. }
                | Error::AuthRequired { .. }
                | Error::EvictionPolicy { .. }
                | Error::CommandRefused { .. }
        )
    }

    /// Gives a Redis error its typed form, naming `host`: credentials
    /// refused or missing, out of memory, read-only replica. Others stay
    /// [`Error::Redis`].
    pub(crate) fn with_host(self, host: &str) -> Self {
        if let Error::PartialBatch {
            written,
            unknown,
            not_sent,
            source,
        } = self
        {
            return Error::PartialBatch {
                written,
                unknown,
                not_sent,
                source: Box::new(source.with_host(host)),
            };
        }
        let Error::Redis(e) = self else { return self };
        let codes = crate::link::server_codes(&e);
        let has = |code: &str| codes.iter().any(|c| c == code);
        let reason = e.to_string();
        let host = host.to_owned();
        if e.kind() == redis::ErrorKind::AuthenticationFailed || has("WRONGPASS") {
            Error::AuthFailed { host, reason }
        } else if has("NOAUTH") || reason.contains("unauthenticated") {
            Error::AuthRequired { host, reason }
        } else if has("OOM") {
            Error::OutOfMemory { host, reason }
        } else if has("READONLY") {
            Error::ReadOnly { host, reason }
        } else {
            Error::Redis(e)
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
    retry_after: Option<std::time::Duration>,
    hold: Hold,
}

/// What a [`JobError::rate_limited`] holds, fleet-wide, until its
/// `retry_after` has passed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hold {
    /// Every job of the queue (the default).
    #[default]
    Queue,
    /// The jobs of the job's type: the rest of the queue goes on.
    Type,
    /// The jobs of the job's concurrency key (a tenant whose upstream
    /// quota is spent); a job without a key holds its type.
    Key,
}

impl JobError {
    /// A failure worth retrying (with backoff, up to the job's `max_retries`).
    pub fn retry(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            permanent: false,
            retry_after: None,
            hold: Hold::Queue,
        }
    }

    /// A failure no retry can fix: the job is dead-lettered at once.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            permanent: true,
            retry_after: None,
            hold: Hold::Queue,
        }
    }

    /// An upstream is rate limiting (an HTTP 429 with `Retry-After`, say):
    /// the job goes back without using an attempt, to run after
    /// `retry_after`, and no job of its queue starts before then,
    /// fleet-wide ([`JobError::holding`] narrows that to its type or key).
    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        Self {
            message: format!("rate limited for {retry_after:?}"),
            permanent: false,
            retry_after: Some(retry_after),
            hold: Hold::Queue,
        }
    }

    /// A [`JobError::rate_limited`] that holds only `hold`: the jobs of the
    /// job's type or concurrency key (the rest of the queue goes on).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ferry_queue::{Hold, JobError};
    /// let e = JobError::rate_limited(Duration::from_secs(30)).holding(Hold::Key);
    /// assert_eq!(e.hold(), Hold::Key);
    /// ```
    pub fn holding(mut self, hold: Hold) -> Self {
        self.hold = hold;
        self
    }

    /// What a [`JobError::rate_limited`] holds.
    pub fn hold(&self) -> Hold {
        self.hold
    }

    /// The hold of a [`JobError::rate_limited`].
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
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
