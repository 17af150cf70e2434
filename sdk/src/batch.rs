//! [`Batch`]: jobs enqueued together under an id, with callbacks, created
//! with [`Client::create_batch`](crate::Client::create_batch).

use std::borrow::Cow;

use ferry_broker::{NewBatch, NewJob};

use crate::enqueue::EnqueueOptions;
use crate::error::{ConfigError, Error, Result};
use crate::job::Job;

/// A batch to create: its jobs (in one queue, the first job's), and
/// callbacks, each a job enqueued once when due: on success when every
/// job of the batch has succeeded (a dead job replayed and succeeding
/// counts), on complete when every job has finished, whatever the
/// outcome. Handlers of its jobs can add jobs to it
/// ([`JobContext::add_to_batch`](crate::JobContext::add_to_batch)) while
/// it is open.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Import { row: u32 }
/// # impl ferry_queue::Job for Import { const TYPE: &'static str = "import"; }
/// # #[derive(Serialize, Deserialize)] struct Notify { batch: String }
/// # impl ferry_queue::Job for Notify { const TYPE: &'static str = "notify"; }
/// use ferry_queue::Batch;
/// let batch = Batch::new()
///     .id("import-2026-12-07")
///     .description("rows of the 7 December import")
///     .jobs((1..=3).map(|row| Import { row }).collect::<Vec<_>>().iter())
///     .on_success(&Notify { batch: "import-2026-12-07".into() });
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Debug, Default)]
pub struct Batch {
    id: Option<String>,
    description: Option<String>,
    queue: Option<String>,
    jobs: Vec<NewJob>,
    on_success: Option<NewJob>,
    on_complete: Option<NewJob>,
    error: Option<Error>,
}

impl Batch {
    /// An empty batch, with a new UUID v7 id unless [`Batch::id`] gives one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Its id (1 to 128 of `A-Z a-z 0-9 . _ : -`).
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// What it is, for operators.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a job with its type's defaults.
    #[must_use]
    pub fn job<J: Job>(self, job: &J) -> Self {
        self.job_with(job, EnqueueOptions::new())
    }

    /// Adds jobs with their type's defaults.
    #[must_use]
    pub fn jobs<'a, J: Job + 'a>(mut self, jobs: impl IntoIterator<Item = &'a J>) -> Self {
        for job in jobs {
            self = self.job(job);
        }
        self
    }

    /// Adds a job with `options` (its queue must be the batch's; its
    /// priority, retries, id, retention and concurrency key are its own;
    /// no delay, idempotency key or dependencies).
    #[must_use]
    pub fn job_with<J: Job>(mut self, job: &J, options: EnqueueOptions) -> Self {
        let queue = options.queue_for::<J>().to_owned();
        match &self.queue {
            None => self.queue = Some(queue),
            Some(q) if *q != queue => {
                self.fail(ConfigError::InvalidSetting {
                    name: "batch",
                    reason: format!(
                        "a job for queue {queue:?} in a batch of queue {q:?}: a batch's jobs share one queue"
                    ),
                }
                .into());
                return self;
            }
            Some(_) => {}
        }
        match new_job(job, &options, "batch") {
            Ok(new) => self.jobs.push(new),
            Err(e) => self.fail(e),
        }
        self
    }

    /// The job enqueued once every job of the batch has succeeded.
    #[must_use]
    pub fn on_success<J: Job>(self, job: &J) -> Self {
        self.on_success_with(job, EnqueueOptions::new())
    }

    /// [`Batch::on_success`] with `options` (its priority, retries, id,
    /// retention and concurrency key; it goes to the batch's queue).
    #[must_use]
    pub fn on_success_with<J: Job>(mut self, job: &J, options: EnqueueOptions) -> Self {
        match new_job(job, &options, "on_success") {
            Ok(new) => self.on_success = Some(new),
            Err(e) => self.fail(e),
        }
        self
    }

    /// The job enqueued once every job of the batch has finished, whatever
    /// the outcome.
    #[must_use]
    pub fn on_complete<J: Job>(self, job: &J) -> Self {
        self.on_complete_with(job, EnqueueOptions::new())
    }

    /// [`Batch::on_complete`] with `options`.
    #[must_use]
    pub fn on_complete_with<J: Job>(mut self, job: &J, options: EnqueueOptions) -> Self {
        match new_job(job, &options, "on_complete") {
            Ok(new) => self.on_complete = Some(new),
            Err(e) => self.fail(e),
        }
        self
    }

    /// How many jobs it holds (callbacks apart).
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// True while it holds no job (a batch needs one).
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// The batch's queue and the broker's form of it, or the first error
    /// met while building it.
    pub(crate) fn into_broker(self) -> Result<(String, NewBatch)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let queue = self.queue.ok_or_else(|| ConfigError::InvalidSetting {
            name: "jobs",
            reason: "a batch holds one job at least".into(),
        })?;
        Ok((
            queue,
            NewBatch {
                id: self.id,
                description: self.description,
                jobs: self.jobs,
                on_success: self.on_success,
                on_complete: self.on_complete,
            },
        ))
    }
}

/// `job` as the broker takes it for a batch (`what` names the part in
/// errors): no delay, idempotency key or dependencies.
pub(crate) fn new_job<J: Job>(
    job: &J,
    options: &EnqueueOptions,
    what: &'static str,
) -> Result<NewJob> {
    if options.run_at_ms(0).is_some()
        || options.batch_key().ok().flatten().is_some()
        || !options.dependencies().0.is_empty()
    {
        return Err(ConfigError::InvalidSetting {
            name: what,
            reason: "a batch's jobs and callbacks take no delay, idempotency key or dependencies"
                .into(),
        }
        .into());
    }
    Ok(NewJob {
        job_type: Cow::Borrowed(J::TYPE),
        payload: serde_json::to_string(job)?,
        priority: options.priority_for::<J>(),
        max_retries: options.max_retries_for::<J>(),
        schedule: ferry_broker::Schedule::Now,
        id: options.given_id().map(str::to_owned),
        retention_ms: options.retention_ms(),
        concurrency_key: options.concurrency_key_value(),
    })
}
