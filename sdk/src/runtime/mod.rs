//! The worker runtime: shared state, and one small component per background
//! duty, each with `run` (until shutdown) and a single pass it repeats.
//!
//! - [`fetcher`]: claims entries in strict priority, blocks on Redis when idle.
//! - [`executor`]: runs one job: decode, handler, timeout, panic, outcome.
//! - [`acker`]: acknowledges finished jobs in batches.
//! - [`heartbeat`]: renews the lease of running jobs.
//! - [`recoverer`]: takes over entries of dead workers (XAUTOCLAIM), removes idle consumers.
//! - [`promoter`]: moves due delayed jobs and retries into their streams.

pub(crate) mod acker;
pub(crate) mod executor;
pub(crate) mod fetcher;
pub(crate) mod heartbeat;
pub(crate) mod inflight;
pub(crate) mod promoter;
pub(crate) mod recoverer;

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_broker::{Backoff, Consumer, Delivery};
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::handler::Registry;
use inflight::InFlight;

/// Settings of a running worker (validated by the builder).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub concurrency: usize,
    pub lease: Duration,
    pub job_timeout: Duration,
    pub max_deliveries: u32,
    pub backoff: Backoff,
    pub grace_period: Duration,
    pub block_time: Duration,
    pub promote_interval: Duration,
    pub consumer_idle_timeout: Duration,
}

/// What the worker is doing, for callers that watch it (tests, the example's
/// `--exit-when-idle`).
#[derive(Debug)]
pub struct Activity {
    running: AtomicUsize,
    completed: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    /// When this worker last claimed or finished an entry, in ms since `epoch`.
    last_claim_ms: AtomicU64,
    epoch: Instant,
}

