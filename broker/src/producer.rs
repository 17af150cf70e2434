//! Enqueue: new jobs into a priority stream (XADD), or into the delayed set
//! (ZADD) when they should run later, a chunk at a time in `enqueue.lua`,
//! which checks given ids and the queue's maximum depth first.

use std::borrow::Cow;
use std::ops::Range;

use redis::aio::ConnectionLike;

use redis::Value;

use crate::batch::{BatchKey, PartialBatch, BATCH_KEY_TTL, CHUNK_BYTES, CHUNK_JOBS};
use crate::envelope::{
    check_given_job_id, check_job_type, derived_id, Envelope, TraceContext, MAX_RETRIES_LIMIT,
};
use crate::error::{ConfigError, Error, Result};
use crate::priority::Priority;
use crate::queue::{now_ms, Queue};
use crate::reply;
use crate::scripts;

/// Bytes a job takes in a chunk besides its type and payload.
const JOB_OVERHEAD: usize = 128;

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
    fn due_at(self, server_now: Option<u64>, local_now: u64) -> Option<u64> {
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

/// The clocks a batch is scheduled by: this host's (for enqueued_at and
/// absolute run-at times) and, when the batch has a relative delay, the
/// server's.
#[derive(Clone, Copy)]
struct Clocks {
    local: u64,
    server: Option<u64>,
}

/// What an enqueue does with a job whose id already exists (see
/// [`NewJob::id`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDuplicate {
    /// Fail with [`Error::DuplicateJob`]; nothing
    /// of the chunk is written.
    #[default]
    Error,
    /// Leave the existing job alone and return its id as if enqueued.
    ReturnExisting,
}

/// The server's time in ms since the epoch (TIME).
async fn server_time_ms<C: ConnectionLike + Send>(conn: &mut C) -> Result<u64> {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(secs.saturating_mul(1000).saturating_add(micros / 1000))
}

