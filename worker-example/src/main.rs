//! `worker-example`: a runnable Ferry service and test tool.
//!
//! - `demo`: enqueue a mix of jobs, run a worker until the queue is drained,
//!   print a summary and the redis-cli commands to look at what it left.
//! - `produce`: enqueue N jobs of one kind; prints their ids, one per line.
//! - `work`: run the handlers (optionally counting runs in an audit hash).
//! - `stats`, `dead`, `replay`: look at a queue, its dead letters; replay one.
//! - `status`, `wait`: a job's status by id; wait until it finishes.
//! - `cancel`: cancel a job (a running one's handler is told).
//! - `pause`, `resume`: stop and restart claims from a queue, fleet-wide.
//!
//! `REDIS_URL` selects Redis (default `redis://127.0.0.1:6379`).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

/// A worker allocates a little per job; mimalloc makes that about 11%
/// cheaper in CPU than glibc malloc (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod demo;
mod jobs;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ferry_queue::{Backoff, Client, EnqueueOptions, Job, Priority, RedisConfig, Worker};
use jobs::*;

#[derive(Parser)]
#[command(
    version,
    about = "A runnable Ferry service: demo, producer and worker test tool"
)]
struct Cli {
    /// Redis URL.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    redis_url: String,
    /// Key namespace.
    #[arg(long, default_value = "ferry", global = true)]
    prefix: String,
    /// PEM file of the CA that signed a rediss:// server's certificate.
    #[arg(long, env = "REDIS_TLS_CA_CERT", global = true)]
    tls_ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enqueue a mix of jobs, run a worker until they are done, and show what Redis holds.
    Demo {
        /// When the demo starts its own redis-server, leave it running afterwards
        /// so the redis-cli commands it prints can be tried.
        #[arg(long)]
        keep_redis: bool,
        /// Port of the dashboard served on 127.0.0.1 while the demo runs
        /// (a free one when taken; 0 for any).
        #[arg(long, default_value_t = 8080)]
        dashboard_port: u16,
        /// After the run, keep serving the dashboard (and the throwaway
        /// redis-server) until Ctrl-C.
        #[arg(long)]
        serve: bool,
    },
    /// Enqueue jobs; prints their ids, one per line.
    Produce(ProduceArgs),
    /// Run the handlers until SIGINT/SIGTERM (or until idle, with --exit-when-idle).
    Work(WorkArgs),
    /// Print a queue's depth and counters.
    Stats {
        /// Queue name.
        #[arg(long)]
        queue: String,
    },
    /// Print a queue's dead-letter entries.
    Dead {
        /// Queue name.
        #[arg(long)]
        queue: String,
        /// Most entries to print.
        #[arg(long, default_value_t = 20)]
        count: usize,
    },
    /// Print a job's status: state, attempts, times, worker, error, result.
    Status(JobArgs),
    /// Wait until a job finishes; print its final status. Exits 2 on timeout.
    Wait {
        #[command(flatten)]
        job: JobArgs,
        /// Give up after this many ms.
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
    },
    /// Cancel a job: removed if not started; a running one's handler is told.
    Cancel(JobArgs),
    /// Pause a queue across the fleet: nothing new is claimed; running jobs finish.
    Pause(QueueArgs),
    /// Resume a paused queue.
    Resume(QueueArgs),
    /// Move a dead-letter entry back to its stream as a fresh attempt.
    Replay {
        /// Queue name.
        #[arg(long)]
        queue: String,
        /// The dead-letter entry id (from `dead`).
        #[arg(long)]
        entry: String,
    },
}