impl Activity {
    pub(crate) fn new_public() -> Self {
        Self {
            running: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            last_claim_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Jobs claimed by this worker and not finished yet.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Jobs this worker finished successfully.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Failed attempts this worker scheduled for retry.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// Jobs or entries this worker moved to a dead-letter stream.
    pub fn dead(&self) -> u64 {
        self.dead.load(Ordering::Relaxed)
    }

    /// Time since this worker last claimed or finished an entry (or started).
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_claim_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    fn touch(&self) {
        self.last_claim_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn claimed(&self, n: usize) {
        self.running.fetch_add(n, Ordering::SeqCst);
        self.touch();
    }

    fn finished(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.touch();
    }
}

/// A finished job waiting for its acknowledgement. Its entry stays in the
/// in-flight set (its lease renewed) until the acker has written the ack.
#[derive(Debug)]
pub(crate) struct Completion {
    pub queue: usize,
    pub entry: ferry_broker::EntryId,
}

/// State shared by every component of one worker.
pub(crate) struct Shared {
    pub conn: ConnectionManager,
    pub consumer: String,
    pub queues: Vec<Consumer>,
    pub handlers: Registry,
    pub settings: Settings,
    pub slots: Arc<Semaphore>,
    pub inflight: InFlight,
    pub activity: Arc<Activity>,
    /// Cancelled when shutdown starts: stop claiming; handlers see it in their context.
    pub stopping: CancellationToken,
    /// Cancelled when the grace period is over: drop running jobs (left pending).
    pub hard_stop: CancellationToken,
    pub tracker: TaskTracker,
    pub acks: mpsc::UnboundedSender<Completion>,
    /// One per queue: wakes that queue's promoter when a retry is scheduled.
    pub promote_wake: Vec<Arc<Notify>>,
}

impl Shared {
    /// Starts jobs for `deliveries` of queue `qi`, one permit each. Entries
    /// beyond the permits given wait for a free slot (already claimed, their
    /// lease is renewed while they wait).
    pub(crate) fn dispatch(
        self: &Arc<Self>,
        qi: usize,
        mut deliveries: Vec<Delivery>,
        mut permits: Vec<OwnedSemaphorePermit>,
    ) {
        self.inflight.insert_new(qi, &mut deliveries);
        if deliveries.is_empty() {
            return;
        }
        self.activity.claimed(deliveries.len());
        for delivery in deliveries {
            // A suspect (recovered after its earlier deliveries crashed, see
            // recover.lua) runs alone: it waits for every slot, so a poison
            // job cannot take other jobs down with it. It gives back any slot
            // it was handed first, so two suspects never deadlock.
            let suspect = delivery.suspect;
            let permit = if suspect { None } else { permits.pop() };
            let shared = Arc::clone(self);
            self.tracker.spawn(async move {
                let slots = if suspect { shared.settings.concurrency as u32 } else { 1 };
                let permit = match permit {
                    Some(p) => Some(p),
                    // Not started before shutdown: it stays pending for recovery.
                    None => tokio::select! {
                        biased;
                        _ = shared.stopping.cancelled() => None,
                        p = Arc::clone(&shared.slots).acquire_many_owned(slots) => p.ok(),
                    },
                };
                let Some(permit) = permit else {
                    shared.inflight.remove(qi, &delivery.entry);
                    shared.activity.finished();
                    return;
                };
                let mut delivery = delivery;
                if suspect {
                    let consumer = &shared.queues[qi];
                    let started = shared
                        .persist("starting a recovered entry", |mut conn| {
                            let d = &delivery;
                            async move { consumer.start_suspect(&mut conn, d).await }
                        })
                        .await
                        .flatten();
                    match started {
                        Some(n) => {
                            delivery.deliveries = n;
                            tracing::info!(entry = %delivery.entry.id, deliveries = n, "running a recovered entry alone");
                        }
                        None => {
                            shared.inflight.remove(qi, &delivery.entry);
                            shared.activity.finished();
                            return;
                        }
                    }
                }
                executor::run(&shared, qi, delivery, Some(permit)).await;
            });
        }
    }

    /// Takes between 1 and `max` free slots, waiting for the first one.
    /// Returns `None` when shutdown starts first.
    pub(crate) async fn take_slots(&self, max: usize) -> Option<Vec<OwnedSemaphorePermit>> {
        let first = tokio::select! {
            biased;
            _ = self.stopping.cancelled() => return None,
            p = Arc::clone(&self.slots).acquire_owned() => p.ok()?,
        };
        let mut permits = vec![first];
        // Let jobs that are about to finish free their slots, so one claim
        // takes a batch rather than one entry per round trip.
        if max > 1 {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
        }
        while permits.len() < max {
            match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        Some(permits)
    }

    /// Takes up to `max` free slots without waiting (possibly none).
    pub(crate) fn try_take_slots(&self, max: usize) -> Vec<OwnedSemaphorePermit> {
        let mut permits = Vec::new();
        while permits.len() < max {
            match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        permits
    }

    /// Runs a Redis step that records a job's outcome, retrying transient
    /// failures with backoff until it succeeds, `attempts` run out, or the
    /// hard stop. A step that never succeeds leaves the entry pending, so
    /// recovery runs the job again: nothing is lost.
    pub(crate) async fn persist<T, F, Fut>(&self, what: &str, mut step: F) -> Option<T>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = ferry_broker::Result<T>>,
    {
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=8u32 {
            match step(self.conn.clone()).await {
                Ok(v) => return Some(v),
                Err(e) if attempt == 8 => {
                    tracing::error!(error = %e, "{what} failed {attempt} times; the entry stays pending and will be recovered after the lease");
                }
                Err(e) => {
                    if attempt == 1 {
                        tracing::warn!(error = %e, "{what} failed; retrying");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(jitter(delay)) => {}
                        _ = self.hard_stop.cancelled() => return None,
                    }
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
        None
    }
}

/// `d` scaled by a random factor in [0.5, 1.0).
pub(crate) fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// Backoff for loops whose Redis calls fail: doubles from 100 ms to 5 s;
/// logs the first failure of a run of failures and the recovery, once each.
pub(crate) struct ErrorBackoff {
    what: &'static str,
    failures: u32,
}

impl ErrorBackoff {
    pub(crate) fn new(what: &'static str) -> Self {
        Self { what, failures: 0 }
    }

    /// Records a failure; returns how long to wait before trying again.
    pub(crate) fn failed(&mut self, err: &dyn std::fmt::Display) -> Duration {
        if self.failures == 0 {
            tracing::warn!(error = %err, "{} failed; retrying with backoff until redis answers", self.what);
        } else {
            tracing::debug!(error = %err, failures = self.failures + 1, "{} failed again", self.what);
        }
        self.failures = self.failures.saturating_add(1);
        let d = Duration::from_millis(100).saturating_mul(1u32 << self.failures.min(6));
        jitter(d.min(Duration::from_secs(5)))
    }

    /// Records a success.
    pub(crate) fn ok(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "{} works again", self.what);
            self.failures = 0;
        }
    }
}
