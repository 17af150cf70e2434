//! Enqueue: new jobs into a priority stream (XADD), or into the delayed set
//! (ZADD) when they should run later.

use std::borrow::Cow;
use std::ops::Range;

use redis::aio::ConnectionLike;

use crate::batch::{BatchKey, PartialBatch, BATCH_KEY_TTL, CHUNK_BYTES, CHUNK_JOBS};
use crate::envelope::{check_job_type, field, Envelope, MAX_RETRIES_LIMIT};
use crate::error::{ConfigError, Result};
use crate::priority::Priority;
use crate::queue::{now_ms, Queue};
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

/// Where one job of a batch goes.
enum Placement {
    /// Its priority stream, to run now.
    Stream,
    /// The delayed set, due at `at` (ms), as `member`.
    Delayed { at: u64, member: String },
}

/// The Redis server's time in ms since the epoch (TIME).
async fn server_time_ms<C: ConnectionLike + Send>(conn: &mut C) -> Result<u64> {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(secs.saturating_mul(1000).saturating_add(micros / 1000))
}

impl Queue {
    /// Where `job` (id `id`) goes: its stream, or the delayed set with its
    /// first envelope as the member.
    fn place(&self, job: &NewJob, id: &str, clocks: Clocks) -> Placement {
        match job.schedule.due_at(clocks.server, clocks.local) {
            None => Placement::Stream,
            Some(at) => {
                let env = Envelope {
                    id: id.to_owned(),
                    job_type: job.job_type.to_string(),
                    payload: job.payload.clone(),
                    attempt: 1,
                    max_retries: job.max_retries,
                    enqueued_at: clocks.local,
                    last_error: None,
                };
                Placement::Delayed {
                    at,
                    member: env.to_delayed_member(job.priority),
                }
            }
        }
    }

    /// Checks a job before anything is sent: [`ConfigError::InvalidJobType`],
    /// [`ConfigError::PayloadTooLarge`] or [`ConfigError::InvalidSetting`] for
    /// `max_retries` over the limit.
    fn check(&self, job: &NewJob) -> Result<(), ConfigError> {
        check_job_type(&job.job_type)
            .map_err(|_| ConfigError::InvalidJobType(job.job_type.to_string()))?;
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

    /// Enqueues `jobs` and returns their ids in order. A batch goes in
    /// chunks of at most [`CHUNK_JOBS`] jobs and about [`CHUNK_BYTES`]
    /// (one MULTI/EXEC each, all of a chunk or none of it), one after the
    /// other, so no single transaction holds Redis for more than a few
    /// milliseconds and neither side builds the whole batch at once.
    ///
    /// # Errors
    /// A [`ConfigError`] for an invalid job (nothing is sent).
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
        self.enqueue_batch(conn, jobs, None).await
    }

