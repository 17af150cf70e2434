//! Retry delays: exponential backoff with half-jitter, and the one jitter
//! function every randomised delay uses.

use std::time::Duration;

use crate::error::ConfigError;

/// Exponential backoff: attempt `n` (the attempt that just failed, from 1)
/// waits a random time in `[d/2, d]`, where `d = min(base * 2^(n-1), max)`.
/// Half-jitter keeps retries spread out without ever retrying at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Default for Backoff {
    /// 1 s doubling up to 10 minutes: a retry series of 10 attempts spans about 15 minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// A backoff from `base`, doubling each attempt, capped at `max`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] when `base` is zero or `max < base`.
    pub fn new(base: Duration, max: Duration) -> Result<Self, ConfigError> {
        if base.is_zero() || max < base {
            return Err(ConfigError::InvalidSetting {
                name: "backoff",
                reason: format!("need 0 < base <= max, got base {base:?}, max {max:?}"),
            });
        }
        Ok(Self { base, max })
    }

    /// The ceiling of the delay after `attempt` failed (no jitter).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(32);
        self.base
            .saturating_mul(1u32 << shift.min(31))
            .min(self.max)
    }

    /// The delay after `attempt` failed, given `unit` in `[0, 1)` as the jitter draw.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        jitter_with(self.ceiling(attempt), unit)
    }

    /// The delay after `attempt` failed, with a random jitter draw.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, fastrand::f64())
    }
}

/// A random duration in `[d/2, d]`: half-jitter, for retry delays and for
/// the periods of background loops (so a fleet does not act in lockstep).
pub fn jitter(d: Duration) -> Duration {
    jitter_with(d, fastrand::f64())
}

/// `d` scaled by a factor in `[0.5, 1]` given `unit` in `[0, 1]` as the draw.
fn jitter_with(d: Duration, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    // Float rounding near Duration::MAX must not panic.
    Duration::try_from_secs_f64(d.as_secs_f64() * (0.5 + unit / 2.0))
        .map(|j| j.min(d))
        .unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2)).unwrap();
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(5), Duration::from_millis(1600));
        assert_eq!(b.ceiling(6), Duration::from_secs(2));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2));
        assert_eq!(b.delay_with(3, 0.0), Duration::from_millis(200));
        assert_eq!(b.delay_with(3, 1.0), Duration::from_millis(400));
        for _ in 0..100 {
            let d = b.delay(4);
            assert!(
                d >= Duration::from_millis(400) && d <= Duration::from_millis(800),
                "{d:?}"
            );
        }
        assert!(Backoff::new(Duration::ZERO, Duration::from_secs(1)).is_err());
        let huge = Backoff::new(Duration::from_secs(1), Duration::MAX).unwrap();
        assert!(huge.delay_with(200, 1.0) <= Duration::MAX);
        assert!(Backoff::new(Duration::from_secs(2), Duration::from_secs(1)).is_err());
    }
}
