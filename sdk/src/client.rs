//! The client: enqueue typed jobs, read queue stats and dead letters.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::preflight::MemoryGuard;

use crate::link::Link;
use std::time::Duration;

use crate::events::Subscription;
use crate::waiters::{Waiters, Wake};
use ferry_broker::{
    CancelOutcome, DeadLetter, JobState, JobStatus, Keys, NewJob, Prefix, Priority, Queue,
    QueueStats, Reprioritised, Settings, WorkerInfo, DEFAULT_MAX_PAYLOAD_BYTES,
};

use crate::config::check_payload_limit;
use crate::connection::RedisConfig;
use crate::enqueue::EnqueueOptions;
use crate::error::{ConfigError, Error, Result};
use crate::job::Job;

/// What [`Client::cancel`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// The job is cancelled (it had not started, or was cancelled before).
    Cancelled,
    /// The job is running on `worker`, which was told; it ends cancelled
    /// when its attempt ends.
    Requested {
        /// The worker (consumer name) running it; empty when the
        /// cancellation had been asked before.
        worker: String,
    },
}

/// Most queues whose key names a client keeps built; past it the cache starts over.
const MAX_CACHED_QUEUES: usize = 1024;

/// Builds a [`Client`]. See [`Client::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until connect()"]
pub struct ClientBuilder {
    redis: RedisConfig,
    prefix: Option<String>,
    max_payload_bytes: usize,
    allow_eviction: bool,
}

impl ClientBuilder {
    /// With `true`, the client works with a Redis whose
    /// `maxmemory-policy` may delete its keys (any but `noeviction`),
    /// logging a warning and each eviction it sees as possible data loss.
    /// By default every call fails with [`Error::EvictionPolicy`] while the
    /// server has such a policy (read on first use and every 10 s after).
    pub fn allow_eviction(mut self, allow: bool) -> Self {
        self.allow_eviction = allow;
        self
    }

    /// Uses key namespace `prefix` instead of `ferry` (workers must use the same).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Refuses payloads over `limit` bytes of JSON at enqueue (default 1 MiB).
    pub fn max_payload_bytes(mut self, limit: usize) -> Self {
        self.max_payload_bytes = limit;
        self
    }

    /// Checks the settings and makes the client. It connects on first use
    /// and reconnects by itself.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting: a URL that does not parse
    /// (`redis_url`), a bad prefix, a zero payload limit or timeout.
    pub fn connect(self) -> Result<Client> {
        let prefix = match self.prefix {
            Some(p) => Prefix::new(p)?,
            None => Prefix::default(),
        };
        check_payload_limit(self.max_payload_bytes)?;
        let conn = self.redis.link(self.redis.response_timeout)?;
        Ok(Client {
            redis: self.redis.clone(),
            waiters: Arc::new(Waiters::new(conn.client().clone())),
            conn,
            host: self.redis.host().into(),
            guard: Arc::new(MemoryGuard::new(self.allow_eviction)),
            prefix,
            max_payload_bytes: self.max_payload_bytes,
            queues: Arc::new(Mutex::new(HashMap::new())),
        })
    }
}

