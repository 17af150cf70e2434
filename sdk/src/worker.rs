//! The worker: [`WorkerBuilder`] registers handlers and checks the settings;
//! [`Worker`] serves queues until SIGINT/SIGTERM. The running machinery is
//! in `runtime` (its supervisor, `runtime/supervisor.rs`, starts and
//! stops the components).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferry_broker::{Backoff, Prefix, Queue};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::connection::RedisConfig;
use crate::error::{ConfigError, JobError, Result};
use crate::handler::{erase, Handler, HandlerFn, Registry};
use crate::job::Job;
use crate::runtime::supervisor::Supervisor;
use crate::runtime::Activity;

/// Builds a [`Worker`]. See [`Worker::builder`].
#[must_use = "a builder does nothing until build()"]
pub struct WorkerBuilder {
    redis: RedisConfig,
    config: WorkerConfig,
    prefix: Option<String>,
    queues: Vec<String>,
    /// Each registered handler's job type and default queue.
    job_types: Vec<(&'static str, &'static str)>,
    handlers: Registry,
}

/// Setters that each change one [`WorkerConfig`] field.
macro_rules! config_setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.config.$name = value;
                self
            }
        )*
    };
}

impl WorkerBuilder {
    /// Serves queue `name`; call again to serve several. When no queue is
    /// named, the worker serves the queues of its handlers' job types
    /// ([`Job::QUEUE`]); once one is named, it serves exactly those named.
    pub fn queue(mut self, name: impl Into<String>) -> Self {
        self.queues.push(name.into());
        self
    }

    /// Registers `handler` for its job type.
    pub fn register<H: Handler>(mut self, handler: H) -> Self {
        let (kind, h) = erase(handler);
        self.job_types.push((kind, <H::Job as Job>::QUEUE));
        self.handlers.entry(kind).or_insert(h);
        self
    }

    /// Registers a closure as the handler of its job type `J`:
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct SendWelcome { to: String }
    /// # impl ferry_queue::Job for SendWelcome { const TYPE: &'static str = "send_welcome"; }
    /// # fn example() -> ferry_queue::Result<ferry_queue::Worker> {
    /// use ferry_queue::{JobContext, Worker};
    /// Worker::builder("redis://127.0.0.1:6379")
    ///     .handle(|job: SendWelcome, ctx: JobContext| async move {
    ///         println!("welcome {} (job {})", job.to, ctx.job_id);
    ///         Ok(())
    ///     })
    ///     .build()
    /// # }
    /// ```
    pub fn handle<J, F, Fut, O>(self, f: F) -> Self
    where
        J: Job,
        F: Fn(J, crate::handler::JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<O, JobError>> + Send + 'static,
        O: Serialize + Send + 'static,
    {
        self.register(HandlerFn::new(f))
    }

    /// Replaces every setting with `config` (the setters below change one each).
    pub fn config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// Key namespace (default `ferry`); producers must use the same.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    config_setters! {
        /// Jobs run at once (default 10).
        concurrency: usize;
        /// The lease (default 30 s): this worker renews its running entries every
        /// lease/3, and takes over other workers' entries idle longer than this.
        lease: Duration;
        /// Time limit of one attempt (default 30 min); past it the attempt fails.
        job_timeout: Duration;
        /// Deliveries of one entry (each one a worker that died or lost its
        /// lease while running it) before it is dead-lettered as poison (default 5).
        max_deliveries: u32;
        /// Retry delays (default: 1 s doubling to 10 min, with jitter).
        backoff: Backoff;
        /// Time running jobs get to finish at shutdown (default 30 s).
        grace_period: Duration;
        /// Longest XREADGROUP BLOCK when idle (default 1 s); shutdown waits for
        /// a read in progress, so this also bounds the shutdown delay of an idle worker.
        block_time: Duration;
        /// Longest wait between two looks at the delayed set (default 1 s).
        promote_interval: Duration;
        /// Idle time after which a consumer that owns nothing is removed (default 10 min).
        consumer_idle_timeout: Duration;
        /// Largest payload accepted; larger entries are dead-lettered (default 1 MiB).
        max_payload_bytes: usize;
        /// Caps each dead-letter stream at this many entries (default 0: keep all).
        /// Entries the cap drops are counted (`dead_dropped`) and logged.
        dead_letter_cap: u64;
        /// Work with a Redis whose `maxmemory-policy` may delete Ferry's
        /// keys (any but `noeviction`), logging each eviction seen as
        /// possible data loss; by default the worker refuses to start, and
        /// stops claiming while the policy evicts.
        allow_eviction: bool;
        /// How long a job of a type no handler here knows may wait for a worker
        /// that knows it (put back, retries untouched) before it is
        /// dead-lettered (default 6 h; zero: at once).
        unknown_type_window: Duration;
        /// Fire the cron and periodic schedules of this worker's queues
        /// (default `true`; each tick enqueues one job fleet-wide).
        fire_schedules: bool;
    }

