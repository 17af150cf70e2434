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
/// Tries of a step that records a job's outcome before it is left to
/// recovery (about 6 to 11 s of failures).
const OUTCOME_TRIES: u32 = 8;

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
        jitter(BASE.saturating_mul(1u32 << doublings).min(MAX))
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
    /// succeeds, fails [`OUTCOME_TRIES`] times, or `stop` fires (the grace
    /// period is over). `None` when it never succeeded: the entry stays
    /// pending and recovery runs the job again, so nothing is lost.
    pub(crate) async fn persist<T, F, Fut>(
        what: &'static str,
        conn: &Link,
        stop: &CancellationToken,
        mut step: F,
    ) -> Option<T>
    where
        F: FnMut(Link) -> Fut,
        Fut: Future<Output = ferry_broker::Result<T>>,
    {
        let mut policy = Self::new(what);
        loop {
            match step(conn.clone()).await {
                Ok(v) => {
                    policy.ok();
                    return Some(v);
                }
                Err(e) if policy.failures + 1 >= OUTCOME_TRIES => {
                    if let Some(unlogged) = log_now("giving up on an outcome") {
                        tracing::error!(error = %e, tries = OUTCOME_TRIES, unlogged_failures = unlogged, "{what} failed; the entry stays pending and will be recovered after the lease");
                    }
                    return None;
                }
                Err(e) => {
                    let wait = policy.failed(&e);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.cancelled() => return None,
                    }
                }
            }
        }
    }
}
