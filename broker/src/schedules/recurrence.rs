//! When a schedule fires: a cron expression in a time zone or a fixed
//! interval ([`Recurrence`]), what happens to ticks missed while no worker
//! ran ([`Missed`]), and the tick arithmetic every worker must agree on.
//!
//! Cron expressions are parsed by `croner` (five fields, or six with
//! seconds first; `L`, `W`, `#`, names and `@daily`-style nicknames), time
//! zones by `chrono-tz` (the IANA database compiled in, so every host
//! agrees whatever its own tz data). Every time here is in ms since the
//! epoch by the Redis server's clock: the caller passes the server's now.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

use crate::error::ConfigError;

/// Shortest interval accepted: 1 s (a shorter cadence is a loop, not a schedule).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Longest cron expression accepted, in bytes.
pub const MAX_CRON_LEN: usize = 256;

/// The most missed ticks [`Missed::CatchUp`] runs.
pub const MAX_CATCH_UP: u32 = 100;

/// How far back a catch-up looks for missed ticks: a day.
const CATCH_UP_WINDOW_MS: u64 = 86_400_000;

/// When a schedule fires.
#[derive(Clone, Debug)]
pub enum Recurrence {
    /// A cron expression, evaluated in a time zone.
    Cron {
        /// The expression as given.
        expression: String,
        /// The IANA time zone it is read in (`UTC` by default).
        zone: Tz,
        /// The parsed expression.
        cron: Box<Cron>,
    },
    /// Every so many ms, on multiples of the interval since the epoch (so
    /// an hourly interval fires on the hour, by the server's clock).
    Every(u64),
}

impl PartialEq for Recurrence {
    fn eq(&self, other: &Self) -> bool {
        self.spec() == other.spec()
    }
}

impl Eq for Recurrence {}

/// The names of a six-field expression's fields, seconds first.
const FIELDS: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day of month",
    "month",
    "day of week",
];

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).build()
}

impl Recurrence {
    /// A cron expression (`0 2 * * *`, or with seconds `*/10 * * * * *`)
    /// in UTC.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `cron`, with the field at fault
    /// (its position and text) where one field is.
    pub fn cron(expression: &str) -> Result<Self, ConfigError> {
        Self::cron_in(expression, "UTC")
    }

    /// A cron expression read in the IANA time zone `zone`
    /// (`Europe/Paris`): `0 2 * * *` fires at 02:00 Paris time, whatever the
    /// offset that day.
    ///
    /// # Errors
    /// As [`Recurrence::cron`]; [`ConfigError::InvalidSetting`] naming
    /// `time_zone` for a zone the IANA database does not know.
    pub fn cron_in(expression: &str, zone: &str) -> Result<Self, ConfigError> {
        let zone = Tz::from_str(zone).map_err(|_| ConfigError::InvalidSetting {
            name: "time_zone",
            reason: format!(
                "unknown time zone {zone:?}: use an IANA name such as UTC or Europe/Paris"
            ),
        })?;
        let bad = |reason: String| ConfigError::InvalidSetting {
            name: "cron",
            reason,
        };
        if expression.len() > MAX_CRON_LEN {
            return Err(bad(format!("longer than {MAX_CRON_LEN} bytes")));
        }
        let cron = parser().parse(expression).map_err(|e| {
            bad(match field_at_fault(expression) {
                Some((i, name, text)) => {
                    format!("{expression:?}: field {i} ({name}) {text:?} is invalid ({e})")
                }
                None => format!("{expression:?}: {e}"),
            })
        })?;
        let expression = expression.trim().to_owned();
        let r = Recurrence::Cron {
            expression,
            zone,
            cron: Box::new(cron),
        };
        // An expression that never matches (the 30th of February) is a
        // mistake found now, not a schedule that silently never fires.
        if r.next_after(crate::queue::now_ms()).is_none() {
            return Err(bad(format!("{:?} never fires", r.spec())));
        }
        Ok(r)
    }

    /// Every `interval` (at least [`MIN_INTERVAL`], whole ms).
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `every` for an interval under 1 s.
    pub fn every(interval: Duration) -> Result<Self, ConfigError> {
        if interval < MIN_INTERVAL {
            return Err(ConfigError::InvalidSetting {
                name: "every",
                reason: format!("{interval:?} is under the minimum of 1s"),
            });
        }
        Ok(Recurrence::Every(
            u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        ))
    }

    /// The recurrence as one line of text, as the schedule's hash keeps
    /// it: `cron <expression> <zone>` or `every <ms>`.
    pub fn spec(&self) -> String {
        match self {
            Recurrence::Cron {
                expression, zone, ..
            } => format!("cron {expression} {}", zone.name()),
            Recurrence::Every(ms) => format!("every {ms}"),
        }
    }