impl Queue {
    /// Checks a job before anything is sent: [`ConfigError::InvalidJobType`],
    /// [`ConfigError::PayloadTooLarge`], [`ConfigError::InvalidJobId`], or
    /// [`ConfigError::InvalidSetting`] for `max_retries` over the limit.
    fn check(&self, job: &NewJob) -> Result<(), ConfigError> {
        check_job_type(&job.job_type)
            .map_err(|_| ConfigError::InvalidJobType(job.job_type.to_string()))?;
        if let Some(id) = &job.id {
            check_given_job_id(id).map_err(ConfigError::InvalidJobId)?;
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
    /// `<priority>-<entry id>` ([`derived_id`]),
    /// a delayed one's a UUID v7, unless [`NewJob::id`] gives one. A batch
    /// goes in chunks of at most [`CHUNK_JOBS`] jobs and about
    /// [`CHUNK_BYTES`] (one script call each, `enqueue.lua`: all of a chunk
    /// or none of it), one after the other, so no single call holds Redis
    /// for more than a few milliseconds and neither side builds the whole
    /// batch at once. A given id that exists already fails the chunk
    /// ([`OnDuplicate::Error`]; see [`Queue::enqueue_with`]).
    ///
    /// # Errors
    /// A [`ConfigError`] for an invalid job (nothing is sent).
    /// [`Error::QueueFull`] when the queue's
    /// `max_depth` setting would be passed, and
    /// [`Error::DuplicateJob`]: nothing of that
    /// chunk is written.
    /// [`Error::PartialBatch`] when a chunk after the first failed, or a
    /// chunk's reply was lost in a batch of several: it lists the ids known
    /// written, those that may be, and how many were not sent. Otherwise
    /// [`Error::Redis`]: no job of the batch was added,
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
    /// done in the hash `P:{Q}:batch:<key>`, which expires [`BATCH_KEY_TTL`]
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

    /// One chunk in one script call (`enqueue.lua`): all of it or none.
    /// Returns the ids of its jobs.
    async fn write_chunk<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        chunk: &Chunk<'_>,
        clocks: Clocks,
    ) -> Result<Vec<String>> {
        let mut inv = self.invoke(&scripts::ENQUEUE);
        if let Some(k) = chunk.key {
            // KEYS[18], after the queue's 17.
            inv.key(self.keys().batch(k));
        }
        inv.arg(match chunk.on_duplicate {
            OnDuplicate::Error => "error",
            OnDuplicate::ReturnExisting => "existing",
        })
        .arg(chunk.number)
        .arg(BATCH_KEY_TTL.as_millis() as u64)
        .arg(clocks.local)
        // Jobs whose ids are checked for duplicates: given or keyed ones
        // (a delayed job's fresh UUID v7 needs no check).
        .arg(
            chunk
                .jobs
                .iter()
                .filter(|j| j.id.is_some() || chunk.key.is_some())
                .count(),
        );
        for (job, id) in chunk.jobs.iter().zip(chunk.ids) {
            match job.schedule.due_at(clocks.server, clocks.local) {
                Some(at) => {
                    let id = id.as_deref().unwrap_or_default();
                    let env = Envelope {
                        id: id.to_owned(),
                        job_type: job.job_type.to_string(),
                        payload: job.payload.clone(),
                        attempt: 1,
                        max_retries: job.max_retries,
                        enqueued_at: clocks.local,
                        last_error: None,
                        retention_ms: job.retention_ms,
                    };
                    inv.arg("d")
                        .arg(at)
                        .arg(id)
                        .arg(env.to_delayed_member_traced(job.priority, chunk.trace));
                }
                // With a trace context: 't', retention ('' for the
                // queue's), traceparent, tracestate ('' for none).
                None if chunk.trace.is_some() => {
                    let trace = chunk.trace;
                    inv.arg("t")
                        .arg(job.priority.script_index())
                        .arg(id.as_deref().unwrap_or_default())
                        .arg(job.job_type.as_ref())
                        .arg(&job.payload)
                        .arg(job.max_retries)
                        .arg(
                            job.retention_ms
                                .map(|ms| ms.to_string())
                                .unwrap_or_default(),
                        )
                        .arg(trace.map(TraceContext::traceparent).unwrap_or_default())
                        .arg(trace.and_then(TraceContext::tracestate).unwrap_or_default());
                }
                // A job with an id of its own carries it and its enqueue
                // time; a fresh one is named by its entry.
                None => {
                    inv.arg(if job.retention_ms.is_some() { "r" } else { "s" })
                        .arg(job.priority.script_index())
                        .arg(id.as_deref().unwrap_or_default())
                        .arg(job.job_type.as_ref())
                        .arg(&job.payload)
                        .arg(job.max_retries);
                    if let Some(ms) = job.retention_ms {
                        inv.arg(ms);
                    }
                }
            }
        }
        let reply: Value = inv.invoke_async(conn).await?;
        self.chunk_reply(reply, chunk)
    }

    /// The ids from `enqueue.lua`'s reply, or its refusal as an error.
    fn chunk_reply(&self, reply: Value, chunk: &Chunk<'_>) -> Result<Vec<String>> {
        let bad = |v: &Value| Error::Protocol(format!("enqueue: {v:?}"));
        let items = reply::array(&reply).ok_or_else(|| bad(&reply))?;
        let tag = items
            .first()
            .and_then(reply::string)
            .ok_or_else(|| bad(&reply))?;
        match (tag.as_str(), items) {
            ("ok", [_, ids, ..]) => {
                let items = reply::array(ids).ok_or_else(|| bad(&reply))?;
                if items.len() != chunk.jobs.len() {
                    return Err(bad(&reply));
                }
                // A fresh job comes back as its entry id: its job id is
                // derived from it (the script builds no string per job).
                items
                    .iter()
                    .zip(chunk.jobs.iter().zip(chunk.ids))
                    .map(|(v, (job, known))| {
                        let text = reply::string(v).ok_or_else(|| bad(&reply))?;
                        Ok(match known {
                            Some(_) => text,
                            None => derived_id(job.priority, &text),
                        })
                    })
                    .collect()
            }
            ("done", _) => chunk
                .ids
                .iter()
                .map(|id| id.clone().ok_or_else(|| bad(&reply)))
                .collect(),
            ("duplicate", [_, id]) => Err(Error::DuplicateJob {
                queue: self.name().to_owned(),
                id: reply::string(id).unwrap_or_default(),
            }),
            ("full", [_, depth, max]) => Err(Error::QueueFull {
                queue: self.name().to_owned(),
                depth: reply::count(depth)?,
                max_depth: reply::count(max)?,
            }),
            _ => Err(bad(&reply)),
        }
    }
}

/// One chunk of a batch, as `enqueue.lua` writes it.
struct Chunk<'a> {
    jobs: &'a [NewJob],
    /// Ids known before the write (`None` for a fresh job).
    ids: &'a [Option<String>],
    number: usize,
    key: Option<&'a BatchKey>,
    on_duplicate: OnDuplicate,
    /// The producer's trace context, carried by every job of the chunk.
    trace: Option<&'a TraceContext>,
}

/// Splits a batch into chunks of at most [`CHUNK_JOBS`] jobs and about
/// [`CHUNK_BYTES`] (at least one job each).
fn chunk_ranges(jobs: &[NewJob]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, job) in jobs.iter().enumerate() {
        let size = JOB_OVERHEAD + job.job_type.len() + job.payload.len();
        if i > start && (i - start >= CHUNK_JOBS || bytes + size > CHUNK_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    out.push(start..jobs.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(payload: usize) -> NewJob {
        NewJob {
            job_type: "t".into(),
            payload: "x".repeat(payload),
            priority: Priority::Normal,
            max_retries: 0,
            schedule: Schedule::Now,
            id: None,
            retention_ms: None,
        }
    }

    #[test]
    fn batches_are_chunked_by_count_and_by_bytes() {
        let small: Vec<NewJob> = (0..2500).map(|_| job(10)).collect();
        assert_eq!(chunk_ranges(&small), [0..1000, 1000..2000, 2000..2500]);
        let big: Vec<NewJob> = (0..10).map(|_| job(1024 * 1024)).collect();
        let chunks = chunk_ranges(&big);
        assert_eq!(chunks.len(), 4, "{chunks:?}");
        assert!(chunks.iter().all(|r| !r.is_empty()));
        let huge = vec![job(CHUNK_BYTES * 2)];
        assert_eq!(
            chunk_ranges(&huge),
            vec![0..1],
            "a job alone even when over"
        );
    }
}
