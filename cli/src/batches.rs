//! Batches from JSON: a group of jobs enqueued together under an id, with
//! callbacks enqueued when the batch is done
//! ([`Queue::create_batch`](ferry_broker::Queue::create_batch)), jobs
//! added to an open batch later, and the batch's status and jobs. The same
//! shapes are the bodies of `POST /v1/queues/{queue}/batches` (and
//! `.../batches/{id}/jobs`) and the files of `ferry batch create` (and
//! `ferry batch add`).
//!
//! Also the flow graph of a flow's root
//! ([`Queue::flow`](ferry_broker::Queue::flow)), for `GET
//! /v1/queues/{queue}/flows/{root}` and `ferry flow show`.

use std::borrow::Cow;

use ferry_broker::{BatchStatus, CreatedBatch, FlowGraph, NewBatch, NewJob, Schedule};
use ferry_queue::{JobState, Priority};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::admin::Admin;
use crate::enqueue::DEFAULT_MAX_RETRIES;
use crate::error::{Error, Result};
use crate::serve::routes::jobs::whole;

/// Batches a list shows when not told (`?limit=`, `--limit`).
pub const DEFAULT_BATCH_LIST: usize = 50;
/// Most batches a list shows.
pub const MAX_BATCH_LIST: usize = 1000;
/// Jobs of a batch a page shows when not told (`?count=`).
pub const DEFAULT_BATCH_PAGE: usize = 100;
/// Most jobs of a batch a page shows.
pub const MAX_BATCH_PAGE: usize = 1000;

/// One job of a batch (or a batch's callback): the jobs route's body
/// without a delay, uniqueness or dependencies.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchJobRequest {
    /// The job type: chooses the worker's handler (1 to 128 bytes, no
    /// control characters).
    #[serde(rename = "type")]
    #[schema(pattern = "^[ -~]{1,128}$")]
    pub job_type: String,
    /// The payload, any JSON value, as the handler decodes it.
    pub payload: serde_json::Value,
    /// critical, high, normal (the default) or low.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Retries after the first attempt (3 by default).
    #[serde(default, deserialize_with = "whole::opt_u32")]
    #[schema(maximum = 10_000)]
    pub max_retries: Option<u32>,
    /// An id of your own, unique in the queue (409 if it exists): 1 to 128
    /// of `A-Z a-z 0-9 . _ : -`, not of the form `<priority>-<ms>-<seq>`
    /// Ferry gives its own. A new UUID v7 otherwise.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub id: Option<String>,
    /// Keep the finished job's record this long (ms) instead of the
    /// queue's retention; 0 keeps none.
    #[serde(default, deserialize_with = "whole::opt_u64")]
    pub retention_ms: Option<u64>,
    /// A concurrency key: the job waits (state `waiting`) while its key's
    /// limit of jobs holds a slot.
    #[serde(default)]
    pub concurrency_key: Option<String>,
}

impl BatchJobRequest {
    /// The broker's job (queued at once: a batch's jobs take no delay).
    pub fn into_new_job(self) -> NewJob {
        NewJob {
            job_type: Cow::Owned(self.job_type),
            payload: self.payload.to_string(),
            priority: self.priority.unwrap_or_default(),
            max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            schedule: Schedule::Now,
            id: self.id,
            retention_ms: self.retention_ms,
            concurrency_key: self.concurrency_key,
        }
    }
}

/// A batch to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBatchRequest {
    /// Its id (as a job id: 1 to 128 of `A-Z a-z 0-9 . _ : -`; 409
    /// `batch_exists` if the queue has it); a new UUID v7 otherwise.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub id: Option<String>,
    /// What it is, for operators.
    #[serde(default)]
    pub description: Option<String>,
    /// Its jobs, one or more, queued at once.
    #[schema(min_items = 1, max_items = 10_000)]
    pub jobs: Vec<BatchJobRequest>,
    /// Enqueued once every job of the batch has succeeded.
    #[serde(default)]
    pub on_success: Option<BatchJobRequest>,
    /// Enqueued once every job of the batch has finished, whatever the
    /// outcome.
    #[serde(default)]
    pub on_complete: Option<BatchJobRequest>,
}

impl NewBatchRequest {
    /// The broker's batch.
    pub fn into_new_batch(self) -> NewBatch {
        NewBatch {
            id: self.id,
            description: self.description,
            jobs: self
                .jobs
                .into_iter()
                .map(BatchJobRequest::into_new_job)
                .collect(),
            on_success: self.on_success.map(BatchJobRequest::into_new_job),
            on_complete: self.on_complete.map(BatchJobRequest::into_new_job),
        }
    }
}

