//! The worker: a builder to register handlers and settings, and `run`, which
//! serves queues until SIGINT/SIGTERM and then shuts down gracefully.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferry_broker::{Backoff, Queue, DEFAULT_MAX_PAYLOAD_BYTES};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::RedisConfig;
use crate::error::{ConfigError, Result};
use crate::handler::{erase, ErasedHandler, Handler};
use crate::runtime::acker::Acker;
use crate::runtime::fetcher::Fetcher;
use crate::runtime::heartbeat::Heartbeat;
use crate::runtime::inflight::InFlight;
use crate::runtime::promoter::Promoter;
use crate::runtime::recoverer::Recoverer;
use crate::runtime::{Activity, Settings, Shared};

/// Default number of jobs run at once.
pub const DEFAULT_CONCURRENCY: usize = 10;
/// Default lease: an entry idle this long is taken over by another worker.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Default time limit of one attempt.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default deliveries of one entry before it is declared poison.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// Default time running jobs get to finish at shutdown.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);
/// Default longest XREADGROUP BLOCK.
pub const DEFAULT_BLOCK_TIME: Duration = Duration::from_secs(1);
/// Default longest wait between two looks at the delayed set.
pub const DEFAULT_PROMOTE_INTERVAL: Duration = Duration::from_secs(1);
/// Largest `concurrency` accepted.
pub const MAX_CONCURRENCY: usize = 100_000;
/// Longest duration setting accepted (lease, timeouts, intervals): one day.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Default idle time after which a consumer with nothing pending is removed.
pub const DEFAULT_CONSUMER_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Builds a [`Worker`]. See [`Worker::builder`].
pub struct WorkerBuilder {
    redis: RedisConfig,
    prefix: String,
    queues: Vec<String>,
    handlers: HashMap<&'static str, Arc<dyn ErasedHandler>>,
    duplicate: Option<&'static str>,
    settings: Settings,
    max_payload_bytes: usize,
    dead_letter_cap: u64,
}

impl WorkerBuilder {
    /// Serves queue `name` (call again to serve several).
    pub fn queue(mut self, name: impl Into<String>) -> Self {
        self.queues.push(name.into());
        self
    }

    /// Registers `handler` for its job type.
    pub fn register<H: Handler>(mut self, handler: H) -> Self {
        let (kind, h) = erase(handler);
        if self.handlers.insert(kind, h).is_some() {
            self.duplicate = Some(kind);
        }
        self
    }