    /// The first tick strictly after `at` (ms); `None` if there is none
    /// (an expression that never matches again).
    pub fn next_after(&self, at: u64) -> Option<u64> {
        match self {
            Recurrence::Every(ms) => Some((at / ms).saturating_add(1).saturating_mul(*ms)),
            Recurrence::Cron { zone, cron, .. } => {
                // Cron ticks are whole seconds: search from the second of
                // `at` (croner keeps the start's milliseconds).
                let t = zone.from_utc_datetime(&utc(at / 1000 * 1000)?.naive_utc());
                let next = cron.find_next_occurrence(&t, false).ok()?;
                u64::try_from(next.timestamp_millis()).ok()
            }
        }
    }

    /// The latest tick at or before `at`, if any.
    fn last_at_or_before(&self, at: u64) -> Option<u64> {
        match self {
            Recurrence::Every(ms) => Some(at / ms * ms),
            Recurrence::Cron { zone, cron, .. } => {
                let t = zone.from_utc_datetime(&utc(at / 1000 * 1000)?.naive_utc());
                let prev = cron.find_previous_occurrence(&t, true).ok()?;
                u64::try_from(prev.timestamp_millis()).ok()
            }
        }
    }

    /// The ticks in `[from, to]`, latest first, at most `n`.
    fn latest_ticks(&self, from: u64, to: u64, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        let mut at = to;
        while out.len() < n {
            match self.last_at_or_before(at) {
                Some(t) if t >= from => {
                    out.push(t);
                    match t.checked_sub(1) {
                        Some(a) => at = a,
                        None => break,
                    }
                }
                _ => break,
            }
        }
        out
    }
}

/// Which field of `expression` alone fails to parse: (position from 1,
/// name, text). Each field is tried with every other field `*`.
fn field_at_fault(expression: &str) -> Option<(usize, &'static str, String)> {
    let parts: Vec<&str> = expression.split_whitespace().collect();
    let names: &[&str] = match parts.len() {
        5 => &FIELDS[1..],
        6 => &FIELDS,
        _ => return None,
    };
    let p = parser();
    (0..parts.len()).find_map(|i| {
        let probe: Vec<&str> = (0..parts.len())
            .map(|j| if j == i { parts[i] } else { "*" })
            .collect();
        p.parse(&probe.join(" "))
            .is_err()
            .then(|| (i + 1, names[i], parts[i].to_owned()))
    })
}

fn utc(ms: u64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(i64::try_from(ms).ok()?)
}

/// What a schedule does with ticks that passed while no worker fired it
/// (a fleet stopped, Redis down): a tick is missed when a later one is due
/// too, or when it is more than its grace late (half its interval, at most
/// 5 s).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Missed {
    /// Run none of the missed ticks; the schedule goes on from the next.
    #[default]
    Skip,
    /// Run one job for all the missed ticks (named by the latest).
    RunOnce,
    /// Run a job for each of the latest `n` missed ticks (1 to
    /// [`MAX_CATCH_UP`], from the last day), oldest first.
    CatchUp(u32),
}

impl Missed {
    /// As the schedule's hash keeps it: `skip`, `run-once` or `catch-up:<n>`.
    pub fn as_text(self) -> String {
        match self {
            Missed::Skip => "skip".into(),
            Missed::RunOnce => "run-once".into(),
            Missed::CatchUp(n) => format!("catch-up:{n}"),
        }
    }

