//! Connections to Redis: one auto-reconnecting multiplexed connection for
//! all non-blocking commands, and one per blocking reader.

use std::time::Duration;

use crate::config::{check_duration, MAX_DURATION};
use crate::error::{ConfigError, Result};
use crate::link::Link;

/// Default time to wait for a reply before a command fails with a timeout.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time to wait for a TCP connect and handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How to reach Redis. `redis://[user:password@]host:port[/db]`, or
/// `rediss://` for TLS (server certificates are checked against the system's
/// trust store, or against [`RedisConfig::tls_root_cert`] when set).
#[derive(Clone)]
pub struct RedisConfig {
    /// The Redis URL.
    pub url: String,
    /// How long a command may wait for its reply; past it, the call fails
    /// with a timeout error rather than hang.
    pub response_timeout: Duration,
    /// How long a connect may take.
    pub connect_timeout: Duration,
    /// PEM certificate(s) of the CA that signed the server's certificate,
    /// for `rediss://` servers whose CA is not in the system trust store.
    pub tls_root_cert: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisConfig {
    /// Leaves out the URL's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("response_timeout", &self.response_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field(
                "tls_root_cert",
                &self.tls_root_cert.as_ref().map(|c| c.len()),
            )
            .finish()
    }
}

impl RedisConfig {
    /// Defaults for `url`: 5 s response timeout, 2 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls_root_cert: None,
        }
    }

    /// The URL with its password replaced by `***`, for logs and messages.
    pub fn redacted_url(&self) -> String {
        match self.url.rsplit_once('@') {
            Some((scheme_user, host)) => match scheme_user.rsplit_once(':') {
                Some((scheme_user, _)) if scheme_user.contains("//") => {
                    format!("{scheme_user}:***@{host}")
                }
                _ => format!("***@{host}"),
            },
            None => self.url.clone(),
        }
    }

    /// Trusts the CA certificate(s) in `pem` for `rediss://` servers.
    pub fn tls_root_cert(mut self, pem: Vec<u8>) -> Self {
        self.tls_root_cert = Some(pem);
        self
    }

    /// Checks the URL, the CA certificate and the timeouts without connecting.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `redis_url` (a URL that does not
    /// parse, with the reason), `tls_root_cert` (not PEM), or a timeout that
    /// is zero or over a day.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.client().map(|_| ())
    }

    /// A `redis::Client` for this configuration (with the CA, for TLS).
    ///
    /// # Errors
    /// As [`RedisConfig::validate`].
    pub fn client(&self) -> Result<redis::Client, ConfigError> {
        for (name, d) in [
            ("response_timeout", self.response_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            check_duration(name, d, Duration::from_millis(1), MAX_DURATION)?;
        }
        let invalid = |name: &'static str, e: redis::RedisError| ConfigError::InvalidSetting {
            name,
            reason: e.to_string(),
        };
        let info = redis::IntoConnectionInfo::into_connection_info(self.url.as_str())
            .map_err(|e| invalid("redis_url", e))?;
        // No CLIENT SETINFO at connect: its reply is ignored, so an error
        // the server sends on accept ("max number of clients reached")
        // would be swallowed and the caller would see only "broken pipe".
        // Without it, the first command reads that error.
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        let info = info.set_redis_settings(settings);
        match &self.tls_root_cert {
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            )
            .map_err(|e| invalid("tls_root_cert", e)),
            None => redis::Client::open(info).map_err(|e| invalid("redis_url", e)),
        }
    }

    /// The server's `host:port` (or socket path), for messages; never the
    /// password. The URL as given when it does not parse.
    pub fn host(&self) -> String {
        match self.client() {
            Ok(c) => c.get_connection_info().addr().to_string(),
            Err(_) => "(a URL that does not parse)".to_owned(),
        }
    }

    /// A connection that reconnects by itself; it connects on first use.
    pub(crate) fn link(&self, response_timeout: Duration) -> Result<Link> {
        Ok(Link::new(
            self.client()?,
            response_timeout,
            self.connect_timeout,
        )?)
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
