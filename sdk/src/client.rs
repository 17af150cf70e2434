//! The client: enqueue typed jobs, read queue stats and dead letters.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::link::Link;
use ferry_broker::{
    DeadLetter, Keys, NewJob, Prefix, Queue, QueueStats, DEFAULT_MAX_PAYLOAD_BYTES,
};

use crate::config::check_payload_limit;
use crate::connection::RedisConfig;
use crate::enqueue::EnqueueOptions;
use crate::error::{ConfigError, Error, Result};
use crate::job::Job;

/// Most queues whose key names a client keeps built; past it the cache starts over.
const MAX_CACHED_QUEUES: usize = 1024;

/// Builds a [`Client`]. See [`Client::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until connect()"]
pub struct ClientBuilder {
    redis: RedisConfig,
    prefix: Option<String>,
    max_payload_bytes: usize,
    strict_memory_policy: bool,
}

impl ClientBuilder {
    /// With `true`, the client refuses to work with a Redis whose
    /// `maxmemory-policy` may delete its keys (`allkeys-*`): every call
    /// fails with [`Error::EvictionPolicy`]. By default it logs a warning
    /// once and carries on.
    pub fn strict_memory_policy(mut self, strict: bool) -> Self {
        self.strict_memory_policy = strict;
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
        Ok(Client {
            conn: self.redis.link(self.redis.response_timeout)?,
            host: self.redis.host().into(),
            checked: Arc::new(OnceCell::new()),
            strict_memory_policy: self.strict_memory_policy,
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
    /// Set once the first-use check ([`preflight`](crate::preflight)) passed.
    checked: Arc<OnceCell<()>>,
    strict_memory_policy: bool,
    prefix: Prefix,
    max_payload_bytes: usize,
    /// Each queue's key names, built once.
    queues: Arc<Mutex<HashMap<String, Queue>>>,
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
            strict_memory_policy: false,
        }
    }

    /// The connection, after the first-use check: the credentials work and
    /// the eviction policy is safe (or warned about). The check runs once;
    /// a connection failure leaves it to the next call.
    async fn conn(&self) -> Result<Link> {
        let mut conn = self.conn.clone();
        self.checked
            .get_or_try_init(|| {
                crate::preflight::check(&mut conn, &self.host, self.strict_memory_policy, false)
            })
            .await?;
        Ok(self.conn.clone())
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
        let (priority, max_retries) = (options.priority_for::<J>(), options.max_retries_for::<J>());
        let mut batch = Vec::with_capacity(jobs.len());
        for job in jobs {
            batch.push(NewJob {
                job_type: Cow::Borrowed(J::TYPE),
                payload: serde_json::to_string(job)?,
                priority,
                max_retries,
                schedule,
            });
        }
        let mut conn = self.conn().await?;
        match &key {
            None => queue.enqueue(&mut conn, &batch).await,
            Some(key) => queue.enqueue_keyed(&mut conn, &batch, key).await,
        }
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
