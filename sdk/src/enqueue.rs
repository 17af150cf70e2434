//! [`EnqueueOptions`]: how one enqueue overrides a job type's defaults.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_broker::{OnDuplicate, Priority};

use crate::error::ConfigError;
use crate::job::Job;

/// When a job may first run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Schedule {
    /// This long after the enqueue.
    Delay(Duration),
    /// No earlier than this time.
    At(SystemTime),
}

/// How to enqueue a job: overrides of the job type's defaults
/// ([`Job::QUEUE`], [`Job::PRIORITY`], [`Job::MAX_RETRIES`]) and when it may
/// first run. Every setter returns the options, so they chain:
///
/// ```
/// use std::time::Duration;
/// use ferry_queue::{EnqueueOptions, Priority};
/// let options = EnqueueOptions::new()
///     .queue("emails-eu")
///     .priority(Priority::High)
///     .max_retries(5)
///     .delay(Duration::from_secs(60));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnqueueOptions {
    queue: Option<String>,
    priority: Option<Priority>,
    max_retries: Option<u32>,
    schedule: Option<Schedule>,
    idempotency_key: Option<String>,
    job_id: Option<String>,
    on_duplicate: OnDuplicate,
    retention: Option<Duration>,
    concurrency_key: Option<String>,
    depends_on: Vec<String>,
    on_dependency_failure: ferry_broker::OnDependencyFailure,
}

impl EnqueueOptions {
    /// The job type's defaults, to run now.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the job only after the jobs `ids` succeed: until then it
    /// waits, state `waiting`, and it enters its queue when the last of
    /// them succeeds, exactly once. An id is a job of its queue, or
    /// `"<queue>/<id>"` a job of another queue (released within about a
    /// promote interval of its end, by that queue's workers: see
    /// `ferry_broker::remote_deps`). Each must exist (one that succeeded
    /// counts as done), so no cycle can form. One job per call
    /// ([`Client::enqueue_with`](crate::Client::enqueue_with)); no delay.
    ///
    /// ```
    /// use ferry_queue::{EnqueueOptions, OnDependencyFailure};
    /// let options = EnqueueOptions::new()
    ///     .depends_on(["build-17", "tests/test-17"])
    ///     .on_dependency_failure(OnDependencyFailure::Release);
    /// ```
    pub fn depends_on<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.depends_on.extend(ids.into_iter().map(Into::into));
        self
    }

    /// What a dependency that fails (dead-lettered, or cancelled) does to
    /// the job: [`OnDependencyFailure::Fail`](ferry_broker::OnDependencyFailure::Fail) (the default) ends it
    /// cancelled, `Release` runs it anyway, `Wait` keeps it waiting until
    /// the dependency is replayed and succeeds.
    pub fn on_dependency_failure(mut self, policy: ferry_broker::OnDependencyFailure) -> Self {
        self.on_dependency_failure = policy;
        self
    }

    /// The dependencies set, and their failure policy.
    pub(crate) fn dependencies(&self) -> (&[String], ferry_broker::OnDependencyFailure) {
        (&self.depends_on, self.on_dependency_failure)
    }

    /// Sends the job to `queue` instead of its type's [`Job::QUEUE`].
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Sets the priority (instead of [`Job::PRIORITY`]).
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the retries allowed after the first attempt (instead of [`Job::MAX_RETRIES`]).
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }

    /// Runs the job no earlier than `delay` from now, by the Redis server's
    /// clock (a producer whose own clock is wrong still delays it by
    /// `delay`). Replaces a
    /// [`run_at`](EnqueueOptions::run_at) set before.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.schedule = Some(Schedule::Delay(delay));
        self
    }

    /// Runs the job no earlier than `at` (a time in the past runs it now).
    /// Replaces a [`delay`](EnqueueOptions::delay) set before.
    pub fn run_at(mut self, at: SystemTime) -> Self {
        self.schedule = Some(Schedule::At(at));
        self
    }

    /// Enqueues under an idempotency key (1 to 128 characters from
    /// `[A-Za-z0-9._:-]`): a batch enqueued again with the same key and the
    /// same jobs in the same order (after an error, say) writes only what
    /// was not written before and returns the same ids, for a day after the
    /// batch's last write. The job ids are then derived from the key (UUID
    /// v5). A key names one batch: a different batch enqueued under a key
    /// already used within the day writes nothing for the chunks the key
    /// has recorded. Costs Redis a little more per job (one script per
    /// chunk).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Keeps the job's finished record (state, result, error) for
    /// `retention` instead of the queue's retention time
    /// ([`Client::set_retention`](crate::Client::set_retention)); zero keeps
    /// none. The queue's count cap still bounds the records, dropping those
    /// that expire soonest first. A dead job's record is its dead letter,
    /// whatever this says.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Gives the job this id instead of one Ferry chooses (1 to 128 of
    /// `A-Z a-z 0-9 . _ : -`, not of the `<priority>-<ms>-<seq>` form
    /// Ferry gives fresh jobs). An id is unique in its queue while the job
    /// or its record exists: enqueuing it again fails with
    /// [`Error::DuplicateJob`](crate::Error::DuplicateJob), or returns the
    /// existing job's id with [`OnDuplicate::ReturnExisting`]. For one job
    /// (a batch of more fails with a config error). A job with its own id
    /// costs Redis about 70 bytes more while queued (an index field).
    pub fn job_id(mut self, id: impl Into<String>) -> Self {
        self.job_id = Some(id.into());
        self
    }

    /// The job's concurrency key (a tenant, a customer, a repository: 1 to
    /// 256 bytes, no control characters). The jobs of one key share its
    /// concurrency limit, fleet-wide, when the queue sets one
    /// ([`Client::set_concurrency`](crate::Client::set_concurrency) with
    /// [`ConcurrencyScope::Key`](crate::ConcurrencyScope::Key) or
    /// [`ConcurrencyScope::EachKey`](crate::ConcurrencyScope::EachKey)):
    /// a key at its limit waits, and never holds back other keys' jobs.
    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }

    /// The concurrency key, if set.
    pub(crate) fn concurrency_key_value(&self) -> Option<String> {
        self.concurrency_key.clone()
    }

    /// What enqueuing a [`job_id`](EnqueueOptions::job_id) that exists
    /// does: fail (the default) or return the existing job's id.
    pub fn on_duplicate(mut self, on_duplicate: OnDuplicate) -> Self {
        self.on_duplicate = on_duplicate;
        self
    }

    /// The given job id, if any.
    pub(crate) fn given_id(&self) -> Option<&str> {
        self.job_id.as_deref()
    }

    /// The job's own record retention in ms, if set.
    pub(crate) fn retention_ms(&self) -> Option<u64> {
        self.retention
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// What a duplicate id does.
    pub(crate) fn duplicate_policy(&self) -> OnDuplicate {
        self.on_duplicate
    }

    /// The idempotency key, checked.
    pub(crate) fn batch_key(&self) -> Result<Option<ferry_broker::BatchKey>, ConfigError> {
        self.idempotency_key
            .as_deref()
            .map(ferry_broker::BatchKey::new)
            .transpose()
    }

    /// The queue for a job of type `J`.
    pub(crate) fn queue_for<J: Job>(&self) -> &str {
        self.queue.as_deref().unwrap_or(J::QUEUE)
    }

    /// The priority for a job of type `J`.
    pub(crate) fn priority_for<J: Job>(&self) -> Priority {
        self.priority.unwrap_or(J::PRIORITY)
    }

    /// The retries for a job of type `J`.
    pub(crate) fn max_retries_for<J: Job>(&self) -> u32 {
        self.max_retries.unwrap_or(J::MAX_RETRIES)
    }

    /// When the job may first run, as the broker takes it: a delay is
    /// counted from the Redis server's clock, not this host's.
    pub(crate) fn broker_schedule(&self) -> ferry_broker::Schedule {
        match self.schedule {
            None => ferry_broker::Schedule::Now,
            Some(Schedule::Delay(d)) => ferry_broker::Schedule::After(d),
            Some(Schedule::At(at)) => ferry_broker::Schedule::At(millis(
                at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO),
            )),
        }
    }

    /// When the job may first run, in ms since the epoch by this host's
    /// clock; `None` for now.
    pub(crate) fn run_at_ms(&self, now_ms: u64) -> Option<u64> {
        match self.schedule? {
            Schedule::Delay(d) if d.is_zero() => None,
            Schedule::Delay(d) => Some(now_ms.saturating_add(millis(d))),
            Schedule::At(at) => {
                let at = millis(at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO));
                (at > now_ms).then_some(at)
            }
        }
    }
}

