//! `ferry`: the command line over [`ferry_queue_cli`]'s operations. Parses
//! the arguments (`args`), runs one operation, prints its report
//! (`output`), and exits with the code of what happened (see `ferry --help`).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod args;
mod output;

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ferry_queue_cli::{Admin, AdminConfig, Error, ErrorKind, RawJob, Result};

use args::{Cli, Command, DeadCommand, EnqueueArgs, JobCommand, ScheduleCommand};
use output::print;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr.
            let code = if e.use_stderr() {
                ErrorKind::Usage.exit_code()
            } else {
                0
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    // The server runs on every core; a command needs one thread.
    let mut builder = if matches!(cli.command, Command::Serve(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&Error::Input(format!("cannot start the runtime: {e}"))),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Prints `e` as one line on stderr; returns its exit code.
fn fail(e: &Error) -> ExitCode {
    let text = e.to_string().replace(['\r', '\n'], " ");
    eprintln!("ferry: {text}");
    ExitCode::from(e.kind().exit_code())
}

/// A failure to write the output (a closed pipe, say).
fn io(e: std::io::Error) -> Error {
    Error::Input(format!("cannot write the output: {e}"))
}

async fn run(cli: Cli) -> Result<()> {
    let admin = connect(&cli)?;
    let json = cli.json;
    match cli.command {
        Command::Queues => print(json, &admin.queues().await?),
        Command::Stats(a) if a.watch => return watch(&admin, &a.queue, a.interval, json).await,
        Command::Stats(a) => print(json, &admin.stats(&a.queue).await?),
        Command::Job(cmd) => match cmd {
            JobCommand::Show(j) => print(json, &admin.show(&j.queue, &j.id).await?),
            JobCommand::Wait { job, timeout } => {
                print(json, &admin.wait(&job.queue, &job.id, timeout).await?)
            }
            JobCommand::Cancel(j) => print(json, &admin.cancel(&j.queue, &j.id).await?),
            JobCommand::Retry(j) => print(json, &admin.retry(&j.queue, &j.id).await?),
            JobCommand::Reprioritise { job, priority } => print(
                json,
                &admin.reprioritise(&job.queue, &job.id, priority).await?,
            ),
        },
        Command::Dead(cmd) => match cmd {
            DeadCommand::List(a) => {
                let filter = a.filter.filter();
                if a.group_by_error {
                    let groups = admin
                        .dead_groups(&a.queue, &filter, a.after.as_deref())
                        .await?;
                    print(json, &groups)
                } else {
                    let limit = usize::try_from(a.limit).unwrap_or(usize::MAX);
                    let page = admin
                        .dead_list(&a.queue, &filter, a.after.as_deref(), limit)
                        .await?;
                    print(json, &page)
                }
            }
            DeadCommand::Show { queue, id } => print(json, &admin.dead_show(&queue, &id).await?),
            DeadCommand::Replay(a) => {
                let done = match &a.id {
                    Some(id) => admin.dead_replay(&a.queue, id).await?,
                    None => {
                        admin
                            .dead_replay_matching(&a.queue, &a.filter.filter())
                            .await?
                    }
                };
                print(json, &done)
            }
            DeadCommand::Purge { queue, yes } => {
                if !yes {
                    confirm_purge(&admin, &queue).await?;
                }
                print(json, &admin.dead_purge(&queue).await?)
            }
        },
        Command::Pause(q) => print(json, &admin.pause(&q.queue).await?),
        Command::Resume(q) => print(json, &admin.resume(&q.queue).await?),
        Command::Enqueue(a) if !a.after.is_empty() => return enqueue_after(&admin, a, json).await,
        Command::EnqueueFlow(a) => return a.run(&admin, json).await,
        Command::Flow(c) => return c.run(&admin, json).await,
        Command::Batches(c) => return c.run(&admin, json).await,
        Command::Enqueue(a) => {
            let queue = a.queue.clone();
            let unique = a.unique_spec();
            let job = raw_job(a)?;
            let done = match &unique {
                Some(u) => admin.enqueue_unique(&queue, job, u).await?,
                None => admin.enqueue(&queue, job).await?,
            };
            print(json, &done)
        }
        Command::Jobs(a) => print(
            json,
            &admin
                .list_jobs(&a.queue, a.state, a.cursor.as_deref(), a.limit)
                .await?,
        ),
        Command::Streams(q) => print(json, &admin.streams(&q.queue).await?),
        Command::Workers { queue } => print(json, &admin.workers(queue.as_deref()).await?),
        Command::Settings(a) => return settings(&admin, a, json).await,
        Command::Limits(a) => print(json, &admin.limits(&a.queue).await?),
        Command::Limit(a) => return limit(&admin, a, json).await,
        Command::Schedules(q) => print(json, &admin.schedules(&q.queue).await?),
        Command::Schedule(cmd) => match cmd {
            ScheduleCommand::Add(a) => {
                let queue = a.schedule.queue.clone();
                print(json, &admin.upsert_schedule(&queue, &a.spec()).await?)
            }
            ScheduleCommand::Show(s) => print(json, &admin.schedule(&s.queue, &s.name).await?),
            ScheduleCommand::Remove(s) => {
                print(json, &admin.remove_schedule(&s.queue, &s.name).await?)
            }
            ScheduleCommand::Pause(s) => {
                print(json, &admin.pause_schedule(&s.queue, &s.name).await?)
            }
            ScheduleCommand::Resume(s) => {
                print(json, &admin.resume_schedule(&s.queue, &s.name).await?)
            }
            ScheduleCommand::Trigger(s) => {
                print(json, &admin.trigger_schedule(&s.queue, &s.name).await?)
            }
        },
        Command::Events(a) => return events(&admin, a, json).await,
        Command::Serve(a) => return serve(admin, a).await,
        Command::Openapi => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", ferry_queue_cli::serve::openapi::document_json())
        }
    }
    .map_err(io)
}

/// `ferry serve`: checks the configuration, listens, and serves until
/// SIGINT or SIGTERM.
async fn serve(admin: Admin, a: args::ServeArgs) -> Result<()> {
    use ferry_queue_cli::serve::{self, AppState, Limits, ServeConfig, Tokens};
    let config = ServeConfig {
        listen: a.listen,
        tokens: Tokens {
            write: a.token,
            read: a.read_token,
            read_only: a.read_only,
        },
        limits: Limits {
            max_body_bytes: a.max_body_bytes,
            max_batch: a.max_batch,
            max_wait: a.max_wait,
            request_timeout: a.request_timeout,
        },
    };
    config.check()?;
    // The server check: a Redis whose policy may evict Ferry's keys is
    // refused now (unless --allow-eviction); one that cannot be reached
    // yet is not (the routes answer 503 until it can).
    match admin.client().check().await {
        Err(e @ ferry_queue::Error::EvictionPolicy { .. }) => {
            return Err(Error::Usage(format!(
                "{e}; or pass --allow-eviction to accept the loss"
            )));
        }
        Err(e) if e.needs_operator() => return Err(Error::from_sdk(e, admin.host())),
        Err(e) => eprintln!("ferry: redis is not answering yet ({e}); serving 503s until it does"),
        Ok(()) => {}
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Input(format!("cannot listen on {}: {e}", config.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Input(format!("cannot read the listening address: {e}")))?;
    let auth = if config.tokens.required() {
        "tokens required"
    } else {
        "no token: loopback only"
    };
    eprintln!(
        "ferry: serving the queues of redis at {} (prefix {}) on http://{local} ({auth}{}); API under /v1, docs at /openapi.json, metrics at /metrics",
        admin.host(),
        admin.prefix(),
        if config.tokens.read_only { ", read-only" } else { "" },
    );
    // The schedules fire here too, unless this server changes nothing.
    let firer = (!a.no_fire_schedules && !config.tokens.read_only)
        .then(|| tokio::spawn(serve::schedule_firer::ScheduleFirer::new(admin.clone()).run()));
    let state = AppState::new(admin, config.tokens, config.limits);
    let served = serve::serve(listener, state, ferry_queue::shutdown_signal()).await;
    if let Some(f) = firer {
        f.abort();
    }
    served
}

/// The handle for the Redis and prefix of the command line.
fn connect(cli: &Cli) -> Result<Admin> {
    let mut config = AdminConfig::new(cli.redis.clone())
        .prefix(cli.prefix.clone())
        .allow_eviction(cli.allow_eviction);
    if let Some(path) = &cli.tls_ca_cert {
        let pem = std::fs::read(path).map_err(|e| {
            Error::Input(format!("cannot read --tls-ca-cert {}: {e}", path.display()))
        })?;
        config.redis = config.redis.tls_root_cert(pem);
    }
    Admin::connect(config)
}

/// The job `ferry enqueue` was given; its payload from --payload, --file
/// or stdin.
fn raw_job(a: EnqueueArgs) -> Result<RawJob> {
    let payload = match (a.payload, &a.file) {
        (Some(p), _) => p,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| Error::Input(format!("cannot read --file {}: {e}", path.display())))?,
        (None, None) => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(Error::Usage(
                    "no payload: give --payload JSON or --file PATH, or pipe the JSON on stdin"
                        .into(),
                ));
            }
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .map_err(|e| Error::Input(format!("cannot read the payload from stdin: {e}")))?;
            text
        }
    };
    let mut job = RawJob::new(a.job_type, payload);
    job.priority = a.priority;
    job.max_retries = a.max_retries;
    job.delay = a.delay_ms.map(Duration::from_millis);
    job.id = a.id;
    job.retention_ms = a.retention_ms;
    job.concurrency_key = a.concurrency_key;
    Ok(job)
}

