//! Enqueuing typed jobs: one, one with options, or a batch.

use std::borrow::Cow;

use ferry_broker::NewJob;

use super::Client;
use crate::enqueue::EnqueueOptions;
use crate::error::{ConfigError, Error, Result};
use crate::job::Job;
use crate::unique::Unique;

impl Client {
    /// Enqueues one job to its type's queue, with its type's defaults;
    /// returns its id.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad queue name or an oversized payload,
    /// [`Error::Redis`] when Redis is unreachable (within the response timeout).
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<String> {
        self.enqueue_with(job, EnqueueOptions::new()).await
    }

    /// Enqueues one job with `options`; returns its id.
    ///
    /// # Errors
    /// As [`Client::enqueue`].
    pub async fn enqueue_with<J: Job>(&self, job: &J, options: EnqueueOptions) -> Result<String> {
        if !options.dependencies().0.is_empty() {
            return Ok(self.enqueue_after(job, options).await?.id);
        }
        let mut ids = self
            .enqueue_batch(std::slice::from_ref(job), options)
            .await?;
        ids.pop()
            .ok_or_else(|| Error::Protocol("enqueue returned no id".into()))
    }

    /// Enqueues many jobs of one type; returns their ids in order. Up to
    /// 1,000 jobs (and 4 MB) go in one round trip, all or none; a bigger
    /// batch goes in chunks of that size, one after the other, so that no
    /// transaction holds Redis for more than a few milliseconds.
    ///
    /// With the crate's `opentelemetry` feature, jobs enqueued inside a
    /// span that has an OpenTelemetry context carry it (the W3C entry
    /// fields `traceparent` and `tracestate`); the worker's `job` span
    /// continues that trace. This holds for every enqueue method, which
    /// all come here.
    ///
    /// # Errors
    /// As [`Client::enqueue`]. A batch that fails after its first chunk, or
    /// loses a chunk's reply, is [`Error::PartialBatch`]: the ids known
    /// written, those that may be, and how many were not sent. To retry
    /// without duplicates, enqueue with an
    /// [`idempotency_key`](EnqueueOptions::idempotency_key) and retry with
    /// the same key. Otherwise nothing of the batch was written, except
    /// after a timeout or a dropped connection, when its one chunk may
    /// have been.
    pub async fn enqueue_batch<J: Job>(
        &self,
        jobs: &[J],
        options: EnqueueOptions,
    ) -> Result<Vec<String>> {
        let queue = self.queue(options.queue_for::<J>())?;
        let now = ferry_broker::now_ms();
        options.check(now)?;
        if !options.dependencies().0.is_empty() {
            return Err(ConfigError::InvalidSetting {
                name: "depends_on",
                reason: "a job with dependencies is enqueued alone: use enqueue_with".into(),
            }
            .into());
        }
        let key = options.batch_key()?;
        let schedule = options.broker_schedule();
        let given = options.given_id();
        if given.is_some() && jobs.len() != 1 {
            return Err(ConfigError::InvalidSetting {
                name: "job_id",
                reason: format!("names one job, and the batch has {}", jobs.len()),
            }
            .into());
        }
        let (priority, max_retries) = (options.priority_for::<J>(), options.max_retries_for::<J>());
        let mut batch = Vec::with_capacity(jobs.len());
        for job in jobs {
            batch.push(NewJob {
                job_type: Cow::Borrowed(J::TYPE),
                payload: serde_json::to_string(job)?,
                priority,
                max_retries,
                schedule,
                id: given.map(str::to_owned),
                retention_ms: options.retention_ms(),
                concurrency_key: options.concurrency_key_value(),
            });
        }
        let mut conn = self.conn().await?;
        // Inside a trace, every job carries the current span's context.
        #[cfg(feature = "opentelemetry")]
        if let Some(trace) = crate::trace::current() {
            return queue
                .enqueue_traced(
                    &mut conn,
                    &batch,
                    key.as_ref(),
                    options.duplicate_policy(),
                    &trace,
                )
                .await
                .map_err(|e| self.fail(e));
        }
        match &key {
            None => {
                queue
                    .enqueue_with(&mut conn, &batch, options.duplicate_policy())
                    .await
            }
            Some(key) => queue.enqueue_keyed(&mut conn, &batch, key).await,
        }
        .map_err(|e| self.fail(e))
    }
}

