//! [`RedisRetry`]: the one policy for Redis errors in the runtime. Every
//! loop and every outcome write waits out a failure the same way: half-
//! jittered exponential backoff from 100 ms to 5 s, the first failure of a
//! run logged at `warn`, the recovery once at `info`.

use std::future::Future;
use std::time::Duration;

use crate::link::Link;
use ferry_broker::backoff::jitter;
use tokio_util::sync::CancellationToken;

const BASE: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);
/// Tries of a step that records a job's outcome before it is left to
/// recovery (about 6 to 11 s of failures).
const OUTCOME_TRIES: u32 = 8;

/// Backoff state for one loop or one write: how many failures in a row.
pub(crate) struct RedisRetry {
    what: &'static str,
    failures: u32,
}

impl RedisRetry {
    /// A policy for the Redis calls of `what` ("claiming jobs", ...).
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
        let doublings = (self.failures - 1).min(6);
        jitter(BASE.saturating_mul(1u32 << doublings).min(MAX))
    }

    /// Records a success.
    pub(crate) fn ok(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "{} works again", self.what);
            self.failures = 0;
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
                    tracing::error!(error = %e, tries = OUTCOME_TRIES, "{what} failed; the entry stays pending and will be recovered after the lease");
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
