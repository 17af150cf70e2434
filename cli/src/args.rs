//! The command line: every command, argument and its help text (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ferry_broker::keys::DEFAULT_PREFIX;
use ferry_queue::{Prefix, Priority};

/// The exit codes, shown at the end of `ferry --help`.
const EXIT_CODES: &str = "\
Exit codes:
  0   ok
  1   error: one line on stderr, `ferry: <what went wrong>` (Redis unreachable
      within a few seconds, a refused change, a payload that is not JSON, ...)
  2   `job wait` timed out before the job finished
  3   not found: no such job, or no such dead letter
  64  usage: bad arguments, or `dead purge` without --yes when it cannot ask

Every command takes --json: one JSON document on stdout (`stats --watch --json`:
one line per tick). Errors go to stderr only. Logs: set RUST_LOG (e.g. warn).";

/// `ferry`: look at and operate the Ferry job queues of one Redis.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Redis URL: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS.
    #[arg(
        long = "redis",
        value_name = "URL",
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    pub redis: String,
    /// Key namespace of the queues (as the workers' `prefix`).
    #[arg(long, default_value = DEFAULT_PREFIX, value_parser = parse_prefix, global = true)]
    pub prefix: Prefix,
    /// PEM file of the CA that signed a rediss:// server's certificate.
    #[arg(long, value_name = "FILE", env = "REDIS_TLS_CA_CERT", global = true)]
    pub tls_ca_cert: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Work with a Redis whose maxmemory-policy may evict Ferry's keys (any
    /// but noeviction: queued jobs and idempotency marks can vanish). By
    /// default enqueues, status and stats refuse, and `serve` will not start.
    #[arg(long, env = "FERRY_ALLOW_EVICTION", global = true)]
    pub allow_eviction: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the queues under the prefix: depth per priority, scheduled,
    /// running, dead, paused, live workers. Finds them by SCAN over
    /// `<prefix>:{*}:*` (one Redis server; Redis Cluster is not supported).
    Queues,
    /// A queue's stats: depths, counters, and the last 15 minutes
    /// (throughput, wait/run p50/p95/p99, failure rate).
    Stats(StatsArgs),
    /// One job by id: show, wait, cancel, retry, reprioritise.
    #[command(subcommand)]
    Job(JobCommand),
    /// Dead letters: list, show, replay, purge.
    #[command(subcommand)]
    Dead(DeadCommand),
    /// Pause a queue across the fleet: nothing new is claimed within about
    /// a second; running jobs finish; enqueues still go in.
    Pause(QueueArg),
    /// Resume a paused queue.
    Resume(QueueArg),
    /// Enqueue a job with a raw JSON payload (from --payload, --file, or
    /// stdin when neither is given); prints its id.
    Enqueue(EnqueueArgs),
    /// A queue's jobs in one state, a page at a time: queued and running
    /// in claim order, scheduled (and retrying) soonest first, finished
    /// (succeeded, cancelled) and dead newest first.
    Jobs(JobsArgs),
    /// Each priority stream of a queue with its consumer group: length,
    /// pending, the group's lag, and the age of the oldest pending and the
    /// oldest waiting entry.
    Streams(QueueArg),
    /// Live workers of a queue, or of every queue under the prefix.
    Workers {
        /// Queue name (all queues when left out).
        #[arg(value_parser = parse_queue)]
        queue: Option<String>,
    },
    /// Show a queue's settings (paused, maximum depth, record retention,
    /// events), or change them: only the options given change.
    Settings(SettingsArgs),
    /// A queue's lifecycle events (kept only while its events are on:
    /// `ferry settings <queue> --events 100000`), oldest first; with
    /// --follow, then those to come until Ctrl-C.
    Events(EventsArgs),
    /// Serve the HTTP API (routes under /v1, /healthz, /metrics,
    /// /openapi.json) until SIGINT or SIGTERM. Refuses a non-loopback
    /// address without a token.
    Serve(ServeArgs),
    /// Print the HTTP API's OpenAPI document (JSON) on stdout.
    Openapi,
}

/// Where `ferry serve` listens, who may call it, and its limits.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        env = "FERRY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: std::net::SocketAddr,
    /// Bearer token that allows every route (prefer the environment
    /// variable: a flag shows in `ps`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FERRY_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Bearer token that allows the reads (GET) only.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FERRY_READ_TOKEN",
        hide_env_values = true
    )]
    pub read_token: Option<String>,
    /// Refuse every change (POST, DELETE), whatever the token.
    #[arg(long)]
    pub read_only: bool,
    /// Largest request body, bytes (413 past it).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Most jobs in one batch enqueue (413 past it).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_batch: usize,
    /// Longest wait a client may ask of the wait route, seconds.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = parse_timeout)]
    pub max_wait: Duration,
    /// How long one operation may take before it fails with a 503, seconds.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_timeout)]
    pub request_timeout: Duration,
}

/// A queue name.
#[derive(Debug, Args)]
pub struct QueueArg {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
}

