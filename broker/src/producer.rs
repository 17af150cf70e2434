//! Enqueue: new jobs into a priority stream (XADD), or into the delayed set
//! (ZADD) when they should run later.

use std::borrow::Cow;

use redis::aio::ConnectionLike;

use crate::envelope::{check_job_type, field, Envelope, MAX_RETRIES_LIMIT};
use crate::error::{ConfigError, Result};
use crate::priority::Priority;
use crate::queue::{now_ms, Queue};

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

/// The Redis server's time in ms since the epoch (TIME).
async fn server_time_ms<C: ConnectionLike + Send>(conn: &mut C) -> Result<u64> {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(secs.saturating_mul(1000).saturating_add(micros / 1000))
}

impl Queue {
    /// Checks `job` and builds its first envelope with a fresh UUID v7 id.
    fn envelope_for(&self, job: &NewJob, now: u64) -> Result<Envelope, ConfigError> {
        self.check(job)?;
        Ok(Envelope {
            id: uuid::Uuid::now_v7().to_string(),
            job_type: job.job_type.to_string(),
            payload: job.payload.clone(),
            attempt: 1,
            max_retries: job.max_retries,
            enqueued_at: now,
            last_error: None,
        })
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

    /// Enqueues `jobs` in one round trip (MULTI/EXEC: all of them or none)
    /// and returns their ids in order.
    ///
    /// # Errors
    /// A [`ConfigError`] for an invalid job (nothing is sent), or
    /// [`Error::Redis`](crate::Error::Redis) when Redis fails; then no job of
    /// the batch was added.
    pub async fn enqueue<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        jobs: &[NewJob],
    ) -> Result<Vec<String>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        // A relative delay is counted from the server's clock: one TIME
        // round trip, only for batches that have one.
        let server_now = if jobs
            .iter()
            .any(|j| matches!(j.schedule, Schedule::After(d) if !d.is_zero()))
        {
            Some(server_time_ms(conn).await?)
        } else {
            None
        };
        let mut pipe = redis::Pipeline::with_capacity(jobs.len());
        if jobs.len() > 1 {
            pipe.atomic();
        }
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job.schedule.due_at(server_now, now) {
                Some(at) => {
                    let env = self.envelope_for(job, now)?;
                    pipe.cmd("ZADD")
                        .arg(self.keys().delayed())
                        .arg(at)
                        .arg(env.to_delayed_member(job.priority))
                        .ignore();
                    ids.push(env.id);
                }
                None => {
                    // The hot path: arguments straight from the job, no
                    // intermediate envelope and no copies of the payload.
                    self.check(job)?;
                    let id = uuid::Uuid::now_v7().to_string();
                    let stream = self.keys().stream(job.priority);
                    // Sized up front: one allocation for the arguments, one
                    // for their bytes, instead of a reallocation per argument.
                    let bytes = 96 + stream.len() + job.job_type.len() + job.payload.len();
                    let mut xadd = redis::Cmd::with_capacity(15, bytes);
                    xadd.arg("XADD")
                        .arg(stream)
                        .arg("*")
                        .arg(field::ID)
                        .arg(&id)
                        .arg(field::TYPE)
                        .arg(job.job_type.as_ref())
                        .arg(field::PAYLOAD)
                        .arg(&job.payload)
                        .arg(field::ATTEMPT)
                        .arg(1u32)
                        .arg(field::MAX_RETRIES)
                        .arg(job.max_retries)
                        .arg(field::ENQUEUED_AT)
                        .arg(now);
                    pipe.add_command(xadd).ignore();
                    ids.push(id);
                }
            }
        }
        pipe.query_async::<()>(conn).await?;
        Ok(ids)
    }
}
