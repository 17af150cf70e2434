//! Handlers: the [`Handler`] trait, closure handlers, and the context a
//! handler gets. Handlers are written with plain `async fn`; the worker boxes
//! their futures where it erases their types.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use ferry_broker::Priority;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::JobError;
use crate::job::Job;

/// Runs jobs of one type.
///
/// `Ok` acknowledges the job (its output is the job's result); a retryable
/// error schedules the next attempt with backoff; a permanent one
/// dead-letters it. A panic or a timeout counts as a retryable failure.
///
/// ```
/// use ferry_queue::{Handler, Job, JobContext, JobError};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct SendWelcome { to: String }
/// # impl Job for SendWelcome { const TYPE: &'static str = "send_welcome"; }
///
/// struct Welcomer;
///
/// impl Handler for Welcomer {
///     type Job = SendWelcome;
///     type Output = ();
///     async fn handle(&self, job: SendWelcome, ctx: JobContext) -> Result<(), JobError> {
///         if job.to.is_empty() {
///             return Err(JobError::permanent("no recipient"));
///         }
///         println!("attempt {} of job {}: welcome {}", ctx.attempt, ctx.job_id, job.to);
///         Ok(())
///     }
/// }
/// ```
///
/// For a handler without state, a closure does the same:
/// [`WorkerBuilder::handle`](crate::WorkerBuilder::handle).
pub trait Handler: Send + Sync + 'static {
    /// The job type this handler runs.
    type Job: Job;
    /// What a successful run returns: the job's result (any serde value;
    /// `()` for none).
    type Output: Serialize + Send + 'static;

    /// Runs one attempt.
    fn handle(
        &self,
        job: Self::Job,
        ctx: JobContext,
    ) -> impl Future<Output = Result<Self::Output, JobError>> + Send;
}

/// What a handler knows about the job it runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
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

impl JobContext {
    /// A context for attempt 1 of job `job_id` from `queue`, for calling a
    /// handler directly (in a unit test, say); the worker builds its own.
    pub fn new(job_id: impl Into<String>, queue: impl Into<String>) -> Self {
        Self {
            job_id: job_id.into(),
            attempt: 1,
            max_retries: crate::job::DEFAULT_MAX_RETRIES,
            queue: queue.into(),
            priority: Priority::Normal,
            enqueued_at: ferry_broker::now_ms(),
            last_error: None,
            shutdown: CancellationToken::new(),
        }
    }
}

/// A handler made of a closure (see [`WorkerBuilder::handle`](crate::WorkerBuilder::handle)).
pub struct HandlerFn<J, F> {
    f: F,
    job: PhantomData<fn(J)>,
}

impl<J, F> HandlerFn<J, F> {
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        Self {
            f,
            job: PhantomData,
        }
    }
}

impl<J, F, Fut, O> Handler for HandlerFn<J, F>
where
    J: Job,
    F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, JobError>> + Send,
    O: Serialize + Send + 'static,
{
    type Job = J;
    type Output = O;

    fn handle(&self, job: J, ctx: JobContext) -> impl Future<Output = Result<O, JobError>> + Send {
        (self.f)(job, ctx)
    }
}

/// A running attempt of a type-erased handler: its result, as JSON.
pub(crate) type Attempt<'a> =
    Pin<Box<dyn Future<Output = Result<serde_json::Value, JobError>> + Send + 'a>>;

/// A handler with its job type erased, so handlers of many types share a map.
pub(crate) trait ErasedHandler: Send + Sync {
    /// Decodes `payload` and starts the attempt.
    ///
    /// # Errors
    /// A permanent [`JobError`] when the payload is not a valid job of this type.
    fn call(&self, payload: &str, ctx: JobContext) -> Result<Attempt<'_>, JobError>;
}

struct Typed<H>(H);

impl<H: Handler> ErasedHandler for Typed<H> {
    fn call(&self, payload: &str, ctx: JobContext) -> Result<Attempt<'_>, JobError> {
        let job: H::Job = serde_json::from_str(payload).map_err(|e| {
            JobError::permanent(format!(
                "payload is not a valid `{}` job: {e}",
                <H::Job as Job>::TYPE
            ))
        })?;
        Ok(Box::pin(async move {
            let output = self.0.handle(job, ctx).await?;
            // `()` and other plain values convert without allocating.
            serde_json::to_value(output).map_err(|e| {
                JobError::permanent(format!("the handler's output is not serializable: {e}"))
            })
        }))
    }
}

/// Handlers by job type.
pub(crate) type Registry = HashMap<&'static str, Arc<dyn ErasedHandler>>;

/// `handler` with its type erased, under its job type name.
pub(crate) fn erase<H: Handler>(handler: H) -> (&'static str, Arc<dyn ErasedHandler>) {
    (<H::Job as Job>::TYPE, Arc::new(Typed(handler)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize)]
    struct Add {
        a: i64,
        b: i64,
    }
    impl Job for Add {
        const TYPE: &'static str = "add";
    }

    struct Adder;
    impl Handler for Adder {
        type Job = Add;
        type Output = i64;
        async fn handle(&self, job: Add, _ctx: JobContext) -> Result<i64, JobError> {
            Ok(job.a + job.b)
        }
    }

    #[tokio::test]
    async fn trait_and_closure_handlers_erase_to_their_output_as_json() {
        let ctx = || JobContext::new("id", "q");
        let (kind, adder) = erase(Adder);
        assert_eq!(kind, "add");
        let out = adder
            .call(r#"{"a":2,"b":3}"#, ctx())
            .unwrap()
            .await
            .unwrap();
        assert_eq!(out, serde_json::json!(5));

        let (_, closure) = erase(HandlerFn::new(|job: Add, ctx: JobContext| async move {
            Ok::<_, JobError>(format!("{} in {}", job.a * job.b, ctx.queue))
        }));
        let out = closure
            .call(r#"{"a":2,"b":3}"#, ctx())
            .unwrap()
            .await
            .unwrap();
        assert_eq!(out, serde_json::json!("6 in q"));
    }

    #[test]
    fn a_payload_that_is_not_the_job_type_is_a_permanent_error() {
        let (_, adder) = erase(Adder);
        let Err(err) = adder.call(r#"{"a":"x"}"#, JobContext::new("id", "q")) else {
            panic!("decoded a bad payload");
        };
        assert!(err.is_permanent());
        assert!(err.message().contains("not a valid `add` job"), "{err}");
    }
}