/// The furthest ahead a job may be scheduled: ten years. Further is a
/// mistake (a unit slip, `u64::MAX`), and the job would never run.
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl EnqueueOptions {
    /// Checks the schedule against [`MAX_SCHEDULE_AHEAD`], with `now_ms`
    /// as now.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `delay` or `run_at`.
    pub(crate) fn check(&self, now_ms: u64) -> Result<(), ConfigError> {
        let limit = millis(MAX_SCHEDULE_AHEAD);
        match self.schedule {
            Some(Schedule::Delay(d)) if millis(d) > limit => Err(ConfigError::InvalidSetting {
                name: "delay",
                reason: format!("{d:?} is more than ten years ahead; the job would never run"),
            }),
            Some(Schedule::At(_))
                if self.run_at_ms(now_ms).is_some_and(|at| at - now_ms > limit) =>
            {
                Err(ConfigError::InvalidSetting {
                    name: "run_at",
                    reason: "more than ten years ahead; the job would never run".into(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// Whole milliseconds of `d`, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Report;
    impl Job for Report {
        const TYPE: &'static str = "report";
        const QUEUE: &'static str = "reports";
        const PRIORITY: Priority = Priority::Low;
    }

    #[test]
    fn options_override_the_job_types_defaults() {
        let none = EnqueueOptions::new();
        assert_eq!(none.queue_for::<Report>(), "reports");
        assert_eq!(none.priority_for::<Report>(), Priority::Low);
        assert_eq!(none.max_retries_for::<Report>(), 3);
        assert_eq!(none.run_at_ms(1000), None);
        let some = EnqueueOptions::new()
            .queue("other")
            .priority(Priority::Critical)
            .max_retries(0)
            .delay(Duration::from_millis(250));
        assert_eq!(some.queue_for::<Report>(), "other");
        assert_eq!(some.priority_for::<Report>(), Priority::Critical);
        assert_eq!(some.max_retries_for::<Report>(), 0);
        assert_eq!(some.run_at_ms(1000), Some(1250));
    }

    #[test]
    fn run_at_is_absolute_and_the_last_schedule_wins() {
        let at = UNIX_EPOCH + Duration::from_millis(5000);
        assert_eq!(EnqueueOptions::new().run_at(at).run_at_ms(1000), Some(5000));
        assert_eq!(
            EnqueueOptions::new().run_at(at).run_at_ms(9000),
            None,
            "past: now"
        );
        let delayed = EnqueueOptions::new()
            .run_at(at)
            .delay(Duration::from_millis(1));
        assert_eq!(delayed.run_at_ms(1000), Some(1001));
        assert_eq!(
            EnqueueOptions::new().delay(Duration::ZERO).run_at_ms(1000),
            None
        );
    }
}
