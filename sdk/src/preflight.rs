//! The check a client makes before its first command and a worker before
//! it starts: the server takes the credentials, and it will not evict
//! Ferry's keys under memory pressure, and the user may read the server's
//! clock (TIME), which every timing decision uses.
//!
//! Under `maxmemory-policy allkeys-*` Redis deletes any key when memory runs
//! out: queued jobs vanish without a word, and the stats hash with them.
//! The `volatile-*` policies delete keys with a time to live, and Ferry
//! writes several (idempotency marks, records, live-worker registrations):
//! a keyed batch retried after its marks were evicted runs again. So every
//! policy but `noeviction` is refused, unless the user opts in
//! (`allow_eviction`); then every eviction seen (the server's
//! `evicted_keys` growing) is logged as possible data loss. The policy is
//! read with `INFO memory`, or with `CONFIG GET` where INFO is not
//! permitted (ACL users, managed services that rename commands), and read
//! again every [`RECHECK_INTERVAL`], since an operator can change it at run
//! time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;
use redis::RedisError;

use crate::error::{Error, Result};
use crate::link::{server_codes, Link};

/// How often clients and workers read the policy (and the eviction count)
/// again.
pub(crate) const RECHECK_INTERVAL: Duration = Duration::from_secs(10);

/// What a Redis server says about evictions ([`Client::redis_memory`](crate::Client::redis_memory)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisMemory {
    /// `maxmemory-policy`; `None` when neither INFO nor CONFIG GET is
    /// permitted.
    pub policy: Option<String>,
    /// `evicted_keys` of `INFO stats` (keys evicted since the server
    /// started or its stats were reset); `None` when INFO is not permitted.
    pub evicted_keys: Option<u64>,
}

/// Reads the server's `maxmemory-policy` and `evicted_keys` from `INFO`, or
/// the policy alone with `CONFIG GET` where INFO is not permitted.
impl RedisMemory {
    /// True when the policy may delete Ferry's keys (any but
    /// `noeviction`); false when it is `noeviction` or cannot be read.
    pub fn evicts_ferry_keys(&self) -> bool {
        self.policy.as_deref().is_some_and(evicts_ferry_keys)
    }
}

pub(crate) async fn memory_state(link: &mut Link) -> Result<RedisMemory, RedisError> {
    Ok(server_states(link).await?.0)
}

/// The memory state over every master (the one server, or each master of
/// a cluster: the first evicting policy found, else the first read; the
/// sum of their evictions), and each master's `redis_version` where INFO
/// is permitted.
async fn server_states(
    link: &mut Link,
) -> Result<(RedisMemory, Vec<(String, String)>), RedisError> {
    let mut all: Option<RedisMemory> = None;
    let mut versions = Vec::new();
    for mut node in link.masters().await? {
        let (state, version) = node_state(&mut node).await?;
        if let Some(v) = version {
            versions.push((node.address(), v));
        }
        all = Some(match all {
            None => state,
            Some(mut all) => {
                if !all.evicts_ferry_keys() && (state.evicts_ferry_keys() || all.policy.is_none()) {
                    all.policy = state.policy;
                }
                all.evicted_keys = match (all.evicted_keys, state.evicted_keys) {
                    (Some(a), Some(b)) => Some(a.saturating_add(b)),
                    (a, b) => a.or(b),
                };
                all
            }
        });
    }
    Ok((all.unwrap_or_default(), versions))
}

/// One server's memory state and `redis_version`.
async fn node_state<C: ConnectionLike + Send>(
    node: &mut C,
) -> Result<(RedisMemory, Option<String>), RedisError> {
    let mut pipe = redis::pipe();
    pipe.cmd("INFO")
        .arg("memory")
        .cmd("INFO")
        .arg("stats")
        .cmd("INFO")
        .arg("server");
    let info: Result<(String, String, String), RedisError> = pipe.query_async(node).await;
    match info {
        Ok((memory, stats, server)) => {
            let field = |text: &str, name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            return Ok((
                RedisMemory {
                    policy: field(&memory, "maxmemory_policy:"),
                    evicted_keys: field(&stats, "evicted_keys:").and_then(|v| v.parse().ok()),
                },
                field(&server, "redis_version:"),
            ));
        }
        Err(e) if !refused(&e) => return Err(e),
        Err(_) => {}
    }
    Ok((
        RedisMemory {
            policy: config_policy(node).await?,
            evicted_keys: None,
        },
        None,
    ))
}

