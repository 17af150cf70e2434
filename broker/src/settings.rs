//! A queue's settings, kept in Redis (`P:{Q}:settings`, a hash) so the
//! whole fleet acts on them: pause and resume, the maximum depth, and how
//! long finished jobs' records are kept. Operators can read and set them
//! with redis-cli (HGETALL / HSET); a missing field is its default.

use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::error::{ConfigError, Result};
use crate::queue::Queue;

/// Setting names, the fields of the settings hash.
pub mod name {
    /// `1` while the queue is paused.
    pub const PAUSED: &str = "paused";
    /// Most jobs waiting, running or delayed; absent or 0 for no limit.
    pub const MAX_DEPTH: &str = "max_depth";
    /// How long finished jobs' records are kept, ms (0 keeps none).
    pub const RETENTION_MS: &str = "retention_ms";
    /// Most finished jobs' records kept (0 keeps none).
    pub const RETENTION_COUNT: &str = "retention_count";
    /// The events stream's length cap; absent or 0: events off.
    pub const EVENTS: &str = "events";
    /// Priority weights, `<critical> <high> <normal> <low>`; absent: strict
    /// priority.
    pub const WEIGHTS: &str = "weights";
}

/// Largest weight of one priority.
pub const MAX_WEIGHT: u32 = 1000;

/// How long finished jobs' records are kept when the queue does not say.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How many finished jobs' records are kept when the queue does not say.
pub const DEFAULT_RETENTION_COUNT: u64 = 10_000;

/// A queue's settings as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Settings {
    /// True while paused: nothing new is claimed.
    pub paused: bool,
    /// The most jobs waiting, running or delayed; `None` for no limit.
    pub max_depth: Option<u64>,
    /// How long records of finished jobs are kept.
    pub retention: Duration,
    /// How many records of finished jobs are kept.
    pub retention_count: u64,
    /// The events stream's cap; `None` while events are off.
    pub events: Option<u64>,
}

impl Queue {
    /// Reads the queue's settings (defaults for what is not set).
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn settings<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<Settings> {
        type Fields = (
            Option<String>,
            Option<u64>,
            Option<u64>,
            Option<u64>,
            Option<u64>,
        );
        let (paused, max_depth, ms, count, events): Fields = redis::cmd("HMGET")
            .arg(self.keys().settings())
            .arg(name::PAUSED)
            .arg(name::MAX_DEPTH)
            .arg(name::RETENTION_MS)
            .arg(name::RETENTION_COUNT)
            .arg(name::EVENTS)
            .query_async(conn)
            .await?;
        Ok(Settings {
            paused: paused.as_deref() == Some("1"),
            max_depth: max_depth.filter(|d| *d > 0),
            retention: ms.map_or(DEFAULT_RETENTION, Duration::from_millis),
            retention_count: count.unwrap_or(DEFAULT_RETENTION_COUNT),
            events: events.filter(|e| *e > 0),
        })
    }

