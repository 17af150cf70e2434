//! Making a [`Client`]: [`Client::connect`] with the default settings, or
//! [`Client::builder`] and a [`ClientBuilder`] to change them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferry_broker::{Prefix, DEFAULT_MAX_PAYLOAD_BYTES};

use super::Client;
use crate::config::check_payload_limit;
use crate::connection::RedisConfig;
use crate::error::Result;
use crate::preflight::MemoryGuard;
use crate::waiters::Waiters;

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
    /// By default every call fails with [`Error::EvictionPolicy`](crate::Error::EvictionPolicy) while the
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
    /// [`Error::Config`](crate::Error::Config) naming the setting: a URL that does not parse
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
            waiters: Arc::new(Waiters::new(conn.notices())),
            conn,
            host: self.redis.host().into(),
            guard: Arc::new(MemoryGuard::new(self.allow_eviction)),
            prefix,
            max_payload_bytes: self.max_payload_bytes,
            queues: Arc::new(Mutex::new(HashMap::new())),
        })
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
}
