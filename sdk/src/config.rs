//! [`WorkerConfig`]: a worker's settings, their defaults, and the checks
//! that `build()` runs on them.

use std::time::Duration;

use ferry_broker::{Backoff, Prefix, DEFAULT_MAX_PAYLOAD_BYTES};

use crate::error::ConfigError;

/// Largest `concurrency` accepted.
pub const MAX_CONCURRENCY: usize = 100_000;
/// Longest duration setting accepted (lease, timeouts, intervals): one day.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Shortest lease accepted: renewals run every lease/3.
pub const MIN_LEASE: Duration = Duration::from_millis(30);

/// A worker's settings. Start from [`WorkerConfig::default`] and change
/// what you need; [`WorkerBuilder::build`](crate::WorkerBuilder::build)
/// checks them with [`WorkerConfig::validate`]. The struct is
/// `#[non_exhaustive]`, so settings can be added without breaking you:
/// outside this crate it is built from `default()`, not with a struct
/// literal.
///
/// ```
/// use std::time::Duration;
/// let mut config = ferry_queue::WorkerConfig::default();
/// config.concurrency = 50;
/// config.lease = Duration::from_secs(60);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Jobs run at once (default 10; 1 to 100,000).
    pub concurrency: usize,
    /// The lease (default 30 s; at least 30 ms): the worker renews its
    /// running entries every lease/3, and takes over other workers' entries
    /// idle longer than this.
    pub lease: Duration,
    /// Time limit of one attempt (default 30 min); past it the attempt fails.
    pub job_timeout: Duration,
    /// Deliveries of one entry (each one a worker that died or lost its lease
    /// while running it) before it is dead-lettered as poison (default 5; at
    /// least 1, which means never redeliver).
    pub max_deliveries: u32,
    /// Retry delays (default: 1 s doubling to 10 min, with jitter).
    pub backoff: Backoff,
    /// Time running jobs get to finish at shutdown (default 30 s).
    pub grace_period: Duration,
    /// Longest XREADGROUP BLOCK when idle (default 1 s); shutdown waits for
    /// a read in progress, so this also bounds an idle worker's shutdown delay.
    pub block_time: Duration,
    /// Longest wait between two looks at the delayed set, and at the
    /// schedules (default 1 s).
    pub promote_interval: Duration,
    /// Idle time after which a consumer that owns nothing is removed (default 10 min).
    pub consumer_idle_timeout: Duration,
    /// Largest payload accepted, in bytes of JSON; larger entries are
    /// dead-lettered (default 1 MiB).
    pub max_payload_bytes: usize,
    /// Caps each dead-letter stream at this many entries (default 0: keep
    /// all); entries the cap drops are counted (`dead_dropped`) and logged.
    pub dead_letter_cap: u64,
    /// Key namespace (default `ferry`); producers must use the same.
    pub prefix: Prefix,
    /// Work with a Redis whose `maxmemory-policy` may delete Ferry's keys
    /// (any policy but `noeviction`: `allkeys-*` evicts queued jobs,
    /// `volatile-*` idempotency marks, records and registrations). Default
    /// `false`: `run()` fails with
    /// [`Error::EvictionPolicy`](crate::Error::EvictionPolicy), and a
    /// running worker whose server is switched to such a policy stops
    /// claiming until it is switched back. With `true`, a warning, and each
    /// eviction seen (`evicted_keys` growing) is logged as possible data
    /// loss and counted ([`Activity::evicted_keys`](crate::Activity::evicted_keys)).
    pub allow_eviction: bool,
    /// How long a job of a type this worker has no handler for may wait for
    /// a worker that has one (a rolling deploy: producers first). Until then
    /// the worker puts it back, delayed a few seconds, without using up its
    /// retries; past it (counted from the enqueue), it is dead-lettered.
    /// Default 6 h; zero dead-letters at once.
    pub unknown_type_window: Duration,
    /// Fire the cron and periodic schedules of this worker's queues
    /// (default `true`). Every worker of a fleet may: each tick enqueues
    /// one job whoever fires it. The firing loop looks at the schedules at
    /// least every `promote_interval`.
    pub fire_schedules: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 10,
            lease: Duration::from_secs(30),
            job_timeout: Duration::from_secs(30 * 60),
            max_deliveries: 5,
            backoff: Backoff::default(),
            grace_period: Duration::from_secs(30),
            block_time: Duration::from_secs(1),
            promote_interval: Duration::from_secs(1),
            consumer_idle_timeout: Duration::from_secs(600),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            dead_letter_cap: 0,
            prefix: Prefix::default(),
            allow_eviction: false,
            unknown_type_window: Duration::from_secs(6 * 3600),
            fire_schedules: true,
        }
    }
}

impl WorkerConfig {
    /// Checks every setting's range.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(invalid(
                "concurrency",
                format!("must be 1 to {MAX_CONCURRENCY}, got {}", self.concurrency),
            ));
        }
        let one_ms = Duration::from_millis(1);
        check_duration("lease", self.lease, MIN_LEASE, MAX_DURATION)?;
        check_duration("job_timeout", self.job_timeout, one_ms, MAX_DURATION)?;
        check_duration(
            "grace_period",
            self.grace_period,
            Duration::ZERO,
            MAX_DURATION,
        )?;
        check_duration("block_time", self.block_time, one_ms, MAX_DURATION)?;
        check_duration(
            "promote_interval",
            self.promote_interval,
            one_ms,
            MAX_DURATION,
        )?;
        check_duration(
            "consumer_idle_timeout",
            self.consumer_idle_timeout,
            Duration::ZERO,
            MAX_DURATION,
        )?;
        check_duration(
            "unknown_type_window",
            self.unknown_type_window,
            Duration::ZERO,
            MAX_DURATION,
        )?;
        if self.max_deliveries == 0 {
            return Err(invalid("max_deliveries", "must be at least 1".into()));
        }
        check_payload_limit(self.max_payload_bytes)
    }
}

fn invalid(name: &'static str, reason: String) -> ConfigError {
    ConfigError::InvalidSetting { name, reason }
}

/// Checks that duration setting `name` lies in `[min, max]`.
pub(crate) fn check_duration(
    name: &'static str,
    d: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), ConfigError> {
    if d < min || d > max {
        return Err(invalid(
            name,
            format!("must be between {min:?} and {max:?}, got {d:?}"),
        ));
    }
    Ok(())
}

/// Checks a payload limit: at least 1 byte.
pub(crate) fn check_payload_limit(limit: usize) -> Result<(), ConfigError> {
    if limit == 0 {
        return Err(invalid("max_payload_bytes", "must be at least 1".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_each_bad_setting_is_named() {
        assert_eq!(WorkerConfig::default().validate(), Ok(()));
        type Breaks = fn(&mut WorkerConfig);
        let cases: [(&str, Breaks); 8] = [
            ("concurrency", |c| c.concurrency = 0),
            ("concurrency", |c| c.concurrency = MAX_CONCURRENCY + 1),
            ("lease", |c| c.lease = Duration::from_millis(29)),
            ("job_timeout", |c| c.job_timeout = Duration::ZERO),
            ("block_time", |c| c.block_time = Duration::ZERO),
            ("promote_interval", |c| {
                c.promote_interval = MAX_DURATION * 2
            }),
            ("max_deliveries", |c| c.max_deliveries = 0),
            ("max_payload_bytes", |c| c.max_payload_bytes = 0),
        ];
        for (name, break_it) in cases {
            let mut config = WorkerConfig::default();
            break_it(&mut config);
            match config.validate() {
                Err(ConfigError::InvalidSetting { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