/// For a cluster: every master runs Redis 7.0 or later (sharded Pub/Sub,
/// `SPUBLISH`/`SSUBSCRIBE`, which waits and cancellations use there).
fn cluster_versions_supported(versions: &[(String, String)]) -> Result<()> {
    for (host, version) in versions {
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 7 {
            return Err(Error::UnsupportedServer {
                host: host.clone(),
                version: version.clone(),
                reason: "Ferry on a Redis Cluster needs Redis 7.0 or later (or Valkey), for \
                         sharded Pub/Sub (SPUBLISH, SSUBSCRIBE); upgrade the cluster, or run \
                         Ferry on a single Redis 6.2"
                    .into(),
            });
        }
    }
    Ok(())
}

/// The policy by `CONFIG GET`; `None` where that is not permitted either.
async fn config_policy<C: ConnectionLike + Send>(
    link: &mut C,
) -> Result<Option<String>, RedisError> {
    let config: Result<Vec<String>, RedisError> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(link)
        .await;
    match config {
        Ok(pair) => Ok(pair.into_iter().nth(1)),
        Err(e) if !refused(&e) => Err(e),
        Err(_) => Ok(None),
    }
}

/// True when the server refused the command itself (ACL, renamed command), as
/// opposed to failing.
fn refused(e: &RedisError) -> bool {
    let codes = server_codes(e);
    codes.iter().any(|c| c == "NOPERM")
        || (codes.iter().any(|c| c == "ERR") && e.to_string().contains("unknown command"))
}

/// True for a policy that may delete Ferry's keys: all but `noeviction`
/// (`allkeys-*` deletes any key, `volatile-*` those with a TTL, and a
/// policy this code does not know is taken to evict too).
pub(crate) fn evicts_ferry_keys(policy: &str) -> bool {
    policy != "noeviction"
}

/// Checks the credentials (the first command fails with a typed error
/// when they are wrong) and the eviction policy: an
/// [`Error::EvictionPolicy`], or with `allow_eviction` a warning. Returns
/// what the server said, for the periodic re-check to compare with.
pub(crate) async fn check(
    link: &mut Link,
    host: &str,
    allow_eviction: bool,
    worker: bool,
) -> Result<RedisMemory> {
    let (state, versions) = server_states(link)
        .await
        .map_err(|e| Error::Redis(e).with_host(host))?;
    if link.is_cluster() {
        cluster_versions_supported(&versions)?;
    }
    // A worker's scripts read the server's clock: a user whose ACL lacks
    // +time would fail every retry, promotion and dead letter. (A producer
    // reads it only for a delayed job, and gets NOPERM there.)
    let time: Result<(u64, u64), RedisError> = if worker {
        redis::cmd("TIME").query_async(link).await
    } else {
        Ok((0, 0))
    };
    match time {
        Ok(_) => {}
        Err(e) if server_codes(&e).iter().any(|c| c == "NOPERM") => {
            return Err(Error::CommandRefused {
                host: host.to_owned(),
                command: "TIME",
                reason: e.to_string(),
            })
        }
        Err(e) => return Err(Error::Redis(e).with_host(host)),
    }
    policy_allowed(&state, host, allow_eviction)?;
    if state.policy.is_none() {
        tracing::debug!(
            redis = host,
            "cannot read maxmemory-policy (neither INFO nor CONFIG GET is permitted)"
        );
    }
    Ok(state)
}

/// [`Error::EvictionPolicy`] for an evicting policy, unless
/// `allow_eviction`.
pub(crate) fn policy_allowed(state: &RedisMemory, host: &str, allow_eviction: bool) -> Result<()> {
    match state.policy.as_deref() {
        Some(policy) if evicts_ferry_keys(policy) && !allow_eviction => {
            Err(Error::EvictionPolicy {
                host: host.to_owned(),
                policy: policy.to_owned(),
            })
        }
        _ => Ok(()),
    }
}

/// Follows the server's memory state from one reading to the next: warns
/// when an evicting policy is allowed (at the first reading, and at each
/// change), and logs each growth of `evicted_keys` as possible data loss.
#[derive(Debug, Default)]
pub(crate) struct EvictionWatch {
    last: Option<RedisMemory>,
}

