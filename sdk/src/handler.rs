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
/// `Ok` acknowledges the job; a retryable error schedules the next attempt
/// with backoff; a permanent one dead-letters it. A panic or a timeout
/// counts as a retryable failure.
///
/// The output of a success is the job's result: any serde value, `()` for
/// none. Ferry does not store results yet (the job lifecycle will, without
/// a change to this trait); today it is dropped once the job is
/// acknowledged.
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
    /// `()` for none). Kept in the job's record (see
    /// [`Client::status`](crate::Client::status)), and for the jobs that
    /// wait for it ([`JobContext::dependency_results`]).
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
    /// The job id, the same across attempts (see [`Client::enqueue`](crate::Client::enqueue)).
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
    /// The batch it belongs to, when it was enqueued in one
    /// ([`Batch`](crate::Batch)); [`JobContext::add_to_batch`] adds to it.
    pub batch: Option<String>,
    /// Cancelled when the worker starts shutting down. The job may still
    /// finish within the grace period; past it, it is dropped and left
    /// pending for another worker.
    pub shutdown: CancellationToken,
    /// Cancelled when the job is cancelled (`Client::cancel`) while it
    /// runs, within about a round trip to Redis. Stop soon after: the job
    /// ends cancelled whatever the handler returns then.
    pub cancel: CancellationToken,
    /// Where progress reports go (none for a context made by hand).
    pub(crate) reporter: Option<Reporter>,
}

/// Where a running job's progress reports go: its entry, on this worker.
#[derive(Clone)]
pub(crate) struct Reporter {
    pub conn: crate::link::Link,
    pub consumer: ferry_broker::Consumer,
    pub entry: ferry_broker::EntryId,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("entry", &self.entry)
            .finish_non_exhaustive()
    }
}

/// A progress report: a percentage and/or a small JSON value.
///
/// ```
/// use ferry_queue::Progress;
/// let p = Progress::percent(42.5).info(serde_json::json!({"rows": 425}));
/// let q: Progress = 10.0.into();
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    percent: Option<f64>,
    info: Option<serde_json::Value>,
}

impl Progress {
    /// A percentage (any finite number; 0 to 100 by convention).
    pub fn percent(percent: f64) -> Self {
        Self {
            percent: Some(percent),
            info: None,
        }
    }

    /// Adds (or replaces) a JSON value: what is being done, counts, ...
    /// Keep it small (it is stored while the job runs).
    pub fn info(mut self, info: impl Serialize) -> Self {
        self.info = serde_json::to_value(info).ok();
        self
    }

    /// The report as JSON object members without braces.
    fn members(&self) -> String {
        let mut m = serde_json::Map::new();
        if let Some(p) = self.percent.filter(|p| p.is_finite()) {
            m.insert("percent".into(), serde_json::Value::from(p));
        }
        if let Some(i) = &self.info {
            m.insert("info".into(), i.clone());
        }
        let text = serde_json::Value::Object(m).to_string();
        text[1..text.len() - 1].to_owned()
    }
}

impl From<f64> for Progress {
    fn from(percent: f64) -> Self {
        Self::percent(percent)
    }
}