#[derive(Args)]
struct JobArgs {
    /// Queue name.
    #[arg(long)]
    queue: String,
    /// The job id (as `produce` prints it).
    #[arg(long)]
    id: String,
    /// Print JSON (one object; its `state` is scheduled, queued, running,
    /// retrying, succeeded, dead or cancelled).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct QueueArgs {
    /// Queue name.
    #[arg(long)]
    queue: String,
    /// Print JSON: {"queue": ..., "paused": ...}.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ProduceArgs {
    /// Queue name.
    #[arg(long)]
    queue: String,
    /// How many jobs.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// critical, high, normal or low.
    #[arg(long, default_value = "normal")]
    priority: Priority,
    /// echo, sleep:MS, block:MS, fail:N, always-fail, panic or abort.
    #[arg(long, default_value = "echo")]
    kind: Kind,
    /// Retries after the first attempt.
    #[arg(long, default_value_t = 3)]
    max_retries: u32,
    /// Run no earlier than this many ms from now.
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Give the (single) job this id instead of one Ferry chooses.
    #[arg(long)]
    id: Option<String>,
    /// Print the new job ids, one per line (what `produce` does anyway; for
    /// scripts that say so).
    #[arg(long)]
    print_ids: bool,
}

#[derive(Args)]
struct WorkArgs {
    /// Queue name (repeat to serve several).
    #[arg(long, required = true)]
    queue: Vec<String>,
    /// Jobs run at once.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Lease in ms: entries idle longer are recovered from dead workers.
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// Count each successful run in this hash: HINCRBY KEY <job-id> 1.
    #[arg(long)]
    audit: Option<String>,
    /// Serve this worker's own metrics (Prometheus text) at
    /// http://ADDR/metrics: jobs claimed, handlers running, completed,
    /// retried and dead counts, idle time.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Exit after this many seconds with nothing claimed, running, waiting, pending or delayed.
    #[arg(long, value_parser = parse_idle_seconds)]
    exit_when_idle: Option<f64>,
    /// Deliveries before an entry is dead-lettered as poison.
    #[arg(long, default_value_t = 5)]
    max_deliveries: u32,
    /// Shutdown grace period, ms.
    #[arg(long, default_value_t = 10_000)]
    grace_ms: u64,
    /// First retry delay, ms (doubles each attempt).
    #[arg(long, default_value_t = 100)]
    backoff_base_ms: u64,
    /// Largest retry delay, ms.
    #[arg(long, default_value_t = 2_000)]
    backoff_max_ms: u64,
    /// Time limit of one attempt, ms.
    #[arg(long, default_value_t = 60_000)]
    job_timeout_ms: u64,
    /// Work with a Redis whose maxmemory-policy may evict Ferry's keys (any
    /// but noeviction), logging each eviction as possible data loss; by
    /// default the worker refuses.
    #[arg(long)]
    allow_eviction: bool,
    /// No effect: refusing an evicting maxmemory-policy is the default
    /// (kept so that scripts passing it still run).
    #[arg(long, hide = true)]
    strict_memory_policy: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Demo { .. } => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let redis = match redis_config(&cli.redis_url, cli.tls_ca_cert.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Demo {
            keep_redis,
            dashboard_port,
            serve,
        } => {
            let opts = demo::Options {
                keep_redis,
                dashboard_port,
                serve,
            };
            demo::run(&cli.redis_url, opts).await
        }
        Command::Produce(args) => produce(&redis, &cli.prefix, args).await,
        Command::Work(args) => work(&redis, &cli.prefix, args).await,
        Command::Stats { queue } => stats(&redis, &cli.prefix, &queue).await,
        Command::Dead { queue, count } => dead(&redis, &cli.prefix, &queue, count).await,
        Command::Replay { queue, entry } => replay(&redis, &cli.prefix, &queue, &entry).await,
        Command::Status(job) => status(&redis, &cli.prefix, &job).await,
        Command::Wait { job, timeout_ms } => {
            match wait(&redis, &cli.prefix, &job, Duration::from_millis(timeout_ms)).await {
                Err(e)
                    if matches!(
                        e.downcast_ref(),
                        Some(ferry_queue::Error::WaitTimeout { .. })
                    ) =>
                {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
                other => other,
            }
        }
        Command::Cancel(job) => cancel(&redis, &cli.prefix, &job).await,
        Command::Pause(q) => set_paused(&redis, &cli.prefix, &q, true).await,
        Command::Resume(q) => set_paused(&redis, &cli.prefix, &q, false).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--exit-when-idle`: seconds, finite, from 0 to a day.
fn parse_idle_seconds(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_finite() && (0.0..=86_400.0).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("{s:?} must be a number of seconds from 0 to 86400"))
    }
}

type AnyResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn redis_config(url: &str, ca: Option<&std::path::Path>) -> AnyResult<RedisConfig> {
    let config = RedisConfig::new(url);
    Ok(match ca {
        Some(path) => config.tls_root_cert(
            std::fs::read(path)
                .map_err(|e| format!("cannot read --tls-ca-cert {}: {e}", path.display()))?,
        ),
        None => config,
    })
}

fn client(redis: &RedisConfig, prefix: &str) -> AnyResult<Client> {
    Ok(Client::builder(redis.clone()).prefix(prefix).connect()?)
}

/// Enqueues `count` jobs made by `make`, in batches of 1,000 per round trip.
pub(crate) async fn enqueue_many<J: Job>(
    client: &Client,
    queue: &str,
    count: usize,
    options: EnqueueOptions,
    make: impl Fn(usize) -> J,
) -> ferry_queue::Result<Vec<String>> {
    let options = options.queue(queue);
    if count == 1 {
        return Ok(vec![client.enqueue_with(&make(0), options).await?]);
    }
    let mut ids = Vec::with_capacity(count);
    let mut start = 0;
    while start < count {
        let end = (start + 1000).min(count);
        let batch: Vec<J> = (start..end).map(&make).collect();
        ids.extend(client.enqueue_batch(&batch, options.clone()).await?);
        start = end;
    }
    Ok(ids)
}

pub(crate) async fn enqueue_kind(
    client: &Client,
    queue: &str,
    kind: &Kind,
    count: usize,
    options: EnqueueOptions,
) -> ferry_queue::Result<Vec<String>> {
    match *kind {
        Kind::Echo => {
            enqueue_many(client, queue, count, options, |i| Echo {
                message: format!("hello {i}"),
            })
            .await
        }
        Kind::Sleep(ms) => enqueue_many(client, queue, count, options, |_| Sleep { ms }).await,
        Kind::Block(ms) => enqueue_many(client, queue, count, options, |_| Block { ms }).await,
        Kind::Fail(times) => {
            enqueue_many(client, queue, count, options, |_| FailTimes { times }).await
        }
        Kind::AlwaysFail => enqueue_many(client, queue, count, options, |_| AlwaysFail {}).await,
        Kind::Panic => enqueue_many(client, queue, count, options, |_| Panic {}).await,
        Kind::Abort => enqueue_many(client, queue, count, options, |_| Abort {}).await,
    }
}

async fn produce(redis: &RedisConfig, prefix: &str, args: ProduceArgs) -> AnyResult {
    let client = client(redis, prefix)?;
    let mut options = EnqueueOptions::new()
        .priority(args.priority)
        .max_retries(args.max_retries);
    if let Some(ms) = args.delay_ms {
        options = options.delay(Duration::from_millis(ms));
    }
    if let Some(id) = &args.id {
        options = options.job_id(id.clone());
    }
    let ids = enqueue_kind(&client, &args.queue, &args.kind, args.count, options).await?;
    let mut out = String::with_capacity(ids.len() * 37);
    for id in ids {
        out.push_str(&id);
        out.push('\n');
    }
    use std::io::Write;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

/// Builds the example worker with every handler registered.
pub(crate) fn build_worker(
    redis: &RedisConfig,
    prefix: &str,
    args: &WorkArgs,
) -> AnyResult<Worker> {
    let audit = match &args.audit {
        Some(key) => {
            // The audit key is the example's own, not a queue's: a
            // connection of an SDK client (to one server or a cluster).
            let conn = ferry_queue::Client::builder(redis.clone())
                .prefix(prefix)
                .connect()?
                .connection();
            Audit(Some((conn, key.clone())))
        }
        None => Audit(None),
    };
    let mut builder = Worker::builder(redis.clone())
        .prefix(prefix)
        .register(EchoHandler(audit.clone()))
        .register(SleepHandler(audit.clone()))
        .register(BlockHandler(audit.clone()))
        .register(FailHandler(audit))
        .register(AlwaysFailHandler)
        .register(PanicHandler)
        .register(AbortHandler)
        .concurrency(args.concurrency)
        .lease(Duration::from_millis(args.lease_ms))
        .max_deliveries(args.max_deliveries)
        .grace_period(Duration::from_millis(args.grace_ms))
        .job_timeout(Duration::from_millis(args.job_timeout_ms))
        .allow_eviction(args.allow_eviction)
        .backoff(Backoff::new(
            Duration::from_millis(args.backoff_base_ms),
            Duration::from_millis(args.backoff_max_ms),
        )?);
    for q in &args.queue {
        builder = builder.queue(q.clone());
    }
    Ok(builder.build()?)
}

async fn work(redis: &RedisConfig, prefix: &str, args: WorkArgs) -> AnyResult {
    let worker = build_worker(redis, prefix, &args)?;
    if let Some(addr) = args.metrics_listen {
        serve_metrics(&worker, addr).await?;
    }
    if let Some(secs) = args.exit_when_idle {
        spawn_idle_exit(
            &worker,
            client(redis, prefix)?,
            args.queue.clone(),
            Duration::from_secs_f64(secs.max(0.0)),
        );
    }
    worker.run().await?;
    Ok(())
}

/// Serves `worker`'s own metrics at `addr`/metrics until the process ends;
/// says where on stderr.
async fn serve_metrics(worker: &Worker, addr: std::net::SocketAddr) -> AnyResult {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for --metrics-listen: {e}"))?;
    let bound = listener.local_addr()?;
    let activity = worker.activity();
    let name = worker.consumer().to_owned();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = activity.prometheus_text(&name);
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    tracing::info!(%bound, "worker metrics at http://{bound}/metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    Ok(())
}

/// Stops `worker` once it has claimed nothing for `idle`, runs nothing, and
/// its queues hold nothing waiting, pending (anywhere in the fleet) or delayed.
pub(crate) fn spawn_idle_exit(
    worker: &Worker,
    client: Client,
    queues: Vec<String>,
    idle: Duration,
) {
    let activity = worker.activity();
    let token = worker.shutdown_token();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if activity.running() > 0 || activity.idle_for() < idle {
                continue;
            }
            let mut all_idle = true;
            for q in &queues {
                match client.stats(q).await {
                    Ok(s) if s.is_idle() => {}
                    _ => {
                        all_idle = false;
                        break;
                    }
                }
            }
            if all_idle && activity.running() == 0 {
                tracing::info!("queues idle; exiting");
                token.cancel();
                return;
            }
        }
    });
}

async fn stats(redis: &RedisConfig, prefix: &str, queue: &str) -> AnyResult {
    let s = client(redis, prefix)?.stats(queue).await?;
    for (i, p) in Priority::ALL.iter().enumerate() {
        println!(
            "{:<9} waiting {:>8}  running {:>8}",
            p.as_str(),
            s.waiting[i],
            s.pending[i]
        );
    }
    println!("delayed   {:>8}", s.delayed);
    println!("paused    {:>8}", if s.paused { "yes" } else { "no" });
    println!("dead      {:>8}", s.dead);
    for (k, v) in &s.counters {
        println!("{k:<13} {v}");
    }
    let r = &s.recent;
    println!(
        "last {} min: {:.1} jobs/s over the last 5 full minutes, failure rate {:.2}%",
        r.minutes.len(),
        r.throughput(5),
        r.failure_rate * 100.0
    );
    let mut rows = vec![("wait".to_owned(), &r.wait), ("run".to_owned(), &r.run)];
    for p in Priority::ALL {
        let at = s.recent_at(p);
        if at.wait.count > 0 {
            rows.push((format!("wait {}", p.as_str()), &at.wait));
            rows.push((format!("run {}", p.as_str()), &at.run));
        }
    }
    for (name, t) in rows {
        println!(
            "{name:<13} n {:>7}  avg {:>9.1} ms  p50 {:>9.1}  p95 {:>9.1}  p99 {:>9.1}",
            t.count, t.avg_ms, t.p50_ms, t.p95_ms, t.p99_ms
        );
    }
    Ok(())
}

async fn dead(redis: &RedisConfig, prefix: &str, queue: &str, count: usize) -> AnyResult {
    for d in client(redis, prefix)?.dead_letters(queue, count).await? {
        println!(
            "{}  id={} type={} attempt={} error={}",
            d.entry_id,
            d.get("id").unwrap_or("?"),
            d.get("type").unwrap_or("?"),
            d.get("attempt").unwrap_or("?"),
            d.get("error").unwrap_or("?")
        );
    }
    Ok(())
}

async fn replay(redis: &RedisConfig, prefix: &str, queue: &str, entry: &str) -> AnyResult {
    let id = client(redis, prefix)?.replay_dead(queue, entry).await?;
    println!("replayed as stream entry {id}");
    Ok(())
}

/// Prints `status` as JSON or as `field: value` lines.
fn print_status(status: &ferry_queue::JobStatus, json: bool) -> AnyResult {
    if json {
        println!("{}", serde_json::to_string(status)?);
        return Ok(());
    }
    let v = serde_json::to_value(status)?;
    if let Some(map) = v.as_object() {
        for (k, v) in map {
            if !v.is_null() {
                println!("{k:<12} {v}");
            }
        }
    }
    Ok(())
}

async fn status(redis: &RedisConfig, prefix: &str, job: &JobArgs) -> AnyResult {
    let s = client(redis, prefix)?.status(&job.queue, &job.id).await?;
    print_status(&s, job.json)
}

async fn wait(redis: &RedisConfig, prefix: &str, job: &JobArgs, timeout: Duration) -> AnyResult {
    let s = client(redis, prefix)?
        .wait(&job.queue, &job.id, timeout)
        .await?;
    print_status(&s, job.json)
}

async fn set_paused(redis: &RedisConfig, prefix: &str, q: &QueueArgs, paused: bool) -> AnyResult {
    let client = client(redis, prefix)?;
    if paused {
        client.pause(&q.queue).await?;
    } else {
        client.resume(&q.queue).await?;
    }
    if q.json {
        println!(
            "{}",
            serde_json::json!({"queue": q.queue, "paused": paused})
        );
    } else {
        println!("{} {}", q.queue, if paused { "paused" } else { "resumed" });
    }
    Ok(())
}

async fn cancel(redis: &RedisConfig, prefix: &str, job: &JobArgs) -> AnyResult {
    let client = client(redis, prefix)?;
    // A running job stays `running` until its attempt ends (then `cancelled`).
    let (state, worker) = match client.cancel(&job.queue, &job.id).await? {
        ferry_queue::Cancel::Cancelled => ("cancelled", None),
        ferry_queue::Cancel::Requested { worker } => ("running", Some(worker)),
    };
    if job.json {
        println!(
            "{}",
            serde_json::json!({"id": job.id, "state": state, "cancel_requested": true, "worker": worker})
        );
    } else {
        match worker {
            Some(w) => println!("{}: cancelling (running on {w})", job.id),
            None => println!("{}: cancelled", job.id),
        }
    }
    Ok(())
}