impl EvictionWatch {
    /// Takes a fresh reading; returns the keys evicted since the last one.
    pub(crate) fn observe(&mut self, host: &str, now: RedisMemory, allow_eviction: bool) -> u64 {
        let policy = now.policy.as_deref().unwrap_or("unknown");
        let changed = self.last.as_ref().map(|l| &l.policy) != Some(&now.policy);
        if changed {
            if let Some(last) = &self.last {
                tracing::warn!(
                    redis = host,
                    from = last.policy.as_deref().unwrap_or("unknown"),
                    to = policy,
                    "redis's maxmemory-policy changed"
                );
            }
            if allow_eviction && now.policy.as_deref().is_some_and(evicts_ferry_keys) {
                tracing::warn!(
                    redis = host,
                    maxmemory_policy = %policy,
                    "redis may delete Ferry's keys (allow_eviction is on): under memory pressure \
                     this policy evicts keys, queued jobs and idempotency marks included; each \
                     eviction seen is logged as possible data loss. Set `maxmemory-policy \
                     noeviction` (CONFIG SET maxmemory-policy noeviction, or in redis.conf)"
                );
            }
        }
        let before = self.last.as_ref().and_then(|l| l.evicted_keys);
        // A restart or CONFIG RESETSTAT starts the count again: nothing
        // is known lost across it.
        let evicted = match (before, now.evicted_keys) {
            (Some(before), Some(after)) => after.saturating_sub(before),
            _ => 0,
        };
        if evicted > 0 {
            tracing::error!(
                redis = host,
                evicted_keys = evicted,
                maxmemory_policy = %policy,
                "DATA LOSS: redis evicted keys under memory pressure; queued jobs, records or \
                 idempotency marks may be gone. Set `maxmemory-policy noeviction` and give Redis \
                 more memory"
            );
        }
        self.last = Some(now);
        evicted
    }
}

/// A client's check: on first use, then again once
/// [`RECHECK_INTERVAL`] has passed. Between checks a call costs one atomic
/// load.
#[derive(Debug)]
pub(crate) struct MemoryGuard {
    allow_eviction: bool,
    epoch: Instant,
    /// Milliseconds since `epoch` until which the last check holds; 0
    /// before the first check passed, and while the policy is refused.
    valid_until_ms: AtomicU64,
    state: tokio::sync::Mutex<GuardState>,
    evicted_keys: AtomicU64,
}

#[derive(Debug, Default)]
struct GuardState {
    watch: EvictionWatch,
    /// The policy refused at the last check, and until when (ms since
    /// `epoch`) that answer is given without asking again.
    refused: Option<(u64, String)>,
}

/// How long a refusal is repeated without asking the server again.
const REFUSAL_HOLDS_MS: u64 = 1_000;

impl MemoryGuard {
    pub(crate) fn new(allow_eviction: bool) -> Self {
        Self {
            allow_eviction,
            epoch: Instant::now(),
            valid_until_ms: AtomicU64::new(0),
            state: tokio::sync::Mutex::new(GuardState::default()),
            evicted_keys: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Keys the server evicted between this client's checks.
    pub(crate) fn evicted_keys(&self) -> u64 {
        self.evicted_keys.load(Ordering::Relaxed)
    }

    /// Ok when the last check holds or a new one passes.
    pub(crate) async fn check(&self, conn: &Link, host: &str) -> Result<()> {
        if self.now_ms() < self.valid_until_ms.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut st = self.state.lock().await;
        let now = self.now_ms();
        if now < self.valid_until_ms.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some((until, policy)) = &st.refused {
            if now < *until {
                return Err(Error::EvictionPolicy {
                    host: host.to_owned(),
                    policy: policy.clone(),
                });
            }
        }
        let mut link = conn.clone();
        let state = check(&mut link, host, true, false).await?;
        let evicted = st.watch.observe(host, state.clone(), self.allow_eviction);
        self.evicted_keys.fetch_add(evicted, Ordering::Relaxed);
        match policy_allowed(&state, host, self.allow_eviction) {
            Ok(()) => {
                st.refused = None;
                let until = now + RECHECK_INTERVAL.as_millis() as u64;
                self.valid_until_ms.store(until, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                let policy = state.policy.unwrap_or_default();
                st.refused = Some((now + REFUSAL_HOLDS_MS, policy));
                Err(e)
            }
        }
    }
}
