//! [`Admin`]: the handle every operation goes through: a
//! [`ferry_queue::Client`] for what the SDK offers, and a connection of its
//! own for the broker operations it does not (listing queues, dead-letter
//! queries, raw enqueue).

use std::time::Duration;

use ferry_broker::Queue;
use ferry_queue::{Client, Connection, Prefix, RedisConfig};

use crate::error::{Error, Result};

/// How long a connect may take before the operation fails.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may wait for its reply before the operation fails.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach Redis and which key namespace to read.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// The Redis URL, timeouts and TLS root certificate.
    pub redis: RedisConfig,
    /// The key prefix (`ferry` by default).
    pub prefix: Prefix,
    /// Work with a Redis whose `maxmemory-policy` may evict Ferry's keys
    /// (any but `noeviction`); by default the SDK client's operations
    /// (enqueue, status, stats...) refuse with `EvictionPolicy`.
    pub allow_eviction: bool,
}

impl AdminConfig {
    /// The Redis at `url`, prefix `ferry`, a 2 s connect timeout and a 5 s
    /// response timeout.
    pub fn new(url: impl Into<String>) -> Self {
        let mut redis = RedisConfig::new(url);
        redis.connect_timeout = DEFAULT_CONNECT_TIMEOUT;
        redis.response_timeout = DEFAULT_RESPONSE_TIMEOUT;
        Self {
            redis,
            prefix: Prefix::default(),
            allow_eviction: false,
        }
    }

    /// Works with a Redis whose `maxmemory-policy` may evict Ferry's keys.
    pub fn allow_eviction(mut self, allow: bool) -> Self {
        self.allow_eviction = allow;
        self
    }

    /// Uses key namespace `prefix`.
    pub fn prefix(mut self, prefix: Prefix) -> Self {
        self.prefix = prefix;
        self
    }
}

/// The operations on the queues under one prefix of one Redis. Cheap to
/// clone; connects on first use, and a call fails (never hangs) when Redis
/// does not answer within the timeouts of its [`AdminConfig`].
#[derive(Clone)]
pub struct Admin {
    client: Client,
    conn: Connection,
    cluster: bool,
    prefix: Prefix,
    host: String,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("host", &self.host)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Checks `config` and makes the handle; nothing is sent yet.
    ///
    /// # Errors
    /// [`Error::Ferry`] with a configuration error: a URL that does not
    /// parse, a bad TLS certificate or timeout.
    pub fn connect(config: AdminConfig) -> Result<Self> {
        let host = config.redis.host();
        let client = Client::builder(config.redis.clone())
            .prefix(config.prefix.as_str())
            .allow_eviction(config.allow_eviction)
            .connect()
            .map_err(|e| Error::from_sdk(e, &host))?;
        let conn = client.connection();
        Ok(Self {
            cluster: config.redis.is_cluster(),
            client,
            conn,
            prefix: config.prefix,
            host,
        })
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The key prefix.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// `host:port` of the server (never the password).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The broker's handle on queue `name`.
    ///
    /// # Errors
    /// [`Error::Ferry`] for a name outside `[A-Za-z0-9._-]{1,128}`.
    pub fn queue(&self, name: &str) -> Result<Queue> {
        Ok(Queue::with_prefix(&self.prefix, name)?.sharded_pubsub(self.cluster))
    }

    /// Checks that Redis answers (PING).
    ///
    /// # Errors
    /// Redis errors.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// True when `queue` has any key in Redis (one EXISTS over its keys,
    /// its schedules' set included: a queue with only schedules is used).
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn queue_exists(&self, queue: &str) -> Result<bool> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let n: u64 = redis::cmd("EXISTS")
            .arg(&q.keys().all()[..])
            .arg(q.keys().schedules())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(n > 0)
    }

    /// The connection for broker operations (a clone shares it).
    pub(crate) fn conn(&self) -> Connection {
        self.conn.clone()
    }

    /// An SDK or broker error of a call, in this crate's terms.
    pub(crate) fn fail(&self, e: impl Into<ferry_queue::Error>) -> Error {
        Error::from_sdk(e.into(), &self.host)
    }
}
