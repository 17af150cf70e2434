//! [`Activity`]: what a worker is doing, for callers that watch it (tests,
//! the example's `--exit-when-idle`). Lock-free counters.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_broker::prometheus::Families;

/// What a worker is doing: jobs running, outcomes so far, idle time.
#[derive(Debug)]
pub struct Activity {
    running: AtomicUsize,
    /// Attempts whose handler has started and not yet returned (or been
    /// dropped).
    in_handlers: AtomicUsize,
    completed: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    /// Keys the server evicted while this worker watched (allow_eviction).
    evicted_keys: AtomicU64,
    /// Set while the server's maxmemory-policy may evict Ferry's keys and
    /// eviction is not allowed: the fetchers claim nothing.
    claims_held: AtomicBool,
    /// When this worker last claimed or finished an entry, in ms since `epoch`.
    last_claim_ms: AtomicU64,
    epoch: Instant,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            running: AtomicUsize::new(0),
            in_handlers: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            evicted_keys: AtomicU64::new(0),
            claims_held: AtomicBool::new(false),
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

    /// Keys the Redis server evicted under memory pressure while this
    /// worker watched it (read from `INFO stats` every 10 s): each one is
    /// possible data loss. Only an `allow_eviction` worker runs where
    /// this can grow.
    pub fn evicted_keys(&self) -> u64 {
        self.evicted_keys.load(Ordering::Relaxed)
    }

    /// True while the worker claims nothing because the server's
    /// `maxmemory-policy` may evict Ferry's keys (and `allow_eviction` is
    /// off).
    pub fn claims_held(&self) -> bool {
        self.claims_held.load(Ordering::Relaxed)
    }

    pub(crate) fn count_evicted(&self, n: u64) {
        self.evicted_keys.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn hold_claims(&self, hold: bool) {
        self.claims_held.store(hold, Ordering::Relaxed);
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

    pub(crate) fn claimed(&self, n: usize) {
        self.running.fetch_add(n, Ordering::SeqCst);
        self.touch();
    }

    pub(crate) fn finished(&self, n: usize) {
        if n > 0 {
            self.running.fetch_sub(n, Ordering::SeqCst);
            self.touch();
        }
    }

    /// An attempt's handler starts; it has ended when the guard drops.
    pub(crate) fn handler_started(&self) -> HandlerGuard<'_> {
        self.in_handlers.fetch_add(1, Ordering::Relaxed);
        HandlerGuard(self)
    }

    /// Handlers started and not yet returned or dropped.
    pub(crate) fn in_handlers(&self) -> usize {
        self.in_handlers.load(Ordering::Relaxed)
    }

    pub(crate) fn count_completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_dead(&self) {
        self.dead.fetch_add(1, Ordering::Relaxed);
    }
}

impl Activity {
    /// This worker's figures in the Prometheus text format (0.0.4), every
    /// sample labelled `worker="<worker>"` (its consumer name): mount it
    /// on a `/metrics` route of your service (the example worker's
    /// `work --metrics-listen ADDR` does). The queues' own figures, the
    /// same from any process, are `ferry serve`'s `/metrics`.
    pub fn prometheus_text(&self, worker: &str) -> String {
        let mut out = Families::default();
        for (name, kind, help, value) in [
            (
                "ferry_worker_claimed_jobs",
                "gauge",
                "Jobs this worker has claimed and not finished.",
                self.running() as f64,
            ),
            (
                "ferry_worker_handlers_running",
                "gauge",
                "Handlers of this worker running now.",
                self.in_handlers() as f64,
            ),
            (
                "ferry_worker_jobs_completed_total",
                "counter",
                "Jobs this worker finished successfully.",
                self.completed() as f64,
            ),
            (
                "ferry_worker_jobs_retried_total",
                "counter",
                "Failed attempts this worker scheduled for a retry.",
                self.retried() as f64,
            ),
            (
                "ferry_worker_jobs_dead_total",
                "counter",
                "Jobs or entries this worker moved to a dead-letter stream.",
                self.dead() as f64,
            ),
            (
                "ferry_worker_redis_evicted_keys_total",
                "counter",
                "Keys the Redis server evicted while this worker watched it (possible data loss).",
                self.evicted_keys() as f64,
            ),
            (
                "ferry_worker_claims_held",
                "gauge",
                "1 while the worker claims nothing because Redis's maxmemory-policy may evict its keys.",
                f64::from(u8::from(self.claims_held())),
            ),
            (
                "ferry_worker_idle_seconds",
                "gauge",
                "Time since this worker last claimed or finished an entry.",
                self.idle_for().as_secs_f64(),
            ),
        ] {
            out.sample(name, kind, help, &[("worker", worker)], value);
        }
        out.render()
    }
}

/// Counts one handler as running until dropped.
pub(crate) struct HandlerGuard<'a>(&'a Activity);

impl Drop for HandlerGuard<'_> {
    fn drop(&mut self) {
        self.0.in_handlers.fetch_sub(1, Ordering::Relaxed);
    }
}
