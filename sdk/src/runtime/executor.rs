//! The executor: runs claimed jobs, one task each. A job waits for a slot
//! if it came without one (a suspect waits for every slot), then its entry
//! is decoded, its handler runs under the job timeout with panics caught,
//! and the [`Settler`] records the outcome. At shutdown it gives running
//! jobs the grace period, then drops the rest (left pending for recovery).

use std::any::Any;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::handler::Reporter;
use crate::link::Link;
use ferry_broker::{DeadLetterKind, Delivery, Envelope};
use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::activity::Activity;
use super::canceller::Running;
use super::claimed::ClaimedJob;
use super::inflight::Lease;
use super::poll_timer::{longest, PollTimer};
use super::retry::RedisRetry;
use super::served::ServedQueue;
use super::settler::{Outcome, Settler};
use super::slots::{Slot, Slots};
use crate::handler::{JobContext, Registry};

/// What the executor needs: handlers, settler, slots, and its settings.
pub(crate) struct ExecutorParts {
    pub handlers: Registry,
    pub settler: Settler,
    pub slots: Slots,
    pub conn: Link,
    pub activity: Arc<Activity>,
    /// Cancelled when shutdown starts: jobs without a slot yet are not
    /// started; handlers see it in their context.
    pub shutdown: CancellationToken,
    /// Cancelled here when the grace period is over: running jobs are dropped.
    pub hard_stop: CancellationToken,
    pub job_timeout: Duration,
    pub grace_period: Duration,
    /// See [`WorkerConfig::unknown_type_window`](crate::WorkerConfig::unknown_type_window).
    pub unknown_type_window: Duration,
    /// Job types without a handler here already warned about (one warning
    /// per type, not one per job).
    pub unknown_types: Mutex<HashSet<String>>,
    /// The cancellation tokens of running jobs (fired by the canceller).
    pub running: Arc<Running>,
}

/// Starts and runs jobs. Cheap to clone: the fetchers and the recoverer
/// each hold one to start the jobs they claim.
#[derive(Clone)]
pub(crate) struct Executor {
    parts: Arc<ExecutorParts>,
    tracker: TaskTracker,
}

impl Executor {
    pub(crate) fn new(parts: ExecutorParts) -> Self {
        Self {
            parts: Arc::new(parts),
            tracker: TaskTracker::new(),
        }
    }

    /// Starts a job for each of `deliveries` of `queue` this worker is not
    /// already running, with a slot each from `slots` while they last.
    /// Deliveries beyond the slots wait for a free one (already claimed,
    /// their lease is renewed while they wait). Suspects (recovered entries
    /// whose earlier runs crashed, handed out as a group by `recover.lua`)
    /// give back their slots and run as one group that waits for all of
    /// them, so the group runs alone and two groups never deadlock. Unused
    /// slots are released.
    pub(crate) fn start(
        &self,
        queue: &Arc<ServedQueue>,
        deliveries: Vec<Delivery>,
        slots: Vec<Slot>,
    ) {
        let leased = queue.inflight.lease_all(deliveries);
        self.start_leased(queue, leased, slots);
    }

    /// As [`Executor::start`], for deliveries already leased (held a while
    /// by the fetcher, their leases renewed meanwhile).
    pub(crate) fn start_leased(
        &self,
        queue: &Arc<ServedQueue>,
        leased: Vec<(Delivery, Lease)>,
        mut slots: Vec<Slot>,
    ) {
        if leased.len() > 1 && leased.iter().all(|(d, _)| d.suspect) {
            let group = leased
                .into_iter()
                .map(|(delivery, lease)| ClaimedJob {
                    queue: Arc::clone(queue),
                    delivery,
                    lease,
                    slot: None,
                })
                .collect();
            let parts = Arc::clone(&self.parts);
            self.tracker
                .spawn(async move { parts.run_group(group).await });
            return;
        }
        for (delivery, lease) in leased {
            let slot = if delivery.suspect { None } else { slots.pop() };
            let job = ClaimedJob {
                queue: Arc::clone(queue),
                delivery,
                lease,
                slot,
            };
            let parts = Arc::clone(&self.parts);
            self.tracker.spawn(async move { parts.run_job(job).await });
        }
    }