/// `ferry enqueue --after ID...`: the job to run after its dependencies.
/// Prints the id alone on stdout (so that `$(ferry enqueue ...)` chains),
/// and on stderr how many dependencies it waits for, if any.
async fn enqueue_after(admin: &Admin, a: EnqueueArgs, json: bool) -> Result<()> {
    let (queue, after) = (a.queue.clone(), a.after.clone());
    let policy = a.on_dependency_failure.unwrap_or_default();
    let job = raw_job(a)?;
    let done = admin.enqueue_after(&queue, job, &after, policy).await?;
    print(json, &done).map_err(io)?;
    if !json && done.waiting_for > 0 {
        let s = if done.waiting_for == 1 { "y" } else { "ies" };
        eprintln!("waiting for {} dependenc{s}", done.waiting_for);
    }
    Ok(())
}

/// Asks on the terminal before `dead purge` deletes anything; elsewhere
/// (a script) refuses without `--yes`.
async fn confirm_purge(admin: &Admin, queue: &str) -> Result<()> {
    let count = admin.dead_count(queue).await?;
    let what = format!("dead purge deletes the {count} dead letters of queue {queue}");
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::Usage(format!("{what}: pass --yes to confirm")));
    }
    eprint!("{what}. Go ahead? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Input(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::Usage(
            "dead purge not confirmed: nothing deleted".into(),
        ))
    }
}

