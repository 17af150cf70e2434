//! One job by its id: its status, waiting for it to finish, cancelling it
//! ([`Cancel`]), giving it another priority.

use std::time::Duration;

use ferry_broker::{CancelOutcome, JobState, JobStatus, Priority, Reprioritised};

use super::Client;
use crate::enqueue::EnqueueOptions;
use crate::error::{Error, Result};
use crate::job::Job;
use crate::waiters::Wake;

/// What [`Client::cancel`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// The job is cancelled (it had not started, or was cancelled before).
    Cancelled,
    /// The job is running on `worker`, which was told; it ends cancelled
    /// when its attempt ends.
    Requested {
        /// The worker (consumer name) running it; empty when the
        /// cancellation had been asked before.
        worker: String,
    },
}

impl Client {
    /// The status of job `id` in `queue`: its state, attempts, times,
    /// worker, last error and result (see [`JobStatus`]). One round trip,
    /// O(log n) in the queue's depth.
    ///
    /// # Errors
    /// [`Error::JobNotFound`] when the queue has no such job (or its
    /// record is no longer kept); [`Error::Config`] or [`Error::Redis`].
    pub async fn status(&self, queue_name: &str, id: &str) -> Result<JobStatus> {
        let queue = self.queue(queue_name)?;
        let mut conn = self.conn().await?;
        queue
            .status(&mut conn, id)
            .await
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| Error::JobNotFound {
                queue: queue_name.to_owned(),
                id: id.to_owned(),
            })
    }

    /// Waits until job `id` of `queue` finishes, up to `timeout`, and
    /// returns its final status: `succeeded` with its result, or `dead`
    /// (or `cancelled`) with its error. A job that finished before the call
    /// is answered at once. Event-driven: every wait of this client shares
    /// one Pub/Sub subscription per queue, and nothing polls.
    ///
    /// With the queue's record retention at 0, a finished job's status
    /// holds only its id and state.
    ///
    /// # Errors
    /// [`Error::WaitTimeout`] (naming the job's state then; the job is left
    /// alone); [`Error::JobNotFound`]; [`Error::Config`] or [`Error::Redis`].
    pub async fn wait(&self, queue_name: &str, id: &str, timeout: Duration) -> Result<JobStatus> {
        let queue = self.queue(queue_name)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let channel = queue.keys().finished_channel();
        let mut waiting = tokio::time::timeout(timeout, self.waiters.register(&channel, id))
            .await
            .map_err(|_| Error::WaitTimeout {
                id: id.to_owned(),
                timeout,
                state: JobState::Queued,
            })?
            .map_err(|e| self.fail(e))?;
        let mut heard: Option<JobState> = None;
        loop {
            let mut conn = self.conn().await?;
            let status = queue
                .status(&mut conn, id)
                .await
                .map_err(|e| self.fail(e))?;
            let state = match (status, heard) {
                (Some(s), _) if s.state.is_final() => return Ok(s),
                // Heard it finish, yet it reads otherwise (a dead job
                // replayed at once): this wait is over.
                (Some(_), Some(final_state)) => return Ok(JobStatus::finished(id, final_state)),
                (Some(s), None) => s.state,
                (None, Some(final_state)) => return Ok(JobStatus::finished(id, final_state)),
                (None, None) => {
                    return Err(Error::JobNotFound {
                        queue: queue_name.to_owned(),
                        id: id.to_owned(),
                    })
                }
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match waiting.woken(left).await {
                None => {
                    return Err(Error::WaitTimeout {
                        id: id.to_owned(),
                        timeout,
                        state,
                    })
                }
                Some(Wake::Finished(s)) => heard = Some(s),
                Some(Wake::LookAgain) => {}
            }
            waiting.rearm();
        }
    }

    /// Enqueues one job with `options` and waits for it to finish, up to
    /// `timeout` (see [`Client::wait`]).
    ///
    /// # Errors
    /// As [`Client::enqueue_with`] and [`Client::wait`].
    pub async fn enqueue_and_wait<J: Job>(
        &self,
        job: &J,
        options: EnqueueOptions,
        timeout: Duration,
    ) -> Result<JobStatus> {
        let queue = options.queue_for::<J>().to_owned();
        let id = self.enqueue_with(job, options).await?;
        self.wait(&queue, &id, timeout).await
    }

    /// Cancels job `id` of `queue`. A scheduled, retrying or queued job is
    /// removed at once and recorded `cancelled` ([`Cancel::Cancelled`]). A
    /// running job's handler is told through its
    /// [`JobContext::cancel`](crate::JobContext::cancel) token, on whichever
    /// worker runs it, within about a round trip; the job ends `cancelled`
    /// whatever the handler returns then ([`Cancel::Requested`]; use
    /// [`Client::wait`] to see it end). Cancelling a cancelled job again
    /// is `Ok`.
    ///
    /// # Errors
    /// [`Error::NotCancellable`] for a job that succeeded or is dead;
    /// [`Error::JobNotFound`]; [`Error::Config`] or [`Error::Redis`].
    pub async fn cancel(&self, queue_name: &str, id: &str) -> Result<Cancel> {
        let queue = self.queue(queue_name)?;
        let mut conn = self.conn().await?;
        match queue
            .cancel(&mut conn, id)
            .await
            .map_err(|e| self.fail(e))?
        {
            CancelOutcome::Cancelled | CancelOutcome::Final(JobState::Cancelled) => {
                Ok(Cancel::Cancelled)
            }
            CancelOutcome::Cancelling { worker } => Ok(Cancel::Requested { worker }),
            CancelOutcome::Final(state) => Err(Error::NotCancellable {
                id: id.to_owned(),
                state,
            }),
            CancelOutcome::NotFound => Err(Error::JobNotFound {
                queue: queue_name.to_owned(),
                id: id.to_owned(),
            }),
        }
    }

    /// Gives waiting job `id` of `queue` the priority `priority`,
    /// atomically, keeping its id: a queued job becomes the newest of its
    /// new priority; a scheduled or retrying one is queued at it when due.
    ///
    /// # Errors
    /// [`Error::NotWaiting`] for a job running or finished;
    /// [`Error::JobNotFound`]; [`Error::Config`] or [`Error::Redis`].
    pub async fn reprioritise(&self, queue_name: &str, id: &str, priority: Priority) -> Result<()> {
        let queue = self.queue(queue_name)?;
        let mut conn = self.conn().await?;
        match queue
            .reprioritise(&mut conn, id, priority)
            .await
            .map_err(|e| self.fail(e))?
        {
            Reprioritised::Moved | Reprioritised::Unchanged => Ok(()),
            Reprioritised::NotWaiting(state) => Err(Error::NotWaiting {
                id: id.to_owned(),
                state,
            }),
            Reprioritised::NotFound => Err(Error::JobNotFound {
                queue: queue_name.to_owned(),
                id: id.to_owned(),
            }),
        }
    }
}