    /// Writes `started` events for `deliveries` when the queue's events are
    /// on (one pipeline; an error only loses the events). For entries taken
    /// outside the claim scripts (recovery), which write their own: awaited
    /// before the jobs start, so a handler's events come after.
    pub(crate) async fn announce_started(&self, queue: &ServedQueue, deliveries: &[Delivery]) {
        let cap = queue.events_cap.load(std::sync::atomic::Ordering::Relaxed);
        if cap == 0 || deliveries.is_empty() {
            return;
        }
        let ids: Vec<String> = deliveries.iter().map(Delivery::job_id).collect();
        let mut conn = self.parts.conn.clone();
        let consumer = &queue.consumer;
        if let Err(e) = consumer
            .queue()
            .write_started(&mut conn, &ids, consumer.name(), cap)
            .await
        {
            tracing::debug!(error = %e, "could not write started events");
        }
    }

    /// Runs until `stop` (every claiming loop has ended: no job starts with
    /// a slot after it), then gives running jobs the grace period; past it,
    /// or at once when the stop is forced (`hard_stop`, a second signal),
    /// cancels them (their entries stay pending for recovery) and waits a
    /// moment for their tasks to end.
    pub(crate) async fn run(self, stop: CancellationToken) {
        stop.cancelled().await;
        self.tracker.close();
        tokio::select! {
            _ = self.tracker.wait() => return,
            _ = tokio::time::sleep(self.parts.grace_period) => tracing::warn!(
                left = self.parts.activity.running(),
                "grace period over: jobs still running are dropped and stay pending for recovery"
            ),
            _ = self.parts.hard_stop.cancelled() => tracing::warn!(
                left = self.parts.activity.running(),
                "stop forced: jobs still running are dropped and stay pending for recovery"
            ),
        }
        self.parts.hard_stop.cancel();
        // A job's task ends at its handler's next await. A handler that
        // blocks its thread cannot be stopped; do not wait for it.
        if tokio::time::timeout(CANCEL_WAIT, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.parts.activity.running(),
                "jobs blocking their threads could not be stopped; their entries stay pending for recovery"
            );
        }
    }
}

/// How long cancelled jobs get to end their tasks.
const CANCEL_WAIT: Duration = Duration::from_secs(1);

impl ExecutorParts {
    /// Runs one job: a slot first if it has none, then, for a suspect, its
    /// delivery is counted, then the handler.
    async fn run_job(&self, mut job: ClaimedJob) {
        if job.slot.is_none() {
            let all = job.delivery.suspect;
            // Not started before shutdown: dropped, it stays pending for recovery.
            let Some(slot) = self.slots.wait_for(all, &self.shutdown).await else {
                return;
            };
            job.slot = Some(slot);
        }
        // Boxed: a rare path, kept out of every job's task.
        if job.delivery.suspect && !Box::pin(self.start_suspect(&mut job)).await {
            return;
        }
        self.execute(job).await;
    }

    /// Runs a group of suspects together, alone on this worker: it waits
    /// for every slot, counts each delivery, then runs them all; a crash
    /// now narrows the poison down to this group (see `recover.lua`).
    async fn run_group(&self, mut group: Vec<ClaimedJob>) {
        let Some(_all) = self.slots.wait_for(true, &self.shutdown).await else {
            return; // shutting down: they stay pending for recovery
        };
        let started =
            futures::future::join_all(group.iter_mut().map(|job| self.start_suspect(job))).await;
        let group: Vec<ClaimedJob> = group
            .into_iter()
            .zip(started)
            .filter_map(|(job, ok)| ok.then_some(job))
            .collect();
        if let Some(first) = group.first() {
            tracing::info!(
                queue = %first.queue.name(),
                count = group.len(),
                deliveries = first.delivery.deliveries,
                "running recovered entries as one group, alone on this worker (their earlier runs crashed; a crash now narrows the cause down to this group)"
            );
        }
        futures::future::join_all(group.into_iter().map(|job| self.execute(job))).await;
    }

