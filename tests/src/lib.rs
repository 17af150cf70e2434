//! Test support for Ferry's integration tests: a [`harness::RedisServer`]
//! per test, and helpers to run the `worker-example` binary and the `ferry`
//! command (`cli`) as real processes.
//!
//! Which Redis a test gets:
//! 1. `REDIS_URL`, when set: an external server. Each test uses its own key
//!    prefix, so tests can share it; tests that kill or restart Redis need
//!    their own server and say so.
//! 2. Otherwise a `redis-server` of its own on a free loopback port with a
//!    temporary directory (killed when the test ends): the one on `PATH`,
//!    else one `ferry-dev-redis` obtained and cached (from the machine's
//!    apt sources, or a pinned PyPI build), saying so on stderr.
//! 3. Where none can be had but Docker runs, a `redis:7` container through
//!    testcontainers.
//! 4. Otherwise the test fails with a message saying how to get Redis.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod conn;
pub mod events;
pub mod harness;
pub mod jobs;
pub mod process;
pub mod proxy;
pub mod scenario;
pub mod serve;

pub use cli::{ferry, ferry_bin, ferry_with_stdin};
pub use harness::{unique, RedisServer};
pub use process::{example, produce, produce_with_env, worker_bin, WorkerProcess};

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

/// Waits until `check` returns true, checking every 20 ms; panics with
/// `what` after `within`. For conditions only visible in Redis state (there
/// is no event to await across processes).
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The audit hash: job id -> successful runs.
pub async fn audit_counts<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
) -> HashMap<String, i64> {
    redis::cmd("HGETALL")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap()
}

/// Checks that every id in `ids` ran exactly once; returns (missing, duplicated) for the message.
pub fn exactly_once(
    ids: &[String],
    audit: &HashMap<String, i64>,
) -> (Vec<String>, Vec<(String, i64)>) {
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !audit.contains_key(*id))
        .cloned()
        .collect();
    let dup: Vec<(String, i64)> = audit
        .iter()
        .filter(|(_, n)| **n != 1)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    (missing, dup)
}

/// A queue handle with `prefix` and `name`.
pub fn queue(prefix: &str, name: &str) -> ferry_broker::Queue {
    ferry_broker::Queue::with_prefix(&ferry_broker::Prefix::new(prefix).unwrap(), name).unwrap()
}

/// Serializes the heaviest process tests of one test binary, so that on a
/// small machine they do not starve each other's lease renewals.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

/// True when the long forms of the fault runs were asked for (`FERRY_FAULTS_LONG=1`).
pub fn long_faults() -> bool {
    std::env::var("FERRY_FAULTS_LONG").is_ok_and(|v| v == "1")
}

/// Field `field` of `INFO section`, as a number.
pub async fn info_field(conn: &mut MultiplexedConnection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has {field}"))
}
