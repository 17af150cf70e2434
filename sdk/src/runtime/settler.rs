//! The settler: the one place a job's outcome is recorded. Success goes to
//! the [`acker`](super::acker) (acknowledged in batches); a failure with
//! retries left is moved to the delayed set with backoff; anything else is
//! dead-lettered. Each write checks in Redis that this worker still owns the
//! entry, and is retried by the [`RedisRetry`] policy.

use std::sync::Arc;

use crate::error::Hold;
use crate::link::Link;
use ferry_broker::backoff::jitter;
use ferry_broker::{record_fields, Backoff, ConcurrencyScope, DeadLetterKind, Envelope, Settled};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::acker::Ack;
use super::activity::Activity;
use super::claimed::ClaimedJob;
use super::retry::RedisRetry;

/// How an attempt ended.
pub(crate) enum Outcome {
    /// The handler succeeded, with its output as JSON (the job's result),
    /// in an attempt that started at `started_at` (ms since the epoch).
    Done {
        result: serde_json::Value,
        started_at: u64,
        /// When the attempt started (monotonic), and how long it ran.
        started: std::time::Instant,
        ran: std::time::Duration,
    },
    /// A retryable failure: retried while retries are left.
    Failed(String),
    /// A failure no retry can fix: dead-lettered at once.
    Permanent(String),
    /// The handler's upstream is rate limiting: the job goes back (its
    /// attempt not used) and the queue, or its type or key, is held for
    /// this long.
    RateLimited(std::time::Duration, crate::error::Hold),
}

/// Records outcomes. Cheap to clone.
/// How long a job of a type this worker does not know waits before it can
/// be claimed again (jittered to between half and all of it).
pub(crate) const PUT_BACK_DELAY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub(crate) struct Settler {
    pub conn: Link,
    pub backoff: Backoff,
    pub acks: mpsc::UnboundedSender<Ack>,
    pub activity: Arc<Activity>,
    /// Cancelled when the grace period is over: writes stop retrying.
    pub hard_stop: CancellationToken,
    /// How long an outcome write keeps trying through Redis errors.
    pub lease: Duration,
}

impl Settler {
    /// Records `outcome` of an attempt of `job` (whose envelope is `env`),
    /// unless its lease was lost while it ran: then another worker owns the
    /// entry, and its outcome is that worker's to record.
    pub(crate) async fn settle(&self, job: ClaimedJob, env: &Envelope, outcome: Outcome) {
        if job.lease.is_lost() {
            tracing::warn!("lease was lost while the job ran; another worker owns it now, so this outcome is not recorded");
            return;
        }
        match outcome {
            Outcome::Done {
                result,
                started_at,
                started,
                ran,
            } => {
                tracing::debug!("job done");
                self.activity.count_completed();
                // Built only when the queue keeps records (the script would
                // drop it otherwise), or there is a result (the jobs that
                // wait for this one keep it, whatever the retention).
                let keeps = job.queue.records.load(std::sync::atomic::Ordering::Relaxed)
                    || env.retention_ms.is_some_and(|ms| ms > 0)
                    || !result.is_null();
                let record = if keeps {
                    record_fields(
                        env,
                        job.delivery.priority(),
                        started_at,
                        job.queue.consumer.name(),
                        &result,
                    )
                } else {
                    String::new()
                };
                // The slot is free now; the lease is kept (and renewed) until
                // the acker has written the ack. Should the acker be gone,
                // the ack is dropped with its lease: the entry stays pending.
                let ClaimedJob { queue, lease, .. } = job;
                let _ = self.acks.send(Ack {
                    queue,
                    lease,
                    job_id: env.id.clone(),
                    record,
                    retention_ms: env.retention_ms,
                    started,
                    ran,
                });
            }
            Outcome::Failed(error) if !env.is_last_attempt() => self.retry(job, env, error).await,
            Outcome::Failed(error) => {
                let reason = format!(
                    "{error} (attempt {} of {}; no retries left)",
                    env.attempt,
                    env.max_retries.saturating_add(1)
                );
                self.dead_letter(job, &reason, DeadLetterKind::Failed).await;
            }
            Outcome::Permanent(error) => {
                let reason = format!("{error} (permanent failure at attempt {})", env.attempt);
                self.dead_letter(job, &reason, DeadLetterKind::Failed).await;
            }
            Outcome::RateLimited(hold, what) => {
                Box::pin(self.rate_limited(job, env, hold, what)).await
            }
        }
    }

