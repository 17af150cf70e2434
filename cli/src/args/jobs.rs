//! `ferry stats`, `ferry jobs`, `ferry job ...` and `ferry enqueue`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use ferry_broker::{Lifetime, OnDependencyFailure};
use ferry_queue::Priority;
use ferry_queue_cli::UniqueSpec;

use super::schedules::parse_duration;
use super::{parse_interval, parse_queue, parse_timeout};

/// `ferry stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// Redraw every interval until Ctrl-C (with --json: one JSON line per tick).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between two redraws of --watch.
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_interval, requires = "watch")]
    pub interval: Duration,
}

/// `ferry jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// queued, running, scheduled, waiting (at a concurrency or rate
    /// gate), finished or dead.
    #[arg(long, default_value = "queued")]
    pub state: ferry_broker::ListState,
    /// Jobs per page (1 to 1,000).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Where to go on: the `next` cursor the page before printed.
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

/// A queue and a job id.
#[derive(Debug, Args)]
pub struct JobRef {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// Job id (as enqueue prints it).
    pub id: String,
}

/// `ferry job ...`.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// A job's status: state, priority, attempts, times, worker, error,
    /// result, progress. Exit 3 when the queue has no such job.
    Show(JobRef),
    /// Wait until a job finishes (succeeded, dead or cancelled) and print
    /// its final status; exit 2 when it has not finished within --timeout.
    Wait {
        #[command(flatten)]
        job: JobRef,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_timeout)]
        timeout: Duration,
    },
    /// Cancel a job: removed at once if it has not started; a running
    /// job's handler is told, and it ends cancelled.
    Cancel(JobRef),
    /// Retry a dead job: its dead letter goes back to its priority stream
    /// as attempt 1, keeping its id. Only dead jobs: a retrying job runs
    /// again by itself, and a finished job's payload is not kept.
    Retry(JobRef),
    /// Give a waiting job (scheduled, retrying or queued) another priority,
    /// keeping its id.
    #[command(alias = "reprioritize")]
    Reprioritise {
        #[command(flatten)]
        job: JobRef,
        /// critical, high, normal or low.
        priority: Priority,
    },
}

