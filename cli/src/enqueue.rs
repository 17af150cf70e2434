//! Enqueue a job of any type with a raw JSON payload, as the broker takes
//! it ([`NewJob`]): for operators and scripts that have no Rust job type.

use std::borrow::Cow;
use std::time::Duration;

use ferry_broker::{NewJob, OnDependencyFailure, OnDuplicate, Schedule};
use ferry_queue::Priority;
use serde::Serialize;

use crate::admin::Admin;
use crate::error::{Error, Result};

/// Retries after the first attempt when none is given (as the SDK's
/// `Job::MAX_RETRIES`).
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// A job to enqueue: a type name and a JSON payload, as a worker's handler
/// for that type decodes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawJob {
    /// The job type (chooses the handler).
    pub job_type: String,
    /// The payload, JSON text (checked before anything is sent).
    pub payload: String,
    /// Its priority (normal by default).
    pub priority: Priority,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Run no earlier than this long from now, by the server's clock.
    pub delay: Option<Duration>,
    /// An id of the caller's own, unique in the queue (else Ferry picks one).
    pub id: Option<String>,
    /// How long the finished job's record is kept, in ms, instead of the
    /// queue's retention (0 keeps none).
    pub retention_ms: Option<u64>,
    /// The concurrency key: the job waits while its key's limit of jobs
    /// runs (see `ferry limit --key`).
    pub concurrency_key: Option<String>,
}

impl RawJob {
    /// A job of type `job_type` with `payload`, priority normal, 3
    /// retries, to run now, with an id chosen by Ferry.
    pub fn new(job_type: impl Into<String>, payload: impl Into<String>) -> Self {
        Self {
            job_type: job_type.into(),
            payload: payload.into(),
            priority: Priority::Normal,
            max_retries: DEFAULT_MAX_RETRIES,
            delay: None,
            id: None,
            retention_ms: None,
            concurrency_key: None,
        }
    }
}

/// What [`Admin::enqueue`] (or [`Admin::enqueue_unique`]) did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Enqueued {
    /// The queue.
    pub queue: String,
    /// The new job's id; for a duplicate, the id of the job that holds
    /// the key.
    pub id: String,
    /// A unique job's key (given, or derived from its type and payload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<String>,
    /// Set when no new job was written: a job holding the key exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<crate::unique::DuplicateOf>,
}

/// What [`Admin::enqueue_after`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EnqueuedAfter {
    /// The queue.
    pub queue: String,
    /// The new job's id.
    pub id: String,
    /// How many of its dependencies it waits for (0: they had all
    /// succeeded, and it is queued).
    pub waiting_for: u64,
}

/// Checks that `payload` is one JSON value; returns it without the
/// whitespace around it.
///
/// # Errors
/// [`Error::Input`] saying where the JSON goes wrong.
pub fn check_payload(payload: &str) -> Result<&str> {
    serde_json::from_str::<serde::de::IgnoredAny>(payload)
        .map_err(|e| Error::Input(format!("the payload is not valid JSON: {e}")))?;
    Ok(payload.trim())
}

impl Admin {
    /// Enqueues `job` to `queue`; returns its id. A given id that exists
    /// already is refused (nothing written).
    ///
    /// # Errors
    /// [`Error::Input`] for a payload that is not JSON;
    /// [`Error::Ferry`] for a bad type, id, queue name, oversized payload,
    /// a duplicate id or a full queue; Redis errors.
    pub async fn enqueue(&self, queue: &str, job: RawJob) -> Result<Enqueued> {
        let mut ids = self.enqueue_many(queue, vec![job]).await?;
        let id = ids.pop().ok_or_else(|| {
            self.fail(ferry_broker::Error::Protocol(
                "enqueue returned no id".into(),
            ))
        })?;
        Ok(Enqueued {
            queue: queue.to_owned(),
            id,
            unique_key: None,
            duplicate: None,
        })
    }