    /// The handler's upstream said "later": hold the queue (or the job's
    /// type or key) fleet-wide for `hold`, and put the job back for then,
    /// its attempt not used.
    async fn rate_limited(&self, job: ClaimedJob, env: &Envelope, hold: Duration, what: Hold) {
        let queue = job.queue.consumer.queue();
        let scope = match (what, &env.concurrency_key) {
            (Hold::Queue, _) => ConcurrencyScope::Queue,
            (Hold::Key, Some(k)) => ConcurrencyScope::Key(k.clone()),
            (Hold::Type | Hold::Key, _) => ConcurrencyScope::Type(env.job_type.clone()),
        };
        let scope = &scope;
        let held = RedisRetry::persist(
            "holding a rate-limited queue",
            &self.conn,
            &self.hard_stop,
            self.lease,
            |mut conn| async move { queue.hold_scope(&mut conn, scope, hold).await },
        )
        .await;
        if held.is_some() {
            tracing::info!(
                hold_ms = hold.as_millis() as u64,
                held = ?scope,
                "rate limited by the handler: held, job put back"
            );
        }
        let (consumer, delivery) = (&job.queue.consumer, &job.delivery);
        let moved = RedisRetry::persist(
            "putting a rate-limited job back",
            &self.conn,
            &self.hard_stop,
            self.lease,
            |mut conn| async move { consumer.retry(&mut conn, delivery, env, hold).await },
        )
        .await;
        if moved == Some(true) {
            job.queue.promote_wake.notify_one();
        }
    }

    /// Schedules the next attempt after the backoff. (Boxed, like
    /// [`Settler::dead_letter`]: a rare path whose future would otherwise
    /// grow every job's task (measured: about 20% more worker CPU per job).)
    async fn retry(&self, job: ClaimedJob, env: &Envelope, error: String) {
        Box::pin(self.retry_now(job, env, error)).await;
    }

    async fn retry_now(&self, job: ClaimedJob, env: &Envelope, error: String) {
        let delay = self.backoff.delay(env.attempt);
        let next = Envelope {
            attempt: env.attempt.saturating_add(1),
            last_error: Some(error.clone()),
            ..env.clone()
        };
        let (consumer, delivery, next) = (&job.queue.consumer, &job.delivery, &next);
        let moved = RedisRetry::persist(
            "scheduling a retry",
            &self.conn,
            &self.hard_stop,
            self.lease,
            |mut conn| async move {
                consumer
                    .retry_settled(&mut conn, delivery, next, delay)
                    .await
            },
        )
        .await;
        match moved {
            Some(Settled::Cancelled) => {
                tracing::info!(%error, "attempt failed after its cancellation was asked for; ended cancelled")
            }
            Some(Settled::Moved) => {
                self.activity.count_retried();
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "attempt failed; retry scheduled");
                job.queue.promote_wake.notify_one();
            }
            Some(Settled::NotOwned) => {
                tracing::warn!(%error, "attempt failed, but the entry is no longer ours; its new owner retries it")
            }
            None => {}
        }
    }

    /// Puts `job` back for another worker, unchanged (same attempt), to be
    /// claimed again after [`PUT_BACK_DELAY`] (jittered). Counted as a retry
    /// in the stats hash; the job's own retries are untouched.
    pub(crate) async fn put_back(&self, job: ClaimedJob, env: &Envelope) {
        let delay = jitter(PUT_BACK_DELAY);
        let (consumer, delivery) = (&job.queue.consumer, &job.delivery);
        let moved = RedisRetry::persist(
            "putting a job back",
            &self.conn,
            &self.hard_stop,
            self.lease,
            |mut conn| async move { consumer.retry(&mut conn, delivery, env, delay).await },
        )
        .await;
        if moved == Some(true) {
            tracing::debug!("put back for a worker that handles its type");
            job.queue.promote_wake.notify_one();
        }
    }

    /// Moves `job`'s entry to the dead-letter stream with `reason`.
    pub(crate) async fn dead_letter(&self, job: ClaimedJob, reason: &str, kind: DeadLetterKind) {
        Box::pin(self.dead_letter_now(job, reason, kind)).await;
    }

    async fn dead_letter_now(&self, job: ClaimedJob, reason: &str, kind: DeadLetterKind) {
        let (consumer, delivery) = (&job.queue.consumer, &job.delivery);
        let res = RedisRetry::persist(
            "dead-lettering",
            &self.conn,
            &self.hard_stop,
            self.lease,
            |mut conn| async move {
                consumer
                    .dead_letter(&mut conn, delivery, reason, kind)
                    .await
            },
        )
        .await;
        let Some(r) = res else { return };
        if r.cancelled {
            tracing::info!(
                reason,
                "failed after its cancellation was asked for; ended cancelled, not dead-lettered"
            );
        } else if r.moved {
            self.activity.count_dead();
            tracing::error!(entry = %delivery.entry.id, reason, dead_letter = %consumer.queue().keys().dead(), "moved to the dead-letter stream");
        }
        if r.dropped > 0 {
            tracing::error!(
                dropped = r.dropped,
                "dead-letter cap reached: oldest dead-letter entries dropped"
            );
        }
    }
}
