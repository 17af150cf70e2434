//! Connections to Redis: one auto-reconnecting multiplexed connection for
//! all non-blocking commands, and one per blocking reader; to one server,
//! or to a Redis Cluster (`redis+cluster://`).

use std::time::Duration;

use crate::config::{check_duration, MAX_DURATION};
use crate::error::{ConfigError, Result};
use crate::link::{ClusterSpec, Link, Node};

/// Default time to wait for a reply before a command fails with a timeout.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time to wait for a TCP connect and handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How to reach Redis:
///
/// - one server: `redis://[user:password@]host:port[/db]`, or `rediss://`
///   for TLS (server certificates are checked against the system's trust
///   store, or against [`RedisConfig::tls_root_cert`] when set);
/// - a Redis Cluster: `redis+cluster://[user:password@]host:port[,host:port...]`
///   (or `rediss+cluster://` for TLS), naming one or more seed nodes; the
///   client learns the rest of the cluster from them, routes each command
///   to the master of its keys' slot, and follows `MOVED`, `ASK` and
///   failovers by itself ([`RedisConfig::cluster`] builds one from a list).
///   A queue's keys share one hash tag, so each of its scripts runs on one
///   master. Needs Redis 7.0 or later (or Valkey): waits and cancellations
///   use sharded Pub/Sub there.
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

    /// A Redis Cluster reached through `seeds`, each `host:port` or a URL
    /// `redis://[user:password@]host:port` (`rediss://` for TLS); the
    /// credentials and scheme of the first are used for every node.
    /// Defaults otherwise as [`RedisConfig::new`].
    ///
    /// ```
    /// let config = ferry_queue::RedisConfig::cluster(["10.0.0.1:7000", "10.0.0.2:7000"]);
    /// assert_eq!(config.url, "redis+cluster://10.0.0.1:7000,10.0.0.2:7000");
    /// assert!(config.is_cluster());
    /// ```
    pub fn cluster<S: AsRef<str>>(seeds: impl IntoIterator<Item = S>) -> Self {
        let mut scheme = "redis";
        let mut auth = String::new();
        let mut hosts = Vec::new();
        for (i, seed) in seeds.into_iter().enumerate() {
            let seed = seed.as_ref();
            let (seed_scheme, rest) = match seed.split_once("://") {
                Some((s, rest)) => (s, rest),
                None => ("redis", seed),
            };
            let (seed_auth, host) = match rest.rsplit_once('@') {
                Some((a, h)) => (Some(a), h),
                None => (None, rest),
            };
            if i == 0 {
                scheme = if seed_scheme == "rediss" {
                    "rediss"
                } else {
                    "redis"
                };
                if let Some(a) = seed_auth {
                    auth = format!("{a}@");
                }
            }
            hosts.push(host.trim_end_matches('/').to_owned());
        }
        Self::new(format!("{scheme}+cluster://{auth}{}", hosts.join(",")))
    }

    /// True when the URL names a Redis Cluster (`redis+cluster://`,
    /// `rediss+cluster://`).
    pub fn is_cluster(&self) -> bool {
        cluster_url(&self.url).is_some()
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
        self.target().map(|_| ())
    }

    /// What the URL names: one server, or a cluster's seeds.
    pub(crate) fn target(&self) -> Result<Target, ConfigError> {
        match cluster_url(&self.url) {
            Some((tls, rest)) => Ok(Target::Cluster(self.cluster_spec(tls, rest)?)),
            None => Ok(Target::Single(self.client()?)),
        }
    }

    fn cluster_spec(&self, tls: bool, rest: &str) -> Result<ClusterSpec, ConfigError> {
        self.check_timeouts()?;
        let invalid = |reason: String| ConfigError::InvalidSetting {
            name: "redis_url",
            reason,
        };
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((a, h)) => (format!("{a}@"), h),
            None => (String::new(), rest),
        };
        let hosts = hosts.trim_end_matches('/');
        let hosts = hosts.strip_suffix("/0").unwrap_or(hosts);
        if hosts.contains('/') {
            return Err(invalid(
                "a Redis Cluster has only database 0: a redis+cluster:// URL takes no /db".into(),
            ));
        }
        let scheme = if tls { "rediss" } else { "redis" };
        let mut seeds = Vec::new();
        for host in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let url = format!("{scheme}://{auth}{host}");
            let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
                .map_err(|e| invalid(format!("seed `{host}`: {e}")))?;
            let settings = info.redis_settings().clone().set_skip_set_lib_name();
            seeds.push(info.set_redis_settings(settings));
        }
        if seeds.is_empty() {
            return Err(invalid(
                "a redis+cluster:// URL names no seed node (redis+cluster://host:port[,host:port...])"
                    .into(),
            ));
        }
        Ok(ClusterSpec {
            seeds,
            tls,
            root_cert: self.tls_root_cert.clone(),
            response_timeout: self.response_timeout,
            connect_timeout: self.connect_timeout,
        })
    }

    fn check_timeouts(&self) -> Result<(), ConfigError> {
        for (name, d) in [
            ("response_timeout", self.response_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            check_duration(name, d, Duration::from_millis(1), MAX_DURATION)?;
        }
        Ok(())
    }

    /// A `redis::Client` for this configuration (with the CA, for TLS), for
    /// a URL naming one server.
    ///
    /// # Errors
    /// As [`RedisConfig::validate`]; and `redis_url` for a cluster URL,
    /// which has no one client.
    pub fn client(&self) -> Result<redis::Client, ConfigError> {
        self.check_timeouts()?;
        if self.is_cluster() {
            return Err(ConfigError::InvalidSetting {
                name: "redis_url",
                reason: "a redis+cluster:// URL names a cluster, not one server".into(),
            });
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
    /// For a cluster, `cluster host:port,host:port` (its seeds).
    pub fn host(&self) -> String {
        match self.target() {
            Ok(Target::Single(c)) => c.get_connection_info().addr().to_string(),
            Ok(Target::Cluster(spec)) => format!(
                "cluster {}",
                spec.seeds
                    .iter()
                    .map(|s| s.addr().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Err(_) => "(a URL that does not parse)".to_owned(),
        }
    }

    /// A connection that reconnects by itself; it connects on first use.
    pub(crate) fn link(&self, response_timeout: Duration) -> Result<Link> {
        Ok(match self.target()? {
            Target::Single(client) => Link::single(client, response_timeout, self.connect_timeout)?,
            Target::Cluster(mut spec) => {
                spec.response_timeout = response_timeout;
                Link::cluster(spec)
            }
        })
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

/// A connection to the Redis (or Redis Cluster) of a [`Client`], for
/// commands and broker operations the client does not offer (operators'
/// tools: the CLI and `ferry serve` use it). It implements the redis
/// crate's `ConnectionLike`, reconnects by itself and, on a cluster, routes
/// each command to the master of its keys' slot. Cheap to clone. Unlike the
/// client's own calls it makes no first-use server check.
///
/// [`Client`]: crate::Client
#[derive(Clone)]
pub struct Connection {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Link(Link),
    Node(Node),
}

impl Connection {
    pub(crate) fn new(link: Link) -> Self {
        Self {
            inner: Inner::Link(link),
        }
    }

    /// True when connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        match &self.inner {
            Inner::Link(l) => l.is_cluster(),
            Inner::Node(n) => matches!(n, Node::Cluster { .. }),
        }
    }

    /// One connection per master: this one for a single server; for a
    /// cluster, one to each master the slot map names now. For commands
    /// about a server rather than a queue (`INFO`, `SCAN` over the
    /// keyspace), which on a cluster must go to every master.
    ///
    /// # Errors
    /// Connection errors.
    pub async fn masters(&self) -> Result<Vec<Connection>, redis::RedisError> {
        let link = match &self.inner {
            Inner::Link(l) => l,
            Inner::Node(_) => return Ok(vec![self.clone()]),
        };
        Ok(link
            .masters()
            .await?
            .into_iter()
            .map(|n| Connection {
                inner: Inner::Node(n),
            })
            .collect())
    }

    /// `host:port` of a cluster master from [`Connection::masters`]; empty
    /// otherwise.
    pub fn address(&self) -> String {
        match &self.inner {
            Inner::Node(n) => n.address(),
            Inner::Link(_) => String::new(),
        }
    }
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match &mut self.inner {
            Inner::Link(l) => l.req_packed_command(cmd),
            Inner::Node(n) => n.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match &mut self.inner {
            Inner::Link(l) => l.req_packed_commands(cmd, offset, count),
            Inner::Node(n) => n.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Link(l) => l.get_db(),
            Inner::Node(n) => n.get_db(),
        }
    }
}

/// What a [`RedisConfig`] names.
pub(crate) enum Target {
    Single(redis::Client),
    Cluster(ClusterSpec),
}

/// `Some((tls, rest))` for `redis+cluster://rest` or `rediss+cluster://rest`.
fn cluster_url(url: &str) -> Option<(bool, &str)> {
    if let Some(rest) = url.strip_prefix("redis+cluster://") {
        Some((false, rest))
    } else {
        url.strip_prefix("rediss+cluster://")
            .map(|rest| (true, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds(url: &str) -> Vec<String> {
        match RedisConfig::new(url).target() {
            Ok(Target::Cluster(spec)) => spec.seeds.iter().map(|s| s.addr().to_string()).collect(),
            Ok(Target::Single(_)) => panic!("{url} is not a cluster URL"),
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn cluster_urls_name_their_seeds() {
        assert_eq!(
            seeds("redis+cluster://a:7000,b:7001/"),
            ["a:7000", "b:7001"]
        );
        assert_eq!(seeds("redis+cluster://user:p%40ss@a:7000"), ["a:7000"]);
        assert_eq!(seeds("rediss+cluster://a:7000/0"), ["a:7000"]);
        assert!(RedisConfig::new("redis+cluster://").validate().is_err());
        assert!(RedisConfig::new("redis+cluster://a:7000/3")
            .validate()
            .is_err());
        assert!(RedisConfig::new("redis+cluster://a:notaport")
            .validate()
            .is_err());
        assert!(RedisConfig::new("redis+cluster://a:7000").client().is_err());
        assert_eq!(
            RedisConfig::new("redis+cluster://u:secret@a:7000,b:7001").host(),
            "cluster a:7000,b:7001"
        );
    }

    #[test]
    fn cluster_from_seeds() {
        let c = RedisConfig::cluster(["redis://u:pw@a:1", "b:2"]);
        assert_eq!(c.url, "redis+cluster://u:pw@a:1,b:2");
        assert_eq!(
            RedisConfig::cluster(["rediss://a:1/"]).url,
            "rediss+cluster://a:1"
        );
        assert!(!RedisConfig::new("redis://a:1").is_cluster());
    }
}
