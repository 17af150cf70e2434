//! What a job to enqueue is: [`NewJob`], when it may first run
//! ([`Schedule`]), and what a given id that exists does ([`OnDuplicate`]).

use std::borrow::Cow;

use crate::priority::Priority;

/// A job to enqueue, already encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// Job type name; chooses the handler.
    pub job_type: Cow<'static, str>,
    /// The job's arguments as JSON text.
    pub payload: String,
    /// Which stream it goes to.
    pub priority: Priority,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// When it may first run.
    pub schedule: Schedule,
    /// An id of the producer's own (1 to 128 of `A-Z a-z 0-9 . _ : -`, not
    /// of the `<priority>-<ms>-<seq>` form), unique within the queue while
    /// the job or its record exists; `None` for one chosen by Ferry.
    pub id: Option<String>,
    /// How long the job's finished record is kept, in ms, instead of the
    /// queue's retention (0 keeps none; the queue's count cap still
    /// bounds it); `None` for the queue's.
    pub retention_ms: Option<u64>,
    /// Its concurrency key (a tenant, a customer, a repository: 1 to 256
    /// bytes, no control characters): the jobs of one key share that key's
    /// concurrency limit, if the queue sets one (see
    /// [`Queue::set_concurrency`](crate::Queue::set_concurrency)); `None` for none.
    pub concurrency_key: Option<String>,
}

/// When a new job may first run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schedule {
    /// Now: straight into its priority stream.
    #[default]
    Now,
    /// No earlier than this time, in ms since the epoch (the caller's own
    /// wall-clock time; a time already past runs it now).
    At(u64),
    /// No earlier than this long from now by the Redis server's clock (read
    /// with TIME when the batch is sent), so a producer whose clock is
    /// wrong still delays its jobs by the right amount.
    After(std::time::Duration),
}

impl Schedule {
    /// When the job is due in ms since the epoch, given the server's time
    /// `server_now` (needed only for [`Schedule::After`]) and the local
    /// time `local_now`; `None` to run it now.
    pub(super) fn due_at(self, server_now: Option<u64>, local_now: u64) -> Option<u64> {
        match self {
            Schedule::Now => None,
            Schedule::At(at) => (at > local_now).then_some(at),
            Schedule::After(d) if d.is_zero() => None,
            Schedule::After(d) => {
                let d = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                Some(server_now.unwrap_or(local_now).saturating_add(d))
            }
        }
    }
}

/// What an enqueue does with a job whose id already exists (see
/// [`NewJob::id`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDuplicate {
    /// Fail with [`Error::DuplicateJob`](crate::Error::DuplicateJob); nothing
    /// of the chunk is written.
    #[default]
    Error,
    /// Leave the existing job alone and return its id as if enqueued.
    ReturnExisting,
}
