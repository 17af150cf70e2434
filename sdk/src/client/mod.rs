//! The client: enqueue typed jobs, read queue stats and dead letters.
//!
//! [`Client`] is built in `builder.rs` ([`ClientBuilder`]); its calls are
//! grouped by what they act on: `enqueue.rs` (enqueuing), `jobs.rs` (one
//! job: status, wait, cancel, re-prioritise), `schedules.rs` (cron and
//! periodic schedules) and `admin.rs` (a queue:
//! workers, events, pause and resume, settings, stats, dead letters).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferry_broker::{Keys, Prefix, Queue};

use crate::connection::RedisConfig;
use crate::error::{ConfigError, Error, Result};
use crate::link::Link;
use crate::preflight::MemoryGuard;
use crate::waiters::Waiters;

mod admin;
mod builder;
mod enqueue;
mod jobs;
mod schedules;

pub use builder::ClientBuilder;
pub use jobs::Cancel;
pub use schedules::ScheduleOptions;

/// Most queues whose key names a client keeps built; past it the cache starts over.
const MAX_CACHED_QUEUES: usize = 1024;

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

    /// This client's connection, for commands and broker operations the
    /// client does not offer (see [`Connection`](crate::Connection)); it
    /// shares the client's connection and skips the first-use check.
    pub fn connection(&self) -> crate::Connection {
        crate::Connection::new(self.conn.clone())
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
        let q = Queue::with_prefix(&self.prefix, name)?
            .max_payload_bytes(self.max_payload_bytes)
            .sharded_pubsub(self.conn.is_cluster());
        if queues.len() >= MAX_CACHED_QUEUES {
            queues.clear();
        }
        queues.insert(name.to_owned(), q.clone());
        Ok(q)
    }
}