    /// Counts a suspect's delivery now that it runs alone (see
    /// `recover.lua`); false when the entry is no longer this worker's.
    async fn start_suspect(&self, job: &mut ClaimedJob) -> bool {
        let (consumer, delivery) = (&job.queue.consumer, &job.delivery);
        let started = RedisRetry::persist(
            "starting a recovered entry",
            &self.conn,
            &self.hard_stop,
            self.settler.lease,
            |mut conn| async move { consumer.start_suspect(&mut conn, delivery).await },
        )
        .await
        .flatten();
        match started {
            Some(n) => {
                job.delivery.deliveries = n;
                tracing::info!(queue = %job.queue.name(), entry = %job.delivery.entry.id, deliveries = n, "running a recovered entry alone");
                true
            }
            None => false,
        }
    }

    /// Decodes the entry and runs its handler in the job's span, or
    /// dead-letters an entry that is not a valid job.
    async fn execute(&self, job: ClaimedJob) {
        let queue = job.queue.name();
        if job.lease.is_lost() {
            // It waited for a slot while another worker recovered it: not ours to run.
            tracing::warn!(queue, entry = %job.delivery.entry.id, "lease lost before the job started; left to its new owner");
            return;
        }
        let priority = job.delivery.priority();
        let limit = job.queue.consumer.queue().payload_limit();
        match job.delivery.envelope(limit) {
            Ok(env) => {
                let span = tracing::info_span!(
                    "job",
                    queue,
                    id = %env.id,
                    r#type = %env.job_type,
                    attempt = env.attempt,
                    priority = %priority,
                );
                #[cfg(feature = "opentelemetry")]
                crate::trace::continue_in(&span, &job.delivery.fields);
                self.run_handler(job, env).instrument(span).await;
            }
            Err(malformed) => {
                let span = tracing::info_span!("job", queue, entry = %job.delivery.entry.id, priority = %priority);
                #[cfg(feature = "opentelemetry")]
                crate::trace::continue_in(&span, &job.delivery.fields);
                self.settler
                    .dead_letter(job, &malformed.to_string(), DeadLetterKind::Malformed)
                    .instrument(span)
                    .await;
            }
        }
    }

    async fn run_handler(&self, mut job: ClaimedJob, env: Envelope) {
        let settler = &self.settler;
        let Some(handler) = self.handlers.get(env.job_type.as_str()) else {
            return self.unknown_type(job, &env).await;
        };
        let running = self.running.start(job.queue.name(), &env.id);
        let ctx = JobContext {
            cancel: running.token.clone(),
            job_id: env.id.clone(),
            attempt: env.attempt,
            max_retries: env.max_retries,
            queue: job.queue.name().to_owned(),
            priority: job.delivery.priority(),
            enqueued_at: env.enqueued_at,
            last_error: env.last_error.clone(),
            batch: env.batch.clone(),
            shutdown: self.shutdown.clone(),
            reporter: Some(Reporter {
                conn: self.conn.clone(),
                consumer: job.queue.consumer.clone(),
                entry: job.delivery.entry.clone(),
            }),
        };
        let timeout = self.job_timeout;
        let held_us = AtomicU64::new(0);
        let in_handler = self.activity.handler_started();
        let started_at = ferry_broker::now_ms();
        job.delivery.started_at = Some(started_at);
        let started = std::time::Instant::now();
        let attempt = PollTimer::new(handler.call(&env.payload, ctx), &held_us);
        let attempt = AssertUnwindSafe(tokio::time::timeout(timeout, attempt)).catch_unwind();
        let result = tokio::select! {
            r = attempt => r,
            _ = self.hard_stop.cancelled() => {
                tracing::warn!("shutdown grace period over; job left pending for another worker");
                return;
            }
        };
        let outcome = match result {
            Ok(Ok(Ok(result))) => Outcome::Done {
                result,
                started_at,
                started,
                ran: started.elapsed(),
            },
            Ok(Ok(Err(e))) if e.is_permanent() => Outcome::Permanent(e.message().to_owned()),
            Ok(Ok(Err(e))) if e.retry_after().is_some() => {
                Outcome::RateLimited(e.retry_after().unwrap_or_default(), e.hold())
            }
            Ok(Ok(Err(e))) => Outcome::Failed(e.message().to_owned()),
            Ok(Err(_elapsed)) => Outcome::Failed(timed_out(timeout, longest(&held_us))),
            Err(panic) => Outcome::Failed(format!("handler panicked: {}", panic_message(&*panic))),
        };
        drop(in_handler);
        drop(running);
        let held = longest(&held_us);
        if held >= BLOCKING_WARN.min(timeout) {
            warn_blocking(held, timeout);
        }
        settler.settle(job, &env, outcome).await;
    }
}

