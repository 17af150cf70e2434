//! The check a client makes before its first command and a worker before
//! it starts: the server takes the credentials, and it will not evict
//! Ferry's keys under memory pressure, and the user may read the server's
//! clock (TIME), which every timing decision uses.
//!
//! Under `maxmemory-policy allkeys-*` Redis deletes any key when memory runs
//! out: queued jobs vanish without a word, and the stats hash with them. The
//! `volatile-*` policies only delete keys with a time to live, and Ferry
//! sets none, so they are as safe as `noeviction`. The policy is read with
//! `INFO memory`, or with `CONFIG GET` where INFO is not permitted (ACL
//! users, managed services that rename commands).

use redis::RedisError;

use crate::error::{Error, Result};
use crate::link::{server_codes, Link};

/// Reads the server's `maxmemory-policy` from `INFO memory`, or with
/// `CONFIG GET` where INFO is not permitted; `None` when neither tells.
async fn memory_policy(link: &mut Link) -> Result<Option<String>, RedisError> {
    let info: Result<String, RedisError> = redis::cmd("INFO").arg("memory").query_async(link).await;
    match info {
        Ok(info) => {
            return Ok(info
                .lines()
                .find_map(|l| l.strip_prefix("maxmemory_policy:"))
                .map(|p| p.trim().to_owned()))
        }
        Err(e) if !refused(&e) => return Err(e),
        Err(_) => {}
    }
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

/// True for a policy that may delete Ferry's keys.
pub(crate) fn evicts_ferry_keys(policy: &str) -> bool {
    policy.starts_with("allkeys-")
}

/// Checks the credentials (the first command fails with a typed error
/// when they are wrong) and the eviction policy: a warning, or with
/// `strict` an [`Error::EvictionPolicy`].
pub(crate) async fn check(link: &mut Link, host: &str, strict: bool, worker: bool) -> Result<()> {
    let policy = memory_policy(link)
        .await
        .map_err(|e| Error::Redis(e).with_host(host))?;
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
    match policy {
        Some(policy) if evicts_ferry_keys(&policy) => {
            if strict {
                return Err(Error::EvictionPolicy {
                    host: host.to_owned(),
                    policy,
                });
            }
            tracing::warn!(
                redis = host,
                maxmemory_policy = %policy,
                "redis may delete queued jobs: under memory pressure this policy evicts any key, \
                 Ferry's included. Set `maxmemory-policy noeviction` (CONFIG SET maxmemory-policy \
                 noeviction, or in redis.conf)"
            );
        }
        Some(_) => {}
        None => tracing::debug!(
            redis = host,
            "cannot read maxmemory-policy (neither INFO nor CONFIG GET is permitted)"
        ),
    }
    Ok(())
}
