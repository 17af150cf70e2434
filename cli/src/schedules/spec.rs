//! [`ScheduleSpec`]: a schedule to add or replace as the command line or
//! the API gives it, and its checks (every field before anything is
//! written).

use std::time::Duration;

use ferry_broker::envelope::{check_job_type, MAX_RETRIES_LIMIT};
use ferry_broker::{Missed, NewSchedule, Recurrence, ScheduleName};
use ferry_queue::Priority;

use crate::enqueue::{check_payload, DEFAULT_MAX_RETRIES};
use crate::error::{Error, Result};

/// The time zone of a cron expression given without one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// The payload of a schedule's jobs when none is given.
pub const DEFAULT_PAYLOAD: &str = "{}";

/// The longest interval accepted: ten years, in ms.
pub const MAX_INTERVAL_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// A schedule to add or replace, as given (checked by
/// [`ScheduleSpec::check`] before anything is written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleSpec {
    /// Its name: 1 to 64 of `[A-Za-z0-9._-]`.
    pub name: String,
    /// A cron expression (five fields, or six with seconds first); or
    /// [`ScheduleSpec::every`], not both.
    pub cron: Option<String>,
    /// The IANA time zone of [`ScheduleSpec::cron`] ([`DEFAULT_TIME_ZONE`]
    /// when `None`); only with a cron expression.
    pub time_zone: Option<String>,
    /// An interval, at least 1 s; or [`ScheduleSpec::cron`], not both.
    pub every: Option<Duration>,
    /// `skip`, `run-once` or `catch-up:<n>`.
    pub missed: String,
    /// The type of the jobs it enqueues.
    pub job_type: String,
    /// Their payload, JSON text.
    pub payload: String,
    /// Their priority.
    pub priority: Priority,
    /// Their retries after the first attempt.
    pub max_retries: u32,
}

impl ScheduleSpec {
    /// Schedule `name` enqueuing jobs of `job_type`, with no recurrence
    /// yet: payload `{}`, priority normal, 3 retries, missed ticks skipped.
    pub fn new(name: impl Into<String>, job_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            cron: None,
            time_zone: None,
            every: None,
            missed: Missed::Skip.as_text(),
            job_type: job_type.into(),
            payload: DEFAULT_PAYLOAD.to_owned(),
            priority: Priority::Normal,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }

    /// Checks every field; the schedule to write.
    ///
    /// # Errors
    /// [`Error::Usage`] for a bad name, cron expression (naming the field at
    /// fault), time zone, interval (under 1 s, or over ten years), missed
    /// policy, job type or retries, or for a cron expression and an
    /// interval both or neither; [`Error::Input`] for a payload that is not
    /// JSON. Nothing is sent.
    pub fn check(&self) -> Result<NewSchedule> {
        let name = schedule_name(&self.name)?;
        let recurrence = match (&self.cron, self.every) {
            (Some(_), Some(_)) => {
                return Err(Error::Usage(
                    "give a cron expression or an interval, not both".into(),
                ))
            }
            (None, None) => {
                return Err(Error::Usage(
                    "give a cron expression (cron) or an interval (every)".into(),
                ))
            }
            (Some(expr), None) => {
                Recurrence::cron_in(expr, self.time_zone.as_deref().unwrap_or(DEFAULT_TIME_ZONE))
                    .map_err(usage)?
            }
            (None, Some(every)) => {
                if self.time_zone.is_some() {
                    return Err(Error::Usage(
                        "a time zone goes with a cron expression, not an interval".into(),
                    ));
                }
                if every > Duration::from_millis(MAX_INTERVAL_MS) {
                    return Err(Error::Usage(format!(
                        "invalid setting every: {every:?} is over the maximum of ten years"
                    )));
                }
                Recurrence::every(every).map_err(usage)?
            }
        };
        let missed = Missed::parse(&self.missed).map_err(usage)?;
        check_job_type(&self.job_type)
            .map_err(|e| Error::Usage(format!("invalid job type: {e}")))?;
        if self.max_retries > MAX_RETRIES_LIMIT {
            return Err(Error::Usage(format!(
                "invalid setting max_retries: {} is over the limit of {MAX_RETRIES_LIMIT}",
                self.max_retries
            )));
        }
        let payload = check_payload(&self.payload)?.to_owned();
        Ok(NewSchedule {
            name,
            recurrence,
            missed,
            job_type: self.job_type.clone(),
            payload,
            priority: self.priority,
            max_retries: self.max_retries,
        })
    }
}

/// A bad value, as a usage error (its text names the setting).
fn usage(e: ferry_queue::ConfigError) -> Error {
    Error::Usage(e.to_string())
}

/// `name` as a schedule name.
///
/// # Errors
/// [`Error::Usage`] for a name outside `[A-Za-z0-9._-]{1,64}`.
pub fn schedule_name(name: &str) -> Result<ScheduleName> {
    ScheduleName::new(name).map_err(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every(secs: u64) -> ScheduleSpec {
        ScheduleSpec {
            every: Some(Duration::from_secs(secs)),
            ..ScheduleSpec::new("nightly", "report")
        }
    }

    #[test]
    fn a_spec_is_checked_before_anything_is_written() {
        assert!(every(60).check().is_ok());
        let kind = |s: ScheduleSpec| s.check().map(|_| ()).map_err(|e| (e.kind(), e.to_string()));
        let (k, e) = kind(ScheduleSpec {
            cron: Some("0 25 * * *".into()),
            ..ScheduleSpec::new("n", "t")
        })
        .unwrap_err();
        assert_eq!(k, crate::ErrorKind::Usage);
        assert!(e.contains("field 2 (hour)"), "{e}");
        let (_, e) = kind(ScheduleSpec {
            cron: Some("0 2 * * *".into()),
            time_zone: Some("Mars/Olympus".into()),
            ..ScheduleSpec::new("n", "t")
        })
        .unwrap_err();
        assert!(e.contains("unknown time zone"), "{e}");
        let (_, e) = kind(ScheduleSpec {
            every: Some(Duration::from_millis(500)),
            ..ScheduleSpec::new("n", "t")
        })
        .unwrap_err();
        assert!(e.contains("invalid setting every"), "{e}");
        assert!(kind(ScheduleSpec::new("n", "t")).is_err());
        assert!(kind(ScheduleSpec {
            time_zone: Some("UTC".into()),
            ..every(5)
        })
        .is_err());
        for bad in [
            ScheduleSpec {
                name: "a b".into(),
                ..every(5)
            },
            ScheduleSpec {
                missed: "sometimes".into(),
                ..every(5)
            },
            ScheduleSpec {
                max_retries: MAX_RETRIES_LIMIT + 1,
                ..every(5)
            },
            ScheduleSpec {
                job_type: String::new(),
                ..every(5)
            },
        ] {
            assert_eq!(kind(bad).unwrap_err().0, crate::ErrorKind::Usage);
        }
        let (k, _) = kind(ScheduleSpec {
            payload: "{".into(),
            ..every(5)
        })
        .unwrap_err();
        assert_eq!(k, crate::ErrorKind::Failed);
    }
}
