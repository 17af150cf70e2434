//! One job by id: show, wait, cancel, retry, re-prioritise.

use std::time::Duration;

use ferry_broker::{JobPage, ListState};
use ferry_queue::{Cancel, JobState, JobStatus, Priority};
use serde::Serialize;

use crate::admin::Admin;
use crate::error::{Error, Result};

/// What [`Admin::cancel`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Cancelled {
    /// The job id.
    pub id: String,
    /// `cancelled` (it had not started, or was cancelled before), or
    /// `running` while its handler is told.
    pub state: JobState,
    /// True when the job runs and its worker was asked to stop it.
    pub cancel_requested: bool,
    /// The worker running it (when `cancel_requested`, and known).
    pub worker: Option<String>,
}

/// What [`Admin::retry`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Retried {
    /// The job id (kept).
    pub id: String,
    /// Now `queued`.
    pub state: JobState,
    /// The dead-letter entry it was.
    pub dead_entry: String,
    /// Its new entry in its priority stream.
    pub entry_id: String,
}

/// What [`Admin::reprioritise`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reprioritised {
    /// The job id (kept).
    pub id: String,
    /// Its priority now.
    pub priority: Priority,
}

impl Admin {
    /// One page of `queue`'s jobs in `state` (see
    /// [`Queue::jobs`](ferry_broker::Queue::jobs)): up to `limit` from
    /// `cursor`, the `next` of the page before.
    ///
    /// # Errors
    /// A bad queue name, limit or cursor; Redis errors.
    pub async fn list_jobs(
        &self,
        queue: &str,
        state: ListState,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<JobPage> {
        let q = self.queue(queue)?;
        q.jobs(&mut self.conn(), state, cursor, limit)
            .await
            .map_err(|e| self.fail(e))
    }

    /// The status of job `id` of `queue`: state, priority, attempts,
    /// times, worker, last error, result, progress.
    ///
    /// # Errors
    /// [`Error::JobNotFound`]; Redis errors.
    pub async fn show(&self, queue: &str, id: &str) -> Result<JobStatus> {
        self.client()
            .status(queue, id)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Waits until job `id` finishes (succeeded, dead or cancelled), at
    /// most `timeout`, and returns its final status. Event-driven (Pub/Sub).
    ///
    /// # Errors
    /// [`Error::WaitTimeout`] naming the job's state then;
    /// [`Error::JobNotFound`]; Redis errors.
    pub async fn wait(&self, queue: &str, id: &str, timeout: Duration) -> Result<JobStatus> {
        self.client()
            .wait(queue, id, timeout)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Cancels job `id`: a scheduled, retrying or queued job is removed at
    /// once and recorded cancelled; a running job's handler is told (it
    /// ends cancelled when its attempt ends). Cancelling again is fine.
    ///
    /// # Errors
    /// [`Error::Ferry`] for a job that succeeded or is dead;
    /// [`Error::JobNotFound`]; Redis errors.
    pub async fn cancel(&self, queue: &str, id: &str) -> Result<Cancelled> {
        let done = self
            .client()
            .cancel(queue, id)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(match done {
            Cancel::Cancelled => Cancelled {
                id: id.to_owned(),
                state: JobState::Cancelled,
                cancel_requested: false,
                worker: None,
            },
            Cancel::Requested { worker } => Cancelled {
                id: id.to_owned(),
                state: JobState::Running,
                cancel_requested: true,
                worker: (!worker.is_empty()).then_some(worker),
            },
        })
    }

    /// Retries dead job `id`: its dead letter goes back to its priority
    /// stream as attempt 1, keeping its id, type, payload, priority and
    /// retries (`replay.lua`, atomic). Only a dead job can be retried: a
    /// retrying one runs again by itself when its backoff ends, and a
    /// succeeded or cancelled one has no payload left to run (its record
    /// keeps its result, not its input).
    ///
    /// # Errors
    /// [`Error::NotRetryable`] for a job that is not dead;
    /// [`Error::JobNotFound`]; [`Error::DeadLetterNotFound`] when its dead
    /// letter went meanwhile (replayed or purged by someone else); Redis
    /// errors.
    pub async fn retry(&self, queue: &str, id: &str) -> Result<Retried> {
        let status = self.show(queue, id).await?;
        let dead_entry = match (status.state, status.entry_id) {
            (JobState::Dead, Some(entry)) => entry,
            (state, _) => {
                return Err(Error::NotRetryable {
                    id: id.to_owned(),
                    state,
                })
            }
        };
        let entry_id = self
            .client()
            .replay_dead(queue, &dead_entry)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Retried {
            id: id.to_owned(),
            state: JobState::Queued,
            dead_entry,
            entry_id,
        })
    }

    /// Gives waiting job `id` (scheduled, retrying or queued) the priority
    /// `priority`, atomically, keeping its id.
    ///
    /// # Errors
    /// [`Error::Ferry`] for a job running or finished;
    /// [`Error::JobNotFound`]; Redis errors.
    pub async fn reprioritise(
        &self,
        queue: &str,
        id: &str,
        priority: Priority,
    ) -> Result<Reprioritised> {
        self.client()
            .reprioritise(queue, id, priority)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Reprioritised {
            id: id.to_owned(),
            priority,
        })
    }
}