    /// True while the queue is paused.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn is_paused<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<bool> {
        let v: Option<String> = redis::cmd("HGET")
            .arg(self.keys().settings())
            .arg(name::PAUSED)
            .query_async(conn)
            .await?;
        Ok(v.as_deref() == Some("1"))
    }

    /// Pauses the queue: workers claim nothing new (they see it at their
    /// next claim, within about a second); running jobs finish. Enqueues
    /// still go in. Idempotent.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn pause<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<()> {
        self.set(conn, name::PAUSED, "1").await
    }

    /// Resumes a paused queue. Idempotent.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn resume<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<()> {
        let _: i64 = redis::cmd("HDEL")
            .arg(self.keys().settings())
            .arg(name::PAUSED)
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// Sets the most jobs the queue holds (waiting, running or delayed);
    /// an enqueue past it fails with [`Error::QueueFull`](crate::Error::QueueFull).
    /// `None` removes the limit.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis); [`ConfigError::InvalidSetting`] for `Some(0)`.
    pub async fn set_max_depth<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        max_depth: Option<u64>,
    ) -> Result<()> {
        match max_depth {
            Some(0) => Err(ConfigError::InvalidSetting {
                name: "max_depth",
                reason: "0 would refuse every job; use None for no limit".into(),
            }
            .into()),
            Some(n) => self.set(conn, name::MAX_DEPTH, &n.to_string()).await,
            None => {
                let _: i64 = redis::cmd("HDEL")
                    .arg(self.keys().settings())
                    .arg(name::MAX_DEPTH)
                    .query_async(conn)
                    .await?;
                Ok(())
            }
        }
    }

    /// Sets how long, and how many, finished jobs' records are kept (either
    /// 0 keeps none; a job's own [`NewJob::retention_ms`] replaces the
    /// time). A record's expiry is fixed when it is written; records past
    /// the new count are removed a few at a time by the next
    /// acknowledgements.
    ///
    /// [`NewJob::retention_ms`]: crate::NewJob::retention_ms
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn set_retention<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        keep: Duration,
        count: u64,
    ) -> Result<()> {
        let _: i64 = redis::cmd("HSET")
            .arg(self.keys().settings())
            .arg(name::RETENTION_MS)
            .arg(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX))
            .arg(name::RETENTION_COUNT)
            .arg(count)
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// Sets priority weights (critical, high, normal, low), or with `None`
    /// goes back to strict priority (the default). With weights, each claim
    /// takes a turn: of every `sum` turns, priority i is read first in
    /// `weights[i]` of them (the others after it, highest first), so each
    /// is served in proportion to its weight and low never starves.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `weights` when all are 0 or
    /// one is over [`MAX_WEIGHT`]; [`Error::Redis`](crate::Error::Redis).
    pub async fn set_weights<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        weights: Option<[u32; 4]>,
    ) -> Result<()> {
        let Some(w) = weights else {
            let _: i64 = redis::cmd("HDEL")
                .arg(self.keys().settings())
                .arg(name::WEIGHTS)
                .query_async(conn)
                .await?;
            return Ok(());
        };
        let bad = |reason: String| ConfigError::InvalidSetting {
            name: "weights",
            reason,
        };
        if w.iter().all(|n| *n == 0) {
            return Err(bad("all weights are 0: no priority would be served first".into()).into());
        }
        if let Some(n) = w.iter().find(|n| **n > MAX_WEIGHT) {
            return Err(bad(format!("{n} is over the largest weight, {MAX_WEIGHT}")).into());
        }
        let text = w.map(|n| n.to_string()).join(" ");
        self.set(conn, name::WEIGHTS, &text).await
    }

    /// The priority weights, or `None` for strict priority.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn weights<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<Option<[u32; 4]>> {
        let v: Option<String> = redis::cmd("HGET")
            .arg(self.keys().settings())
            .arg(name::WEIGHTS)
            .query_async(conn)
            .await?;
        let parsed: Option<Vec<u32>> =
            v.map(|t| t.split(' ').filter_map(|n| n.parse().ok()).collect());
        Ok(parsed.and_then(|p| <[u32; 4]>::try_from(p).ok()))
    }

    /// Deletes every finished job's record (the results hash and its
    /// retention set); returns how many there were. Dead letters stay.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn clear_results<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<u64> {
        let (n, _, _): (u64, i64, i64) = redis::pipe()
            .atomic()
            .cmd("HLEN")
            .arg(self.keys().results())
            .cmd("DEL")
            .arg(self.keys().results())
            .cmd("DEL")
            .arg(self.keys().retention())
            .query_async(conn)
            .await?;
        Ok(n)
    }

    async fn set<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        field: &str,
        value: &str,
    ) -> Result<()> {
        let _: i64 = redis::cmd("HSET")
            .arg(self.keys().settings())
            .arg(field)
            .arg(value)
            .query_async(conn)
            .await?;
        Ok(())
    }
}