    /// Parses [`Missed::as_text`].
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `missed`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::InvalidSetting {
            name: "missed",
            reason: format!(
                "{text:?}: use skip, run-once or catch-up:<n> (n from 1 to {MAX_CATCH_UP})"
            ),
        };
        match text {
            "skip" => Ok(Missed::Skip),
            "run-once" => Ok(Missed::RunOnce),
            _ => {
                let n: u32 = text
                    .strip_prefix("catch-up:")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)?;
                if (1..=MAX_CATCH_UP).contains(&n) {
                    Ok(Missed::CatchUp(n))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// What one due schedule does now: the ticks to enqueue a job for
/// (oldest first) and the next tick to wait for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firing {
    /// The ticks (ms) to enqueue one job each for.
    pub ticks: Vec<u64>,
    /// The first tick after `now`.
    pub next: u64,
}

/// The grace of a tick: how late it may fire and still count as on time.
fn grace(recurrence: &Recurrence, tick: u64) -> u64 {
    let interval = recurrence
        .next_after(tick)
        .map_or(u64::MAX, |n| n.saturating_sub(tick));
    (interval / 2).min(5_000)
}

/// What to fire for a schedule due at `due` (its set's score), the
/// server's time being `now` (≥ `due`), under `missed`. `None` when the
/// recurrence has no tick after `now` (it never fires again).
pub fn firing(recurrence: &Recurrence, missed: Missed, due: u64, now: u64) -> Option<Firing> {
    let next = recurrence.next_after(now)?;
    let latest = recurrence
        .last_at_or_before(now)
        .filter(|t| *t >= due)
        .unwrap_or(due);
    let on_time = latest == due && now.saturating_sub(due) <= grace(recurrence, due);
    let ticks = if on_time {
        vec![due]
    } else {
        match missed {
            Missed::Skip => {
                // The latest tick may itself be on time.
                if latest > due && now - latest <= grace(recurrence, latest) {
                    vec![latest]
                } else {
                    Vec::new()
                }
            }
            Missed::RunOnce => vec![latest],
            Missed::CatchUp(n) => {
                let from = due.max(now.saturating_sub(CATCH_UP_WINDOW_MS));
                let mut t = recurrence.latest_ticks(from, now, n as usize);
                t.reverse();
                t
            }
        }
    };
    Some(Firing { ticks, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

    #[test]
    fn an_interval_fires_on_its_multiples() {
        let r = Recurrence::every(Duration::from_secs(1)).unwrap();
        assert_eq!(r.next_after(T0), Some(T0 + 1000));
        assert_eq!(r.next_after(T0 + 1), Some(T0 + 1000));
        assert_eq!(r.spec(), "every 1000");
        assert!(Recurrence::every(Duration::from_millis(999)).is_err());
    }

    #[test]
    fn cron_takes_five_or_six_fields_and_a_zone() {
        let r = Recurrence::cron("*/10 * * * * *").unwrap();
        assert_eq!(r.next_after(T0), Some(T0 + 10_000));
        // Ticks are whole seconds whatever the milliseconds of the start.
        assert_eq!(r.next_after(T0 + 546), Some(T0 + 10_000));
        assert_eq!(r.next_after(T0 + 9_999), Some(T0 + 10_000));
        assert_eq!(r.last_at_or_before(T0 + 10_546), Some(T0 + 10_000));
        let r = Recurrence::cron("0 * * * *").unwrap();
        assert_eq!(r.next_after(T0), Some(1_700_002_800_000)); // 23:00Z
                                                               // 02:00 in Paris (UTC+1 in November) is 01:00Z.
        let r = Recurrence::cron_in("0 2 * * *", "Europe/Paris").unwrap();
        let next = r.next_after(T0).unwrap();
        let t = utc(next).unwrap();
        assert_eq!(
            t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "2023-11-15T01:00:00Z"
        );
        assert_eq!(r.spec(), "cron 0 2 * * * Europe/Paris");
    }

    #[test]
    fn bad_expressions_name_the_field() {
        let e = Recurrence::cron("0 25 * * *").unwrap_err().to_string();
        assert!(e.contains("field 2 (hour) \"25\""), "{e}");
        let e = Recurrence::cron("*/5 * * * * * * *")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid setting cron"), "{e}");
        let e = Recurrence::cron("0 0 30 2 *").unwrap_err().to_string();
        assert!(e.contains("never fires"), "{e}");
        let e = Recurrence::cron_in("0 * * * *", "Mars/Olympus")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown time zone"), "{e}");
    }

    #[test]
    fn an_on_time_tick_fires_under_every_policy() {
        let r = Recurrence::every(Duration::from_secs(1)).unwrap();
        for m in [Missed::Skip, Missed::RunOnce, Missed::CatchUp(3)] {
            let f = firing(&r, m, T0, T0 + 20).unwrap();
            assert_eq!(
                f,
                Firing {
                    ticks: vec![T0],
                    next: T0 + 1000
                },
                "{m:?}"
            );
        }
    }

    #[test]
    fn missed_ticks_follow_the_policy() {
        let r = Recurrence::every(Duration::from_secs(1)).unwrap();
        // Ten ticks missed; now is 800 ms past the latest (past its grace).
        let now = T0 + 9_800;
        assert_eq!(
            firing(&r, Missed::Skip, T0, now).unwrap().ticks,
            Vec::<u64>::new()
        );
        assert_eq!(
            firing(&r, Missed::RunOnce, T0, now).unwrap().ticks,
            vec![T0 + 9_000]
        );
        assert_eq!(
            firing(&r, Missed::CatchUp(3), T0, now).unwrap().ticks,
            vec![T0 + 7_000, T0 + 8_000, T0 + 9_000]
        );
        assert_eq!(
            firing(&r, Missed::CatchUp(50), T0, now)
                .unwrap()
                .ticks
                .len(),
            10
        );
        // The latest tick on time still fires when skipping.
        assert_eq!(
            firing(&r, Missed::Skip, T0, T0 + 9_100).unwrap().ticks,
            vec![T0 + 9_000]
        );
        assert_eq!(firing(&r, Missed::Skip, T0, now).unwrap().next, T0 + 10_000);
    }

    #[test]
    fn missed_policies_read_back() {
        for m in [Missed::Skip, Missed::RunOnce, Missed::CatchUp(7)] {
            assert_eq!(Missed::parse(&m.as_text()).unwrap(), m);
        }
        assert!(Missed::parse("catch-up:0").is_err());
        assert!(Missed::parse("catch-up:101").is_err());
        assert!(Missed::parse("sometimes").is_err());
    }
}
