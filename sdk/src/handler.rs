//! The handler trait and the context a handler gets.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ferry_broker::Priority;
use tokio_util::sync::CancellationToken;

use crate::error::JobError;
use crate::job::Job;

/// Runs jobs of one type.
///
/// ```
/// use async_trait::async_trait;
/// use ferry::{Handler, Job, JobContext, JobError};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct SendWelcome { to: String }
/// # impl Job for SendWelcome { const TYPE: &'static str = "send_welcome"; }
///
/// struct Welcomer;
///
/// #[async_trait]
/// impl Handler for Welcomer {
///     type Job = SendWelcome;
///     async fn handle(&self, job: SendWelcome, ctx: JobContext) -> Result<(), JobError> {
///         if job.to.is_empty() {
///             return Err(JobError::permanent("no recipient"));
///         }
///         println!("attempt {} of job {}: welcome {}", ctx.attempt, ctx.job_id, job.to);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The job type this handler runs.
    type Job: Job;

    /// Runs one attempt. `Ok` acknowledges the job; a retryable error
    /// schedules the next attempt with backoff; a permanent one dead-letters it.
    /// A panic counts as a retryable failure.
    async fn handle(&self, job: Self::Job, ctx: JobContext) -> Result<(), JobError>;
}

/// What a handler knows about the job it runs.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// The job id (UUID v7), the same across attempts.
    pub job_id: String,
    /// This attempt, from 1.
    pub attempt: u32,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// The queue it came from.
    pub queue: String,
    /// Its priority.
    pub priority: Priority,
    /// When it was first enqueued, ms since the epoch.
    pub enqueued_at: u64,
    /// The error of the previous attempt, on a retry.
    pub last_error: Option<String>,
    /// Cancelled when the worker starts shutting down. The job may still
    /// finish within the grace period; past it, it is dropped and left
    /// pending for another worker.
    pub shutdown: CancellationToken,
}

/// A handler with its job type erased, so handlers of many types share a map.
#[async_trait]
pub(crate) trait ErasedHandler: Send + Sync {
    async fn call(&self, payload: &str, ctx: JobContext) -> Result<(), JobError>;
}

struct Typed<H>(H);

#[async_trait]
impl<H: Handler> ErasedHandler for Typed<H> {
    async fn call(&self, payload: &str, ctx: JobContext) -> Result<(), JobError> {
        let job: H::Job = serde_json::from_str(payload).map_err(|e| {
            JobError::permanent(format!(
                "payload is not a valid `{}` job: {e}",
                <H::Job as Job>::TYPE
            ))
        })?;
        self.0.handle(job, ctx).await
    }
}

/// Handlers by job type.
pub(crate) type Registry = HashMap<&'static str, Arc<dyn ErasedHandler>>;

pub(crate) fn erase<H: Handler>(handler: H) -> (&'static str, Arc<dyn ErasedHandler>) {
    (<H::Job as Job>::TYPE, Arc::new(Typed(handler)))
}