impl ExecutorParts {
    /// A job of a type no handler here knows: during a rolling deploy a
    /// worker that knows it may be running or about to start, so it goes
    /// back (delayed, retries untouched) until `unknown_type_window` has
    /// passed since its enqueue; then it is dead-lettered. (Boxed: a rare
    /// path.)
    async fn unknown_type(&self, job: ClaimedJob, env: &Envelope) {
        Box::pin(async {
            let mut known: Vec<&str> = self.handlers.keys().copied().collect();
            known.sort_unstable();
            let waited = Duration::from_millis(ferry_broker::now_ms().saturating_sub(env.enqueued_at));
            if waited >= self.unknown_type_window {
                let reason = format!(
                    "unknown job type `{}`: no handler registered on this worker (it handles: {}), \
                     and no worker ran it within {:?} of its enqueue",
                    env.job_type,
                    known.join(", "),
                    self.unknown_type_window
                );
                return self.settler.dead_letter(job, &reason, DeadLetterKind::Failed).await;
            }
            let first = self
                .unknown_types
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(env.job_type.clone());
            if first {
                tracing::warn!(
                    r#type = %env.job_type,
                    handles = %known.join(", "),
                    window_s = self.unknown_type_window.as_secs(),
                    "no handler for this job type on this worker: its jobs go back to the queue for a worker that has one \
                     (retries untouched), and are dead-lettered if none runs them within the window. Logged once per type"
                );
            }
            self.settler.put_back(job, env).await;
        })
        .await
    }
}

/// A handler holding its thread this long in one go is reported.
const BLOCKING_WARN: Duration = Duration::from_secs(1);

/// The error of an attempt past `timeout` whose longest stretch without
/// yielding was `held`: a timeout can only stop a handler when it yields.
fn timed_out(timeout: Duration, held: Duration) -> String {
    if held >= timeout {
        format!(
            "timed out after {timeout:?}, but not stopped by it: the handler blocked its thread for {held:?} \
             without yielding, so it ran that long past any await; run blocking work in \
             tokio::task::spawn_blocking"
        )
    } else {
        format!("timed out after {timeout:?}")
    }
}

/// Logs (at most once per 10 s) a handler that held its thread `held`.
fn warn_blocking(held: Duration, timeout: Duration) {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
        return;
    }
    *last = Some(std::time::Instant::now());
    tracing::warn!(
        held_ms = held.as_millis() as u64,
        timeout_ms = timeout.as_millis() as u64,
        "a handler blocked its thread without yielding: nothing else runs on that thread meanwhile, and \
         job_timeout cannot interrupt it. Run blocking work in tokio::task::spawn_blocking (logged at most once per 10 s)"
    );
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-text panic payload".to_owned()
    }
}