/// `stats --watch`: prints the stats every `interval` until Ctrl-C. A
/// failure of the first read ends it; later ones are reported on stderr
/// and the watch goes on.
/// `ferry settings`: shows a queue's settings, after applying the changes
/// given (and clearing its records, when asked with --yes).
async fn settings(admin: &Admin, a: args::SettingsArgs, json: bool) -> Result<()> {
    use ferry_queue_cli::settings::{SettingsChange, SettingsReport};
    if a.clear_results && !a.yes {
        return Err(Error::Usage(
            "--clear-results deletes every finished job's record of the queue: add --yes".into(),
        ));
    }
    let change = SettingsChange {
        max_depth: a.max_depth.map(|l| l.0),
        retention_ms: a.retention_ms,
        retention_count: a.retention_count,
        events: a.events.map(|l| l.0),
        rate_limit: a
            .rate_limit
            .as_deref()
            .map(ferry_queue_cli::rate_limit::parse_flag)
            .transpose()?,
        key_rate_limit: a
            .key_rate_limit
            .as_deref()
            .map(|t| ferry_queue_cli::rate_limit::parse_option("--key-rate-limit", t))
            .transpose()?,
        concurrency: a.concurrency.map(|l| l.0),
        key_concurrency: a.key_concurrency.map(|l| l.0),
        weights: a
            .weights
            .as_deref()
            .map(ferry_queue_cli::limits::parse_weights)
            .transpose()?,
    };
    change.check()?;
    let cleared = if a.clear_results {
        Some(admin.clear_results(&a.queue).await?.cleared)
    } else {
        None
    };
    let settings = if change.is_empty() {
        admin.settings(&a.queue).await?
    } else {
        admin.change_settings(&a.queue, &change).await?
    };
    print(json, &SettingsReport { settings, cleared }).map_err(io)
}

