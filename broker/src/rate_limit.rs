//! A queue's rate limit: at most `n` job starts per `period`, fleet-wide,
//! decided by GCRA inside the claim scripts on the server's clock (the
//! settings fields `rate_limit` and `rate_tat`; `lua/shared/settings.lua`).
//! A claim over the limit takes nothing and says how long until the next
//! slot ([`Error::RateLimited`](crate::Error::RateLimited)); the worker
//! sleeps that long, so a limited queue costs Redis about one claim per job.

use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::error::{ConfigError, Result};
use crate::queue::Queue;

/// At most `n` starts per `period`, with up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateLimit {
    /// Starts per period (1 or more).
    pub n: u32,
    /// The period, ms (1 or more).
    pub period_ms: u64,
    /// How many may start at once after a quiet spell (1 to `n`).
    pub burst: u32,
}

impl RateLimit {
    /// `n` starts per `period`, with a burst of a tenth of `n` (at least 1).
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `rate_limit` for a zero `n`
    /// or a period under 1 ms.
    pub fn new(n: u32, period: Duration) -> Result<Self, ConfigError> {
        Self::with_burst(n, period, n.div_ceil(10).max(1))
    }

    /// As [`RateLimit::new`], with `burst` (1 to `n`).
    ///
    /// # Errors
    /// As [`RateLimit::new`], and for a burst out of range.
    pub fn with_burst(n: u32, period: Duration, burst: u32) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::InvalidSetting {
            name: "rate_limit",
            reason,
        };
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        if n == 0 {
            return Err(bad(
                "0 starts per period would run nothing; remove the limit instead".into(),
            ));
        }
        if period_ms == 0 {
            return Err(bad("the period must be 1 ms or more".into()));
        }
        if burst == 0 || burst > n {
            return Err(bad(format!("the burst must be 1 to {n}, got {burst}")));
        }
        Ok(Self {
            n,
            period_ms,
            burst,
        })
    }

    /// Parses `<n>/<period>` (`50/1s`, `1000/1m`, `10/500ms`; a bare
    /// period unit means one of it: `50/s`), with an optional `:<burst>`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `rate_limit`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::InvalidSetting {
            name: "rate_limit",
            reason: format!("{text:?}: use <n>/<period>[:<burst>], e.g. 50/1s, 1000/1m:100"),
        };
        let (rate, burst) = match text.split_once(':') {
            Some((r, b)) => (r, Some(b.parse::<u32>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let (n, period) = rate.split_once('/').ok_or_else(bad)?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        let period = period.trim();
        let split = period
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(period.len());
        let (count, unit) = period.split_at(split);
        let count: u64 = if count.is_empty() {
            1
        } else {
            count.parse().map_err(|_| bad())?
        };
        let unit_ms = match unit {
            "ms" => 1,
            "s" | "" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        let period = Duration::from_millis(count.saturating_mul(unit_ms));
        match burst {
            Some(b) => Self::with_burst(n, period, b),
            None => Self::new(n, period),
        }
    }

    fn as_setting(self) -> String {
        format!("{} {} {}", self.n, self.period_ms, self.burst)
    }

    fn from_setting(text: &str) -> Option<Self> {
        let mut parts = text.split(' ').map(str::parse::<u64>);
        let (Some(Ok(n)), Some(Ok(period_ms)), Some(Ok(burst))) =
            (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Self {
            n: u32::try_from(n).ok()?,
            period_ms,
            burst: u32::try_from(burst).ok()?,
        })
    }
}

impl Queue {
    /// Sets (or with `None` removes) the queue's rate limit; workers
    /// follow it from their next claim.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn set_rate_limit<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        limit: Option<RateLimit>,
    ) -> Result<()> {
        let settings = self.keys().settings();
        match limit {
            Some(l) => {
                let _: i64 = redis::cmd("HSET")
                    .arg(settings)
                    .arg("rate_limit")
                    .arg(l.as_setting())
                    .query_async(conn)
                    .await?;
            }
            None => {
                let _: i64 = redis::cmd("HDEL")
                    .arg(settings)
                    .arg("rate_limit")
                    .arg("rate_tat")
                    .query_async(conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// Holds the queue: no job of it starts for `d` (by the server's
    /// clock), fleet-wide, unless a longer hold is on. A handler's
    /// `JobError::rate_limited` (an upstream's 429) calls this.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn hold<C: ConnectionLike + Send>(&self, conn: &mut C, d: Duration) -> Result<()> {
        let mut inv = self.invoke(&crate::scripts::HOLD_QUEUE);
        inv.arg(u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
        let _: i64 = inv.invoke_async(conn).await?;
        Ok(())
    }

    /// The queue's rate limit, if any.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn rate_limit<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<Option<RateLimit>> {
        let v: Option<String> = redis::cmd("HGET")
            .arg(self.keys().settings())
            .arg("rate_limit")
            .query_async(conn)
            .await?;
        Ok(v.as_deref().and_then(RateLimit::from_setting))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_check() {
        let l = RateLimit::parse("50/1s").unwrap();
        assert_eq!((l.n, l.period_ms, l.burst), (50, 1000, 5));
        assert_eq!(RateLimit::parse("50/s").unwrap(), l);
        let l = RateLimit::parse("1000/1m:100").unwrap();
        assert_eq!((l.n, l.period_ms, l.burst), (1000, 60_000, 100));
        assert_eq!(RateLimit::parse("10/500ms").unwrap().period_ms, 500);
        for bad in [
            "0/1s", "-5/1s", "5/0s", "5", "5/1y", "5/1s:0", "5/1s:6", "x/1s",
        ] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(RateLimit::from_setting(&l.as_setting()), Some(l));
    }
}