impl Client {
    /// Enqueues one job to run after its dependencies
    /// ([`EnqueueOptions::depends_on`]) succeed; says how many it waits
    /// for (0: they all had, and it is queued).
    ///
    /// # Errors
    /// As [`Client::enqueue`], and [`Error::BadDependency`] for a
    /// dependency that is the job itself, does not exist, or failed while
    /// the policy is to fail with it (nothing written).
    pub async fn enqueue_after<J: Job>(
        &self,
        job: &J,
        options: EnqueueOptions,
    ) -> Result<ferry_broker::EnqueuedAfter> {
        let queue = self.queue(options.queue_for::<J>())?;
        options.check(ferry_broker::now_ms())?;
        let new = NewJob {
            job_type: Cow::Borrowed(J::TYPE),
            payload: serde_json::to_string(job)?,
            priority: options.priority_for::<J>(),
            max_retries: options.max_retries_for::<J>(),
            schedule: options.broker_schedule(),
            id: options.given_id().map(str::to_owned),
            retention_ms: options.retention_ms(),
            concurrency_key: options.concurrency_key_value(),
        };
        let (deps, policy) = options.dependencies();
        let mut conn = self.conn().await?;
        queue
            .enqueue_after(&mut conn, &new, deps, policy)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Enqueues a [`Flow`](crate::Flow) in one atomic call: every job of
    /// the tree, children first, each parent waiting for its children;
    /// returns each job's id in the flow's shape.
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Report { day: u32 }
    /// # impl ferry_queue::Job for Report { const TYPE: &'static str = "report"; }
    /// # #[derive(Serialize, Deserialize)] struct Fetch { shard: u32 }
    /// # impl ferry_queue::Job for Fetch { const TYPE: &'static str = "fetch"; }
    /// # async fn example(client: ferry_queue::Client) -> ferry_queue::Result<()> {
    /// use ferry_queue::Flow;
    /// let flow = Flow::new(&Report { day: 7 })
    ///     .children((1..=3).map(|shard| Flow::new(&Fetch { shard })));
    /// let ids = client.enqueue_flow(flow).await?;
    /// println!("report {} waits for {} fetches", ids.id, ids.waiting_for);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::enqueue_after`]; [`Error::Config`] for a job that
    /// could not be encoded, one in another queue than the root's, or a
    /// flow past [`MAX_FLOW_JOBS`](ferry_broker::MAX_FLOW_JOBS) jobs or
    /// [`MAX_FLOW_DEPTH`](ferry_broker::MAX_FLOW_DEPTH) levels.
    pub async fn enqueue_flow(&self, flow: crate::Flow) -> Result<ferry_broker::EnqueuedFlow> {
        let queue = self.queue(flow.queue())?;
        let root = flow.into_broker()?;
        let mut conn = self.conn().await?;
        queue
            .enqueue_flow(&mut conn, &root)
            .await
            .map_err(|e| self.fail(e))
    }

    /// The flow whose root is `root` in `queue_name`: every job, its
    /// parent and its state; `None` for no such flow (or one expired after
    /// its retention). A job's status names its flow's root
    /// ([`JobStatus::flow`](crate::JobStatus::flow)).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad queue name; [`Error::Redis`].
    pub async fn flow(
        &self,
        queue_name: &str,
        root: &str,
    ) -> Result<Option<ferry_broker::FlowGraph>> {
        let queue = self.queue(queue_name)?;
        let mut conn = self.conn().await?;
        queue.flow(&mut conn, root).await.map_err(|e| self.fail(e))
    }

    /// Creates a [`Batch`](crate::Batch) in one atomic call: its jobs into
    /// their queue, each counted by the batch, and its callbacks kept
    /// until due; returns the ids.
    ///
    /// # Errors
    /// As [`Client::enqueue`]; [`Error::BatchExists`]; [`Error::DuplicateJob`]
    /// for a job or callback id in use; [`Error::Config`] for a batch with
    /// no jobs, jobs of two queues, a delay, or more than
    /// [`MAX_BATCH_JOBS_PER_CALL`](ferry_broker::MAX_BATCH_JOBS_PER_CALL)
    /// jobs (add more with [`Client::add_to_batch`]).
    pub async fn create_batch(&self, batch: crate::Batch) -> Result<ferry_broker::CreatedBatch> {
        let (queue, batch) = batch.into_broker()?;
        let queue = self.queue(&queue)?;
        let mut conn = self.conn().await?;
        queue
            .create_batch(&mut conn, &batch)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Adds `jobs` to the open batch `batch` of their queue (`options` as
    /// for [`Batch::job_with`](crate::Batch::job_with)); returns their ids.
    /// A batch is open until its last job finishes.
    ///
    /// # Errors
    /// [`Error::BatchNotFound`], [`Error::BatchClosed`]; otherwise as
    /// [`Client::create_batch`].
    pub async fn add_to_batch<J: Job>(
        &self,
        batch: &str,
        jobs: &[J],
        options: EnqueueOptions,
    ) -> Result<Vec<String>> {
        let queue = self.queue(options.queue_for::<J>())?;
        let new = jobs
            .iter()
            .map(|j| crate::batch::new_job(j, &options, "batch"))
            .collect::<Result<Vec<_>>>()?;
        let mut conn = self.conn().await?;
        queue
            .add_to_batch(&mut conn, batch, &new)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Batch `id`'s status in `queue_name`: its counts, state and
    /// callbacks.
    ///
    /// # Errors
    /// [`Error::BatchNotFound`] for no such batch (never created, or
    /// expired after its retention); [`Error::Config`]; [`Error::Redis`].
    pub async fn batch_status(
        &self,
        queue_name: &str,
        id: &str,
    ) -> Result<ferry_broker::BatchStatus> {
        let queue = self.queue(queue_name)?;
        let mut conn = self.conn().await?;
        queue
            .batch(&mut conn, id)
            .await
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| Error::BatchNotFound {
                queue: queue_name.to_owned(),
                batch: id.to_owned(),
            })
    }

    /// Enqueues one job unless a job holding its uniqueness key exists
    /// (decided in one script, so concurrent producers with the same key
    /// make one job). A duplicate is not an error: the result carries the
    /// existing job's id and [`Enqueued::duplicate`](ferry_broker::Enqueued::duplicate)
    /// says why nothing new was written (unless
    /// [`Unique::error_on_duplicate`]). The job gets a UUID v7 id;
    /// `options` may set its queue, priority, retries and delay (a
    /// debounce sets its own delay).
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Sync { account: u64 }
    /// # impl ferry_queue::Job for Sync { const TYPE: &'static str = "sync"; }
    /// # async fn example(client: ferry_queue::Client) -> ferry_queue::Result<()> {
    /// use ferry_queue::{EnqueueOptions, Unique};
    /// let done = client
    ///     .enqueue_unique(&Sync { account: 42 }, Unique::by_args(), EnqueueOptions::new())
    ///     .await?;
    /// if done.duplicate.is_some() {
    ///     println!("already queued as {}", done.id);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::enqueue`]; [`Error::Config`] for a bad key or window;
    /// [`Error::DuplicateJob`] for a duplicate when asked for.
    pub async fn enqueue_unique<J: Job>(
        &self,
        job: &J,
        unique: Unique,
        options: EnqueueOptions,
    ) -> Result<ferry_broker::Enqueued> {
        let queue = self.queue(options.queue_for::<J>())?;
        options.check(ferry_broker::now_ms())?;
        let payload = serde_json::to_string(job)?;
        let lock = unique.lock(J::TYPE, &payload)?;
        let new = NewJob {
            job_type: Cow::Borrowed(J::TYPE),
            payload,
            priority: options.priority_for::<J>(),
            max_retries: options.max_retries_for::<J>(),
            schedule: options.broker_schedule(),
            id: None,
            retention_ms: options.retention_ms(),
            concurrency_key: options.concurrency_key_value(),
        };
        let mut conn = self.conn().await?;
        let done = queue
            .enqueue_unique(&mut conn, &new, &lock)
            .await
            .map_err(|e| self.fail(e))?;
        if unique.errors() && done.duplicate.is_some() {
            return Err(Error::DuplicateJob {
                queue: queue.name().to_owned(),
                id: done.id,
            });
        }
        Ok(done)
    }
}
