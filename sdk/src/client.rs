//! The client: enqueue typed jobs, read queue stats and dead letters.

use std::time::Duration;

use ferry_broker::{DeadLetter, NewJob, Priority, Queue, QueueStats, DEFAULT_MAX_PAYLOAD_BYTES};
use redis::aio::ConnectionManager;

use crate::connection::RedisConfig;
use crate::error::{ConfigError, Result};
use crate::job::Job;

/// Default retries after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// How to enqueue a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueueOptions {
    /// Which stream it goes to. Default: normal.
    pub priority: Priority,
    /// Retries after the first attempt. Default: 3.
    pub max_retries: u32,
    /// Wait this long before the first run. Default: none.
    pub delay: Option<Duration>,
}

impl Default for EnqueueOptions {
    fn default() -> Self {
        Self {
            priority: Priority::Normal,
            max_retries: DEFAULT_MAX_RETRIES,
            delay: None,
        }
    }
}

impl EnqueueOptions {
    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the retries allowed after the first attempt.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Runs the job no earlier than `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// Enqueues jobs and reads queue state. Cheap to clone: clones share one
/// multiplexed, auto-reconnecting connection.
///
/// ```no_run
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct SendWelcome { to: String }
/// # impl ferry::Job for SendWelcome { const TYPE: &'static str = "send_welcome"; }
/// # async fn example() -> ferry::Result<()> {
/// use ferry::{Client, EnqueueOptions, Priority};
/// let client = Client::connect("redis://127.0.0.1:6379")?;
/// let id = client.enqueue("emails", &SendWelcome { to: "ada@example.com".into() }).await?;
/// let ids = client
///     .enqueue_batch("emails", &[SendWelcome { to: "a@x".into() }, SendWelcome { to: "b@x".into() }],
///         EnqueueOptions::default().priority(Priority::High))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    conn: ConnectionManager,
    prefix: ferry_broker::Prefix,
    max_payload_bytes: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the Redis at `config` (a URL or a [`RedisConfig`]). It
    /// connects on first use and reconnects by itself.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis) for a URL that does not parse.
    pub fn connect(config: impl Into<RedisConfig>) -> Result<Self> {
        let config = config.into();
        Ok(Self {
            conn: config.manager(config.response_timeout)?,
            prefix: ferry_broker::Prefix::default(),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        })
    }

    /// Uses key namespace `prefix` instead of `ferry` (workers must use the same).
    ///
    /// # Errors
    /// [`ConfigError::InvalidPrefix`].
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, ConfigError> {
        self.prefix = ferry_broker::Prefix::new(prefix)?;
        Ok(self)
    }

    /// Refuses payloads over `limit` bytes of JSON at enqueue (default 1 MiB).
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] for 0.
    pub fn with_max_payload_bytes(mut self, limit: usize) -> Result<Self, ConfigError> {
        if limit == 0 {
            return Err(ConfigError::InvalidSetting {
                name: "max_payload_bytes",
                reason: "must be at least 1".into(),
            });
        }
        self.max_payload_bytes = limit;
        Ok(self)
    }

    /// The protocol-level handle of `queue` (for operations the client does not wrap).
    ///
    /// # Errors
    /// [`ConfigError::InvalidQueueName`].
    pub fn queue(&self, queue: &str) -> Result<Queue, ConfigError> {
        Ok(Queue::with_prefix(&self.prefix, queue)?.max_payload_bytes(self.max_payload_bytes))
    }

    /// A clone of the underlying connection.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Enqueues one job with default options; returns its id.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a bad queue name or an
    /// oversized payload, [`Error::Redis`](crate::Error::Redis) when Redis is
    /// unreachable (within the response timeout).
    pub async fn enqueue<J: Job>(&self, queue: &str, job: &J) -> Result<String> {
        self.enqueue_with(queue, job, EnqueueOptions::default())
            .await
    }

    /// Enqueues one job with `options`; returns its id.
    ///
    /// # Errors
    /// As [`Client::enqueue`].
    pub async fn enqueue_with<J: Job>(
        &self,
        queue: &str,
        job: &J,
        options: EnqueueOptions,
    ) -> Result<String> {
        let mut ids = self
            .enqueue_batch(queue, std::slice::from_ref(job), options)
            .await?;
        ids.pop()
            .ok_or_else(|| crate::Error::Protocol("enqueue returned no id".into()))
    }

    /// Enqueues many jobs of one type in one round trip, all or none; returns
    /// their ids in order.
    ///
    /// # Errors
    /// As [`Client::enqueue`]; on error no job of the batch was added.
    pub async fn enqueue_batch<J: Job>(
        &self,
        queue: &str,
        jobs: &[J],
        options: EnqueueOptions,
    ) -> Result<Vec<String>> {
        let q = self.queue(queue)?;
        let run_at = options
            .delay
            .filter(|d| !d.is_zero())
            .map(|d| ferry_broker::now_ms().saturating_add(d.as_millis() as u64));
        let mut batch = Vec::with_capacity(jobs.len());
        for job in jobs {
            batch.push(NewJob {
                job_type: std::borrow::Cow::Borrowed(J::TYPE),
                payload: serde_json::to_string(job)?,
                priority: options.priority,
                max_retries: options.max_retries,
                run_at,
            });
        }
        let mut conn = self.conn.clone();
        Ok(q.enqueue(&mut conn, &batch).await?)
    }

    /// Depth and counters of `queue`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) or [`Error::Redis`](crate::Error::Redis).
    pub async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let mut conn = self.conn.clone();
        Ok(self.queue(queue)?.stats(&mut conn).await?)
    }

    /// The oldest `count` entries of `queue`'s dead-letter stream.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) or [`Error::Redis`](crate::Error::Redis).
    pub async fn dead_letters(&self, queue: &str, count: usize) -> Result<Vec<DeadLetter>> {
        let mut conn = self.conn.clone();
        Ok(self.queue(queue)?.dead_letters(&mut conn, count).await?)
    }

    /// Moves one dead-letter entry back to its priority stream as attempt 1.
    /// Returns the new entry id, or `None` if there is no such entry.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) or [`Error::Redis`](crate::Error::Redis).
    pub async fn replay_dead(&self, queue: &str, entry_id: &str) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(self.queue(queue)?.replay_dead(&mut conn, entry_id).await?)
    }
}