/// Enqueues jobs and reads queue state. Cheap to clone: clones share one
/// multiplexed, auto-reconnecting connection and the queues' key names.
///
/// ```no_run
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct SendWelcome { to: String }
/// # impl ferry_queue::Job for SendWelcome {
/// #     const TYPE: &'static str = "send_welcome";
/// #     const QUEUE: &'static str = "emails";
/// # }
/// # async fn example() -> ferry_queue::Result<()> {
/// use ferry_queue::{Client, EnqueueOptions, Priority};
/// let client = Client::connect("redis://127.0.0.1:6379")?;
/// // To SendWelcome's queue, with its defaults:
/// let id = client.enqueue(&SendWelcome { to: "ada@example.com".into() }).await?;
/// // Many in one round trip, with options:
/// let ids = client
///     .enqueue_batch(
///         &[SendWelcome { to: "a@x".into() }, SendWelcome { to: "b@x".into() }],
///         EnqueueOptions::new().priority(Priority::High),
///     )
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    conn: Link,
    /// `host:port`, for error messages.
    host: Arc<str>,
    /// The first-use check ([`preflight`](crate::preflight)) and its
    /// periodic repeat.
    guard: Arc<MemoryGuard>,
    prefix: Prefix,
    max_payload_bytes: usize,
    /// Each queue's key names, built once.
    queues: Arc<Mutex<HashMap<String, Queue>>>,
    /// Waits in progress, sharing one Pub/Sub connection.
    waiters: Arc<Waiters>,
    /// How to reach Redis, for connections of another kind (subscriptions).
    redis: RedisConfig,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the Redis at `redis` (a URL or a [`RedisConfig`]) with
    /// default settings. It connects on first use and reconnects by itself.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`].
    pub fn connect(redis: impl Into<RedisConfig>) -> Result<Self> {
        Self::builder(redis).connect()
    }

    /// A builder for a client of the Redis at `redis`, to change its settings.
    pub fn builder(redis: impl Into<RedisConfig>) -> ClientBuilder {
        ClientBuilder {
            redis: redis.into(),
            prefix: None,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            allow_eviction: false,
        }
    }

    /// The connection, after the first-use check: the credentials work and
    /// the eviction policy is safe (or allowed). The check runs on first
    /// use and again every [`RECHECK_INTERVAL`](crate::preflight::RECHECK_INTERVAL);
    /// a connection failure leaves it to the next call.
    async fn conn(&self) -> Result<Link> {
        self.guard.check(&self.conn, &self.host).await?;
        Ok(self.conn.clone())
    }

    /// Runs the server check now (it otherwise runs on first use, and every
    /// 10 s while the client is used): the credentials, and the eviction
    /// policy.
    ///
    /// # Errors
    /// [`Error::EvictionPolicy`] when the server's `maxmemory-policy` may
    /// delete Ferry's keys and [`ClientBuilder::allow_eviction`] is off;
    /// [`Error::AuthFailed`], [`Error::AuthRequired`]; connection errors.
    pub async fn check(&self) -> Result<()> {
        self.conn().await.map(drop)
    }

    /// The server's `maxmemory-policy` and its count of evicted keys, read
    /// now (`INFO`, or `CONFIG GET` where INFO is not permitted).
    ///
    /// # Errors
    /// Redis errors.
    pub async fn redis_memory(&self) -> Result<crate::RedisMemory> {
        let mut conn = self.conn.clone();
        crate::preflight::memory_state(&mut conn)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Keys the Redis server evicted under memory pressure between this
    /// client's checks of it (on first use and every 10 s while in use):
    /// each one is possible data loss. Only an
    /// [`allow_eviction`](ClientBuilder::allow_eviction) client works
    /// where this can grow.
    pub fn evicted_keys(&self) -> u64 {
        self.guard.evicted_keys()
    }

    /// The typed form of a failed call's error, naming the server.
    fn fail(&self, e: impl Into<Error>) -> Error {
        e.into().with_host(&self.host)
    }

    /// The key namespace.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// The key names of `queue`, for looking at it with `redis-cli` or any
    /// Redis client (the README's Keys section documents them).
    ///
    /// # Errors
    /// [`ConfigError::InvalidQueueName`].
    pub fn keys(&self, queue: &str) -> Result<Keys, ConfigError> {
        Ok(self.queue(queue)?.keys().clone())
    }

    /// The queue named `name`, its key names built once and cached.
    fn queue(&self, name: &str) -> Result<Queue, ConfigError> {
        // A poisoned lock only means another thread panicked while holding
        // it; the map is still a valid cache.
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = queues.get(name) {
            return Ok(q.clone());
        }
        let q = Queue::with_prefix(&self.prefix, name)?.max_payload_bytes(self.max_payload_bytes);
        if queues.len() >= MAX_CACHED_QUEUES {
            queues.clear();
        }
        queues.insert(name.to_owned(), q.clone());
        Ok(q)
    }

    /// Enqueues one job to its type's queue, with its type's defaults;
    /// returns its id.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad queue name or an oversized payload,
    /// [`Error::Redis`] when Redis is unreachable (within the response timeout).
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<String> {
        self.enqueue_with(job, EnqueueOptions::new()).await
    }

    /// Enqueues one job with `options`; returns its id.
    ///
    /// # Errors
    /// As [`Client::enqueue`].
    pub async fn enqueue_with<J: Job>(&self, job: &J, options: EnqueueOptions) -> Result<String> {
        let mut ids = self
            .enqueue_batch(std::slice::from_ref(job), options)
            .await?;
        ids.pop()
            .ok_or_else(|| Error::Protocol("enqueue returned no id".into()))
    }

    /// Enqueues many jobs of one type; returns their ids in order. Up to
    /// 1,000 jobs (and 4 MB) go in one round trip, all or none; a bigger
    /// batch goes in chunks of that size, one after the other, so that no
    /// transaction holds Redis for more than a few milliseconds.
    ///
    /// With the crate's `opentelemetry` feature, jobs enqueued inside a
    /// span that has an OpenTelemetry context carry it (the W3C entry
    /// fields `traceparent` and `tracestate`); the worker's `job` span
    /// continues that trace. This holds for every enqueue method, which
    /// all come here.
    ///
    /// # Errors
    /// As [`Client::enqueue`]. A batch that fails after its first chunk, or
    /// loses a chunk's reply, is [`Error::PartialBatch`]: the ids known
    /// written, those that may be, and how many were not sent. To retry
    /// without duplicates, enqueue with an
    /// [`idempotency_key`](EnqueueOptions::idempotency_key) and retry with
    /// the same key. Otherwise nothing of the batch was written, except
    /// after a timeout or a dropped connection, when its one chunk may
    /// have been.
    pub async fn enqueue_batch<J: Job>(
        &self,
        jobs: &[J],
        options: EnqueueOptions,
    ) -> Result<Vec<String>> {
        let queue = self.queue(options.queue_for::<J>())?;
        let now = ferry_broker::now_ms();
        options.check(now)?;
        let key = options.batch_key()?;
        let schedule = options.broker_schedule();
        let given = options.given_id();
        if given.is_some() && jobs.len() != 1 {
            return Err(ConfigError::InvalidSetting {
                name: "job_id",
                reason: format!("names one job, and the batch has {}", jobs.len()),
            }
            .into());
        }
        let (priority, max_retries) = (options.priority_for::<J>(), options.max_retries_for::<J>());
        let mut batch = Vec::with_capacity(jobs.len());
        for job in jobs {
            batch.push(NewJob {
                job_type: Cow::Borrowed(J::TYPE),
                payload: serde_json::to_string(job)?,
                priority,
                max_retries,
                schedule,
                id: given.map(str::to_owned),
                retention_ms: options.retention_ms(),
            });
        }
        let mut conn = self.conn().await?;
        // Inside a trace, every job carries the current span's context.
        #[cfg(feature = "opentelemetry")]
        if let Some(trace) = crate::trace::current() {
            return queue
                .enqueue_traced(
                    &mut conn,
                    &batch,
                    key.as_ref(),
                    options.duplicate_policy(),
                    &trace,
                )
                .await
                .map_err(|e| self.fail(e));
        }
        match &key {
            None => {
                queue
                    .enqueue_with(&mut conn, &batch, options.duplicate_policy())
                    .await
            }
            Some(key) => queue.enqueue_keyed(&mut conn, &batch, key).await,
        }
        .map_err(|e| self.fail(e))
    }

    /// The status of job `id` in `queue`: its state, attempts, times,
    /// worker, last error and result (see [`JobStatus`]). One round trip,
    /// O(log n) in the queue's depth.
    ///
    /// # Errors
    /// [`Error::JobNotFound`] when the queue has no such job (or its
    /// record is no longer kept); [`Error::Config`] or [`Error::Redis`].
    pub async fn status(&self, queue_name: &str, id: &str) -> Result<JobStatus> {
        let queue = self.queue(queue_name)?;
        let mut conn = self.conn().await?;
        queue
            .status(&mut conn, id)
            .await
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| Error::JobNotFound {
                queue: queue_name.to_owned(),
                id: id.to_owned(),
            })
    }

    /// Waits until job `id` of `queue` finishes, up to `timeout`, and
    /// returns its final status: `succeeded` with its result, or `dead`
    /// (or `cancelled`) with its error. A job that finished before the call
    /// is answered at once. Event-driven: every wait of this client shares
    /// one Pub/Sub subscription per queue, and nothing polls.
    ///
    /// With the queue's record retention at 0, a finished job's status
    /// holds only its id and state.
    ///
    /// # Errors
    /// [`Error::WaitTimeout`] (naming the job's state then; the job is left
    /// alone); [`Error::JobNotFound`]; [`Error::Config`] or [`Error::Redis`].
    pub async fn wait(&self, queue_name: &str, id: &str, timeout: Duration) -> Result<JobStatus> {
        let queue = self.queue(queue_name)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let channel = queue.keys().finished_channel();
        let mut waiting = tokio::time::timeout(timeout, self.waiters.register(&channel, id))
            .await
            .map_err(|_| Error::WaitTimeout {
                id: id.to_owned(),
                timeout,
                state: JobState::Queued,
            })?
            .map_err(|e| self.fail(e))?;
        let mut heard: Option<JobState> = None;
        loop {
            let mut conn = self.conn().await?;
            let status = queue
                .status(&mut conn, id)
                .await
                .map_err(|e| self.fail(e))?;
            let state = match (status, heard) {
                (Some(s), _) if s.state.is_final() => return Ok(s),
                // Heard it finish, yet it reads otherwise (a dead job
                // replayed at once): this wait is over.
                (Some(_), Some(final_state)) => return Ok(JobStatus::finished(id, final_state)),
                (Some(s), None) => s.state,
                (None, Some(final_state)) => return Ok(JobStatus::finished(id, final_state)),
                (None, None) => {
                    return Err(Error::JobNotFound {
                        queue: queue_name.to_owned(),
                        id: id.to_owned(),
                    })
                }
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match waiting.woken(left).await {
                None => {
                    return Err(Error::WaitTimeout {
                        id: id.to_owned(),
                        timeout,
                        state,
                    })
                }
                Some(Wake::Finished(s)) => heard = Some(s),
                Some(Wake::LookAgain) => {}
            }
            waiting.rearm();
        }
    }

    /// Enqueues one job with `options` and waits for it to finish, up to
    /// `timeout` (see [`Client::wait`]).
    ///
    /// # Errors
    /// As [`Client::enqueue_with`] and [`Client::wait`].
    pub async fn enqueue_and_wait<J: Job>(
        &self,
        job: &J,
        options: EnqueueOptions,
        timeout: Duration,
    ) -> Result<JobStatus> {
        let queue = options.queue_for::<J>().to_owned();
        let id = self.enqueue_with(job, options).await?;
        self.wait(&queue, &id, timeout).await
    }

    /// Cancels job `id` of `queue`. A scheduled, retrying or queued job is
    /// removed at once and recorded `cancelled` ([`Cancel::Cancelled`]). A
    /// running job's handler is told through its
    /// [`JobContext::cancel`](crate::JobContext::cancel) token, on whichever
    /// worker runs it, within about a round trip; the job ends `cancelled`
    /// whatever the handler returns then ([`Cancel::Requested`]; use
    /// [`Client::wait`] to see it end). Cancelling a cancelled job again
    /// is `Ok`.
    ///
    /// # Errors
    /// [`Error::NotCancellable`] for a job that succeeded or is dead;
    /// [`Error::JobNotFound`]; [`Error::Config`] or [`Error::Redis`].
    pub async fn cancel(&self, queue_name: &str, id: &str) -> Result<Cancel> {
        let queue = self.queue(queue_name)?;
        let mut conn = self.conn().await?;
        match queue
            .cancel(&mut conn, id)
            .await
            .map_err(|e| self.fail(e))?
        {
            CancelOutcome::Cancelled | CancelOutcome::Final(JobState::Cancelled) => {
                Ok(Cancel::Cancelled)
            }
            CancelOutcome::Cancelling { worker } => Ok(Cancel::Requested { worker }),
            CancelOutcome::Final(state) => Err(Error::NotCancellable {
                id: id.to_owned(),
                state,
            }),
            CancelOutcome::NotFound => Err(Error::JobNotFound {
                queue: queue_name.to_owned(),
                id: id.to_owned(),
            }),
        }
    }

    /// Gives waiting job `id` of `queue` the priority `priority`,
    /// atomically, keeping its id: a queued job becomes the newest of its
    /// new priority; a scheduled or retrying one is queued at it when due.
    ///
    /// # Errors
    /// [`Error::NotWaiting`] for a job running or finished;
    /// [`Error::JobNotFound`]; [`Error::Config`] or [`Error::Redis`].
    pub async fn reprioritise(&self, queue_name: &str, id: &str, priority: Priority) -> Result<()> {
        let queue = self.queue(queue_name)?;
        let mut conn = self.conn().await?;
        match queue
            .reprioritise(&mut conn, id, priority)
            .await
            .map_err(|e| self.fail(e))?
        {
            Reprioritised::Moved | Reprioritised::Unchanged => Ok(()),
            Reprioritised::NotWaiting(state) => Err(Error::NotWaiting {
                id: id.to_owned(),
                state,
            }),
            Reprioritised::NotFound => Err(Error::JobNotFound {
                queue: queue_name.to_owned(),
                id: id.to_owned(),
            }),
        }
    }

    /// The live workers serving `queue`: host, pid, queues, concurrency,
    /// start time, last heartbeat and jobs running. A worker registers
    /// itself with a TTL its heartbeat renews (lease + lease/3), and
    /// removes itself when it stops cleanly.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn workers(&self, queue: &str) -> Result<Vec<WorkerInfo>> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.workers(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Turns `queue`'s lifecycle events on, kept in a stream capped at
    /// about `cap` entries (`Some`), or off (`None`). They cost Redis one
    /// stream entry per event (about 6 per job), so they are off by
    /// default.
    ///
    /// # Errors
    /// [`Error::Config`] (for `Some(0)`) or [`Error::Redis`].
    pub async fn set_events(&self, queue: &str, cap: Option<u64>) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .set_events(&mut conn, cap)
            .await
            .map_err(|e| self.fail(e))
    }

    /// `queue`'s lifecycle events from now on (enqueued, started,
    /// progress, retrying, succeeded, dead, cancelled, recovered), or from
    /// after entry `after` of the events stream. Each subscription reads on
    /// a connection of its own.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn subscribe(&self, queue: &str, after: Option<&str>) -> Result<Subscription> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        let after = match after {
            Some(a) => a.to_owned(),
            None => queue
                .last_event_id(&mut conn)
                .await
                .map_err(|e| self.fail(e))?,
        };
        let blocking = self
            .redis
            .link(self.redis.response_timeout + Duration::from_secs(2))?;
        Ok(Subscription::new(queue, blocking, after))
    }

    /// Pauses `queue` across the whole fleet: workers claim nothing new
    /// from it within about a second; running jobs finish; enqueues still
    /// go in. Idempotent.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn pause(&self, queue: &str) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.pause(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Resumes a paused `queue`. Idempotent.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn resume(&self, queue: &str) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.resume(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// The settings of `queue`: paused, maximum depth, record retention.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn settings(&self, queue: &str) -> Result<Settings> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.settings(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Sets the most jobs `queue` holds (waiting, running or delayed);
    /// past it, enqueues fail with [`Error::QueueFull`]. `None` removes the
    /// limit.
    ///
    /// # Errors
    /// [`Error::Config`] (for `Some(0)`) or [`Error::Redis`].
    pub async fn set_max_depth(&self, queue: &str, max_depth: Option<u64>) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .set_max_depth(&mut conn, max_depth)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Sets how long and how many finished jobs' records `queue` keeps
    /// (default 24 h and 10,000; either 0 keeps none, and then
    /// [`Client::wait`] can only tell a job's final state, not its result).
    /// A record's expiry is fixed when it is written: a new time applies to
    /// jobs finishing from then on, a job's own
    /// [`EnqueueOptions::retention`](crate::EnqueueOptions::retention)
    /// overrides it, and a count of 0 removes the records there are, a few
    /// at a time.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn set_retention(&self, queue: &str, keep: Duration, count: u64) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .set_retention(&mut conn, keep, count)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Deletes every finished job's record of `queue`; returns how many.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn clear_results(&self, queue: &str) -> Result<u64> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .clear_results(&mut conn)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Depth and counters of `queue`.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.stats(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// The oldest `count` entries of `queue`'s dead-letter stream.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn dead_letters(&self, queue: &str, count: usize) -> Result<Vec<DeadLetter>> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .dead_letters(&mut conn, count)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Moves one dead-letter entry of `queue` back to its priority stream as
    /// attempt 1, keeping its job id. Returns the new stream entry id.
    ///
    /// # Errors
    /// [`Error::DeadLetterNotFound`] when `queue` has no dead-letter entry
    /// `entry_id` (or it is not a stream entry id); [`Error::Config`] or
    /// [`Error::Redis`].
    pub async fn replay_dead(&self, queue_name: &str, entry_id: &str) -> Result<String> {
        let queue = self.queue(queue_name)?;
        let mut conn = self.conn().await?;
        queue
            .replay_dead(&mut conn, entry_id)
            .await
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| Error::DeadLetterNotFound {
                queue: queue_name.to_owned(),
                entry_id: entry_id.to_owned(),
            })
    }
}
