//! `ferry schedules` and `ferry schedule ...`.

use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use ferry_queue::Priority;
use ferry_queue_cli::schedules::{ScheduleSpec, DEFAULT_PAYLOAD, DEFAULT_TIME_ZONE};

use super::parse_queue;

/// A queue and a schedule's name.
#[derive(Debug, Args)]
pub struct ScheduleRef {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// Schedule name: 1 to 64 characters of [A-Za-z0-9._-].
    #[arg(value_parser = parse_schedule_name)]
    pub name: String,
}

/// `ferry schedule ...`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule, or replace the one of that name: at each tick of
    /// --cron (in --tz) or --every, by the Redis server's clock, one job is
    /// enqueued (by whichever worker gets there first). Replacing it with
    /// the same recurrence keeps its next tick and its pause.
    Add(AddScheduleArgs),
    /// One schedule: spec, missed policy, job, next fire time, last job
    /// and its state. Exit 3 when there is none.
    Show(ScheduleRef),
    /// Remove a schedule: no tick fires after this; its jobs stay.
    Remove(ScheduleRef),
    /// Pause a schedule: it fires no tick until resumed.
    Pause(ScheduleRef),
    /// Resume a paused schedule from its next tick (the ticks of the pause
    /// do not run).
    Resume(ScheduleRef),
    /// Enqueue the schedule's job now, outside its cadence; prints the
    /// job's id.
    Trigger(ScheduleRef),
}

/// `ferry schedule add`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("recurrence").required(true).args(["cron", "every"])))]
pub struct AddScheduleArgs {
    #[command(flatten)]
    pub schedule: ScheduleRef,
    /// A cron expression: five fields (`0 2 * * *`), or six with seconds
    /// first (`*/10 * * * * *`).
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in [default: UTC].
    #[arg(long = "tz", value_name = "ZONE", requires = "cron")]
    pub time_zone: Option<String>,
    /// An interval, at least 1s: `30s`, `5m`, `1h`, `1h30m`, `2d`, `1500ms`,
    /// or whole ms (`60000`). Ticks fall on its multiples since the epoch.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// Type of the jobs it enqueues (chooses the worker's handler).
    #[arg(long = "type", value_name = "T")]
    pub job_type: String,
    /// The jobs' payload, JSON text.
    #[arg(long, value_name = "JSON", default_value = DEFAULT_PAYLOAD)]
    pub payload: String,
    /// critical, high, normal or low.
    #[arg(long, default_value = "normal")]
    pub priority: Priority,
    /// The jobs' retries after their first attempt.
    #[arg(long, value_name = "N", default_value_t = ferry_queue_cli::enqueue::DEFAULT_MAX_RETRIES)]
    pub max_retries: u32,
    /// Ticks missed while no worker fired it: `skip` them, run one job for
    /// them all (`run-once`), or one for each of the latest n of the last
    /// day (`catch-up:N`, n from 1 to 100).
    #[arg(long, value_name = "POLICY", default_value = "skip")]
    pub missed: String,
}

impl AddScheduleArgs {
    /// The schedule to write (checked by the library before anything is
    /// sent).
    pub fn spec(self) -> ScheduleSpec {
        let mut spec = ScheduleSpec::new(self.schedule.name, self.job_type);
        spec.cron = self.cron;
        spec.time_zone = match (&spec.cron, self.time_zone) {
            (Some(_), None) => Some(DEFAULT_TIME_ZONE.to_owned()),
            (_, tz) => tz,
        };
        spec.every = self.every;
        spec.payload = self.payload;
        spec.priority = self.priority;
        spec.max_retries = self.max_retries;
        spec.missed = self.missed;
        spec
    }
}

/// A schedule name Ferry accepts.
fn parse_schedule_name(s: &str) -> Result<String, String> {
    ferry_broker::ScheduleName::new(s)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| e.to_string())
}

/// A duration: whole ms (`60000`), or whole numbers with units `ms`, `s`,
/// `m`, `h`, `d`, one after the other (`30s`, `1h30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("{s:?} is not a duration: use e.g. 30s, 5m, 1h, 1h30m, 1500ms, or whole ms");
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[unit..];
    }
    Ok(Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_ms() {
        let ms = |s: &str| parse_duration(s).map(|d| d.as_millis());
        assert_eq!(ms("60000"), Ok(60_000));
        assert_eq!(ms("30s"), Ok(30_000));
        assert_eq!(ms("5m"), Ok(300_000));
        assert_eq!(ms("1h"), Ok(3_600_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("2d"), Ok(172_800_000));
        assert_eq!(ms("1500ms"), Ok(1_500));
        for bad in ["", "s", "5x", "1.5s", "-1s", "m5", "5 m", "1h 30m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
