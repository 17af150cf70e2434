//! `ferry stats`, `ferry jobs`, `ferry job ...` and `ferry enqueue`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use ferry_queue::Priority;

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
    /// queued, running, scheduled, finished or dead.
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
    #[arg(long)]
    pub id: Option<String>,
    /// Keep the finished job's record (state, result) this many ms instead
    /// of the queue's retention; 0 keeps none.
    #[arg(long, value_name = "MS")]
    pub retention_ms: Option<u64>,
}
