//! Operating a queue: its live workers, lifecycle events, pause and
//! resume, settings and retention, stats, and dead letters.

use std::time::Duration;

use ferry_broker::{DeadLetter, QueueStats, Settings, WorkerInfo};

use super::Client;
use crate::error::{Error, Result};
use crate::events::Subscription;

impl Client {
    /// The live workers serving `queue`: host, pid, queues, concurrency,
    /// start time, last heartbeat and jobs running. A worker registers
    /// itself with a TTL its heartbeat renews (lease + lease/3), and
    /// removes itself when it stops cleanly.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn workers(&self, queue: &str) -> Result<Vec<WorkerInfo>> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.workers(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Turns `queue`'s lifecycle events on, kept in a stream capped at
    /// about `cap` entries (`Some`), or off (`None`). They cost Redis one
    /// stream entry per event (about 6 per job), so they are off by
    /// default.
    ///
    /// # Errors
    /// [`Error::Config`] (for `Some(0)`) or [`Error::Redis`].
    pub async fn set_events(&self, queue: &str, cap: Option<u64>) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .set_events(&mut conn, cap)
            .await
            .map_err(|e| self.fail(e))
    }

    /// `queue`'s lifecycle events from now on (enqueued, started,
    /// progress, retrying, succeeded, dead, cancelled, recovered), or from
    /// after entry `after` of the events stream. Each subscription reads on
    /// a connection of its own.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn subscribe(&self, queue: &str, after: Option<&str>) -> Result<Subscription> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        let after = match after {
            Some(a) => a.to_owned(),
            None => queue
                .last_event_id(&mut conn)
                .await
                .map_err(|e| self.fail(e))?,
        };
        let blocking = self
            .redis
            .link(self.redis.response_timeout + Duration::from_secs(2))?;
        Ok(Subscription::new(queue, blocking, after))
    }

    /// Pauses `queue` across the whole fleet: workers claim nothing new
    /// from it within about a second; running jobs finish; enqueues still
    /// go in. Idempotent.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn pause(&self, queue: &str) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.pause(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Resumes a paused `queue`. Idempotent.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn resume(&self, queue: &str) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.resume(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Sets (or with `None` removes) the rate limit of `queue`: at most
    /// `n` jobs start per period across the whole fleet, by GCRA on the
    /// server's clock. Jobs over it wait (no attempt is used); workers
    /// sleep until the next slot.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn set_rate_limit(
        &self,
        queue: &str,
        limit: Option<ferry_broker::RateLimit>,
    ) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .set_rate_limit(&mut conn, limit)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Sets (or with `None` removes) a rate limit of `queue`'s jobs of one
    /// type, one concurrency key, or each key (`scope`;
    /// [`ConcurrencyScope::Queue`](ferry_broker::ConcurrencyScope::Queue)
    /// is [`Client::set_rate_limit`]): at most `limit.n` of them start per
    /// period, fleet-wide, and the rest of the queue goes on meanwhile.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad queue name, type or key; [`Error::Redis`].
    pub async fn set_rate_limit_of(
        &self,
        queue: &str,
        scope: &ferry_broker::ConcurrencyScope,
        limit: Option<ferry_broker::RateLimit>,
    ) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .set_rate_limit_of(&mut conn, scope, limit)
            .await
            .map_err(|e| self.fail(e))
    }

    /// The rate limits and holds of `queue`, its own and its types' and
    /// keys', with the jobs parked under each.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad queue name; [`Error::Redis`].
    pub async fn rate_limits(&self, queue: &str) -> Result<ferry_broker::RateLimits> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.rate_limits(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Sets (or with `None` removes) a concurrency limit of `queue`: at
    /// most `limit` of the jobs `scope` names run at once across the whole
    /// fleet (the whole queue, a type, a concurrency key, or each key).
    /// Jobs waiting for a limit raised or removed go on at once.
    ///
    /// # Errors
    /// [`Error::Config`] for a limit of 0 or a bad type or key;
    /// [`Error::Redis`].
    pub async fn set_concurrency(
        &self,
        queue: &str,
        scope: &ferry_broker::ConcurrencyScope,
        limit: Option<u32>,
    ) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .set_concurrency(&mut conn, scope, limit)
            .await
            .map_err(|e| self.fail(e))
    }

    /// The concurrency limits of `queue`, with each gate's jobs running
    /// and waiting.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn concurrency(&self, queue: &str) -> Result<ferry_broker::Concurrency> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.concurrency(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Sets priority weights of `queue` (critical, high, normal, low; e.g.
    /// `[8, 4, 2, 1]`), so each priority is served first in proportion to
    /// its weight and low never starves; `None` goes back to strict
    /// priority, the default.
    ///
    /// # Errors
    /// [`Error::Config`] for weights all 0 or over 1,000; [`Error::Redis`].
    pub async fn set_weights(&self, queue: &str, weights: Option<[u32; 4]>) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .set_weights(&mut conn, weights)
            .await
            .map_err(|e| self.fail(e))
    }

    /// The rate limit of `queue`, if any.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn rate_limit(&self, queue: &str) -> Result<Option<ferry_broker::RateLimit>> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.rate_limit(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// The settings of `queue`: paused, maximum depth, record retention.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn settings(&self, queue: &str) -> Result<Settings> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.settings(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Sets the most jobs `queue` holds (waiting, running or delayed);
    /// past it, enqueues fail with [`Error::QueueFull`]. `None` removes the
    /// limit.
    ///
    /// # Errors
    /// [`Error::Config`] (for `Some(0)`) or [`Error::Redis`].
    pub async fn set_max_depth(&self, queue: &str, max_depth: Option<u64>) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .set_max_depth(&mut conn, max_depth)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Sets how long and how many finished jobs' records `queue` keeps
    /// (default 24 h and 10,000; either 0 keeps none, and then
    /// [`Client::wait`] can only tell a job's final state, not its result).
    /// A record's expiry is fixed when it is written: a new time applies to
    /// jobs finishing from then on, a job's own
    /// [`EnqueueOptions::retention`](crate::EnqueueOptions::retention)
    /// overrides it, and a count of 0 removes the records there are, a few
    /// at a time.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn set_retention(&self, queue: &str, keep: Duration, count: u64) -> Result<()> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .set_retention(&mut conn, keep, count)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Deletes every finished job's record of `queue`; returns how many.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn clear_results(&self, queue: &str) -> Result<u64> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .clear_results(&mut conn)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Depth and counters of `queue`.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.stats(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// The oldest `count` entries of `queue`'s dead-letter stream.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Redis`].
    pub async fn dead_letters(&self, queue: &str, count: usize) -> Result<Vec<DeadLetter>> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue
            .dead_letters(&mut conn, count)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Moves one dead-letter entry of `queue` back to its priority stream as
    /// attempt 1, keeping its job id. Returns the new stream entry id.
    ///
    /// # Errors
    /// [`Error::DeadLetterNotFound`] when `queue` has no dead-letter entry
    /// `entry_id` (or it is not a stream entry id); [`Error::Config`] or
    /// [`Error::Redis`].
    pub async fn replay_dead(&self, queue_name: &str, entry_id: &str) -> Result<String> {
        let queue = self.queue(queue_name)?;
        let mut conn = self.conn().await?;
        queue
            .replay_dead(&mut conn, entry_id)
            .await
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| Error::DeadLetterNotFound {
                queue: queue_name.to_owned(),
                entry_id: entry_id.to_owned(),
            })
    }
}