    /// Jobs run at once (default 10).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.settings.concurrency = n;
        self
    }

    /// The lease (default 30 s): this worker renews its running entries every
    /// lease/3, and takes over other workers' entries idle longer than this.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease;
        self
    }

    /// Time limit of one attempt (default 30 min); past it the attempt fails.
    pub fn job_timeout(mut self, timeout: Duration) -> Self {
        self.settings.job_timeout = timeout;
        self
    }

    /// Deliveries of one entry (each one a worker that died or lost its
    /// lease while running it) before it is dead-lettered as poison (default 5).
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.settings.max_deliveries = n;
        self
    }

    /// Retry delays (default: 1 s doubling to 10 min, with jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Time running jobs get to finish at shutdown (default 30 s).
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.settings.grace_period = grace;
        self
    }

    /// Longest XREADGROUP BLOCK when idle (default 1 s); shutdown waits for
    /// a read in progress, so this also bounds the shutdown delay of an idle worker.
    pub fn block_time(mut self, block: Duration) -> Self {
        self.settings.block_time = block;
        self
    }

    /// Longest wait between two looks at the delayed set (default 1 s).
    pub fn promote_interval(mut self, interval: Duration) -> Self {
        self.settings.promote_interval = interval;
        self
    }

    /// Idle time after which a consumer that owns nothing is removed (default 10 min).
    pub fn consumer_idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.consumer_idle_timeout = timeout;
        self
    }

    /// Key namespace (default `ferry`); producers must use the same.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Largest payload accepted; larger entries are dead-lettered (default 1 MiB).
    pub fn max_payload_bytes(mut self, limit: usize) -> Self {
        self.max_payload_bytes = limit;
        self
    }

    /// Caps each dead-letter stream at `cap` entries (default 0: keep all).
    /// Entries the cap drops are counted (`dead_dropped`) and logged.
    pub fn dead_letter_cap(mut self, cap: u64) -> Self {
        self.dead_letter_cap = cap;
        self
    }

    /// Checks the settings and builds the worker. Nothing connects yet.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for no queue, a bad queue name,
    /// no handler, a job type registered twice, or a zero setting;
    /// [`Error::Redis`](crate::Error::Redis) for a URL that does not parse.
    pub fn build(self) -> Result<Worker> {
        let invalid = |name: &'static str, reason: &str| ConfigError::InvalidSetting {
            name,
            reason: reason.to_owned(),
        };
        let s = &self.settings;
        if self.queues.is_empty() {
            return Err(invalid("queue", "serve at least one queue").into());
        }
        if self.handlers.is_empty() {
            return Err(invalid("handlers", "register at least one handler").into());
        }
        if let Some(kind) = self.duplicate {
            return Err(invalid(
                "handlers",
                &format!("job type `{kind}` is registered twice"),
            )
            .into());
        }
        if s.concurrency == 0 || s.concurrency > MAX_CONCURRENCY {
            return Err(invalid("concurrency", &format!("must be 1 to {MAX_CONCURRENCY}")).into());
        }
        if s.lease < Duration::from_millis(30) {
            return Err(invalid("lease", "must be at least 30 ms").into());
        }
        let durations = [
            ("lease", s.lease),
            ("job_timeout", s.job_timeout),
            ("grace_period", s.grace_period),
            ("block_time", s.block_time),
            ("promote_interval", s.promote_interval),
            ("consumer_idle_timeout", s.consumer_idle_timeout),
            ("response_timeout", self.redis.response_timeout),
        ];
        for (name, d) in durations {
            if d > MAX_DURATION {
                return Err(invalid(name, "must be at most 1 day").into());
            }
        }
        if s.job_timeout.is_zero() {
            return Err(invalid("job_timeout", "must be more than 0").into());
        }
        if s.max_deliveries == 0 {
            return Err(invalid("max_deliveries", "must be at least 1").into());
        }
        if s.block_time < Duration::from_millis(1) || s.promote_interval.is_zero() {
            return Err(invalid("block_time/promote_interval", "must be more than 0").into());
        }
        if self.max_payload_bytes == 0 {
            return Err(invalid("max_payload_bytes", "must be at least 1").into());
        }
        let prefix = ferry_broker::Prefix::new(self.prefix.clone())?;
        let mut queues = Vec::with_capacity(self.queues.len());
        for name in &self.queues {
            let q = Queue::with_prefix(&prefix, name)?
                .max_payload_bytes(self.max_payload_bytes)
                .dead_letter_cap(self.dead_letter_cap);
            if queues.iter().any(|other: &Queue| other.name() == q.name()) {
                return Err(invalid("queue", &format!("queue `{name}` is listed twice")).into());
            }
            queues.push(q);
        }
        Ok(Worker {
            redis: self.redis,
            queues,
            handlers: self.handlers,
            settings: self.settings,
            consumer: consumer_name(),
            activity: Arc::new(Activity::new_public()),
            shutdown: CancellationToken::new(),
        })
    }
}

/// Runs handlers for jobs of one or more queues.
///
/// ```no_run
/// # use async_trait::async_trait;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct SendWelcome { to: String }
/// # impl ferry::Job for SendWelcome { const TYPE: &'static str = "send_welcome"; }
/// # struct Welcomer;
/// # #[async_trait]
/// # impl ferry::Handler for Welcomer {
/// #     type Job = SendWelcome;
/// #     async fn handle(&self, _: SendWelcome, _: ferry::JobContext) -> Result<(), ferry::JobError> { Ok(()) }
/// # }
/// # async fn example() -> ferry::Result<()> {
/// use std::time::Duration;
/// ferry::Worker::builder("redis://127.0.0.1:6379")
///     .queue("emails")
///     .register(Welcomer)
///     .concurrency(50)
///     .lease(Duration::from_secs(30))
///     .build()?
///     .run() // until SIGINT or SIGTERM
///     .await
/// # }
/// ```
pub struct Worker {
    redis: RedisConfig,
    queues: Vec<Queue>,
    handlers: HashMap<&'static str, Arc<dyn ErasedHandler>>,
    settings: Settings,
    consumer: String,
    activity: Arc<Activity>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("consumer", &self.consumer)
            .field(
                "queues",
                &self.queues.iter().map(Queue::name).collect::<Vec<_>>(),
            )
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A builder for a worker connected to `redis` (a URL or a [`RedisConfig`]).
    pub fn builder(redis: impl Into<RedisConfig>) -> WorkerBuilder {
        WorkerBuilder {
            redis: redis.into(),
            prefix: ferry_broker::keys::DEFAULT_PREFIX.to_owned(),
            queues: Vec::new(),
            handlers: HashMap::new(),
            duplicate: None,
            settings: Settings {
                concurrency: DEFAULT_CONCURRENCY,
                lease: DEFAULT_LEASE,
                job_timeout: DEFAULT_JOB_TIMEOUT,
                max_deliveries: DEFAULT_MAX_DELIVERIES,
                backoff: Backoff::default(),
                grace_period: DEFAULT_GRACE_PERIOD,
                block_time: DEFAULT_BLOCK_TIME,
                promote_interval: DEFAULT_PROMOTE_INTERVAL,
                consumer_idle_timeout: DEFAULT_CONSUMER_IDLE_TIMEOUT,
            },
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            dead_letter_cap: 0,
        }
    }