/// Most bytes of one progress report.
pub const MAX_PROGRESS_BYTES: usize = 16 * 1024;

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
            batch: None,
            shutdown: CancellationToken::new(),
            cancel: CancellationToken::new(),
            reporter: None,
        }
    }

    /// The results this job's dependencies returned (its children's, in a
    /// [`Flow`](crate::Flow)), by their job ids: kept for it from when
    /// each succeeded until it ends, whatever the queue's record retention
    /// says. A dependency that returned nothing (`()`), or failed, has
    /// none. One round trip; empty for a context made by hand.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn dependency_results(
        &self,
    ) -> crate::Result<std::collections::HashMap<String, serde_json::Value>> {
        let Some(r) = &self.reporter else {
            return Ok(std::collections::HashMap::new());
        };
        let mut conn = r.conn.clone();
        Ok(r.consumer
            .queue()
            .dependency_results(&mut conn, &self.job_id)
            .await?)
    }

    /// [`JobContext::dependency_results`], each decoded as `T` (the
    /// children's output type).
    ///
    /// # Errors
    /// As [`JobContext::dependency_results`];
    /// [`Error::DependencyResult`](crate::Error::DependencyResult) for a
    /// result that is not a `T`.
    pub async fn dependency_results_as<T: serde::de::DeserializeOwned>(
        &self,
    ) -> crate::Result<std::collections::HashMap<String, T>> {
        self.dependency_results()
            .await?
            .into_iter()
            .map(|(id, v)| match serde_json::from_value(v) {
                Ok(t) => Ok((id, t)),
                Err(e) => Err(crate::Error::DependencyResult {
                    job: self.job_id.clone(),
                    dependency: id,
                    reason: e.to_string(),
                }),
            })
            .collect()
    }

    /// Adds `jobs` to this job's batch ([`JobContext::batch`]), in this
    /// job's queue; returns their ids. The batch is open while this job
    /// runs, so they always join it, and its callbacks wait for them too.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a job not in a batch
    /// (or a context made by hand) or a bad job; as
    /// [`Client::add_to_batch`](crate::Client::add_to_batch).
    pub async fn add_to_batch<J: crate::Job>(&self, jobs: &[J]) -> crate::Result<Vec<String>> {
        let (Some(r), Some(batch)) = (&self.reporter, &self.batch) else {
            return Err(crate::ConfigError::InvalidSetting {
                name: "batch",
                reason: format!("job {} is not in a batch", self.job_id),
            }
            .into());
        };
        let options = crate::EnqueueOptions::new().queue(self.queue.clone());
        let new = jobs
            .iter()
            .map(|j| crate::batch::new_job(j, &options, "batch"))
            .collect::<crate::Result<Vec<_>>>()?;
        let mut conn = r.conn.clone();
        Ok(r.consumer
            .queue()
            .add_to_batch(&mut conn, batch, &new)
            .await?)
    }

    /// Reports the job's progress: kept (with the server's time) until the
    /// job ends, shown by [`Client::status`](crate::Client::status) as
    /// `progress`. One round trip: report a few times a second at most.
    /// Returns false when nothing was stored: the job is no longer this
    /// worker's (its lease was lost), or the context was made by hand.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a report over
    /// [`MAX_PROGRESS_BYTES`]; [`Error::Redis`](crate::Error::Redis).
    pub async fn progress(&self, progress: impl Into<Progress>) -> crate::Result<bool> {
        let Some(r) = &self.reporter else {
            return Ok(false);
        };
        let members = progress.into().members();
        if members.len() > MAX_PROGRESS_BYTES {
            return Err(crate::ConfigError::InvalidSetting {
                name: "progress",
                reason: format!(
                    "a report of {} bytes is over the limit of {MAX_PROGRESS_BYTES}",
                    members.len()
                ),
            }
            .into());
        }
        let mut conn = r.conn.clone();
        Ok(r.consumer
            .report_progress(&mut conn, &r.entry, &self.job_id, &members)
            .await?)
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
    /// One attempt: decodes `payload`, then runs the handler. Decoding is
    /// part of the attempt, so a `Deserialize` that panics is a failed
    /// attempt like any panic. A payload that is not a valid job of this
    /// type is a permanent [`JobError`].
    fn call<'a>(&'a self, payload: &'a str, ctx: JobContext) -> Attempt<'a>;
}

struct Typed<H>(H);

impl<H: Handler> ErasedHandler for Typed<H> {
    fn call<'a>(&'a self, payload: &'a str, ctx: JobContext) -> Attempt<'a> {
        Box::pin(async move {
            let job: H::Job = serde_json::from_str(payload).map_err(|e| {
                JobError::permanent(format!(
                    "payload is not a valid `{}` job: {e}",
                    <H::Job as Job>::TYPE
                ))
            })?;
            let output = self.0.handle(job, ctx).await?;
            // `()` and other plain values convert without allocating. An
            // output that cannot be serialized does not undo a success: the
            // job is done, without a result.
            Ok(serde_json::to_value(output).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the handler succeeded, but its output cannot be serialized as JSON; the job is done without a result");
                serde_json::Value::Null
            }))
        })
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
        let out = adder.call(r#"{"a":2,"b":3}"#, ctx()).await.unwrap();
        assert_eq!(out, serde_json::json!(5));

        let (_, closure) = erase(HandlerFn::new(|job: Add, ctx: JobContext| async move {
            Ok::<_, JobError>(format!("{} in {}", job.a * job.b, ctx.queue))
        }));
        let out = closure.call(r#"{"a":2,"b":3}"#, ctx()).await.unwrap();
        assert_eq!(out, serde_json::json!("6 in q"));
    }

    #[tokio::test]
    async fn a_payload_that_is_not_the_job_type_is_a_permanent_error() {
        let (_, adder) = erase(Adder);
        let err = adder
            .call(r#"{"a":"x"}"#, JobContext::new("id", "q"))
            .await
            .unwrap_err();
        assert!(err.is_permanent());
        assert!(err.message().contains("not a valid `add` job"), "{err}");
    }

    #[tokio::test]
    async fn an_output_that_cannot_be_serialized_still_counts_as_success() {
        // JSON object keys must be strings: a map keyed by tuples is not JSON.
        let (_, pairs) = erase(HandlerFn::new(|_: Add, _: JobContext| async {
            Ok::<_, JobError>(std::collections::HashMap::from([((1, 2), 3)]))
        }));
        let out = pairs
            .call(r#"{"a":1,"b":2}"#, JobContext::new("id", "q"))
            .await;
        assert_eq!(out.unwrap(), serde_json::Value::Null);
    }
}
