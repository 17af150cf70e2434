//! A scenario for process tests: one Redis, one queue under a unique prefix,
//! an audit hash, and helpers to run `worker-example` producers and workers.

use std::collections::HashMap;
use std::time::Duration;

use ferry_broker::QueueStats;

use crate::{
    audit_counts, exactly_once, process::produce, queue, unique, RedisServer, WorkerProcess,
};

/// How long a worker may take to exit.
pub const EXIT: Duration = Duration::from_secs(180);

/// One Redis, one queue, one audit hash.
pub struct Scenario {
    pub redis: RedisServer,
    pub prefix: String,
    pub queue: String,
    pub audit: String,
}

/// A scenario on a Redis of [`RedisServer::start`].
pub async fn setup(name: &str) -> Scenario {
    with_redis(RedisServer::start().await, name)
}

/// A scenario on `redis`.
pub fn with_redis(redis: RedisServer, name: &str) -> Scenario {
    let prefix = unique("proc");
    Scenario {
        audit: format!("{prefix}:audit"),
        redis,
        prefix,
        queue: name.to_owned(),
    }
}

impl Scenario {
    /// An SDK client of the scenario's Redis and prefix.
    pub fn client(&self) -> ferry_queue::Client {
        ferry_queue::Client::builder(self.redis.url())
            .prefix(self.prefix.as_str())
            .connect()
            .unwrap()
    }

    /// Starts `worker-example work --queue Q --audit A <extra>`.
    pub fn worker(&self, extra: &[&str]) -> WorkerProcess {
        let mut args = vec!["--queue", &self.queue, "--audit", &self.audit];
        args.extend_from_slice(extra);
        WorkerProcess::spawn(self.redis.url(), &self.prefix, &args)
    }

    /// Runs `worker-example produce --queue Q <extra>`; returns the ids.
    pub async fn produce(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec!["--queue", self.queue.as_str()];
        args.extend_from_slice(extra);
        produce(self.redis.url(), &self.prefix, &args).await
    }

    /// The queue's stats.
    pub async fn stats(&self) -> QueueStats {
        let mut conn = self.redis.conn().await;
        queue(&self.prefix, &self.queue)
            .stats(&mut conn)
            .await
            .unwrap()
    }

    /// The audit hash: job id -> successful runs.
    pub async fn audit(&self) -> HashMap<String, i64> {
        let mut conn = self.redis.conn().await;
        audit_counts(&mut conn, &self.audit).await
    }

    /// Every id ran exactly once, and nothing else ran.
    pub async fn assert_exactly_once(&self, ids: &[String]) {
        let audit = self.audit().await;
        let (missing, dup) = exactly_once(ids, &audit);
        assert!(
            missing.is_empty(),
            "{} jobs never completed, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        assert!(
            dup.is_empty(),
            "{} jobs ran more than once, e.g. {:?}",
            dup.len(),
            dup.first()
        );
        assert_eq!(audit.len(), ids.len());
    }

    /// Every id ran at least once; returns the number of extra runs (duplicates).
    pub async fn assert_none_lost(&self, ids: &[String]) -> i64 {
        let audit = self.audit().await;
        let missing: Vec<&String> = ids.iter().filter(|id| !audit.contains_key(*id)).collect();
        assert!(
            missing.is_empty(),
            "{} jobs lost, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        audit.values().map(|n| n - 1).sum()
    }

    /// Nothing waiting, running, delayed or dead.
    pub async fn assert_drained(&self) {
        let s = self.stats().await;
        assert!(s.is_idle(), "queue not drained: {s:?}");
        assert_eq!(s.dead, 0, "unexpected dead letters: {s:?}");
    }
}

/// The `completed=N` a worker logged when it stopped.
pub fn completed_in_log(w: &WorkerProcess) -> u64 {
    w.log_text()
        .lines()
        .filter(|l| l.contains("worker stopped"))
        .filter_map(|l| l.split("completed=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}
