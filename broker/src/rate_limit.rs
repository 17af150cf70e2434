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
        Self::with_burst(n, period, default_burst(n))
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

    pub(crate) fn as_setting(self) -> String {
        format!("{} {} {}", self.n, self.period_ms, self.burst)
    }

    pub(crate) fn from_setting(text: &str) -> Option<Self> {
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

/// The burst [`RateLimit::new`] gives `n`: a tenth of it, at least 1.
fn default_burst(n: u32) -> u32 {
    n.div_ceil(10).max(1)
}

impl std::fmt::Display for RateLimit {
    /// As [`RateLimit::parse`] reads it: `50/1s`, `10/500ms`, `1000/1m`,
    /// the period in its largest whole unit, and `:<burst>` when the burst
    /// is not [`RateLimit::new`]'s (`10/1s:10`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.period_ms;
        let (count, unit) = [(3_600_000, "h"), (60_000, "m"), (1000, "s")]
            .into_iter()
            .find(|(ms, _)| p.is_multiple_of(*ms))
            .map_or((p, "ms"), |(ms, unit)| (p / ms, unit));
        write!(f, "{}/{count}{unit}", self.n)?;
        if self.burst != default_burst(self.n) {
            write!(f, ":{}", self.burst)?;
        }
        Ok(())
    }
}

/// A queue's rate limit and hold as they stand at one instant of the
/// server's clock ([`Queue::rate_state`]), by the claim scripts' own
/// arithmetic (`rate_allowance` in `lua/shared/settings.lua`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateState {
    /// The limit, if any (a hold may be on without one).
    pub limit: Option<RateLimit>,
    /// True when a claim now would start nothing: the queue is held, or
    /// its limit has no slot free.
    pub limited: bool,
    /// The hold's end (server ms), while one is on.
    pub held_until_ms: Option<u64>,
    /// How many jobs may start at once now under the limit (0 while
    /// limited); `None` without a limit.
    pub slots_free: Option<u32>,
    /// When the next job may start (server ms), while limited.
    pub next_slot_at_ms: Option<u64>,
    /// How long until then, ms (1 or more), while limited.
    pub next_slot_in_ms: Option<u64>,
    /// The server time the state is of, ms.
    pub now_ms: u64,
}

