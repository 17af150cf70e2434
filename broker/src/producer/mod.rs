//! Enqueue: new jobs into a priority stream (XADD), or into the delayed set
//! (ZADD) when they should run later, a chunk at a time in `enqueue.lua`,
//! which checks given ids and the queue's maximum depth first.
//!
//! Here: the enqueue calls and the batch they make. `job.rs` holds what a
//! job to enqueue is ([`NewJob`], [`Schedule`], [`OnDuplicate`]),
//! `chunk.rs` how a batch is cut into chunks and one chunk is written.

use redis::aio::ConnectionLike;

use crate::batch::{BatchKey, PartialBatch};
use crate::envelope::{
    check_concurrency_key, check_given_job_id, check_job_type, TraceContext, MAX_RETRIES_LIMIT,
};
use crate::error::{ConfigError, Result};
use crate::queue::{now_ms, Queue};

mod chunk;
mod job;
mod unique;

use chunk::{chunk_ranges, Chunk};
pub use job::{NewJob, OnDuplicate, Schedule};
pub use unique::{Duplicate, Enqueued, Lifetime, UniqueLock, MAX_UNIQUE_KEY_LEN};

/// The clocks a batch is scheduled by: this host's (for enqueued_at and
/// absolute run-at times) and, when the batch has a relative delay, the
/// server's.
#[derive(Clone, Copy)]
struct Clocks {
    local: u64,
    server: Option<u64>,
}

/// The server's time in ms since the epoch (TIME).
pub(crate) async fn server_time_ms<C: ConnectionLike + Send>(conn: &mut C) -> Result<u64> {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(secs.saturating_mul(1000).saturating_add(micros / 1000))
}

impl Queue {
    /// Checks a job before anything is sent: [`ConfigError::InvalidJobType`],
    /// [`ConfigError::PayloadTooLarge`], [`ConfigError::InvalidJobId`], or
    /// [`ConfigError::InvalidSetting`] for `max_retries` over the limit.
    pub(crate) fn check(&self, job: &NewJob) -> Result<(), ConfigError> {
        check_job_type(&job.job_type)
            .map_err(|_| ConfigError::InvalidJobType(job.job_type.to_string()))?;
        if let Some(id) = &job.id {
            check_given_job_id(id).map_err(ConfigError::InvalidJobId)?;
        }
        if let Some(key) = &job.concurrency_key {
            check_concurrency_key(key).map_err(|reason| ConfigError::InvalidSetting {
                name: "concurrency_key",
                reason,
            })?;
        }
        if job.payload.len() > self.payload_limit() {
            return Err(ConfigError::PayloadTooLarge {
                size: job.payload.len(),
                limit: self.payload_limit(),
            });
        }
        if job.max_retries > MAX_RETRIES_LIMIT {
            return Err(ConfigError::InvalidSetting {
                name: "max_retries",
                reason: format!(
                    "{} is over the limit of {MAX_RETRIES_LIMIT}",
                    job.max_retries
                ),
            });
        }
        Ok(())
    }