/// Jobs to add to an open batch.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddToBatchRequest {
    /// The jobs, one or more, queued at once.
    #[schema(min_items = 1, max_items = 10_000)]
    pub jobs: Vec<BatchJobRequest>,
}

impl AddToBatchRequest {
    /// The broker's jobs.
    pub fn into_new_jobs(self) -> Vec<NewJob> {
        self.jobs
            .into_iter()
            .map(BatchJobRequest::into_new_job)
            .collect()
    }
}

/// What [`Admin::create_batch`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct BatchCreated {
    /// The queue.
    pub queue: String,
    /// The batch's id.
    pub id: String,
    /// Its jobs' ids, in order.
    pub jobs: Vec<String>,
    /// The on-success callback's job id (enqueued when due).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_success: Option<String>,
    /// The on-complete callback's job id (enqueued when due).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_complete: Option<String>,
}

/// What [`Admin::add_to_batch`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct BatchAdded {
    /// The queue.
    pub queue: String,
    /// The batch.
    pub batch: String,
    /// The new jobs' ids, in order.
    pub ids: Vec<String>,
}

/// One job of a batch, with its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct BatchJob {
    /// The job's id.
    pub id: String,
    /// Where it is; `null` once its record is no longer kept.
    pub state: Option<JobState>,
    /// Its type, where known.
    pub job_type: Option<String>,
}

/// A page of a batch's jobs ([`Admin::batch_jobs`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct BatchJobs {
    /// Where the next page starts (`?cursor=`); 0 when this is the last.
    pub next_cursor: u64,
    /// The jobs of this page (in no particular order).
    pub jobs: Vec<BatchJob>,
}