impl RateState {
    /// The state at server time `now_ms` of `limit`, its GCRA theoretical
    /// arrival time `tat` (the settings field `rate_tat`, server ms) and a
    /// hold ending at `held_until_ms`; `None` when there is neither a limit
    /// nor a hold in force. With `T = period / n` and `τ = (burst - 1) · T`,
    /// the next slot is `max(held_until, tat - τ)` when that is after now,
    /// as the claim scripts compute it.
    pub fn at(
        now_ms: u64,
        limit: Option<RateLimit>,
        tat: Option<f64>,
        held_until_ms: Option<u64>,
    ) -> Option<Self> {
        let held_until_ms = held_until_ms.filter(|h| *h > now_ms);
        if limit.is_none() && held_until_ms.is_none() {
            return None;
        }
        let now = now_ms as f64;
        // Under the limit: how many may start now, else when the next may.
        let (free, limit_next) = match limit {
            None => (None, None),
            Some(l) => {
                let t = l.period_ms as f64 / f64::from(l.n);
                let tolerance = f64::from(l.burst.max(1) - 1) * t;
                let tat = tat.filter(|v| v.is_finite()).unwrap_or(0.0).max(now);
                let allowed = ((now + tolerance - tat) / t).floor() + 1.0;
                if allowed <= 0.0 {
                    let next = (tat - tolerance).ceil().max(now + 1.0);
                    (Some(0), Some(next as u64))
                } else {
                    (Some((allowed as u32).min(l.burst)), None)
                }
            }
        };
        let next = match (held_until_ms, limit_next) {
            (Some(h), Some(l)) => Some(h.max(l)),
            (h, l) => h.or(l),
        };
        Some(Self {
            limit,
            limited: next.is_some(),
            held_until_ms,
            slots_free: if held_until_ms.is_some() {
                free.map(|_| 0)
            } else {
                free
            },
            next_slot_at_ms: next,
            next_slot_in_ms: next.map(|n| n - now_ms),
            now_ms,
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

    /// The queue's rate limit and hold as they stand now ([`RateState`]):
    /// the settings fields `rate_limit`, `rate_tat` and `held_until` and
    /// the server's TIME, read in one MULTI (one round trip, one instant).
    /// `None` when the queue has neither a limit nor a hold in force.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn rate_state<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<Option<RateState>> {
        type Fields = (Option<String>, Option<String>, Option<String>);
        let ((limit, tat, held), (secs, micros)): (Fields, (u64, u64)) = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(self.keys().settings())
            .arg("rate_limit")
            .arg("rate_tat")
            .arg("held_until")
            .cmd("TIME")
            .query_async(conn)
            .await?;
        let number = |v: Option<String>| v.and_then(|s| s.trim().parse::<f64>().ok());
        let held = number(held)
            .filter(|h| h.is_finite() && *h > 0.0)
            .map(|h| h.ceil() as u64);
        Ok(RateState::at(
            secs * 1000 + micros / 1000,
            limit.as_deref().and_then(RateLimit::from_setting),
            number(tat),
            held,
        ))
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

    #[test]
    fn limits_print_as_they_parse() {
        for (text, shown) in [
            ("50/1s", "50/1s"),
            ("50/s", "50/1s"),
            ("1000/1m:100", "1000/1m"),
            ("10/1s:10", "10/1s:10"),
            ("10/500ms", "10/500ms"),
            ("3/90s:1", "3/90s"),
            ("3/90s:2", "3/90s:2"),
            ("1/1h", "1/1h"),
            ("7/120m:2", "7/2h:2"),
        ] {
            let l = RateLimit::parse(text).unwrap();
            assert_eq!(l.to_string(), shown, "{text}");
            assert_eq!(RateLimit::parse(shown).unwrap(), l, "{shown}");
        }
    }

    const NOW: u64 = 1_700_000_000_000;

    fn state(limit: &str, tat: Option<f64>, held: Option<u64>) -> RateState {
        RateState::at(NOW, Some(RateLimit::parse(limit).unwrap()), tat, held).unwrap()
    }

    #[test]
    fn neither_a_limit_nor_a_hold_is_no_state() {
        assert_eq!(RateState::at(NOW, None, Some(5.0), None), None);
        // A hold that has ended is no hold.
        assert_eq!(RateState::at(NOW, None, None, Some(NOW)), None);
    }

    #[test]
    fn a_quiet_limit_has_its_burst_free() {
        // 50/1s: T = 20 ms, burst 5, τ = 80 ms. No tat yet, or one past.
        for tat in [None, Some((NOW - 5_000) as f64)] {
            let s = state("50/1s", tat, None);
            assert!(!s.limited);
            assert_eq!(
                (s.slots_free, s.next_slot_at_ms, s.next_slot_in_ms),
                (Some(5), None, None)
            );
        }
        // tat 40 ms ahead: (now + 80 - (now + 40)) / 20 + 1 = 3 free.
        let s = state("50/1s", Some(NOW as f64 + 40.0), None);
        assert_eq!((s.limited, s.slots_free), (false, Some(3)));
        // tat exactly τ ahead: one slot (the claim takes it).
        let s = state("50/1s", Some(NOW as f64 + 80.0), None);
        assert_eq!((s.limited, s.slots_free), (false, Some(1)));
    }

    #[test]
    fn a_saturated_limit_names_its_next_slot() {
        // tat 90.5 ms ahead: the next slot at tat - τ = now + 10.5, so 11 ms.
        let s = state("50/1s", Some(NOW as f64 + 90.5), None);
        assert!(s.limited);
        assert_eq!(s.slots_free, Some(0));
        assert_eq!(s.next_slot_at_ms, Some(NOW + 11));
        assert_eq!(s.next_slot_in_ms, Some(11));
        // 1/1h after one start: burst 1, τ = 0, the next slot at tat.
        let s = state("1/1h", Some(NOW as f64 + 3_600_000.0), None);
        assert_eq!(s.next_slot_in_ms, Some(3_600_000));
    }

    #[test]
    fn a_hold_limits_until_it_ends_or_the_limit_frees_a_slot() {
        // A hold alone.
        let s = RateState::at(NOW, None, None, Some(NOW + 120)).unwrap();
        assert!(s.limited);
        assert_eq!(
            (s.held_until_ms, s.slots_free, s.next_slot_in_ms),
            (Some(NOW + 120), None, Some(120))
        );
        // A hold over a quiet limit: no slot free until the hold ends.
        let s = state("50/1s", None, Some(NOW + 120));
        assert_eq!(
            (s.limited, s.slots_free, s.next_slot_at_ms),
            (true, Some(0), Some(NOW + 120))
        );
        // A limit saturated past the hold's end: the later of the two.
        let s = state("1/1h", Some(NOW as f64 + 3_600_000.0), Some(NOW + 120));
        assert_eq!(s.next_slot_at_ms, Some(NOW + 3_600_000));
    }
}
