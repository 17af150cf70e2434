//! [`RedisRetry`]: the one policy for Redis errors in the runtime. Every
//! loop and every outcome write waits out a failure the same way: half-
//! jittered exponential backoff from 100 ms to 5 s, the first failure of a
//! run logged at `warn`, the recovery once at `info`.
//!
//! Logs are limited per kind of step ("claiming jobs", "acknowledging
//! jobs", ...), across every loop and write of the process: at most one
//! `warn` per [`LOG_INTERVAL`], which counts the failures it did not log. A
//! connection that flaps (at `maxclients`, say) logs a line every few
//! seconds, not hundreds.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::link::Link;
use ferry_broker::backoff::jitter;
use tokio_util::sync::CancellationToken;

const BASE: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);
/// Longest wait between two tries of a write that records a job's outcome:
/// once Redis is back, the outcome is written within about this long
/// (plus the connection's own reconnect backoff, at most 2 s).
const OUTCOME_MAX_WAIT: Duration = Duration::from_secs(1);

/// Shortest time between two `warn` lines about one kind of step.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Per kind of step: when a failure was last logged, and how many have
/// not been logged since.
static LOGGED: Mutex<Option<HashMap<&'static str, LogState>>> = Mutex::new(None);

/// When a kind of step's failure was last logged, and how many since were not.
type LogState = (Option<Instant>, u64);

/// Whether to log this failure of `what` now; if so, how many were left
/// unlogged before it.
fn log_now(what: &'static str) -> Option<u64> {
    let mut logged = LOGGED.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    let entry = logged
        .get_or_insert_with(HashMap::new)
        .entry(what)
        .or_insert((None, 0));
    match entry.0 {
        Some(at) if now.duration_since(at) < LOG_INTERVAL => {
            entry.1 += 1;
            None
        }
        _ => {
            let unlogged = entry.1;
            *entry = (Some(now), 0);
            Some(unlogged)
        }
    }
}

/// Backoff state for one loop or one write: how many failures in a row.
pub(crate) struct RedisRetry {
    what: &'static str,
    failures: u32,
    /// Whether this run of failures was logged (so its end is too).
    logged: bool,
}

impl RedisRetry {
    /// A policy for the Redis calls of `what` ("claiming jobs", ...).
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            failures: 0,
            logged: false,
        }
    }

    /// Records a failure; returns how long to wait before trying again.
    pub(crate) fn failed(&mut self, err: &dyn std::fmt::Display) -> Duration {
        self.failed_capped(err, MAX)
    }

    /// As [`RedisRetry::failed`], waiting at most `cap`.
    pub(crate) fn failed_capped(&mut self, err: &dyn std::fmt::Display, cap: Duration) -> Duration {
        match log_now(self.what) {
            Some(unlogged) => {
                self.logged = true;
                tracing::warn!(
                    error = %err,
                    unlogged_failures = unlogged,
                    "{} failed; retrying with backoff until redis answers",
                    self.what
                );
            }
            None => {
                tracing::debug!(error = %err, failures = self.failures + 1, "{} failed again", self.what);
            }
        }
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(6);
        jitter(BASE.saturating_mul(1u32 << doublings).min(cap))
    }

    /// Records a success.
    pub(crate) fn ok(&mut self) {
        if self.failures > 0 {
            if self.logged {
                tracing::info!(failures = self.failures, "{} works again", self.what);
            }
            self.failures = 0;
            self.logged = false;
        }
    }

    /// Runs `step`, a Redis write that records a job's outcome, until it
    /// succeeds, `patience` has passed since its first failure, or `stop`
    /// fires (the grace period is over). Callers pass the lease: until it
    /// runs out, no other worker can have taken the entry, so trying longer
    /// is pointless (the scripts check ownership anyway), and trying that
    /// long lets an outage shorter than the lease (minus a renewal period
    /// and the reconnect) end with the outcome written, nothing run twice. Tries
    /// are at most [`OUTCOME_MAX_WAIT`] apart, so the outcome is written
    /// soon after Redis is back. `None` when it never succeeded: the entry
    /// stays pending and recovery runs the job again, so nothing is lost.
    pub(crate) async fn persist<T, F, Fut>(
        what: &'static str,
        conn: &Link,
        stop: &CancellationToken,
        patience: Duration,
        mut step: F,
    ) -> Option<T>
    where
        F: FnMut(Link) -> Fut,
        Fut: Future<Output = ferry_broker::Result<T>>,
    {
        let mut policy = Self::new(what);
        let mut first_failure: Option<Instant> = None;
        loop {
            match step(conn.clone()).await {
                Ok(v) => {
                    policy.ok();
                    return Some(v);
                }
                Err(e) if first_failure.is_some_and(|at| at.elapsed() >= patience) => {
                    if let Some(unlogged) = log_now("giving up on an outcome") {
                        tracing::error!(error = %e, tries = policy.failures + 1, patience_ms = patience.as_millis() as u64, unlogged_failures = unlogged, "{what} failed for as long as the lease could hold; the entry stays pending and will be recovered");
                    }
                    return None;
                }
                Err(e) => {
                    first_failure.get_or_insert_with(Instant::now);
                    let wait = policy.failed_capped(&e, OUTCOME_MAX_WAIT);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.cancelled() => return None,
                    }
                }
            }
        }
    }
}
