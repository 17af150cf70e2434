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
    /// Run no earlier than this (ms since the epoch); `None` runs it now.
    pub run_at: Option<u64>,
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
        let mut pipe = redis::Pipeline::with_capacity(jobs.len());
        if jobs.len() > 1 {
            pipe.atomic();
        }
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job.run_at {
                Some(at) if at > now => {
                    let env = self.envelope_for(job, now)?;
                    pipe.cmd("ZADD")
                        .arg(self.keys().delayed())
                        .arg(at)
                        .arg(env.to_delayed_member(job.priority))
                        .ignore();
                    ids.push(env.id);
                }
                _ => {
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