    /// Enqueues `jobs` and returns their ids in order: a fresh job's id is
    /// `<priority>-<entry id>` ([`derived_id`](crate::envelope::derived_id)),
    /// a delayed one's a UUID v7, unless [`NewJob::id`] gives one. A batch
    /// goes in chunks of at most [`CHUNK_JOBS`](crate::batch::CHUNK_JOBS) jobs and about
    /// [`CHUNK_BYTES`](crate::batch::CHUNK_BYTES) (one script call each, `enqueue.lua`: all of a chunk
    /// or none of it), one after the other, so no single call holds Redis
    /// for more than a few milliseconds and neither side builds the whole
    /// batch at once. A given id that exists already fails the chunk
    /// ([`OnDuplicate::Error`]; see [`Queue::enqueue_with`]).
    ///
    /// # Errors
    /// A [`ConfigError`] for an invalid job (nothing is sent).
    /// [`Error::QueueFull`](crate::Error::QueueFull) when the queue's
    /// `max_depth` setting would be passed, and
    /// [`Error::DuplicateJob`](crate::Error::DuplicateJob): nothing of that
    /// chunk is written.
    /// [`Error::PartialBatch`](crate::Error::PartialBatch) when a chunk after the first failed, or a
    /// chunk's reply was lost in a batch of several: it lists the ids known
    /// written, those that may be, and how many were not sent. Otherwise
    /// [`Error::Redis`](crate::Error::Redis): no job of the batch was added,
    /// unless the error is a timeout or a dropped connection, after which
    /// the one chunk may have been. [`Queue::enqueue_keyed`] makes retries safe.
    pub async fn enqueue<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
    ) -> Result<Vec<String>> {
        self.enqueue_batch(conn, jobs, None, OnDuplicate::Error, None)
            .await
    }

    /// As [`Queue::enqueue`], choosing what a given id that exists does.
    ///
    /// # Errors
    /// As [`Queue::enqueue`].
    pub async fn enqueue_with<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
        on_duplicate: OnDuplicate,
    ) -> Result<Vec<String>> {
        self.enqueue_batch(conn, jobs, None, on_duplicate, None)
            .await
    }

    /// As [`Queue::enqueue`], under an idempotency key: calling it again
    /// with the same key and the same jobs in the same order (after an
    /// error, say) writes only the chunks not written before, and returns
    /// the same ids. Ids are derived from the queue, the key and each job's
    /// position (UUID v5), unless a job gives its own. Each chunk is marked
    /// done in the hash `P:{Q}:batch:<key>`, which expires [`BATCH_KEY_TTL`](crate::batch::BATCH_KEY_TTL)
    /// after the batch's last write.
    ///
    /// # Errors
    /// As [`Queue::enqueue`].
    pub async fn enqueue_keyed<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
        key: &BatchKey,
    ) -> Result<Vec<String>> {
        self.enqueue_batch(conn, jobs, Some(key), OnDuplicate::ReturnExisting, None)
            .await
    }

    /// As [`Queue::enqueue_with`] (with `key`, as [`Queue::enqueue_keyed`],
    /// which ignores `on_duplicate`), every job carrying `trace`, the
    /// producer's W3C trace context, as the entry fields `traceparent` and
    /// `tracestate`. Every move of the job keeps them (see
    /// [`TraceContext`]); the broker never reads them.
    ///
    /// # Errors
    /// As [`Queue::enqueue`].
    pub async fn enqueue_traced<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
        key: Option<&BatchKey>,
        on_duplicate: OnDuplicate,
        trace: &TraceContext,
    ) -> Result<Vec<String>> {
        let on_duplicate = match key {
            Some(_) => OnDuplicate::ReturnExisting,
            None => on_duplicate,
        };
        self.enqueue_batch(conn, jobs, key, on_duplicate, Some(trace))
            .await
    }

    async fn enqueue_batch<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
        key: Option<&BatchKey>,
        on_duplicate: OnDuplicate,
        trace: Option<&TraceContext>,
    ) -> Result<Vec<String>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        for job in jobs {
            self.check(job)?;
        }
        // A relative delay is counted from the server's clock: one TIME
        // round trip, only for batches that have one.
        let server = if jobs
            .iter()
            .any(|j| matches!(j.schedule, Schedule::After(d) if !d.is_zero()))
        {
            Some(server_time_ms(conn).await?)
        } else {
            None
        };
        let clocks = Clocks {
            local: now_ms(),
            server,
        };
        // The ids known before the write: given ones, keyed ones (UUID
        // v5), and delayed jobs' (UUID v7); a fresh job's comes back from
        // the write.
        let known: Vec<Option<String>> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| match (&job.id, key) {
                (Some(id), _) => Some(id.clone()),
                (None, Some(k)) => Some(k.job_id(self.name(), i)),
                (None, None) => job
                    .schedule
                    .due_at(clocks.server, clocks.local)
                    .map(|_| uuid::Uuid::now_v7().to_string()),
            })
            .collect();
        let chunks = chunk_ranges(jobs);
        let single = chunks.len() == 1;
        let mut ids: Vec<String> = Vec::with_capacity(jobs.len());
        for (number, range) in chunks.into_iter().enumerate() {
            let chunk = Chunk {
                jobs: &jobs[range.clone()],
                ids: &known[range.clone()],
                number,
                key,
                on_duplicate,
                trace,
            };
            match self.write_chunk(conn, &chunk, clocks).await {
                Ok(written) => ids.extend(written),
                Err(e) => {
                    // Ids so far are known; the rest, where known in
                    // advance, may have been written (a lost reply).
                    let mut all = ids.clone();
                    all.extend(
                        known[range.start..]
                            .iter()
                            .map(|k| k.clone().unwrap_or_default()),
                    );
                    return Err(PartialBatch::of(e, &all, range, single));
                }
            }
        }
        Ok(ids)
    }
}