/// `ferry enqueue`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("uniqueness").args(["unique", "unique_key"])))]
pub struct EnqueueArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// Job type (chooses the worker's handler).
    #[arg(long = "type", value_name = "T")]
    pub job_type: String,
    /// Payload as JSON text.
    #[arg(long, value_name = "JSON", conflicts_with = "file")]
    pub payload: Option<String>,
    /// Read the JSON payload from this file.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// critical, high, normal or low.
    #[arg(long, default_value = "normal")]
    pub priority: Priority,
    /// Retries after the first attempt.
    #[arg(long, value_name = "N", default_value_t = ferry_queue_cli::enqueue::DEFAULT_MAX_RETRIES)]
    pub max_retries: u32,
    /// Run no earlier than this many ms from now (the server's clock).
    #[arg(long, value_name = "MS")]
    pub delay_ms: Option<u64>,
    /// An id of your own for the job (unique in the queue).
    #[arg(long, conflicts_with = "uniqueness")]
    pub id: Option<String>,
    /// Keep the finished job's record (state, result) this many ms instead
    /// of the queue's retention; 0 keeps none.
    #[arg(long, value_name = "MS")]
    pub retention_ms: Option<u64>,
    /// A concurrency key: the job waits while KEY's limit of jobs runs
    /// (`ferry limit QUEUE --key KEY N`, or `--key-concurrency`).
    #[arg(long, value_name = "KEY")]
    pub concurrency_key: Option<String>,
    /// Enqueue only if no job of the same type and payload holds its key
    /// (the key derived as the SDK's `Unique::by_args` derives it, so a
    /// service's job and this one are one). A duplicate is not an error:
    /// it prints `deduplicated into job <id>`, the job holding the key.
    #[arg(long)]
    pub unique: bool,
    /// As --unique, keyed by KEY (1 to 512 bytes) instead of the payload.
    #[arg(long, value_name = "KEY")]
    pub unique_key: Option<String>,
    /// How long the key is held: `until-finished` (the default: until the
    /// job ends in any way), `until-started` (while it waits to start), or
    /// a DURATION from the enqueue whatever the job does (a throttle:
    /// `30s`, `5m`, `1h`, or whole ms).
    #[arg(long, value_name = "until-started|until-finished|DURATION",
          value_parser = parse_unique_for, requires = "uniqueness", conflicts_with = "debounce")]
    pub unique_for: Option<Lifetime>,
    /// Debounce: the job waits DURATION (`5s`, or whole ms); a duplicate
    /// while it waits replaces its payload and restarts the wait.
    #[arg(long, value_name = "DURATION", value_parser = parse_window,
          requires = "uniqueness", conflicts_with = "delay_ms")]
    pub debounce: Option<Duration>,
    /// On a duplicate, fail (exit 4, nothing enqueued) instead of printing
    /// the job that holds the key.
    #[arg(long, requires = "uniqueness")]
    pub error_on_duplicate: bool,
    /// Run only after job ID of the same queue succeeds (repeat it, or give
    /// a comma list, for several). Each must exist (a job that succeeded
    /// counts as done); the job waits, state `waiting`, until the last
    /// one succeeds. Not with --delay-ms, --unique or --unique-key.
    #[arg(long = "after", value_name = "ID", value_delimiter = ',', value_parser = parse_dependency,
          conflicts_with_all = ["delay_ms", "uniqueness"])]
    pub after: Vec<String>,
    /// What a dependency that fails (dead, or cancelled) does to the job:
    /// `fail` (the default: it ends cancelled too), `release` (it counts as
    /// done), or `wait` (the job waits until it is replayed and succeeds).
    #[arg(long, value_name = "fail|release|wait", value_parser = parse_on_failure,
          requires = "after")]
    pub on_dependency_failure: Option<OnDependencyFailure>,
}

impl EnqueueArgs {
    /// The uniqueness asked for (--unique or --unique-key), if any.
    pub fn unique_spec(&self) -> Option<UniqueSpec> {
        let mut spec = match (&self.unique_key, self.unique) {
            (Some(key), _) => UniqueSpec::key(key.clone()),
            (None, true) => UniqueSpec::by_args(),
            (None, false) => return None,
        };
        spec.lifetime = match (self.debounce, self.unique_for) {
            (Some(d), _) => Lifetime::Debounce(d),
            (None, Some(l)) => l,
            (None, None) => Lifetime::UntilFinished,
        };
        spec.error_on_duplicate = self.error_on_duplicate;
        Some(spec)
    }
}

/// A throttle or debounce window: a duration of 1 ms or more.
fn parse_window(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: a window of zero holds nothing")),
        d => Ok(d),
    }
}

/// One `--after` id: not empty.
fn parse_dependency(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("an empty job id".into()),
        id => Ok(id.to_owned()),
    }
}

/// `--on-dependency-failure`: fail, release or wait.
fn parse_on_failure(s: &str) -> Result<OnDependencyFailure, String> {
    match s {
        "fail" => Ok(OnDependencyFailure::Fail),
        "release" => Ok(OnDependencyFailure::Release),
        "wait" => Ok(OnDependencyFailure::Wait),
        _ => Err(format!("{s:?}: use fail, release or wait")),
    }
}

/// `--unique-for`: until-started, until-finished, or a throttle's window.
fn parse_unique_for(s: &str) -> Result<Lifetime, String> {
    match s {
        "until-started" => Ok(Lifetime::UntilStarted),
        "until-finished" => Ok(Lifetime::UntilFinished),
        _ => parse_window(s)
            .map(Lifetime::Throttle)
            .map_err(|e| format!("{e}; or until-started, until-finished")),
    }
}