    /// Checks the settings and builds the worker. Nothing connects yet.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming what is wrong: no
    /// handler, a job type registered twice, a bad queue name or prefix, a
    /// queue listed twice, a setting out of range
    /// ([`WorkerConfig::validate`]), or a Redis URL that does not parse.
    pub fn build(self) -> Result<Worker> {
        let invalid =
            |name: &'static str, reason: String| ConfigError::InvalidSetting { name, reason };
        if self.handlers.is_empty() {
            return Err(invalid("handlers", "register at least one handler".into()).into());
        }
        if self.handlers.len() < self.job_types.len() {
            let mut seen = std::collections::HashSet::new();
            if let Some((kind, _)) = self.job_types.iter().find(|(kind, _)| !seen.insert(*kind)) {
                return Err(
                    invalid("handlers", format!("job type `{kind}` is registered twice")).into(),
                );
            }
        }
        let mut config = self.config;
        if let Some(prefix) = self.prefix {
            config.prefix = Prefix::new(prefix)?;
        }
        config.validate()?;
        self.redis.validate()?;
        let names: Vec<String> = if self.queues.is_empty() {
            let mut names: Vec<String> = Vec::new();
            for (_, queue) in &self.job_types {
                if !names.iter().any(|n| n == queue) {
                    names.push((*queue).to_owned());
                }
            }
            names
        } else {
            self.queues
        };
        let mut queues: Vec<Queue> = Vec::with_capacity(names.len());
        for name in &names {
            let queue = Queue::with_prefix(&config.prefix, name)?
                .max_payload_bytes(config.max_payload_bytes)
                .dead_letter_cap(config.dead_letter_cap)
                .sharded_pubsub(self.redis.is_cluster());
            if queues.iter().any(|q| q.name() == queue.name()) {
                return Err(invalid("queue", format!("queue `{name}` is listed twice")).into());
            }
            queues.push(queue);
        }
        Ok(Worker {
            redis: self.redis,
            config,
            queues,
            handlers: self.handlers,
            consumer: consumer_name(),
            activity: Arc::new(Activity::new()),
            shutdown: CancellationToken::new(),
        })
    }
}

/// Runs handlers for jobs of one or more queues.
///
/// ```no_run
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct SendWelcome { to: String }
/// # impl ferry_queue::Job for SendWelcome { const TYPE: &'static str = "send_welcome"; }
/// # struct Welcomer;
/// # impl ferry_queue::Handler for Welcomer {
/// #     type Job = SendWelcome;
/// #     type Output = ();
/// #     async fn handle(&self, _: SendWelcome, _: ferry_queue::JobContext) -> Result<(), ferry_queue::JobError> { Ok(()) }
/// # }
/// # async fn example() -> ferry_queue::Result<()> {
/// use std::time::Duration;
/// ferry_queue::Worker::builder("redis://127.0.0.1:6379")
///     .register(Welcomer) // serves SendWelcome's queue
///     .concurrency(50)
///     .lease(Duration::from_secs(30))
///     .build()?
///     .run() // until SIGINT or SIGTERM
///     .await
/// # }
/// ```
pub struct Worker {
    redis: RedisConfig,
    config: WorkerConfig,
    queues: Vec<Queue>,
    handlers: Registry,
    consumer: String,
    activity: Arc<Activity>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("consumer", &self.consumer)
            .field("queues", &self.queue_names())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A builder for a worker connected to `redis` (a URL or a [`RedisConfig`]).
    pub fn builder(redis: impl Into<RedisConfig>) -> WorkerBuilder {
        WorkerBuilder {
            redis: redis.into(),
            config: WorkerConfig::default(),
            prefix: None,
            queues: Vec::new(),
            job_types: Vec::new(),
            handlers: Registry::new(),
        }
    }

    /// This worker's consumer name in the groups: `host-pid-random`.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The queues it serves.
    pub fn queue_names(&self) -> Vec<&str> {
        self.queues.iter().map(Queue::name).collect()
    }

    /// Its settings.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
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
    ///
    /// A second SIGINT or SIGTERM during the shutdown forces it: running
    /// jobs are dropped at once (their entries stay pending for recovery).
    pub async fn run(self) -> Result<()> {
        // The signals are received on the worker's control thread.
        self.start(std::future::pending(), true).await
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
    /// Before it starts, the worker checks the server: it waits (logging,
    /// with backoff) while Redis cannot be reached, and gives up on what
    /// waiting cannot fix.
    ///
    /// # Errors
    /// [`Error::AuthFailed`](crate::Error::AuthFailed) or
    /// [`Error::AuthRequired`](crate::Error::AuthRequired) when the server
    /// refuses the URL's credentials;
    /// [`Error::EvictionPolicy`](crate::Error::EvictionPolicy) when the
    /// server's `maxmemory-policy` is not `noeviction` (unless
    /// [`WorkerConfig::allow_eviction`](crate::WorkerConfig::allow_eviction)).
    /// (Settings, the URL included, were checked by [`WorkerBuilder::build`],
    /// which reports them as [`Error::Config`](crate::Error::Config).)
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> Result<()> {
        self.start(signal, false).await
    }

    async fn start(
        self,
        signal: impl Future<Output = ()> + Send,
        force_on_second_signal: bool,
    ) -> Result<()> {
        let supervisor = Supervisor {
            force_on_second_signal,
            redis: self.redis,
            config: self.config,
            queues: self.queues,
            handlers: self.handlers,
            consumer: self.consumer,
            activity: self.activity,
        };
        let shutdown = self.shutdown;
        supervisor
            .run(async move {
                tokio::select! {
                    _ = signal => {}
                    _ = shutdown.cancelled() => {}
                }
            })
            .await
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
