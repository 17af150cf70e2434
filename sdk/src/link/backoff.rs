//! [`Reconnects`]: how a link backs off after connection failures, so
//! that a fleet at `maxclients` or facing a down server does not hammer it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::RedisError;

use super::is_connection_failure;

/// Longest wait between reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);
/// Added to the wait per connection failure in a row.
const RECONNECT_STEP: Duration = Duration::from_millis(50);

/// After a connection failure, commands fail at once with the last error
/// until a short delay (50 ms per failure in a row, at most 2 s) has passed.
#[derive(Default)]
pub(super) struct Reconnects {
    /// Connection failures in a row; 0 on the hot path, so that a healthy
    /// link never takes the lock.
    failing: AtomicU32,
    state: Mutex<Backoff>,
}

/// Connection failures in a row, and until when new commands fail fast.
#[derive(Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
    last: Option<RedisError>,
}

impl Reconnects {
    /// The last connection error, while reconnects are backing off.
    pub(super) fn backing_off(&self) -> Option<RedisError> {
        if self.failing.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let backoff = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match backoff.until {
            Some(until) if Instant::now() < until => backoff.last.clone(),
            _ => None,
        }
    }

    /// Notes the outcome of a command for the reconnect backoff.
    pub(super) fn note<T>(&self, result: &Result<T, RedisError>) {
        let failed = match result {
            Ok(_) => None,
            Err(e) if is_connection_failure(e) => Some(e),
            // The server answered: the connection works.
            Err(_) => None,
        };
        if failed.is_none() && self.failing.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut backoff = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match failed {
            None => {
                *backoff = Backoff::default();
                self.failing.store(0, Ordering::Relaxed);
            }
            Some(e) => {
                backoff.failures = backoff.failures.saturating_add(1);
                let wait = RECONNECT_STEP
                    .saturating_mul(backoff.failures)
                    .min(MAX_RECONNECT_DELAY);
                backoff.until = Some(Instant::now() + wait);
                backoff.last = Some(e.clone());
                self.failing.store(backoff.failures, Ordering::Relaxed);
            }
        }
    }
}