    /// This worker's consumer name in the groups: `host-pid-random`.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// A token that starts a graceful shutdown when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// What the worker is doing (running jobs, idle time, counts).
    pub fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.activity)
    }

    /// Runs until SIGINT or SIGTERM (or the shutdown token), then shuts down
    /// gracefully: see [`Worker::run_until`].
    ///
    /// # Errors
    /// As [`Worker::run_until`].
    pub async fn run(self) -> Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `signal` completes or the shutdown token is cancelled. Then:
    /// stop claiming; let running jobs finish within the grace period; drop
    /// the ones still running (their entries stay pending, so another worker
    /// recovers them after the lease: nothing is lost); acknowledge what
    /// finished; stop renewing leases last.
    ///
    /// Redis outages do not end the worker: every loop logs, backs off with
    /// jitter and resumes when Redis answers.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis) for a URL the client rejects.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> Result<()> {
        let conn = self.redis.manager(self.redis.response_timeout)?;
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let stopping = CancellationToken::new();
        let hard_stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            conn,
            consumer: self.consumer.clone(),
            promote_wake: self
                .queues
                .iter()
                .map(|_| Arc::new(Notify::new()))
                .collect(),
            queues: self
                .queues
                .iter()
                .map(|q| q.consumer(self.consumer.clone()))
                .collect(),
            handlers: self.handlers,
            settings: self.settings.clone(),
            slots: Arc::new(Semaphore::new(self.settings.concurrency)),
            inflight: InFlight::default(),
            activity: Arc::clone(&self.activity),
            stopping: stopping.clone(),
            hard_stop: hard_stop.clone(),
            tracker: TaskTracker::new(),
            acks: ack_tx,
        });
        tracing::info!(
            consumer = %shared.consumer,
            queues = ?shared.queues.iter().map(|c| c.queue().name()).collect::<Vec<_>>(),
            concurrency = self.settings.concurrency,
            lease_ms = self.settings.lease.as_millis() as u64,
            "worker started"
        );

        let loops = TaskTracker::new();
        for qi in 0..shared.queues.len() {
            // Blocking reads need a connection of their own whose response
            // timeout outlasts the block time.
            let blocking = self
                .redis
                .manager(self.settings.block_time + self.redis.response_timeout)?;
            loops.spawn(Fetcher::new(Arc::clone(&shared), qi, blocking).run());
            loops.spawn(Promoter::new(Arc::clone(&shared), qi).run());
        }
        loops.spawn(Recoverer::new(Arc::clone(&shared)).run());
        let acks_done = CancellationToken::new();
        let acker = tokio::spawn(Acker::new(Arc::clone(&shared), ack_rx).run(acks_done.clone()));
        let heartbeat_done = CancellationToken::new();
        let heartbeat =
            tokio::spawn(Heartbeat::new(Arc::clone(&shared)).run(heartbeat_done.clone()));

        tokio::select! {
            _ = signal => {}
            _ = self.shutdown.cancelled() => {}
        }

        // 1. Stop claiming.
        tracing::info!(
            running = shared.activity.running(),
            grace_ms = self.settings.grace_period.as_millis() as u64,
            "shutting down: no new jobs; waiting for running ones"
        );
        stopping.cancel();
        loops.close();
        loops.wait().await;
        // 2. Let running jobs finish within the grace period.
        shared.tracker.close();
        if tokio::time::timeout(self.settings.grace_period, shared.tracker.wait())
            .await
            .is_err()
        {
            let left = shared.activity.running();
            tracing::warn!(
                left,
                "grace period over: jobs still running are dropped and stay pending for recovery"
            );
            hard_stop.cancel();
            shared.tracker.wait().await;
        }
        // 3. Acknowledge what finished, 4. stop renewing leases last.
        acks_done.cancel();
        let _ = acker.await;
        heartbeat_done.cancel();
        let _ = heartbeat.await;
        tracing::info!(completed = shared.activity.completed(), "worker stopped");
        Ok(())
    }
}

/// Completes on SIGINT (ctrl-c) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only ctrl-c stops the worker");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `host-pid-random`: unique per process, readable in XINFO CONSUMERS.
fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    format!(
        "{}-{}-{:06x}",
        if host.is_empty() { "host" } else { &host },
        std::process::id(),
        fastrand::u32(..0x100_0000)
    )
}
