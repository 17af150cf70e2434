//! Error types of the queue protocol.

/// A shorthand for results of broker operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Invalid input or configuration, found before anything is sent to Redis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A queue name outside `[A-Za-z0-9._-]{1,128}`.
    #[error("invalid queue name {0:?}: use 1 to 128 characters from [A-Za-z0-9._-]")]
    InvalidQueueName(String),
    /// A key prefix outside `[A-Za-z0-9._-]{1,128}`.
    #[error("invalid key prefix {0:?}: use 1 to 128 characters from [A-Za-z0-9._-]")]
    InvalidPrefix(String),
    /// A priority name other than critical, high, normal or low.
    #[error("invalid priority {0:?}: use critical, high, normal or low")]
    InvalidPriority(String),
    /// A job type name that is empty, too long or holds control characters.
    #[error("invalid job type {0:?}: use 1 to 128 printable characters")]
    InvalidJobType(String),
    /// A payload over the configured limit.
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Encoded payload size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A job id given by the producer that is not a valid one.
    #[error("invalid job id: {0}")]
    InvalidJobId(String),
    /// A setting out of its range.
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The setting's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// An error from a broker operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid input; nothing was sent to Redis.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Redis could not be reached or answered with an error. Retry later;
    /// `is_connection_error()` tells an outage from a command error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A job could not be encoded as JSON.
    #[error("could not encode job payload: {0}")]
    Encode(#[from] serde_json::Error),
    /// Redis answered with something the protocol does not expect (a bug or a foreign writer).
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    /// A batch failed part way: which jobs are known written, which may be,
    /// and how many were not sent (see [`PartialBatch`](crate::batch::PartialBatch)).
    #[error("{0}")]
    PartialBatch(Box<crate::batch::PartialBatch>),
    /// A job id given at enqueue already exists in the queue (scheduled,
    /// queued, running, dead-lettered or with a record); nothing of its
    /// chunk was written.
    #[error("queue {queue}: a job with id {id} already exists")]
    DuplicateJob {
        /// The queue.
        queue: String,
        /// The id.
        id: String,
    },
    /// A job's dependency cannot be waited for: it names the job itself, no
    /// such job exists (never enqueued, or finished with its record no
    /// longer kept), or it failed and the job's policy is to fail with it.
    /// Nothing was written.
    #[error("job {job} in queue {queue}: dependency {dependency} {reason}")]
    BadDependency {
        /// The queue.
        queue: String,
        /// The job enqueued.
        job: String,
        /// The dependency.
        dependency: String,
        /// Why: "is the job itself", "does not exist (never enqueued, or
        /// its record expired)", "failed (dead)".
        reason: String,
    },
    /// The enqueue would take the queue past its `max_depth` setting
    /// (decided in Redis, atomically with the write); nothing of the chunk
    /// was written. Back off, or raise the limit.
    #[error(
        "queue {queue} is full: {depth} jobs waiting, running or delayed, max_depth {max_depth}"
    )]
    QueueFull {
        /// The queue.
        queue: String,
        /// Jobs waiting, running or delayed when the enqueue was refused.
        depth: u64,
        /// The queue's limit.
        max_depth: u64,
    },
    /// The queue is paused: nothing is claimed until it is resumed.
    #[error("queue {0} is paused")]
    Paused(String),
    /// A batch with this id exists (or did, and is still kept). Nothing
    /// was written.
    #[error("queue {queue}: a batch with id {batch} already exists")]
    BatchExists {
        /// The queue.
        queue: String,
        /// The batch id.
        batch: String,
    },
    /// No batch with this id (never created, or expired after its
    /// retention). Nothing was written.
    #[error("queue {queue}: no batch {batch}")]
    BatchNotFound {
        /// The queue.
        queue: String,
        /// The batch id.
        batch: String,
    },
    /// The batch is closed: its last job has finished and its callbacks
    /// were due, so no job can join it. Nothing was written.
    #[error("queue {queue}: batch {batch} is closed (every job of it has finished)")]
    BatchClosed {
        /// The queue.
        queue: String,
        /// The batch id.
        batch: String,
    },
    /// The queue's rate limit lets no job start now: nothing was claimed.
    #[error("queue {queue} is rate limited for {wait:?}")]
    RateLimited {
        /// The queue.
        queue: String,
        /// How long until the limit lets one job start (server clock).
        wait: std::time::Duration,
    },
    /// The queue's concurrency limit is reached (as many of its jobs run,
    /// fleet-wide, as it allows): nothing was claimed.
    #[error("queue {0} runs as many jobs as its concurrency limit allows")]
    AtConcurrencyLimit(String),
    /// Redis refused to load one of Ferry's scripts (see [`scripts::load_all`](crate::scripts::load_all)).
    #[error("script {name} does not load: {reason}")]
    Script {
        /// The script's file name.
        name: &'static str,
        /// What Redis said.
        reason: String,
    },
}

impl Error {
    /// True when the error came from the connection (outage, timeout), not from the request.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::Redis(e) => is_connection_failure(e),
            Error::PartialBatch(p) => p.source.is_connection_error(),
            _ => false,
        }
    }
}

/// True when a Redis error came from the connection (I/O, timeout, dropped or
/// refused connection) rather than from the command.
pub fn is_connection_failure(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || is_maxclients(e)
}

/// True for the error a server at `maxclients` sends as it closes a new
/// connection.
pub fn is_maxclients(e: &redis::RedisError) -> bool {
    e.detail()
        .is_some_and(|d| d.contains("max number of clients reached"))
}
