//! Connections to Redis: one auto-reconnecting multiplexed connection for
//! all non-blocking commands, and one per blocking reader.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::Result;

/// Default time to wait for a reply before a command fails with a timeout.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time to wait for a TCP connect and handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How to reach Redis. `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// The Redis URL.
    pub url: String,
    /// How long a command may wait for its reply; past it, the call fails
    /// with a timeout error rather than hang.
    pub response_timeout: Duration,
    /// How long a connect may take.
    pub connect_timeout: Duration,
}

impl RedisConfig {
    /// Defaults for `url`: 5 s response timeout, 2 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// A connection that reconnects by itself; it connects on first use.
    pub(crate) fn manager(&self, response_timeout: Duration) -> Result<ConnectionManager> {
        let client = redis::Client::open(self.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(response_timeout))
            .set_connection_timeout(Some(self.connect_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        Ok(ConnectionManager::new_lazy_with_config(client, config)?)
    }
}

impl From<&str> for RedisConfig {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for RedisConfig {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}