/// `ferry settings`.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// The most jobs the queue holds (waiting, running or delayed; past it
    /// enqueues are refused), or `none` for no limit.
    #[arg(long, value_name = "N|none", value_parser = parse_limit)]
    pub max_depth: Option<Limit>,
    /// How long finished jobs' records are kept, ms (0 keeps none).
    #[arg(long, value_name = "MS")]
    pub retention_ms: Option<u64>,
    /// How many finished jobs' records are kept (0 keeps none).
    #[arg(long, value_name = "N")]
    pub retention_count: Option<u64>,
    /// Lifecycle events on, the stream capped at about CAP entries, or
    /// `off`.
    #[arg(long, value_name = "CAP|off", value_parser = parse_limit)]
    pub events: Option<Limit>,
    /// Delete every finished job's record (dead letters stay); needs --yes.
    #[arg(long)]
    pub clear_results: bool,
    /// Confirm --clear-results.
    #[arg(long)]
    pub yes: bool,
}

/// A number, or no limit (`none`, `off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

fn parse_limit(s: &str) -> Result<Limit, String> {
    match s {
        "none" | "off" => Ok(Limit(None)),
        _ => s
            .parse::<u64>()
            .map(|n| Limit(Some(n)))
            .map_err(|_| format!("{s:?} is not a whole number, `none` or `off`")),
    }
}

/// `ferry events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// Start after this event's entry id (`0`, the default: the oldest
    /// kept).
    #[arg(long, value_name = "ID", default_value = "0")]
    pub after: String,
    /// Most events printed before following (or in all, without --follow).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Keep printing events as they happen, until Ctrl-C (blocks in Redis;
    /// nothing polls).
    #[arg(long, short = 'f')]
    pub follow: bool,
}

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

/// `ferry dead ...`.
#[derive(Debug, Subcommand)]
pub enum DeadCommand {
    /// List dead letters, oldest first, a page at a time (the cursor of the
    /// next page is printed; pass it to --after), or grouped by error.
    List(DeadListArgs),
    /// One dead letter, by its entry id or its job id; exit 3 when none.
    Show {
        /// Queue name.
        #[arg(value_parser = parse_queue)]
        queue: String,
        /// Dead-letter entry id or job id. An exact entry id of a dead letter
        /// comes first, then the job id: a job whose id is also another
        /// letter's entry id is shown by its own letter's entry id.
        id: String,
    },
    /// Move dead letters back to their streams as attempt 1 (keeping their
    /// job ids): one by id, those matching --type and/or --error, or --all.
    Replay(DeadReplayArgs),
    /// Delete every dead letter of a queue. Asks first on a terminal;
    /// elsewhere it needs --yes.
    Purge {
        /// Queue name.
        #[arg(value_parser = parse_queue)]
        queue: String,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Which dead letters: a job type and/or error text.
#[derive(Debug, Args)]
pub struct DeadFilterArgs {
    /// Only dead letters of this job type.
    #[arg(long = "type", value_name = "T")]
    pub job_type: Option<String>,
    /// Only dead letters whose error contains this text, ignoring case
    /// (Unicode lowercase of both, not full folding: ß does not match ss).
    #[arg(long, value_name = "TEXT")]
    pub error: Option<String>,
}

impl DeadFilterArgs {
    /// As the broker's filter.
    pub fn filter(&self) -> ferry_broker::DeadFilter {
        ferry_broker::DeadFilter {
            job_type: self.job_type.clone(),
            error: self.error.clone(),
        }
    }
}

/// `ferry dead list`.
#[derive(Debug, Args)]
pub struct DeadListArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// Most dead letters on a page.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
    /// Start after this entry (the cursor a previous page printed).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    #[command(flatten)]
    pub filter: DeadFilterArgs,
    /// Count the (matching) dead letters per error text instead of listing
    /// them; reads the whole stream after --after, ignoring --limit.
    #[arg(long)]
    pub group_by_error: bool,
}

/// `ferry dead replay`.
#[derive(Debug, Args)]
pub struct DeadReplayArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// One dead letter: its entry id or its job id. An exact entry id of a
    /// dead letter comes first, then the job id (as `dead show`).
    #[arg(required_unless_present_any = ["job_type", "error", "all"], conflicts_with_all = ["job_type", "error", "all"])]
    pub id: Option<String>,
    #[command(flatten)]
    pub filter: DeadFilterArgs,
    /// Every dead letter of the queue.
    #[arg(long, conflicts_with_all = ["job_type", "error"])]
    pub all: bool,
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

/// A key prefix Ferry accepts.
fn parse_prefix(s: &str) -> Result<Prefix, String> {
    Prefix::new(s).map_err(|e| e.to_string())
}

/// A queue name Ferry accepts.
fn parse_queue(s: &str) -> Result<String, String> {
    ferry_broker::QueueName::new(s)
        .map(|q| q.as_str().to_owned())
        .map_err(|e| e.to_string())
}

/// Seconds, from `min` to a day.
fn parse_seconds(s: &str, min: f64) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_finite() && (min..=86_400.0).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!("{s:?} must be from {min} to 86400 seconds"))
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_seconds(s, 0.001)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_seconds(s, 0.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_are_checked() {
        assert_eq!(parse_timeout("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("x").is_err());
        assert!(parse_interval("0.05").is_err());
        assert!(parse_queue("a b").is_err());
        assert!(parse_queue("emails").is_ok());
    }
}
