//! The command line: every command, argument and its help text (clap).
//! The top level and the shared parsers are here; each group of commands'
//! arguments is in its own file.

mod batches;
mod dead;
mod flows;
mod jobs;
mod queue_settings;
mod schedules;
mod serve;

pub use batches::BatchCommands;
pub use dead::DeadCommand;
pub use flows::{EnqueueFlowArgs, FlowCommand};
pub use jobs::{EnqueueArgs, JobCommand, JobsArgs, StatsArgs};
pub use queue_settings::{EventsArgs, LimitArgs, LimitsArgs, SettingsArgs};
pub use schedules::ScheduleCommand;
pub use serve::ServeArgs;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ferry_broker::keys::DEFAULT_PREFIX;
use ferry_queue::Prefix;

/// The exit codes, shown at the end of `ferry --help`.
const EXIT_CODES: &str = "\
Exit codes:
  0   ok
  1   error: one line on stderr, `ferry: <what went wrong>` (Redis unreachable
      within a few seconds, a refused change, a payload that is not JSON, ...)
  2   `job wait` timed out before the job finished
  3   not found: no such job, dead letter or schedule
  4   duplicate: `enqueue --unique|--unique-key ... --error-on-duplicate` found
      a job holding the key (nothing enqueued)
  64  usage: bad arguments (a bad cron expression, time zone, interval or
      --rate-limit included), or `dead purge` without --yes when it cannot ask

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
    /// A queue's stats: depths, counters, the last 15 minutes
    /// (throughput, wait/run p50/p95/p99, failure rate), and whether its
    /// rate limit holds jobs back now (and until when).
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
    /// stdin when neither is given); prints its id. With --unique or
    /// --unique-key, only if no job holds its uniqueness key; with --after,
    /// to run after those jobs succeed.
    Enqueue(EnqueueArgs),
    /// Enqueue a flow from a JSON file (`-`: stdin): a job and the jobs it
    /// waits for (its `children`, and theirs), all or none; prints the tree
    /// of ids, each with how many jobs it waits for.
    EnqueueFlow(EnqueueFlowArgs),
    /// A flow's tree of jobs with their states.
    #[command(subcommand)]
    Flow(FlowCommand),
    /// Batches: `batches` lists a queue's; `batch show|create|add`.
    #[command(flatten)]
    Batches(BatchCommands),
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
    /// events, rate limit), or change them: only the options given change.
    Settings(SettingsArgs),
    /// A queue's concurrency limits (queue, every key, types, keys) and
    /// its gates' running and waiting jobs, busiest first; then its rate
    /// limits (queue, every key, each type's and key's: limit, hold, next
    /// slot, jobs waiting).
    Limits(LimitsArgs),
    /// Set (or with `none` remove) the concurrency limit of a job type
    /// (--type) or a concurrency key (--key), or with --rate its rate
    /// limit.
    Limit(LimitArgs),
    /// A queue's cron and periodic schedules: name, spec, missed-tick
    /// policy, next fire time (server clock, UTC), last job and its state.
    Schedules(QueueArg),
    /// One schedule of a queue: add (or replace), show, remove, pause,
    /// resume, trigger. Workers fire schedules, once per tick fleet-wide.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
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

/// A queue name.
#[derive(Debug, Args)]
pub struct QueueArg {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
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