/// `ferry limit`: sets a type's or a key's concurrency limit (and prints
/// the concurrency limits), or with --rate its rate limit (and prints
/// every limit, as `ferry limits`).
async fn limit(admin: &Admin, a: args::LimitArgs, json: bool) -> Result<()> {
    use ferry_broker::ConcurrencyScope;
    let (option, scope) = match (a.job_type, a.key) {
        (Some(t), _) => ("--type", ConcurrencyScope::Type(t)),
        (None, Some(k)) => ("--key", ConcurrencyScope::Key(k)),
        (None, None) => return Err(Error::Usage("give --type or --key".into())),
    };
    let Some(rate) = a.rate else {
        let Some(limit) = a.limit else {
            return Err(Error::Usage("give a limit (N or none), or --rate".into()));
        };
        let report = admin.set_limit(&a.queue, &scope, limit.0).await?;
        return print(json, &report).map_err(io);
    };
    // Everything checked before anything is written.
    let rate = ferry_queue_cli::rate_limit::parse_option("--rate", &rate)?;
    ferry_queue_cli::rate_limit::check_scope(&scope)
        .map_err(|e| Error::Usage(format!("{option}: {e}")))?;
    if let Some(limit) = a.limit {
        admin.set_limit(&a.queue, &scope, limit.0).await?;
    }
    admin.set_rate_limit_of(&a.queue, &scope, rate).await?;
    print(json, &admin.limits(&a.queue).await?).map_err(io)
}

/// `ferry events`: prints the events kept after --after (at most --limit),
/// then with --follow those to come, until Ctrl-C.
async fn events(admin: &Admin, a: args::EventsArgs, json: bool) -> Result<()> {
    let page = admin.events(&a.queue, &a.after, a.limit.max(1)).await?;
    for e in &page.events {
        print(json, e).map_err(io)?;
    }
    if !a.follow {
        return Ok(());
    }
    let mut subscription = admin.subscribe(&a.queue, Some(&page.next)).await?;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let next = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            e = subscription.next() => e,
        };
        match next {
            Ok(e) => print(json, &ferry_queue_cli::EventView::from(e)).map_err(io)?,
            // The subscription carries on from the last event printed.
            Err(e) => {
                eprintln!("ferry: {}", e.to_string().replace(['\r', '\n'], " "));
                tokio::select! {
                    _ = &mut interrupted => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn watch(admin: &Admin, queue: &str, interval: Duration, json: bool) -> Result<()> {
    let clear = !json && std::io::stdout().is_terminal();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    // One listener for the whole watch: a Ctrl-C that lands while a tick
    // prints is not lost.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let report = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            r = async { tick.tick().await; admin.stats(queue).await } => r,
        };
        match report {
            Ok(report) => {
                // Through `write!`, not `print!`: a closed pipe is an
                // error to report, not a panic.
                let mut out = std::io::stdout().lock();
                if clear {
                    write!(out, "\x1b[2J\x1b[H").map_err(io)?;
                } else if !json && !first {
                    writeln!(out).map_err(io)?;
                }
                drop(out);
                print(json, &report).map_err(io)?;
            }
            Err(e) if first => return Err(e),
            Err(e) => eprintln!("ferry: {}", e.to_string().replace(['\r', '\n'], " ")),
        }
        first = false;
    }
}