    /// Enqueues `jobs` to `queue` in one batch; returns their ids in
    /// order. Every payload is checked before anything is sent; a given
    /// id that exists already is refused.
    ///
    /// # Errors
    /// As [`Admin::enqueue`]; [`Error::Input`] names the job at fault.
    pub async fn enqueue_many(&self, queue: &str, jobs: Vec<RawJob>) -> Result<Vec<String>> {
        self.enqueue_batch(queue, jobs, None).await
    }

    /// As [`Admin::enqueue_many`], under an idempotency key when one is
    /// given: the same batch sent again with the same key (after a lost
    /// reply, say) writes only what was not written before and returns the
    /// same ids, for a day after its last write (see
    /// [`Queue::enqueue_keyed`](ferry_broker::Queue::enqueue_keyed)).
    ///
    /// # Errors
    /// As [`Admin::enqueue_many`]; [`Error::Input`] for a bad key.
    pub async fn enqueue_batch(
        &self,
        queue: &str,
        jobs: Vec<RawJob>,
        idempotency_key: Option<&str>,
    ) -> Result<Vec<String>> {
        let key = idempotency_key
            .map(ferry_broker::batch::BatchKey::new)
            .transpose()
            .map_err(|e| Error::Input(e.to_string()))?;
        let q = self.queue(queue)?;
        let many = jobs.len() > 1;
        let new = jobs
            .into_iter()
            .enumerate()
            .map(|(i, job)| {
                let payload = check_payload(&job.payload)
                    .map_err(|e| match e {
                        Error::Input(m) if many => Error::Input(format!("job {i}: {m}")),
                        other => other,
                    })?
                    .to_owned();
                Ok(NewJob {
                    job_type: Cow::Owned(job.job_type),
                    payload,
                    priority: job.priority,
                    max_retries: job.max_retries,
                    schedule: job.delay.map_or(Schedule::Now, Schedule::After),
                    id: job.id,
                    retention_ms: job.retention_ms,
                    concurrency_key: job.concurrency_key,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        match &key {
            Some(key) => q.enqueue_keyed(&mut conn, &new, key).await,
            None => q.enqueue_with(&mut conn, &new, OnDuplicate::Error).await,
        }
        .map_err(|e| self.fail(e))
    }
}

impl Admin {
    /// Enqueues `job` to `queue` to run after the jobs `dependencies` (ids
    /// in the same queue) succeed, in one atomic step (see
    /// [`Queue::enqueue_after`](ferry_broker::Queue::enqueue_after));
    /// `on_failure` says what a dependency that fails does to it. The job
    /// takes no delay.
    ///
    /// # Errors
    /// As [`Admin::enqueue`]; [`Error::BadDependency`] for a dependency
    /// that is the job itself, does not exist, or failed while
    /// `on_failure` is `fail` (nothing written); [`Error::Ferry`] for no
    /// dependencies, more than 10,000, or a delay.
    pub async fn enqueue_after(
        &self,
        queue: &str,
        job: RawJob,
        dependencies: &[String],
        on_failure: OnDependencyFailure,
    ) -> Result<EnqueuedAfter> {
        let q = self.queue(queue)?;
        let payload = check_payload(&job.payload)?.to_owned();
        let new = NewJob {
            job_type: Cow::Owned(job.job_type),
            payload,
            priority: job.priority,
            max_retries: job.max_retries,
            schedule: job.delay.map_or(Schedule::Now, Schedule::After),
            id: job.id,
            retention_ms: job.retention_ms,
            concurrency_key: job.concurrency_key,
        };
        let mut conn = self.conn();
        let done = q
            .enqueue_after(&mut conn, &new, dependencies, on_failure)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(EnqueuedAfter {
            queue: queue.to_owned(),
            id: done.id,
            waiting_for: done.waiting_for,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_must_be_one_json_value() {
        assert_eq!(check_payload(" {\"a\": 1}\n").unwrap(), "{\"a\": 1}");
        assert_eq!(check_payload("[1,2]").unwrap(), "[1,2]");
        for bad in ["", "{", "{\"a\":}", "1 2", "nope"] {
            let e = check_payload(bad).unwrap_err();
            assert!(
                e.to_string().starts_with("the payload is not valid JSON"),
                "{e}"
            );
        }
    }
}