    /// As [`Queue::enqueue`], under an idempotency key: calling it again
    /// with the same key and the same jobs in the same order (after an
    /// error, say) writes only the chunks not written before, and returns
    /// the same ids. Ids are derived from the queue, the key and each job's
    /// position (UUID v5). Each chunk is one script (`enqueue_keyed.lua`)
    /// that writes it and marks it done in the hash `P:{Q}:batch:<key>`,
    /// which expires [`BATCH_KEY_TTL`] after the batch's last write.
    ///
    /// # Errors
    /// As [`Queue::enqueue`].
    pub async fn enqueue_keyed<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
        key: &BatchKey,
    ) -> Result<Vec<String>> {
        self.enqueue_batch(conn, jobs, Some(key)).await
    }

    async fn enqueue_batch<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
        key: Option<&BatchKey>,
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
        let ids: Vec<String> = match key {
            None => jobs
                .iter()
                .map(|_| uuid::Uuid::now_v7().to_string())
                .collect(),
            Some(k) => (0..jobs.len()).map(|i| k.job_id(self.name(), i)).collect(),
        };
        let chunks = chunk_ranges(jobs);
        let single = chunks.len() == 1;
        for (number, range) in chunks.into_iter().enumerate() {
            let (chunk, chunk_ids) = (&jobs[range.clone()], &ids[range.clone()]);
            let sent = match key {
                None => self.write_chunk(conn, chunk, chunk_ids, clocks).await,
                Some(k) => {
                    self.write_keyed_chunk(conn, chunk, chunk_ids, clocks, k, number)
                        .await
                }
            };
            if let Err(e) = sent {
                return Err(PartialBatch::of(e, &ids, range, single));
            }
        }
        Ok(ids)
    }

    /// One chunk in one round trip: MULTI/EXEC, all of it or none.
    async fn write_chunk<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
        ids: &[String],
        clocks: Clocks,
    ) -> Result<()> {
        let mut pipe = redis::Pipeline::with_capacity(jobs.len());
        if jobs.len() > 1 {
            pipe.atomic();
        }
        for (job, id) in jobs.iter().zip(ids) {
            match self.place(job, id, clocks) {
                Placement::Delayed { at, member } => {
                    pipe.cmd("ZADD")
                        .arg(self.keys().delayed())
                        .arg(at)
                        .arg(member)
                        .ignore();
                }
                Placement::Stream => {
                    pipe.add_command(self.xadd(job, id, clocks.local)).ignore();
                }
            }
        }
        pipe.query_async::<()>(conn).await?;
        Ok(())
    }

    /// The XADD of a job to run now. The hot path: arguments straight from
    /// the job, no intermediate envelope and no copies of the payload.
    fn xadd(&self, job: &NewJob, id: &str, now: u64) -> redis::Cmd {
        let stream = self.keys().stream(job.priority);
        // Sized up front: one allocation for the arguments, one for their
        // bytes, instead of a reallocation per argument.
        let bytes = 96 + stream.len() + job.job_type.len() + job.payload.len();
        let mut xadd = redis::Cmd::with_capacity(15, bytes);
        xadd.arg("XADD").arg(stream).arg("*");
        for (name, value) in job_fields(job, id, now) {
            xadd.arg(name).arg(value);
        }
        xadd
    }

    /// One chunk of a keyed batch: written and marked done in one script,
    /// unless it was marked done before.
    async fn write_keyed_chunk<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
        ids: &[String],
        clocks: Clocks,
        key: &BatchKey,
        number: usize,
    ) -> Result<()> {
        let mut inv = self.invoke(&scripts::ENQUEUE_KEYED);
        inv.key(self.keys().batch(key))
            .arg(number)
            .arg(BATCH_KEY_TTL.as_millis() as u64);
        for (job, id) in jobs.iter().zip(ids) {
            match self.place(job, id, clocks) {
                Placement::Delayed { at, member } => {
                    inv.arg("d").arg(at).arg(member);
                }
                Placement::Stream => {
                    inv.arg("s").arg(job.priority.script_index()).arg(6);
                    for (name, value) in job_fields(job, id, clocks.local) {
                        inv.arg(name).arg(value);
                    }
                }
            }
        }
        let _written: i64 = inv.invoke_async(conn).await?;
        Ok(())
    }
}

/// A new job's stream entry fields, in documented order.
fn job_fields<'a>(job: &'a NewJob, id: &'a str, now: u64) -> [(&'static str, FieldValue<'a>); 6] {
    [
        (field::ID, FieldValue::Str(id)),
        (field::TYPE, FieldValue::Str(job.job_type.as_ref())),
        (field::PAYLOAD, FieldValue::Str(&job.payload)),
        (field::ATTEMPT, FieldValue::Num(1)),
        (
            field::MAX_RETRIES,
            FieldValue::Num(u64::from(job.max_retries)),
        ),
        (field::ENQUEUED_AT, FieldValue::Num(now)),
    ]
}

/// A field value, written without an intermediate string.
enum FieldValue<'a> {
    Str(&'a str),
    Num(u64),
}

impl redis::ToRedisArgs for FieldValue<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        match self {
            FieldValue::Str(s) => s.write_redis_args(out),
            FieldValue::Num(n) => n.write_redis_args(out),
        }
    }
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