/// Reads `text` as a `T`, naming the field at fault as the API does.
fn decode<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            Error::Input(format!("the {what} is not valid: {inner}"))
        } else {
            Error::Input(format!("field `{path}`: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| Error::Input(format!("the {what} is not valid: {e}")))?;
    Ok(value)
}

/// Reads a batch (the body of `POST /v1/queues/{queue}/batches`) from JSON
/// text.
///
/// # Errors
/// [`Error::Input`] naming the field at fault (`jobs[1].priority`).
pub fn parse_batch(text: &str) -> Result<NewBatch> {
    decode::<NewBatchRequest>(text, "batch").map(NewBatchRequest::into_new_batch)
}

/// Reads jobs to add to a batch (the body of `POST
/// /v1/queues/{queue}/batches/{id}/jobs`: `{"jobs": [...]}`) from JSON
/// text.
///
/// # Errors
/// [`Error::Input`] naming the field at fault.
pub fn parse_jobs(text: &str) -> Result<Vec<NewJob>> {
    decode::<AddToBatchRequest>(text, "body").map(AddToBatchRequest::into_new_jobs)
}

impl Admin {
    /// Creates `batch` in `queue` in one atomic step, all or none (see
    /// [`Queue::create_batch`](ferry_broker::Queue::create_batch)).
    ///
    /// # Errors
    /// [`Error::Ferry`] for a batch id in use (`BatchExists`), a job id in
    /// use (`DuplicateJob`), a full queue, a bad job, no jobs or too many;
    /// Redis errors. Nothing is written then.
    pub async fn create_batch(&self, queue: &str, batch: &NewBatch) -> Result<BatchCreated> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let CreatedBatch {
            id,
            jobs,
            on_success,
            on_complete,
        } = q
            .create_batch(&mut conn, batch)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(BatchCreated {
            queue: queue.to_owned(),
            id,
            jobs,
            on_success,
            on_complete,
        })
    }

    /// Adds `jobs` to the open batch `batch` of `queue`, all or none.
    ///
    /// # Errors
    /// [`Error::Ferry`] with `BatchNotFound` or `BatchClosed`; otherwise as
    /// [`Admin::create_batch`].
    pub async fn add_to_batch(
        &self,
        queue: &str,
        batch: &str,
        jobs: &[NewJob],
    ) -> Result<BatchAdded> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let ids = q
            .add_to_batch(&mut conn, batch, jobs)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(BatchAdded {
            queue: queue.to_owned(),
            batch: batch.to_owned(),
            ids,
        })
    }

    /// Batch `id` of `queue`: its state, counts, times and callbacks.
    ///
    /// # Errors
    /// [`Error::Ferry`] with `BatchNotFound` (never created, or expired);
    /// a bad queue name; Redis errors.
    pub async fn batch(&self, queue: &str, id: &str) -> Result<BatchStatus> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        q.batch(&mut conn, id)
            .await
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| {
                self.fail(ferry_broker::Error::BatchNotFound {
                    queue: queue.to_owned(),
                    batch: id.to_owned(),
                })
            })
    }

    /// `queue`'s batches, newest first, at most `limit` (those kept: open,
    /// or finished within the record retention).
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn batches(&self, queue: &str, limit: usize) -> Result<Vec<BatchStatus>> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        q.batches(&mut conn, limit.clamp(1, MAX_BATCH_LIST))
            .await
            .map_err(|e| self.fail(e))
    }

    /// A page of batch `id`'s jobs with their states: about `count` from
    /// `cursor` (0 to start; the `next_cursor` of the page before).
    ///
    /// # Errors
    /// [`Error::Ferry`] with `BatchNotFound`; a bad queue name; Redis
    /// errors.
    pub async fn batch_jobs(
        &self,
        queue: &str,
        id: &str,
        cursor: u64,
        count: usize,
    ) -> Result<BatchJobs> {
        // Checked first: an unknown batch is not an empty one.
        self.batch(queue, id).await?;
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let (next_cursor, ids) = q
            .batch_jobs(&mut conn, id, cursor, count.clamp(1, MAX_BATCH_PAGE))
            .await
            .map_err(|e| self.fail(e))?;
        Ok(BatchJobs {
            next_cursor,
            jobs: self.job_states(queue, ids).await?,
        })
    }

    /// Jobs `ids` of `queue` with their states and types (one pipeline
    /// per 500).
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn job_states(&self, queue: &str, ids: Vec<String>) -> Result<Vec<BatchJob>> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let statuses = q
            .statuses(&mut conn, &ids)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(ids
            .into_iter()
            .zip(statuses)
            .map(|(id, st)| BatchJob {
                id,
                state: st.as_ref().map(|s| s.state),
                job_type: st.and_then(|s| s.job_type),
            })
            .collect())
    }

    /// The flow whose root is `root` in `queue`: every job with its parent,
    /// depth and state, parents first; `None` for no such flow (never
    /// enqueued, or expired).
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn flow(&self, queue: &str, root: &str) -> Result<Option<FlowGraph>> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        q.flow(&mut conn, root).await.map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_read_with_its_callbacks() {
        let b = parse_batch(
            r#"{"id": "b", "description": "d", "jobs": [{"type": "t", "payload": {"n": 1}, "priority": "high", "max_retries": 1.0}],
                "on_success": {"type": "s", "payload": null, "id": "b-ok"}}"#,
        )
        .unwrap();
        assert_eq!(b.id.as_deref(), Some("b"));
        assert_eq!(b.jobs.len(), 1);
        assert_eq!(b.jobs[0].payload, r#"{"n":1}"#);
        assert_eq!(b.jobs[0].priority, Priority::High);
        assert_eq!(b.jobs[0].max_retries, 1);
        assert_eq!(
            b.on_success.as_ref().and_then(|j| j.id.as_deref()),
            Some("b-ok")
        );
        assert!(b.on_complete.is_none());
    }

    #[test]
    fn bad_batches_are_named_by_their_field() {
        for (text, says) in [
            (
                r#"{"jobs": [{"type": "t"}]}"#,
                "field `jobs[0]`: missing field `payload`",
            ),
            (
                r#"{"jobs": [{"type": "t", "payload": 1, "delay_ms": 5}]}"#,
                "field `jobs[0].delay_ms`: unknown field `delay_ms`",
            ),
            (
                r#"{"jobs": [], "on_success": {"type": "t", "payload": 1, "priority": "urgent"}}"#,
                "field `on_success.priority`: unknown variant `urgent`",
            ),
            (
                r#"{"id": "b"}"#,
                "the batch is not valid: missing field `jobs`",
            ),
            (r#"{"jobs": []} x"#, "the batch is not valid: trailing"),
        ] {
            let e = parse_batch(text).unwrap_err().to_string();
            assert!(e.contains(says), "{says:?} not in {e:?}");
        }
        let e = parse_jobs(r#"{"jobs": [{"payload": 1}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `jobs[0]`: missing field `type`"), "{e}");
    }
}
